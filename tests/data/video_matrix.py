"""Generate small test videos over containers x codecs x B-frames x GOP kinds (PyAV only, no ffmpeg binary).

Each case encodes ``index_pattern`` frames, so a decoded frame shows its own index. Used by
test_video_matrix.py; kept tiny (64x48, <= 60 frames) so the whole default matrix builds in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from e2espot.data.video.patterns import index_pattern

# which codecs each container may hold (as ffmpeg's muxers allow)
CONTAINER_CODECS: dict[str, tuple[str, ...]] = {
    "mp4": ("h264", "hevc", "mpeg4", "vp9"),
    "mkv": ("h264", "hevc", "mpeg4", "vp9"),
    "mov": ("h264", "hevc", "mpeg4"),
    "avi": ("h264", "mpeg4"),
    "webm": ("vp9",),
}
_ENCODERS = {"h264": "libx264", "hevc": "libx265", "mpeg4": "mpeg4", "vp9": "libvpx-vp9"}


@dataclass(frozen=True)
class Case:
    container: str
    codec: str
    bframes: int  # 0: none
    open_gop: bool
    gop: int

    @property
    def name(self) -> str:
        return (f"{self.codec}-{self.container}-bf{self.bframes}-{'open' if self.open_gop else 'closed'}"
                f"-g{self.gop}")


def all_cases() -> list[Case]:
    """Every meaningful combination (VP9 has no B-frames and no open/closed GOP choice)."""
    cases = []
    for container, codecs in CONTAINER_CODECS.items():
        for codec in codecs:
            for gop in (12, 250):
                if codec == "vp9":
                    cases.append(Case(container, codec, 0, False, gop))
                    continue
                for bframes in (0, 2):
                    for open_gop in (False, True):
                        cases.append(Case(container, codec, bframes, open_gop, gop))
    return cases


def _options(case: Case) -> dict[str, str]:
    g = str(case.gop)
    if case.codec == "h264":
        return {"g": g, "bf": str(case.bframes), "preset": "veryfast", "threads": "1",
                "x264-params": f"open-gop={int(case.open_gop)}:scenecut=0:min-keyint={min(case.gop, 12)}"}
    if case.codec == "hevc":
        params = [f"keyint={case.gop}", f"min-keyint={min(case.gop, 12)}", f"bframes={case.bframes}",
                  f"open-gop={int(case.open_gop)}", "scenecut=0", "log-level=error", "pools=1",
                  "frame-threads=1"]
        return {"preset": "ultrafast", "x265-params": ":".join(params)}
    if case.codec == "mpeg4":
        opts = {"g": g, "bf": str(case.bframes), "qscale": "3"}
        if not case.open_gop:  # closed GOPs need scene-change keyframes off (ffmpeg's rule)
            opts.update(flags="+cgop", sc_threshold="1000000000")
        return opts
    return {"g": g, "deadline": "realtime", "cpu-used": "8", "threads": "1", "lag-in-frames": "0"}


def num_frames_of(case: Case) -> int:
    """60 frames for short GOPs; long GOPs get two keyframes (280 frames)."""
    return 60 if case.gop < 60 else case.gop + 30


def encode_case(case: Case, path: Path, num_frames: int | None = None, fps: int = 25) -> Path:
    """Write ``num_frames`` index-pattern frames of ``case`` to ``path`` (suffix = container)."""
    num_frames = num_frames_of(case) if num_frames is None else num_frames
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(_ENCODERS[case.codec], rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size = case.gop
        if case.codec == "mpeg4":
            stream.codec_context.max_b_frames = case.bframes
        stream.options = _options(case)
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(index_pattern(i), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def full_decode(path: Path) -> np.ndarray:
    """Independent reference: every frame of a plain sequential PyAV decode, (N, H, W, 3) uint8."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])

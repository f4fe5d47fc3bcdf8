"""Write H.264 videos with PyAV (bundled libx264): synthetic data, prepare, render, test fixtures."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from e2espot.errors import VideoError


class VideoWriter:
    """Encode RGB uint8 frames (H, W, 3) to an H.264 .mp4 at a constant frame rate.

    ``gop`` is the keyframe interval (short GOPs make random seeks cheap); ``crf`` the quality;
    ``bframes`` the number of consecutive B-frames (0: none, the default); ``rotation`` a display
    rotation in degrees counter-clockwise stored in the stream's display matrix (as phones do; frames
    are written as given and players, and e2espot's readers, turn them by ``rotation``).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        width: int,
        height: int,
        *,
        gop: int = 250,
        crf: int = 23,
        preset: str = "veryfast",
        codec: str = "libx264",
        threads: int = 0,
        bframes: int = 0,
        rotation: int = 0,
    ) -> None:
        import av

        if width % 2 or height % 2:
            raise VideoError(f"cannot encode {path}: {width}x{height} must have even width and height for yuv420p")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.width, self.height = width, height
        self._container = av.open(str(self.path), mode="w")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.gop_size = gop
        self._stream.codec_context.thread_count = threads
        if rotation % 360:
            if rotation % 90:
                raise VideoError(f"cannot encode {path}: rotation {rotation} is not a multiple of 90 degrees")
            self._stream.set_display_rotation(rotation)
        self._stream.options = {"crf": str(crf), "preset": preset, "g": str(gop), "keyint_min": str(gop),
                                "sc_threshold": "0", "bf": str(int(bframes))}
        self.num_frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame of shape (H, W, 3)."""
        import av

        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise VideoError(
                f"{self.path}: frame {self.num_frames} has shape {frame.shape} {frame.dtype}; "
                f"expected ({self.height}, {self.width}, 3) uint8"
            )
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.num_frames
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.num_frames += 1

    def write_many(self, frames) -> None:
        for frame in frames:
            self.write(frame)

    def close(self) -> None:
        if self._container is None:
            return
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: str | Path, frames: np.ndarray, fps: float, **kwargs) -> Path:
    """Write a (N, H, W, 3) uint8 array as an H.264 .mp4 and return its path."""
    frames = np.asarray(frames)
    with VideoWriter(path, fps, frames.shape[2], frames.shape[1], **kwargs) as w:
        w.write_many(frames)
    return Path(path)

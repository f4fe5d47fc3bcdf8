"""Annotated videos: event labels burnt into the frames, a timeline bar, slow motion, audio kept.

Also the helpers the other export modules share (opening a video the way ``predict`` reads it,
audio muxing with PyAV) and the class colour palette the web app uses too. Frames are decoded by
``e2espot.data.video`` only (the one decoder): upright for rotated phone footage, exact on B-frames
and open GOPs, and on variable-frame-rate files resampled by timestamps to the events' fps, so
render, highlights and review show the frames ``predict`` saw.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from e2espot.data.labels import Event, VideoLabels
from e2espot.data.video.base import VideoInfo, VideoReader, probe_video
from e2espot.errors import LabelFormatError, VideoError

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, float], None]

# Distinguishable colours (tab10 order, slightly brightened); class i gets PALETTE[i % len].
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
MISS_RED = (230, 20, 20)


def class_colors(classes: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """One RGB colour per class, in the order given (sorted class lists give stable colours)."""
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(classes)}


def hex_color(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def align_to_video(labels: VideoLabels | None, fps: float) -> VideoLabels | None:
    """``labels`` with frames at the video's ``fps``: events predicted at another frame rate (a model
    that resamples) are re-timed with ``timebase.resample_frame``; unknown fps is taken as the video's."""
    from e2espot.data.timebase import num_frames_at, resample_frame

    if labels is None or not labels.fps or abs(labels.fps - fps) < 1e-6:
        return labels
    out = labels.copy()
    for e in out.events:
        e.frame = resample_frame(e.frame, labels.fps, fps)
    if out.num_frames is not None:
        out.num_frames = num_frames_at(out.num_frames, labels.fps, fps)
    out.fps = fps
    return out


# --------------------------------------------------------------------------- PyAV helpers


def check_events_inside(labels: VideoLabels | None, num_frames: int, video_path: str | Path, what: str) -> None:
    """Raise ``LabelFormatError`` when events of ``labels`` lie at or past the video's last frame.

    Such events would silently never be drawn or cut: the events belong to another video, or were
    predicted at another fps than the one their file states.
    """
    if labels is None:
        return
    outside = sorted(e.frame for e in labels.events if e.frame >= num_frames or e.frame < 0)
    if outside:
        shown = ", ".join(map(str, outside[:5])) + (", ..." if len(outside) > 5 else "")
        raise LabelFormatError(
            f"{what} for '{labels.video}': {len(outside)} event{'s' if len(outside) != 1 else ''} at frames "
            f"outside '{Path(video_path).name}' ({num_frames} frames at {labels.fps or 'its own'} fps): "
            f"{shown}. Are these the events of this video, at the fps their file states?"
        )


def _open(path: str | Path):
    import av

    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(f"cannot open video '{path}': {exc}") from None


def probe_with_rate(path: str | Path) -> VideoInfo:
    """``e2espot.data.video.probe_video`` (the one prober: frame rate, frame count, upright size,
    rotation, audio), and VideoError when the frame rate is unknown (media outputs need one)."""
    info = probe_video(path)
    if not info.fps:
        raise VideoError(f"'{path}': unknown frame rate; re-encode it at a constant frame rate")
    return info


def open_for_events(path: str | Path, events_fps: float | None = None) -> VideoReader:
    """Open ``path`` with ``e2espot.data.video`` as ``predict`` reads it for events at ``events_fps``.

    Constant-frame-rate files are read at their own rate (events at another fps are re-timed with
    ``align_to_video``); variable-frame-rate files are resampled by timestamps to ``events_fps``
    (when known), which is what ``predict`` decoded. Frames are upright (display rotation applied).
    """
    from e2espot.data.video import open_video

    reader = open_video(path)
    if events_fps and not getattr(reader, "is_constant_rate", True):
        reader.close()
        reader = open_video(path, fps=events_fps)
    if not reader.fps:
        reader.close()
        raise VideoError(f"'{path}': unknown frame rate; re-encode it at a constant frame rate")
    return reader


def iter_frames(
    path: str | Path, start: int = 0, stop: int | None = None, *, fps: float | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_idx, RGB uint8 (H, W, 3))`` for frames in ``[start, stop)`` (``stop`` past the end:
    up to the last frame), decoded by ``e2espot.data.video`` (see ``open_for_events`` for ``fps``)."""
    with open_for_events(path, fps) as reader:
        stop = reader.num_frames if stop is None else min(stop, reader.num_frames)
        if start >= stop:
            return
        for idx, chunk in reader.iter_chunks(32, start, stop):
            for i, frame in enumerate(chunk):
                yield idx + i, frame


def read_frames(path: str | Path, indices: Sequence[int], *, max_gap: int = 50,
                fps: float | None = None) -> dict[int, np.ndarray]:
    """Decode the given frame indices (sorted into runs read as one clip each); indices outside the
    video are left out."""
    frames: dict[int, np.ndarray] = {}
    with open_for_events(path, fps) as reader:
        wanted = sorted({i for i in indices if 0 <= i < reader.num_frames})
        runs: list[list[int]] = []
        for i in wanted:
            if runs and i - runs[-1][-1] <= max_gap:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            clip = reader.read_clip(run[0], run[-1] + 1 - run[0])
            for i in run:
                frames[i] = clip[i - run[0]]
    return frames


def _packet_time(packet) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return float(ts * packet.time_base) if ts is not None else 0.0


def _merge_packets(*iterables) -> Iterator:
    """Interleave packet iterators by time (what the muxer expects)."""
    keyed = [((_packet_time(p), n, k, p) for k, p in enumerate(it)) for n, it in enumerate(iterables)]
    for _, _, _, packet in heapq.merge(*keyed, key=lambda x: x[:3]):
        yield packet


def _demux(container, stream) -> Iterator:
    for packet in container.demux(stream):
        if packet.dts is None and packet.pts is None:
            continue  # flush packet
        yield packet


def mux_audio(
    video_only: Path,
    out_path: Path,
    *,
    audio_src: Path | None = None,
    audio_chunks: Callable[[], Iterator[np.ndarray]] | None = None,
    sample_rate: int = 48000,
    layout: str = "stereo",
) -> None:
    """Write ``out_path`` = the video packets of ``video_only`` plus an audio track.

    The audio track is either ``audio_src``'s first audio stream, copied (re-encoded to AAC when
    the codec cannot go into the output container), or float32 ``(channels, n)`` chunks from
    ``audio_chunks()`` encoded to AAC.
    """
    import av

    try:
        with av.open(str(video_only)) as vin, av.open(str(out_path), "w") as out:
            vs = vin.streams.video[0]
            ovs = out.add_stream_from_template(vs)

            def video_packets():
                for p in _demux(vin, vs):
                    p.stream = ovs
                    yield p

            if audio_src is not None:
                with av.open(str(audio_src)) as ain:
                    as_ = ain.streams.audio[0]
                    oas = out.add_stream_from_template(as_)

                    def audio_packets():
                        for p in _demux(ain, as_):
                            p.stream = oas
                            yield p

                    for packet in _merge_packets(video_packets(), audio_packets()):
                        out.mux(packet)
            else:
                oas = out.add_stream("aac", rate=sample_rate, layout=layout)
                encoded = _encode_audio(oas, audio_chunks(), sample_rate, layout)
                for packet in _merge_packets(video_packets(), encoded):
                    out.mux(packet)
    except (av.FFmpegError, ValueError) as exc:
        if audio_src is None:
            raise VideoError(f"cannot write audio into '{out_path}': {exc}") from None
        log.debug("audio copy failed (%s); re-encoding to AAC", exc)
        rate, lay = audio_format(audio_src)
        mux_audio(video_only, out_path, audio_chunks=lambda: decode_audio(audio_src, rate, lay),
                  sample_rate=rate, layout=lay)


def audio_format(path: Path) -> tuple[int, str]:
    """(sample_rate, layout name: 'mono' or 'stereo') of the first audio stream."""
    with _open(path) as c:
        a = c.streams.audio[0]
        channels = a.codec_context.channels or len(a.codec_context.layout.channels)
        return int(a.codec_context.sample_rate or 48000), "mono" if channels == 1 else "stereo"


def decode_audio(path: Path, sample_rate: int, layout: str) -> Iterator[np.ndarray]:
    """Decode the first audio stream to float32 planar chunks ``(channels, n)``."""
    import av

    resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
    with _open(path) as c:
        for frame in c.decode(c.streams.audio[0]):
            for f in resampler.resample(frame):
                yield f.to_ndarray()
        for f in resampler.resample(None):
            yield f.to_ndarray()


def _encode_audio(stream, chunks: Iterator[np.ndarray], sample_rate: int, layout: str) -> Iterator:
    import av

    pts = 0
    for chunk in chunks:
        chunk = np.ascontiguousarray(chunk, dtype=np.float32)
        if chunk.shape[1] == 0:
            continue
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = pts
        pts += chunk.shape[1]
        yield from stream.encode(frame)
    yield from stream.encode(None)


# --------------------------------------------------------------------------- drawing


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def text_patch(
    lines: Sequence[tuple[str, tuple[int, int, int], bool]], font_size: int, max_width: int
) -> np.ndarray:
    """RGBA patch with one line per ``(text, colour, filled)``; filled = solid box, else outlined."""
    from PIL import Image, ImageDraw

    font = _font(font_size)
    pad = max(2, font_size // 5)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    sizes = [probe.textbbox((0, 0), text, font=font) for text, _, _ in lines]
    line_h = max(b[3] for b in sizes) + 2 * pad
    width = min(max_width, max(b[2] for b in sizes) + 2 * pad + 2)
    img = Image.new("RGBA", (max(width, 1), line_h * len(lines) + pad * (len(lines) - 1)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    y = 0
    for (text, color, filled), box in zip(lines, sizes):
        w = min(width, box[2] + 2 * pad + 2)
        if filled:
            draw.rectangle([0, y, w - 1, y + line_h - 1], fill=(*color, 230))
            ink = (0, 0, 0, 255) if sum(color) > 450 else (255, 255, 255, 255)
        else:
            draw.rectangle([0, y, w - 1, y + line_h - 1], fill=(0, 0, 0, 200), outline=(*color, 255),
                           width=max(1, font_size // 8))
            ink = (*color, 255)
        draw.text((pad + 1, y + pad), text, font=font, fill=ink)
        y += line_h + pad
    return np.asarray(img)


def blend(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend an RGBA patch into ``frame`` in place at (x, y), clipped to the frame."""
    h = min(patch.shape[0], frame.shape[0] - y)
    w = min(patch.shape[1], frame.shape[1] - x)
    if h <= 0 or w <= 0:
        return
    p = patch[:h, :w].astype(np.float32)
    alpha = p[..., 3:4] / 255.0
    region = frame[y:y + h, x:x + w].astype(np.float32)
    frame[y:y + h, x:x + w] = (p[..., :3] * alpha + region * (1.0 - alpha) + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------- matching


@dataclass
class Match:
    """One-to-one matching of predictions to ground truth within a tolerance (per class).

    Predictions are taken by descending score; each takes the nearest free same-label truth event
    within ``tolerance_frames``. A prediction left over is a *duplicate* when a truth event it could
    have taken was already taken, else *spurious*. Indices refer to the given lists.
    """

    pred_to_truth: dict[int, int]
    duplicates: list[int]
    spurious: list[int]
    missed: list[int]

    @property
    def matched_truth(self) -> set[int]:
        return set(self.pred_to_truth.values())


def match_events(preds: Sequence[Event], truth: Sequence[Event], tolerance_frames: int) -> Match:
    """Match predictions to ground truth; see ``Match``."""
    order = sorted(range(len(preds)), key=lambda i: (-(preds[i].score if preds[i].score is not None else 1.0),
                                                      preds[i].frame))
    taken: dict[int, int] = {}
    pred_to_truth: dict[int, int] = {}
    duplicates: list[int] = []
    spurious: list[int] = []
    for i in order:
        p = preds[i]
        near = [j for j, t in enumerate(truth)
                if t.label == p.label and abs(t.frame - p.frame) <= tolerance_frames]
        free = [j for j in near if j not in taken]
        if free:
            j = min(free, key=lambda j: (abs(truth[j].frame - p.frame), j))
            taken[j] = i
            pred_to_truth[i] = j
        elif near:
            duplicates.append(i)
        else:
            spurious.append(i)
    missed = [j for j in range(len(truth)) if j not in taken]
    return Match(pred_to_truth, sorted(duplicates), sorted(spurious), missed)


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class RenderResult:
    """What ``render_annotated`` wrote."""

    path: Path
    num_frames_in: int
    num_frames_out: int
    fps: float
    audio: bool  # an audio track was written


def slowmo_mask(event_frames: Sequence[int], num_frames: int, fps: float, slowmo_s: float) -> np.ndarray:
    """Boolean mask of frames within ``slowmo_s`` seconds of any event (these get repeated)."""
    mask = np.zeros(max(num_frames, 0), dtype=bool)
    if slowmo_s <= 0:
        return mask
    pad = int(round(slowmo_s * fps))
    for f in event_frames:
        mask[max(0, f - pad):max(0, min(num_frames, f + pad + 1))] = True
    return mask


def _fmt_time(time_s: float) -> str:
    m, s = divmod(time_s, 60.0)
    return f"{int(m):d}:{s:05.2f}"


class _Overlay:
    """Pre-computes everything that does not change per frame; ``apply`` draws one frame."""

    def __init__(self, width: int, height: int, num_frames: int, fps: float, preds: list[Event],
                 truth: list[Event] | None, hold: int, tolerance_frames: int) -> None:
        self.w, self.h, self.n = width, height, max(num_frames, 1)
        classes = sorted({e.label for e in preds} | {e.label for e in (truth or [])})
        self.colors = class_colors(classes)
        self.font_size = max(9, height // 16)
        self.hold = hold
        self.match = match_events(preds, truth, tolerance_frames) if truth is not None else None
        self.preds, self.truth = preds, truth or []
        self.bar_h = max(6, height // 10) if truth is None else max(8, height // 8)
        self.bar = self._timeline()
        self._cache: dict[tuple, np.ndarray] = {}
        # active windows: event k visible on frames [frame, frame + hold)
        self._pred_frames = np.array([e.frame for e in preds], dtype=np.int64)
        self._truth_frames = np.array([e.frame for e in self.truth], dtype=np.int64)

    def _x(self, frame: int) -> int:
        return int(round(min(max(frame, 0), self.n - 1) / max(self.n - 1, 1) * (self.w - 1)))

    def _timeline(self) -> np.ndarray:
        bar = np.full((self.bar_h, self.w, 3), 24, dtype=np.uint8)
        tick = max(2, self.w // 200)
        rows = [(0, self.bar_h)] if self.match is None else [(0, self.bar_h // 2), (self.bar_h // 2, self.bar_h)]
        y0, y1 = rows[0]
        unmatched = set() if self.match is None else set(self.match.spurious) | set(self.match.duplicates)
        for i, e in enumerate(self.preds):
            x = self._x(e.frame)
            color = self.colors[e.label]
            if i in unmatched:
                mid = (y0 + y1) // 2
                bar[y0:mid, x:x + tick] = color
                bar[mid:y1, x:x + tick] = MISS_RED
            else:
                bar[y0:y1, x:x + tick] = color
        if self.match is not None:
            y0, y1 = rows[1]
            bar[y0, :] = 70  # separator between the prediction and the truth rows
            missed = set(self.match.missed)
            for j, e in enumerate(self.truth):
                x = self._x(e.frame)
                bar[y0 + 1:y1, x:x + tick] = MISS_RED if j in missed else self.colors[e.label]
        return bar

    def _lines(self, pred_ids: tuple[int, ...], truth_ids: tuple[int, ...]):
        left, right = [], []
        for i in pred_ids:
            e = self.preds[i]
            score = f" {e.score:.2f}" if e.score is not None else ""
            if self.match is None or i in self.match.pred_to_truth:
                left.append((f"{e.label}{score}", self.colors[e.label], True))
            else:
                kind = "dup" if i in self.match.duplicates else "spurious"
                left.append((f"{e.label}{score} ({kind})", MISS_RED, False))
        missed = set(self.match.missed) if self.match is not None else set()
        for j in truth_ids:
            e = self.truth[j]
            if j in missed:
                right.append((f"missed: {e.label}", MISS_RED, True))
            else:
                right.append((f"GT {e.label}", self.colors[e.label], False))
        return left, right

    def apply(self, frame: np.ndarray, idx: int) -> None:
        pred_ids = tuple(np.flatnonzero((self._pred_frames <= idx) & (idx < self._pred_frames + self.hold)))
        truth_ids = tuple(np.flatnonzero((self._truth_frames <= idx) & (idx < self._truth_frames + self.hold)))
        margin = max(2, self.h // 60)
        if pred_ids or truth_ids:
            key = (pred_ids, truth_ids)
            patches = self._cache.get(key)
            if patches is None:
                left, right = self._lines(pred_ids, truth_ids)
                half = self.w // 2 - margin if right and left else self.w - 2 * margin
                patches = (text_patch(left, self.font_size, half) if left else None,
                           text_patch(right, self.font_size, half) if right else None)
                if len(self._cache) > 512:
                    self._cache.clear()
                self._cache[key] = patches
            if patches[0] is not None:
                blend(frame, patches[0], margin, margin)
            if patches[1] is not None:
                blend(frame, patches[1], max(0, self.w - margin - patches[1].shape[1]), margin)
        y = self.h - self.bar_h
        frame[y:] = self.bar
        x = self._x(idx)
        frame[y:, max(0, x - 1):x + 1] = 255


def render_annotated(
    video_path: str | Path,
    events: VideoLabels,
    out_path: str | Path,
    *,
    truth: VideoLabels | None = None,
    slowmo_s: float = 0.0,
    slowmo_factor: int = 4,
    hold_s: float = 1.0,
    tolerance_frames: int = 2,
    progress: ProgressFn | None = None,
) -> RenderResult:
    """Write ``out_path`` (H.264 .mp4): the video with its events drawn in.

    * From exactly the event frame, a box with ``label score`` in the class colour stays on screen
      for ``hold_s`` seconds (top left; ground truth, when given, top right).
    * A timeline bar at the bottom: one tick per event in its class colour, and a white playhead.
      With ``truth``, the bar has two rows (predictions, then ground truth): matched events in their
      class colour, spurious/duplicate predictions half red, missed truth events red.
    * ``slowmo_s > 0``: frames within ``slowmo_s`` seconds of a predicted event are written
      ``slowmo_factor`` times. The audio is then dropped (it would no longer be in sync).
    * Otherwise the source's audio stream is copied unchanged (re-encoded to AAC if it cannot go
      into an .mp4).

    Frames are read by ``open_for_events`` (frame 0 = first frame, upright, a variable-frame-rate
    file resampled to the events' fps as ``predict`` read it), matching ``Event.frame``; events at
    another fps than the video's are re-timed first (``align_to_video``). An odd width
    or height loses its last pixel column/row (H.264 4:2:0 needs even sizes).
    """
    from e2espot.data.video.writer import VideoWriter

    if slowmo_factor < 1:
        raise VideoError(f"slowmo_factor {slowmo_factor} must be >= 1")
    video_path, out_path = Path(video_path), Path(out_path)
    info = probe_with_rate(video_path)
    reader = open_for_events(video_path, events.fps)
    fps = reader.fps
    events, truth = align_to_video(events, fps), align_to_video(truth, fps)
    num_frames = reader.num_frames
    try:
        check_events_inside(events, num_frames, video_path, "events")
        check_events_inside(truth, num_frames, video_path, "labels")
    except LabelFormatError:
        reader.close()
        raise
    width, height = reader.width - reader.width % 2, reader.height - reader.height % 2
    if width < 2 or height < 2:
        reader.close()
        raise VideoError(f"'{video_path}' is {reader.width}x{reader.height}; too small to render")
    preds = sorted(events.events, key=lambda e: (e.frame, e.label))
    truth_events = sorted(truth.events, key=lambda e: (e.frame, e.label)) if truth is not None else None
    hold = max(1, int(round(hold_s * fps)))
    overlay = _Overlay(width, height, num_frames, fps, preds, truth_events, hold, tolerance_frames)
    mask = slowmo_mask([e.frame for e in preds], num_frames, fps, slowmo_s)
    keep_audio = info.has_audio and slowmo_s <= 0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.stem + ".noaudio.tmp.mp4") if keep_audio else out_path
    n_in = n_out = 0
    try:
        with reader, VideoWriter(tmp, fps, width, height) as writer:
            for start, chunk in reader.iter_chunks(32):
                for i, frame in enumerate(chunk):
                    idx = start + i
                    frame = np.array(frame[:height, :width])  # writable copy
                    overlay.apply(frame, idx)
                    repeats = slowmo_factor if idx < len(mask) and mask[idx] else 1
                    for _ in range(repeats):
                        writer.write(frame)
                    n_in += 1
                    n_out += repeats
                    if progress is not None and num_frames and idx % 25 == 0:
                        progress("render", min(1.0, idx / num_frames))
        if n_in == 0:
            raise VideoError(f"'{video_path}' has no decodable video frames")
        if keep_audio:
            mux_audio(tmp, out_path, audio_src=video_path)
    finally:
        if keep_audio and tmp.exists():
            tmp.unlink()
    if progress is not None:
        progress("render", 1.0)
    return RenderResult(out_path, n_in, n_out, fps, keep_audio)

"""Highlight reels: cuts around chosen events, merged, with a title card before each cut."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from e2espot.data.labels import Event, VideoLabels
from e2espot.data.timebase import frame_to_time_s
from e2espot.errors import ConfigError, VideoError
from e2espot.export.render import (
    ProgressFn,
    _fmt_time,
    _font,
    align_to_video,
    audio_format,
    check_events_inside,
    class_colors,
    decode_audio,
    mux_audio,
    open_for_events,
    probe_with_rate,
)


@dataclass
class Cut:
    """Frames ``[start_frame, end_frame)`` of the source and the events inside."""

    start_frame: int
    end_frame: int  # exclusive
    events: list[Event] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame


def select_events(
    events: Sequence[Event], *, classes: Sequence[str] | None = None, min_score: float = 0.0,
    thresholds: Mapping[str, float] | None = None,
) -> list[Event]:
    """Events of ``classes`` (all when None) with score >= their class's entry of ``thresholds``, else
    ``min_score`` (unscored events pass), by frame (stable: events of one frame keep their order, so an
    export keeps predict's order)."""
    wanted = set(classes) if classes else None
    floors = thresholds or {}
    return sorted(
        (e for e in events
         if (wanted is None or e.label in wanted)
         and (e.score is None or e.score >= floors.get(e.label, min_score))),
        key=lambda e: e.frame,
    )


@dataclass(frozen=True)
class ExportThresholds:
    """The score floor ``export --to chapters|highlights`` applies, and where it comes from."""

    thresholds: dict[str, float] | None  # per class; None: ``min_score`` for every class
    min_score: float  # classes without a per-class threshold
    source: str

    def describe(self) -> str:
        """One line for the CLI: the values, then the source."""
        if self.thresholds:
            values = "per-class thresholds " + ", ".join(f"{c} {t:.3f}" for c, t in self.thresholds.items())
        elif self.min_score > 0:
            values = f"threshold {self.min_score:g} for every class"
        else:
            values = "no threshold"
        return f"score thresholds: {values} ({self.source})"


def run_dir_of(events_path: str | Path) -> Path | None:
    """The run directory an events file lies in (``e2espot test`` writes ``pred-<split>.json`` into the run
    directory, beside its ``config.json``), or None."""
    folder = Path(events_path).resolve().parent
    return folder if (folder / "config.json").is_file() else None


def export_thresholds(events_path: str | Path, *, run: str | Path | None = None,
                      min_score: float | None = None) -> ExportThresholds:
    """The thresholds for chapters and highlights, in this order of precedence:

    1. ``min_score`` (``--min-score``): that floor for every class;
    2. the per-class thresholds of ``run`` (``--run``), or of the run directory the events file lies in
       (:func:`run_dir_of`): what ``predict`` and ``test`` apply (``infer.predict.applied_postprocess``:
       chosen on validation at the end of training, else the run's threshold, else its 0.5 default);
    3. none: the events file as it is (its own thresholds, applied when it was written).

    Raises ``CheckpointError`` / ``ConfigError`` when ``run`` has no readable ``config.json``.
    """
    from e2espot.config import RunConfig
    from e2espot.errors import CheckpointError
    from e2espot.infer.predict import applied_postprocess

    if min_score is not None:
        return ExportThresholds(None, float(min_score), "--min-score, for every class")
    found = run is None
    run_dir = Path(run) if run is not None else run_dir_of(events_path)
    if run_dir is None:
        return ExportThresholds(None, 0.0, f"every event of {Path(events_path).name} is kept: the thresholds it "
                                           "was written with; --run RUN_DIR applies the run's per-class "
                                           "thresholds, --min-score S one floor")
    config = run_dir / "config.json"
    if not config.is_file():
        raise CheckpointError(f"--run {run_dir}: no config.json there; pass the directory 'e2espot train' "
                              "wrote (config.json + best.pt)")
    label = f"{config}" + (", the events file's run directory" if found else "")
    applied = applied_postprocess(RunConfig.load(config), run_label=label)
    return ExportThresholds(applied.thresholds, applied.threshold,
                            applied.threshold_source.replace("--threshold T", "--min-score S"))


def highlight_cuts(
    events: Sequence[Event],
    *,
    fps: float,
    num_frames: int,
    classes: Sequence[str] | None = None,
    min_score: float = 0.0,
    pad_s: float = 3.0,
) -> list[Cut]:
    """Cut list: ``[frame - pad, frame + pad]`` per selected event, clamped to the video, overlapping
    or touching cuts merged, in time order. ``pad = round(pad_s * fps)`` frames."""
    if pad_s < 0:
        raise ConfigError(f"pad_s {pad_s} must be >= 0")
    pad = int(round(pad_s * fps))
    cuts: list[Cut] = []
    for e in select_events(events, classes=classes, min_score=min_score):
        if e.frame < 0 or e.frame >= num_frames:
            continue
        start, end = max(0, e.frame - pad), min(num_frames, e.frame + pad + 1)
        if cuts and start <= cuts[-1].end_frame:
            cuts[-1].end_frame = max(cuts[-1].end_frame, end)
            cuts[-1].events.append(e)
        else:
            cuts.append(Cut(start, end, [e]))
    return cuts


def title_card(cut: Cut, fps: float, width: int, height: int) -> np.ndarray:
    """A dark RGB frame listing the cut's events: ``label  m:ss.ss  (score)`` in class colours."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (16, 16, 20))
    draw = ImageDraw.Draw(img)
    lines = cut.events[:8]
    size = max(9, min(height // (2 * len(lines) + 2), width // 14))
    font = _font(size)
    colors = class_colors(sorted({e.label for e in cut.events}))
    y = (height - len(lines) * size * 1.6) / 2
    for e in lines:
        text = f"{e.label}  {_fmt_time(frame_to_time_s(e.frame, fps))}"
        if e.score is not None:
            text += f"  ({e.score:.2f})"
        box = draw.textbbox((0, 0), text, font=font)
        draw.text(((width - box[2]) / 2, y), text, font=font, fill=colors[e.label])
        y += size * 1.6
    if len(cut.events) > len(lines):
        draw.text((4, height - size - 4), f"+{len(cut.events) - len(lines)} more", font=font, fill=(200, 200, 200))
    return np.asarray(img)


@dataclass(frozen=True)
class HighlightReel:
    """What ``write_highlight_reel`` wrote."""

    path: Path
    cuts: list[Cut]
    num_frames: int  # output frames, title cards included
    title_frames: int  # per card
    audio: bool


def write_highlight_reel(
    video_path: str | Path,
    events: VideoLabels,
    out_path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    min_score: float = 0.0,
    pad_s: float = 3.0,
    title_s: float = 1.0,
    audio: bool = True,
    progress: ProgressFn | None = None,
) -> HighlightReel:
    """Cut ``pad_s`` seconds around each selected event (see ``highlight_cuts``) and write the cuts
    in time order, each after a ``title_s`` title card, re-encoded as H.264 .mp4.

    With ``audio`` and a source audio track, the cuts' audio is re-encoded to AAC (silence under
    title cards). Events at another fps than the video's are re-timed (``render.align_to_video``).
    Raises ``VideoError`` when no event is selected. Frames come from ``render.open_for_events``
    (upright; a variable-frame-rate file resampled to the events' fps as ``predict`` read it).
    """
    video_path, out_path = Path(video_path), Path(out_path)
    info = probe_with_rate(video_path)
    with open_for_events(video_path, events.fps) as reader:
        return _write_reel(reader, info.has_audio, video_path, events, out_path, classes=classes,
                           min_score=min_score, pad_s=pad_s, title_s=title_s, audio=audio, progress=progress)


def _write_reel(reader, has_audio: bool, video_path: Path, events: VideoLabels, out_path: Path, *, classes,
                min_score: float, pad_s: float, title_s: float, audio: bool,
                progress: ProgressFn | None) -> HighlightReel:
    from e2espot.data.video.writer import VideoWriter

    fps = reader.fps
    events = align_to_video(events, fps)
    num_frames = reader.num_frames
    check_events_inside(events, num_frames, video_path, "events")
    cuts = highlight_cuts(events.events, fps=fps, num_frames=num_frames, classes=classes,
                          min_score=min_score, pad_s=pad_s)
    if not cuts:
        raise VideoError(
            f"no events to cut from '{video_path}' (classes={list(classes) if classes else 'all'}, "
            f"min_score={min_score}); lower --min-score or choose other classes"
        )
    width, height = reader.width - reader.width % 2, reader.height - reader.height % 2
    title_frames = max(0, int(round(title_s * fps)))
    with_audio = audio and has_audio
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.stem + ".noaudio.tmp.mp4") if with_audio else out_path
    total = sum(c.num_frames for c in cuts)
    done = 0
    written = 0
    try:
        with VideoWriter(tmp, fps, width, height) as writer:
            for cut in cuts:
                card = title_card(cut, fps, width, height)
                for _ in range(title_frames):
                    writer.write(card)
                written += title_frames
                for _, chunk in reader.iter_chunks(32, cut.start_frame, cut.end_frame):
                    for frame in chunk:
                        writer.write(np.ascontiguousarray(frame[:height, :width]))
                        done += 1
                        if progress is not None and done % 25 == 0:
                            progress("render", done / total)
                written += cut.num_frames
        if with_audio:
            rate, layout = audio_format(video_path)
            mux_audio(tmp, out_path, audio_chunks=lambda: _reel_audio(video_path, cuts, fps, title_frames,
                                                                      rate, layout),
                      sample_rate=rate, layout=layout)
    finally:
        if with_audio and tmp.exists():
            tmp.unlink()
    if progress is not None:
        progress("render", 1.0)
    return HighlightReel(out_path, cuts, written, title_frames, with_audio)


def _reel_audio(video_path: Path, cuts: list[Cut], fps: float, title_frames: int, rate: int, layout: str):
    """Audio chunks for the reel: silence per title card, then the cut's samples."""
    channels = 1 if layout == "mono" else 2
    spans = [(int(round(c.start_frame / fps * rate)), int(round(c.end_frame / fps * rate))) for c in cuts]
    silence = int(round(title_frames / fps * rate))
    pos = 0  # sample index of the next decoded sample
    k = 0
    emitted_for_k = 0
    yield np.zeros((channels, silence), np.float32)
    for chunk in decode_audio(video_path, rate, layout):
        n = chunk.shape[1]
        while k < len(spans) and n:
            a, b = spans[k]
            lo, hi = max(a, pos), min(b, pos + n)
            if hi > lo:
                yield chunk[:, lo - pos:hi - pos]
                emitted_for_k += hi - lo
            if pos + n >= b:  # cut k is complete
                short = (b - a) - emitted_for_k
                if short > 0:
                    yield np.zeros((channels, short), np.float32)
                k += 1
                emitted_for_k = 0
                if k < len(spans):
                    yield np.zeros((channels, silence), np.float32)
                continue
            break
        pos += n
    while k < len(spans):  # audio shorter than the video: pad with silence
        a, b = spans[k]
        yield np.zeros((channels, (b - a) - emitted_for_k), np.float32)
        k += 1
        emitted_for_k = 0
        if k < len(spans):
            yield np.zeros((channels, silence), np.float32)

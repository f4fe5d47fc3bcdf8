"""Bring labels into the model's frame units and check them against the real videos.

Labels count frames at the label file's fps; the model sees frames at ``DataConfig.fps`` (or the
video's native fps). Event frames are re-timed through ``timebase`` and ``num_frames`` is taken from
the video itself, so an event past the end of its video is an error, never silently dropped.
Labels whose own length (``num_frames`` at their ``fps``) disagrees with the video's duration by
more than ``DURATION_TOLERANCE_S`` / ``DURATION_TOLERANCE_REL`` are an error naming both durations:
the usual cause is a wrong label fps or labels of another cut of the video, and stretching the
events to fit would move every one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from e2espot.config import DataConfig
from e2espot.data import timebase
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import LabelFormatError

# labels and video may disagree on length by this much (seconds, or a fraction of the video) before
# it is an error: frame counts from other decoders differ by a frame or two, a wrong fps by >= 0.1 %
DURATION_TOLERANCE_S = 1.0
DURATION_TOLERANCE_REL = 0.01


def align_labels(
    labels: LabelSet,
    videos_root: str | Path,
    data_cfg: DataConfig,
    *,
    source: str = "labels",
    probe: Callable[[VideoLabels], tuple[float, int]] | None = None,
) -> LabelSet:
    """Return labels whose frames and ``num_frames`` are in the units the model reads.

    ``probe(video) -> (fps, num_frames)`` of the reader the model uses (default: open the video
    found under ``videos_root`` with the data config's fps/height).
    """
    probe = probe or _video_prober(videos_root, data_cfg)
    out = []
    for video in labels:
        reader_fps, reader_frames = probe(video)
        label_fps = video.fps
        if label_fps is None and data_cfg.fps is not None and data_cfg.fps != reader_fps:
            raise LabelFormatError(
                f"{source}: video '{video.video}' has no fps in its labels, so its frames cannot be re-timed "
                f"to --fps {data_cfg.fps}; add 'fps' to the labels or train at the native fps"
            )
        check_duration(video, reader_fps, reader_frames, source=source)
        events = []
        for i, e in enumerate(video.events):
            frame = e.frame
            if "position_ms" in e.extra:
                frame = timebase.position_ms_to_frame(e.extra["position_ms"], reader_fps)
            elif label_fps is not None and label_fps > 0:
                frame = timebase.resample_frame(e.frame, label_fps, reader_fps)
            if frame >= reader_frames:
                raise LabelFormatError(
                    f"{source}: video '{video.video}', event #{i} ({e.label}): frame {frame} is past the "
                    f"end of the video ({reader_frames} frames at {reader_fps or 'unknown'} fps). Check that "
                    "the label file and the video belong together"
                )
            events.append(Event(frame, e.label, e.score, e.team, e.visibility, e.comment, dict(e.extra)))
        out.append(VideoLabels(video.video, reader_fps, reader_frames, events, video.width, video.height,
                               dict(video.extra)))
    return LabelSet(list(labels.classes), out)


def check_duration(video: VideoLabels, video_fps: float | None, video_frames: int, *,
                   source: str = "labels") -> None:
    """Raise ``LabelFormatError`` when ``video``'s labelled length and the real video's disagree.

    The labels' length is ``num_frames / fps`` (``num_frames`` at the video's fps when the labels
    give no fps); nothing is checked when the labels give no ``num_frames`` or no fps is known.
    """
    if video.num_frames is None or not video_fps:
        return
    label_fps = video.fps or video_fps
    label_s, video_s = video.num_frames / label_fps, video_frames / video_fps
    if abs(label_s - video_s) <= max(DURATION_TOLERANCE_S, DURATION_TOLERANCE_REL * video_s):
        return
    fps_txt = f"{video.fps:g} fps" if video.fps else f"the video's {video_fps:g} fps (no fps in the labels)"
    hint = ""
    if video.fps and abs(video.num_frames / video_fps - video_s) <= DURATION_TOLERANCE_S:
        hint = (f" The label frame count matches the video at {video_fps:g} fps: if the labels count video "
                f"frames, set their fps to {video_fps:g}.")
    raise LabelFormatError(
        f"{source}: video '{video.video}': the labels last {label_s:.2f} s ({video.num_frames} frames at "
        f"{fps_txt}) but the video lasts {video_s:.2f} s ({video_frames} frames at {video_fps:g} fps). "
        f"Events are never stretched to fit.{hint} Otherwise check that the label file belongs to this "
        "video (same cut, same start)"
    )


def _video_prober(
    videos_root: str | Path, data_cfg: DataConfig
) -> Callable[[VideoLabels], tuple[float, int]]:
    from e2espot.data.video import find_video, open_video

    def probe(video: VideoLabels) -> tuple[float, int]:
        with open_video(find_video(videos_root, video.video), fps=data_cfg.fps, height=data_cfg.height,
                        width=data_cfg.width) as reader:
            return reader.fps, reader.num_frames

    return probe

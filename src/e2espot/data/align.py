"""Bring labels into the model's frame units and check them against the real videos.

Labels count frames at the label file's fps; the model sees frames at ``DataConfig.fps`` (or the
video's native fps). Event frames are re-timed through ``timebase`` and ``num_frames`` is taken from
the video itself, so an event past the end of its video is an error, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from e2espot.config import DataConfig
from e2espot.data import timebase
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import LabelFormatError


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


def _video_prober(
    videos_root: str | Path, data_cfg: DataConfig
) -> Callable[[VideoLabels], tuple[float, int]]:
    from e2espot.data.video import find_video, open_video

    def probe(video: VideoLabels) -> tuple[float, int]:
        with open_video(find_video(videos_root, video.video), fps=data_cfg.fps, height=data_cfg.height,
                        width=data_cfg.width) as reader:
            return reader.fps, reader.num_frames

    return probe

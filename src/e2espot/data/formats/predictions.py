"""Prediction event files: the one writer of what ``predict``, ``test``, ``export`` and the web app store.

* Prediction JSON (``<name>.json``, gzipped when the name ends in ``.gz``): the ``spot`` format's layout,
  ``[{"video", "num_frames", "num_events", "events": [{"frame", "label", "score", "time_s"[, "team",
  "team_score"]}], "fps"}]``; ``fps`` is ``null`` when unknown (never -1; the ``spot`` reader accepts
  both); events ordered by frame (stable: ties keep the given order); ``indent=1`` (no indent when
  gzipped), keys in schema order. ``class.txt`` beside it when the class list is known.
* Events CSV: the ``csv`` format's layout, ``video,frame,time_s,label,score[,team[,team_score]]`` with
  ``time_s`` to 6 decimals and the score as Python ``repr`` (lossless), the same event order.
* SoccerNet ``results_spotting.json``: ``soccernet_results.results_spotting`` /
  ``write_results_spotting`` (one game), or ``write_labels(..., "soccernet-results")`` (a folder or zip).

Readers: ``read_predictions`` (= ``read_labels(path, "spot")``), or ``read_labels`` for any format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from e2espot.data.formats import csvfile, spot
from e2espot.data.formats.soccernet_results import results_spotting, write_results_spotting
from e2espot.data.labels import LabelSet, VideoLabels, infer_classes

PredictionVideos = LabelSet | VideoLabels | Sequence[VideoLabels]

__all__ = [
    "read_predictions",
    "results_spotting",
    "write_prediction_csv",
    "write_prediction_json",
    "write_results_spotting",
]


def _by_frame(videos: PredictionVideos, classes: Sequence[str] | None) -> tuple[LabelSet, bool]:
    """(LabelSet with events ordered by frame, whether the class list is known)."""
    if isinstance(videos, LabelSet):
        classes = list(videos.classes) if classes is None else list(classes)
        videos = videos.videos
    elif isinstance(videos, VideoLabels):
        videos = [videos]
    ordered = [dataclasses.replace(v, events=sorted(v.events, key=lambda e: e.frame)) for v in videos]
    known = classes is not None
    return LabelSet(list(classes) if known else infer_classes(ordered), ordered), known


def write_prediction_json(
    videos: PredictionVideos, path: str | Path, *, classes: Sequence[str] | None = None
) -> Path:
    """Write a prediction JSON (layout in the module docstring); ``class.txt`` beside it when ``classes``
    is given or ``videos`` is a LabelSet. Returns the JSON's path."""
    path = Path(path)
    labels, known = _by_frame(videos, classes)
    indent = None if path.name.endswith(".gz") else 1
    spot.write(labels, path, indent=indent, sort_keys=False, write_classes=known, unknown_fps=None)
    return path


def write_prediction_csv(
    videos: PredictionVideos, path: str | Path, *, classes: Sequence[str] | None = None
) -> Path:
    """Write the events CSV (the ``csv`` format, events by frame). Returns its path."""
    labels, _ = _by_frame(videos, classes)
    return csvfile.write(labels, path)[0]


def read_predictions(path: str | Path) -> LabelSet:
    """A prediction JSON (plain or gzipped; ours or E2E-Spot's ``pred-*.json``) as a LabelSet."""
    return spot.read(path)

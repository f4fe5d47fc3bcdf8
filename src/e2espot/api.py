"""The small public facade: ``from e2espot import open_video, load_model, predict, evaluate``.

Each name is the library function that the CLI itself calls (nothing is reimplemented here):

* ``open_video(path, fps=None, height=None, width=None)``: ``e2espot.data.video.open_video``, a reader with
  ``num_frames``, ``fps``, ``read_clip(start, n) -> (n, H, W, 3) uint8``; a context manager.
* ``load_model(run_dir, device="cpu", checkpoint="best") -> (model, RunConfig)``:
  ``e2espot.infer.predict.load_run`` (our run folders, published E2E-Spot / OpenSportsLib models, hf://).
* ``predict(video, run, out_dir, **options) -> PredictionFiles``: ``e2espot.infer.predict.predict_file``,
  what ``e2espot predict`` runs per video (writes ``<stem>.json``, ``.recall.json``, ``.csv``, ``.npz``).
* ``evaluate(truth, pred, tolerances=(0, 1, 2, 4), classes=None) -> MapResult``: E2E-Spot mAP
  (``e2espot.eval.metrics.e2e_map``); ``truth`` / ``pred`` are LabelSets or paths read with
  ``e2espot.data.formats.read_labels`` (format detected). Frames are compared as they are, so both must
  be at the same fps (``e2espot evaluate`` aligns them for you).

``import e2espot`` stays light: these load on first use (PEP 562 ``__getattr__`` in ``e2espot/__init__``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from e2espot.constants import DEFAULT_TOLERANCES
from e2espot.data.video import open_video
from e2espot.infer.predict import load_run as load_model
from e2espot.infer.predict import predict_file as predict

if TYPE_CHECKING:
    from e2espot.data.labels import LabelSet
    from e2espot.eval.metrics import MapResult

__all__ = ["evaluate", "load_model", "open_video", "predict"]


def evaluate(
    truth: LabelSet | str | Path,
    pred: LabelSet | str | Path,
    tolerances: Iterable[int] = DEFAULT_TOLERANCES,
    classes: Sequence[str] | None = None,
) -> MapResult:
    """E2E-Spot mAP of ``pred`` against ``truth`` at each tolerance (frames).

    Paths are read with ``read_labels`` (format detected; LabelFormatError when it cannot tell).
    ``classes``: default every class with ground truth. Raises LabelFormatError when the video ids differ
    or the ground truth has no events, ConfigError on a negative tolerance.
    """
    from e2espot.data.formats import read_labels
    from e2espot.eval.metrics import e2e_map

    truth_set = truth if not isinstance(truth, (str, Path)) else read_labels(truth)
    pred_set = pred if not isinstance(pred, (str, Path)) else read_labels(pred)
    return e2e_map(truth_set, pred_set, tolerances, classes=classes)

"""Clip classification metrics (``train --task classify``, ``test`` on a classify run): accuracy, per-class
average precision and the confusion matrix. Functions return data; ``format_clip_metrics`` returns the table
as text (the CLI prints it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from e2espot.errors import ConfigError

BACKGROUND = "background"  # the name of class 0 in clip metrics


def average_precision(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """AP of one class: ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, highest first
    (tied scores form one threshold), i.e. scikit-learn's ``average_precision_score``. None when there is
    no positive (AP undefined).

    ``positive`` (N,) bool, ``scores`` (N,) float.
    """
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    num_pos = int(positive.sum())
    if num_pos == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # index of the last item of each tie group
    tp = np.cumsum(p)[last]  # (G,)
    precision = tp / (last + 1)
    recall = tp / num_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass(frozen=True)
class ClipMetrics:
    """Scores of ``num_clips`` clips over ``classes`` (``classes[0]`` = background).

    ``confusion[i][j]``: clips of true class i predicted as j (prediction = the arg-max probability).
    ``per_class_ap``: one-vs-rest AP of each class (None without a true clip of that class);
    ``mean_ap``: mean over the foreground classes that have an AP (None when none has).
    """

    classes: tuple[str, ...]
    num_clips: int
    accuracy: float
    per_class_ap: dict[str, float | None]
    mean_ap: float | None
    confusion: tuple[tuple[int, ...], ...]
    support: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["classes"] = list(self.classes)
        out["confusion"] = [list(r) for r in self.confusion]
        out["confusion_axes"] = "rows: true class, columns: predicted class (arg-max), in 'classes' order"
        return out


def clip_metrics(truth: np.ndarray, probs: np.ndarray, classes: list[str] | tuple[str, ...]) -> ClipMetrics:
    """Accuracy, per-class AP and the confusion matrix of clip predictions.

    Args:
        truth: (N,) int class ids, 0 = background, 1..K the classes.
        probs: (N, K+1) class probabilities (or any scores; arg-max predicts).
        classes: the K foreground class names (background is added as class 0).
    Raises:
        ConfigError: shapes that do not agree, or a class id outside 0..K.
    """
    truth = np.asarray(truth, dtype=np.int64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    names = (BACKGROUND, *classes)
    k1 = len(names)
    if probs.ndim != 2 or probs.shape != (len(truth), k1):
        raise ConfigError(f"clip metrics: probabilities {probs.shape} do not match {len(truth)} clips x "
                          f"{k1} classes (background + {len(classes)})")
    if len(truth) and (truth.min() < 0 or truth.max() >= k1):
        raise ConfigError(f"clip metrics: class ids must be in 0..{k1 - 1}, got {truth.min()}..{truth.max()}")
    pred = probs.argmax(axis=1) if len(truth) else np.zeros(0, np.int64)
    confusion = np.zeros((k1, k1), dtype=np.int64)
    np.add.at(confusion, (truth, pred), 1)
    per_class = {name: average_precision(truth == c, probs[:, c]) for c, name in enumerate(names)}
    fg = [ap for name, ap in per_class.items() if name != BACKGROUND and ap is not None]
    return ClipMetrics(
        classes=names, num_clips=len(truth),
        accuracy=float((pred == truth).mean()) if len(truth) else 0.0,
        per_class_ap=per_class, mean_ap=float(np.mean(fg)) if fg else None,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        support={name: int((truth == c).sum()) for c, name in enumerate(names)},
    )


def format_clip_metrics(m: ClipMetrics) -> str:
    """Accuracy, a per-class AP table (with support) and the confusion matrix, as text."""
    mean = "n/a" if m.mean_ap is None else f"{100 * m.mean_ap:.2f}"
    lines = [f"clips {m.num_clips}  accuracy {100 * m.accuracy:.2f} %  mean AP (foreground) {mean} %", ""]
    width = max(len(c) for c in m.classes)
    lines.append(f"{'class':<{width}}  {'AP %':>6}  {'clips':>6}")
    for name in m.classes:
        ap = m.per_class_ap[name]
        lines.append(f"{name:<{width}}  {'n/a' if ap is None else f'{100 * ap:.2f}':>6}  {m.support[name]:>6}")
    lines += ["", "confusion (rows: true, columns: predicted)"]
    cols = [str(i) for i in range(len(m.classes))]
    cell = max(4, *(len(str(v)) for row in m.confusion for v in row))
    lines.append(" " * (width + 5) + " ".join(f"{c:>{cell}}" for c in cols))
    for i, (name, row) in enumerate(zip(m.classes, m.confusion, strict=True)):
        lines.append(f"{name:<{width}} {i:>3}  " + " ".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)

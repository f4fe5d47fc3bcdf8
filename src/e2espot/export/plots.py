"""Pictures (PNG, matplotlib's Agg canvas, no pyplot state; safe in worker threads).

matplotlib is imported inside each function, so importing this module stays cheap.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from e2espot.data.labels import VideoLabels
from e2espot.errors import ConfigError, LabelFormatError
from e2espot.export.render import class_colors
from e2espot.train.history import history_in_percent


def _figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def count_noun(n: int, word: str) -> str:
    """``"1 event"``, ``"3 events"``: a count with its noun in the right number (regular plurals)."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_timeline(
    predictions: VideoLabels,
    out_path: str | Path,
    *,
    truth: VideoLabels | None = None,
    classes: Sequence[str] | None = None,
    min_score: float | Mapping[str, float] = 0.0,
) -> Path:
    """Event timeline of one video: one row per class, time in seconds on x.

    Predictions are vertical bars (opacity = score); ground truth, when given, black triangles on the
    same row. ``min_score``: one floor for every class, or per-class floors (a run's thresholds; a
    class not listed keeps every event).
    """
    fps = predictions.fps or (truth.fps if truth else None)
    if not fps:
        raise LabelFormatError(f"video '{predictions.video}': unknown fps; cannot place events in time")

    def floor(label: str) -> float:
        return float(min_score.get(label, 0.0)) if isinstance(min_score, Mapping) else float(min_score)

    preds = [e for e in predictions.events if e.score is None or e.score >= floor(e.label)]
    names = list(classes) if classes else sorted({e.label for e in preds} |
                                                 {e.label for e in (truth.events if truth else [])})
    colors = class_colors(names)
    row = {c: i for i, c in enumerate(names)}
    fig = _figure(10, 1.0 + 0.45 * max(len(names), 1))
    ax = fig.add_subplot()
    for e in preds:
        if e.label in row:
            alpha = 0.25 + 0.75 * (e.score if e.score is not None else 1.0)
            ax.vlines(e.frame / fps, row[e.label] - 0.35, row[e.label] + 0.35,
                      color=[c / 255 for c in colors[e.label]], alpha=min(alpha, 1.0), linewidth=1.5)
    if truth is not None:
        xs = [e.frame / fps for e in truth.events if e.label in row]
        ys = [row[e.label] - 0.42 for e in truth.events if e.label in row]
        ax.scatter(xs, ys, marker="^", color="black", s=22, zorder=3, label="ground truth")
        # outside the axes: a legend inside would hide the events under it
        ax.legend(loc="lower left", bbox_to_anchor=(1.0, 0.0), fontsize=8, frameon=False)
    n = predictions.num_frames or (truth.num_frames if truth else None)
    if n:
        ax.set_xlim(0, n / fps)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.7, max(len(names), 1) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_title(f"{predictions.video}: {count_noun(len(preds), 'prediction')}" +
                 (f", {count_noun(len(truth.events), 'ground-truth event')}" if truth else ""))
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, out_path)


def plot_class_ap(ap: Mapping[str, float], out_path: str | Path, *, title: str | None = None) -> Path:
    """Horizontal bar chart of per-class AP, given as fractions (0..1) and drawn in percent (the unit of
    every table), with the mean (the mAP) as a dashed line."""
    if not ap:
        raise ConfigError("no per-class AP values to plot")
    names = list(ap)
    values = [100.0 * float(ap[n]) for n in names]
    colors = class_colors(names)
    fig = _figure(7, 1.0 + 0.35 * len(names))
    ax = fig.add_subplot()
    ax.barh(range(len(names)), values, color=[[c / 255 for c in colors[n]] for n in names])
    for i, v in enumerate(values):
        ax.text(min(v, 100.0) + 1.0, i, f"{v:.1f}", va="center", fontsize=8)
    mean = sum(values) / len(values)
    ax.axvline(mean, color="black", linestyle="--", linewidth=1, label=f"mAP {mean:.1f} %")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xlabel("AP (%)")
    # outside the axes: a legend inside would hide a bar
    ax.legend(loc="lower left", bbox_to_anchor=(1.0, 0.0), fontsize=8, frameon=False)
    ax.set_title(title or "Per-class AP")
    return _save(fig, out_path)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a metrics log: CSV with a header, a JSON list of objects, or JSON lines.

    ``val_map`` comes back in percent: rows without the ``map_unit: percent`` marker are older runs'
    fractions (0..1) and are converted (``e2espot.train.history``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"metrics file '{path}' does not exist") from None
    rows: list[dict[str, Any]]
    if path.suffix.lower() == ".csv":
        rows = [dict(r) for r in csv.DictReader(text.splitlines())]
    else:
        try:
            data = json.loads(text)
            rows = data if isinstance(data, list) else data.get("epochs", [data])
        except json.JSONDecodeError:
            try:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: neither JSON nor JSON lines ({exc})") from None
    out = []
    for r in rows:
        row: dict[str, Any] = {}
        for k, v in r.items():
            try:
                row[k] = float(v) if v not in ("", None) else None
            except (TypeError, ValueError):
                row[k] = v
        out.append(row)
    return history_in_percent(out)


def plot_training_curves(metrics: str | Path | Sequence[Mapping[str, Any]], out_path: str | Path) -> Path:
    """Loss curves (train_loss, val_loss) and val_map per epoch, side by side.

    ``val_map`` is drawn in percent, the unit of every table (rows of older runs, logged as fractions
    without the ``map_unit`` marker, are converted: ``e2espot.train.history``). Epochs are
    integer ticks; legends sit outside the axes so no point is hidden.
    """
    from matplotlib.ticker import MaxNLocator

    rows = read_metrics(metrics) if isinstance(metrics, (str, Path)) else history_in_percent(metrics)
    if not rows:
        raise ConfigError("no metrics rows to plot")
    epochs = [r.get("epoch", i) for i, r in enumerate(rows)]
    fig = _figure(10, 3.5)
    ax_loss, ax_map = fig.subplots(1, 2)
    for ax in (ax_loss, ax_map):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        pts = [(e, r[key]) for e, r in zip(epochs, rows) if r.get(key) is not None]
        if pts:
            ax_loss.plot(*zip(*pts), style, marker="o", markersize=3, label=key)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Loss")
    ax_loss.grid(alpha=0.3)
    if ax_loss.lines:
        ax_loss.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    pts = [(e, r["val_map"]) for e, r in zip(epochs, rows) if r.get("val_map") is not None]
    if pts:
        ax_map.plot(*zip(*pts), marker="o", markersize=3, color="tab:green", label="val mAP")
        best = max(pts, key=lambda p: p[1])
        ax_map.annotate(f"best {best[1]:.1f} % (epoch {int(best[0])})", best, textcoords="offset points",
                        xytext=(-4, -14), ha="right", fontsize=8)
        ax_map.set_ylim(0, max(100.0, best[1]) if best[1] > 50 else max(10.0, 1.3 * best[1]))
    ax_map.set_xlabel("epoch")
    ax_map.set_ylabel("mAP (%)")
    ax_map.set_title("Validation mAP")
    ax_map.grid(alpha=0.3)
    return _save(fig, out_path)

"""SoccerNet average-mAP, numerically identical to the official ``SoccerNet.Evaluation.ActionSpotting``.

The official algorithm (SoccerNet 0.2.0), reproduced here on sparse arrays instead of Python loops:

* every game half is a grid of ``120*60*framerate`` cells per class; an event lands in cell
  ``int(framerate * (position_ms / 1000))`` (clipped to the last cell). Two ground-truth (GT) events
  or two predictions of one class in one cell: the **last one written wins** (not the max);
  predictions with a negative confidence are dropped after that;
* GT cells are visible (+1) or "not shown" (-1). For each class the "closest GT" map gives every
  cell the visibility of its nearest GT cell (boundaries at the floor midpoints), -1 in a half
  without GT of that class;
* for each δ (seconds; ``tight`` = 1..5, ``loose`` = 5, 10 .. 60, ``atN`` = N), per class and half,
  each GT cell **in time order** takes the highest-scoring unused prediction with
  ``|p - g| <= δ*framerate/2`` (score ties: the earliest cell);
* precision and recall at the 200 thresholds ``linspace(0, 1, 200)`` (``score >= thr``), 11-point
  interpolated AP, mAP = mean over **all** classes (a class without GT has AP 0);
* visible / unshown: only predictions whose closest-GT value is > 0.5 / < -0.5, recall over the
  visible / unshown GT count; predictions in a half with no GT of their class therefore count as
  unshown, never visible (official quirk, kept);
* average over δ by the trapezoid rule; with more than one δ the unshown average is multiplied by
  17/13 (hard-coded for SoccerNet-v2 in the official code, whatever the classes; kept).

Differences, on purpose: labels not in the class list raise ``LabelFormatError`` instead of being
dropped; pass ``on_unknown="ignore"`` to reproduce the official silent drop. A negative position
raises (the official code would wrap it to the end of the grid through negative indexing).

Same as the official, with a warning: events of halves other than 1 and 2 (e.g. half 3) are
ignored (the official code fills two half grids only); ground truth without ``position`` is placed
at its ``gameTime`` second (``framerate * (60 * mm + ss)``), and ``gameTime`` may lack zero padding
(``"1 - 0:8"``, where the official slicing ``time[-5:-3]`` raises); classes without ground truth in
the evaluated games count with AP 0 in the mean.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from e2espot.constants import DEFAULT_SOCCERNET_LABEL_FILE
from e2espot.data.labels import NOT_SHOWN, Event, LabelSet, VideoLabels
from e2espot.data.timebase import frame_to_position_ms
from e2espot.errors import ConfigError, LabelFormatError

__all__ = [
    "BALL_CLASSES",
    "SOCCERNET_V2_CLASSES",
    "average_mAP",
    "closest_map",
    "default_metric",
    "evaluate_soccernet",
    "grid_length",
    "metric_deltas",
    "soccernet_map",
]

# EVENT_DICTIONARY_V2 order of the official package.
SOCCERNET_V2_CLASSES: tuple[str, ...] = (
    "Penalty", "Kick-off", "Goal", "Substitution", "Offside", "Shots on target", "Shots off target",
    "Clearance", "Ball out of play", "Throw-in", "Foul", "Indirect free-kick", "Direct free-kick",
    "Corner", "Yellow card", "Red card", "Yellow->red card",
)
# Ball Action Spotting 2024/2025 (pass these explicitly; the package's built-in Ball dict has 2).
BALL_CLASSES: tuple[str, ...] = (
    "PASS", "DRIVE", "HEADER", "HIGH PASS", "OUT", "CROSS", "THROW IN", "SHOT",
    "BALL PLAYER BLOCK", "PLAYER SUCCESSFUL TACKLE", "FREE KICK", "GOAL",
)

log = logging.getLogger(__name__)
_HALVES = (1, 2)  # the official evaluator's two half grids
_THRESHOLDS = np.linspace(0, 1, 200)
_RECALL_LEVELS = np.arange(11) / 10
_UNSHOWN_FACTOR = 17 / 13


def default_metric(label_file: str | None) -> tuple[int, str]:
    """``(framerate, metric)`` the field reports for a SoccerNet label file.

    ``Labels-ball.json`` (Ball Action Spotting): ``(25, "at1")``, the challenge's mAP@1 at 25 fps;
    anything else (``Labels-v2.json``): ``(2, "tight")``, the SoccerNet-v2 tight average-mAP.
    ``test`` and ``evaluate`` both use this, so the same files give the same number.
    """
    return (25, "at1") if label_file and "ball" in label_file.lower() else (2, "tight")


def metric_deltas(metric: str) -> np.ndarray:
    """δ values in seconds (full window widths) of ``tight``, ``loose`` or ``atN``."""
    if metric == "loose":
        return np.arange(12) * 5 + 5
    if metric == "tight":
        return np.arange(5) * 1 + 1
    m = re.fullmatch(r"at(\d+)", metric)
    if m and int(m.group(1)) > 0:
        return np.array([int(m.group(1))])
    raise ConfigError(f"unknown SoccerNet metric '{metric}'; expected 'tight', 'loose' or 'atN' (e.g. at1)")


def grid_length(framerate: float) -> int:
    """Cells per half in the official grid: two hours at ``framerate``."""
    n = 120 * 60 * framerate
    if int(n) != n:
        raise ConfigError(f"framerate {framerate} gives a non-integer grid length {n}; use a whole fps")
    return int(n)


# ----------------------------------------------------------------------------- core


@dataclass
class _Cells:
    """One half, one class: GT cells and prediction cells, both sorted, unique."""

    gt_frames: np.ndarray  # (G,) int64
    gt_values: np.ndarray  # (G,) +1 visible, -1 not shown
    pred_frames: np.ndarray  # (P,) int64
    pred_scores: np.ndarray  # (P,) float64, >= 0
    pred_closest: np.ndarray  # (P,) float64


def closest_map_values(gt_frames: np.ndarray, gt_values: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The official "closest GT" value at each of ``frames`` (-1 without GT)."""
    if len(gt_frames) == 0:
        return np.full(len(frames), -1.0)
    bounds = (gt_frames[:-1] + gt_frames[1:]) // 2  # segment i = [bounds[i-1], bounds[i])
    return np.asarray(gt_values, dtype=np.float64)[np.searchsorted(bounds, frames, side="right")]


def closest_map(target: np.ndarray) -> np.ndarray:
    """Dense closest-GT map ``(V, C)`` of a dense target grid, as the official ``evaluate`` builds it."""
    target = np.asarray(target)
    out = np.full(target.shape, -1.0)
    frames = np.arange(target.shape[0])
    for c in range(target.shape[1]):
        g = np.flatnonzero(target[:, c] != 0)
        if len(g):
            out[:, c] = closest_map_values(g, target[g, c], frames)
    return out


def _match(cells: _Cells, radius: float) -> np.ndarray:
    """TP flag per prediction: GT cells in time order take the best unused prediction in range."""
    p, s, g = cells.pred_frames, cells.pred_scores, cells.gt_frames
    tp = np.zeros(len(p), dtype=bool)
    if len(p) == 0 or len(g) == 0:
        return tp
    r = math.floor(radius)  # |p - g| is an integer, so |p - g| <= radius <=> |p - g| <= floor(radius)
    lo = np.searchsorted(p, g - r, side="left")
    hi = np.searchsorted(p, g + r, side="right")
    # Windows that share predictions with a neighbour must be resolved in time order.
    overlap_next = np.zeros(len(g), dtype=bool)
    overlap_next[:-1] = hi[:-1] > lo[1:]
    overlap_prev = np.zeros(len(g), dtype=bool)
    overlap_prev[1:] = overlap_next[:-1]
    alone = ~(overlap_next | overlap_prev) & (hi > lo)

    # Independent windows: first maximum of each window.
    if alone.any():
        a_lo, a_hi = lo[alone], hi[alone]
        lengths = a_hi - a_lo
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        pos = np.arange(lengths.sum()) - np.repeat(starts - a_lo, lengths)  # prediction indices
        vals = s[pos]
        seg_max = np.maximum.reduceat(vals, starts)
        is_max = vals == np.repeat(seg_max, lengths)
        seg = np.repeat(np.arange(len(lengths)), lengths)
        hit = np.flatnonzero(is_max)
        _, first = np.unique(seg[hit], return_index=True)
        tp[pos[hit[first]]] = True

    # Chained windows: the official greedy walk, on Python scalars.
    chained = np.flatnonzero((overlap_next | overlap_prev) & (hi > lo))
    if len(chained):
        scores = s.tolist()
        used = bytearray(len(p))
        for a, b in zip(lo[chained].tolist(), hi[chained].tolist()):
            best, best_s = -1, -1.0
            for j in range(a, b):
                if not used[j] and scores[j] > best_s:
                    best, best_s = j, scores[j]
            if best >= 0:
                used[best] = 1
                tp[best] = True
    return tp


def _curve_ap(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """11-point AP from P/R at the 200 official thresholds."""
    order = np.argsort(scores, kind="stable")
    s_sorted = scores[order]
    tp_suffix = np.concatenate([np.cumsum(tp[order][::-1])[::-1], [0]]).astype(np.float64)
    idx = np.searchsorted(s_sorted, _THRESHOLDS, side="left")
    num_pred = len(scores) - idx
    true_pos = tp_suffix[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(true_pos / num_pred)
        recall = np.nan_to_num(true_pos / num_gt)
    reach = recall[None, :] >= _RECALL_LEVELS[:, None]  # (11, 200)
    best = np.where(reach, precision[None, :], 0.0).max(axis=1)
    ap = 0.0
    for v in best.tolist():  # same summation order as the official loop
        ap += v
    return ap / 11


def _class_aps(halves: Sequence[_Cells], radius: float) -> tuple[float, float, float]:
    """AP, AP visible and AP unshown of one class at one δ."""
    if halves:
        scores = np.concatenate([h.pred_scores for h in halves])
        closest = np.concatenate([h.pred_closest for h in halves])
        tp = np.concatenate([_match(h, radius) for h in halves])
        n_vis = int(sum(np.count_nonzero(h.gt_values > 0) for h in halves))
        n_uns = int(sum(np.count_nonzero(h.gt_values < 0) for h in halves))
    else:
        scores = closest = np.zeros(0)
        tp = np.zeros(0, dtype=bool)
        n_vis = n_uns = 0
    vis = closest > 0.5
    uns = closest < -0.5
    return (
        _curve_ap(scores, tp, n_vis + n_uns),
        _curve_ap(scores[vis], tp[vis], n_vis),
        _curve_ap(scores[uns], tp[uns], n_uns),
    )


def _trapezoid(values: Sequence[float]) -> float:
    integral = 0.0
    for i in range(len(values) - 1):
        integral += (values[i] + values[i + 1]) / 2
    return integral / (len(values) - 1)


def _average_map_cells(
    per_class: Sequence[Sequence[_Cells]], framerate: float, deltas: Iterable[float]
) -> tuple[Any, ...]:
    """The official ``average_mAP`` result tuple from sparse cells (one list of halves per class)."""
    num_classes = len(per_class)
    maps: list[list[float]] = [[], [], []]  # all, visible, unshown
    per_class_maps: list[list[np.ndarray]] = [[], [], []]
    for delta in np.asarray(list(deltas)) * framerate:
        aps = np.zeros((3, num_classes))
        for c, halves in enumerate(per_class):
            aps[:, c] = _class_aps(halves, delta / 2)
        for k in range(3):
            per_class_maps[k].append(aps[k])
            maps[k].append(float(np.mean(aps[k])))
    if len(maps[0]) == 1:
        return (maps[0][0], per_class_maps[0][0], maps[1][0], per_class_maps[1][0],
                maps[2][0], per_class_maps[2][0])
    out: list[Any] = []
    for k in range(3):
        a_map = _trapezoid(maps[k])
        per_c = np.array([_trapezoid([m[c] for m in per_class_maps[k]]) for c in range(num_classes)])
        if k == 2:
            a_map = a_map * 17 / 13
        out += [a_map, per_c]
    return tuple(out)


def _cells_from_dense(target: np.ndarray, detection: np.ndarray, closest: np.ndarray) -> list[_Cells]:
    cells = []
    for c in range(target.shape[1]):
        g = np.flatnonzero(target[:, c] != 0)
        p = np.flatnonzero(detection[:, c] >= 0)
        cells.append(_Cells(g, target[g, c].astype(np.float64), p,
                            detection[p, c].astype(np.float64), closest[p, c].astype(np.float64)))
    return cells


def average_mAP(  # noqa: N802 - mirrors the official name
    targets: Sequence[np.ndarray],
    detections: Sequence[np.ndarray],
    closests: Sequence[np.ndarray],
    framerate: float = 2,
    deltas: Iterable[float] = np.arange(5) * 1 + 1,
) -> tuple[Any, ...]:
    """Drop-in for the official ``average_mAP`` on dense per-half grids ``(V, C)``.

    Returns ``(a_mAP, a_mAP_per_class, a_mAP_visible, a_mAP_per_class_visible, a_mAP_unshown,
    a_mAP_per_class_unshown)``; per-class values are numpy arrays.
    """
    if not (len(targets) == len(detections) == len(closests)):
        raise ConfigError(
            f"targets, detections and closests need one grid per half each; got "
            f"{len(targets)}, {len(detections)}, {len(closests)}"
        )
    if not targets:
        raise ConfigError("average_mAP needs at least one half")
    num_classes = np.asarray(targets[0]).shape[-1]
    per_class: list[list[_Cells]] = [[] for _ in range(num_classes)]
    for t, d, cl in zip(targets, detections, closests):
        t, d, cl = np.asarray(t), np.asarray(d), np.asarray(cl)
        if not (t.shape == d.shape == cl.shape) or t.ndim != 2 or t.shape[1] != num_classes:
            raise ConfigError(
                f"grids must all be (V, {num_classes}); got {t.shape}, {d.shape}, {cl.shape}"
            )
        for c, cells in enumerate(_cells_from_dense(t, d, cl)):
            per_class[c].append(cells)
    return _average_map_cells(per_class, framerate, deltas)


# ----------------------------------------------------------------------------- label sets


def _video_key(v: VideoLabels, fallback: Mapping[str, tuple[str, int]] | None = None) -> tuple[str, int]:
    if "game" in v.extra or "half" in v.extra:
        game = str(v.extra.get("game", v.video))
        half = v.extra.get("half", 1)
    elif fallback is not None and v.video in fallback:
        return fallback[v.video]
    else:
        game, half = v.video, 1
    if isinstance(half, bool) or not isinstance(half, (int, str)) or not str(half).isdigit():
        raise LabelFormatError(f"video '{v.video}': extra['half'] = {half!r} is not a half number (1 or 2)")
    return game, int(half)


def _position_ms(v: VideoLabels, e: Event, i: int, source: str) -> float:
    pos = e.extra.get("position_ms") if e.extra else None
    if pos is not None:
        return int(pos)
    if v.fps is None or v.fps <= 0:
        raise LabelFormatError(
            f"{source}: video '{v.video}', event #{i}: no extra['position_ms'] and the video fps is unknown; "
            "set the video fps or keep SoccerNet positions"
        )
    return frame_to_position_ms(int(e.frame), v.fps)


def _collect(
    labels: LabelSet,
    source: str,
    class_index: Mapping[str, int],
    framerate: float,
    num_cells: int,
    on_unknown: str,
    keys: Mapping[str, tuple[str, int]] | None,
    is_pred: bool,
) -> dict[tuple[str, int], list[dict[int, float]]]:
    """Per (game, half): per class a dict cell -> value, last write wins (official grid)."""
    out: dict[tuple[str, int], list[dict[int, float]]] = {}
    for v in labels.videos:
        key = _video_key(v, keys)
        if key[1] not in _HALVES:
            if v.events:
                log.warning("%s: video '%s' is half %d: its %d event(s) are ignored, as the official SoccerNet "
                            "evaluator ignores halves other than 1 and 2", source, v.video, key[1], len(v.events))
            continue
        grids = out.setdefault(key, [{} for _ in class_index])
        for i, e in enumerate(v.events):
            c = class_index.get(e.label)
            if c is None:
                if on_unknown == "ignore":
                    continue
                raise LabelFormatError(
                    f"{source}: video '{v.video}', event #{i}: class '{e.label}' is not in the evaluated "
                    f"classes ({', '.join(class_index)}). Fix the label, pass the full class list, or use "
                    "on_unknown='ignore' (the official evaluator's silent drop)"
                )
            cell = int(framerate * (_position_ms(v, e, i, source) / 1000))
            if cell < 0:
                raise LabelFormatError(f"{source}: video '{v.video}', event #{i}: negative position")
            cell = min(cell, num_cells - 1)
            if is_pred:
                if e.score is None:
                    raise LabelFormatError(f"{source}: video '{v.video}', event #{i}: prediction has no score")
                grids[c][cell] = float(e.score)
            else:
                grids[c][cell] = -1.0 if e.visibility == NOT_SHOWN else 1.0
    return out


def soccernet_map(
    truth: LabelSet,
    pred: LabelSet,
    classes: Sequence[str] | None = None,
    *,
    framerate: float = 2,
    metric: str = "tight",
    on_unknown: str = "raise",
) -> dict[str, Any]:
    """Official SoccerNet average-mAP of ``pred`` against ``truth``.

    ``classes``: the class list in EVENT_DICTIONARY order (default ``truth.classes``); every class
    counts in the mean, with or without GT. Halves and games come from ``video.extra["half"]`` /
    ``["game"]`` (default: each video is its own game, half 1; a prediction video without them
    takes those of the GT video with the same id). Positions: ``event.extra["position_ms"]`` when
    present, else from the frame and the video fps. ``on_unknown``: ``"raise"`` (default) or
    ``"ignore"`` for labels outside ``classes``.

    Returns the official keys (``a_mAP``, ``a_mAP_per_class``, ``a_mAP_visible``, ...; fractions in
    [0, 1], per-class lists in class order) plus ``per_class`` / ``per_class_visible`` /
    ``per_class_unshown`` dicts by name, ``metric``, ``deltas_s``, ``framerate`` and ``classes``.
    """
    names = list(truth.classes if classes is None else classes)
    if not names:
        raise ConfigError("no classes to evaluate")
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate class names: {names}")
    if on_unknown not in ("raise", "ignore"):
        raise ConfigError(f"on_unknown must be 'raise' or 'ignore', not {on_unknown!r}")
    deltas = metric_deltas(metric)
    num_cells = grid_length(framerate)
    class_index = {c: i for i, c in enumerate(names)}

    gt = _collect(truth, "ground truth", class_index, framerate, num_cells, on_unknown, None, False)
    truth_keys = {v.video: _video_key(v) for v in truth.videos}
    det = _collect(pred, "predictions", class_index, framerate, num_cells, on_unknown, truth_keys, True)
    gt_games = {g for g, _ in gt}
    det_games = {g for g, _ in det}
    if det_games != gt_games:
        missing, extra = sorted(gt_games - det_games), sorted(det_games - gt_games)
        parts = []
        if missing:
            parts.append(f"no predictions for {len(missing)} game(s): {missing[:5]}")
        if extra:
            parts.append(f"predictions for {len(extra)} game(s) not in the ground truth: {extra[:5]}")
        raise LabelFormatError(
            "games of truth and predictions differ: " + "; ".join(parts)
            + ". The official evaluator needs a prediction file for every game (it may be empty)"
        )

    per_class: list[list[_Cells]] = [[] for _ in names]
    for key in sorted(set(gt) | set(det)):
        g_grids = gt.get(key) or [{} for _ in names]
        d_grids = det.get(key) or [{} for _ in names]
        for c in range(len(names)):
            g_frames = np.array(sorted(g_grids[c]), dtype=np.int64)
            g_vals = np.array([g_grids[c][f] for f in g_frames.tolist()], dtype=np.float64)
            items = sorted((f, s) for f, s in d_grids[c].items() if s >= 0)
            p_frames = np.array([f for f, _ in items], dtype=np.int64)
            p_scores = np.array([s for _, s in items], dtype=np.float64)
            per_class[c].append(
                _Cells(g_frames, g_vals, p_frames, p_scores, closest_map_values(g_frames, g_vals, p_frames))
            )
    a_map, a_pc, a_vis, a_pc_vis, a_uns, a_pc_uns = _average_map_cells(per_class, framerate, deltas)
    return {
        "a_mAP": float(a_map),
        "a_mAP_per_class": [float(x) for x in a_pc],
        "a_mAP_visible": float(a_vis),
        "a_mAP_per_class_visible": [float(x) for x in a_pc_vis],
        "a_mAP_unshown": float(a_uns),
        "a_mAP_per_class_unshown": [float(x) for x in a_pc_uns],
        "per_class": dict(zip(names, (float(x) for x in a_pc))),
        "per_class_visible": dict(zip(names, (float(x) for x in a_pc_vis))),
        "per_class_unshown": dict(zip(names, (float(x) for x in a_pc_uns))),
        "metric": metric,
        "deltas_s": [float(d) for d in deltas],
        "framerate": framerate,
        "classes": names,
    }


# ----------------------------------------------------------------------------- files


class _Tree:
    """A folder or a zip file holding ``league/season/game/<file>.json``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise LabelFormatError(f"{self.root}: no such folder or zip file")
        self.zip = zipfile.ZipFile(self.root) if self.root.is_file() and zipfile.is_zipfile(self.root) else None
        if self.zip is None and not self.root.is_dir():
            raise LabelFormatError(f"{self.root}: not a folder or a zip file")

    def games_with(self, filename: str) -> list[str]:
        if self.zip is not None:
            names = [n for n in self.zip.namelist() if n.rsplit("/", 1)[-1] == filename]
            return sorted(n.rsplit("/", 1)[0] if "/" in n else "" for n in names)
        return sorted(
            str(p.parent.relative_to(self.root)).replace(os.sep, "/") for p in self.root.rglob(filename)
        )

    def load(self, game: str, filename: str) -> Any:
        member = f"{game}/{filename}" if game else filename
        try:
            if self.zip is not None:
                with self.zip.open(member) as f:
                    return json.load(f)
            with open(self.root / member, encoding="utf-8") as f:
                return json.load(f)
        except (KeyError, FileNotFoundError):
            raise LabelFormatError(f"{self.root}: missing '{member}'") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LabelFormatError(f"{self.root}: '{member}' is not valid JSON: {exc}") from None


def evaluate_soccernet(
    labels_root: str | os.PathLike[str],
    preds_root: str | os.PathLike[str],
    games: Sequence[str] | None = None,
    *,
    classes: Sequence[str] = SOCCERNET_V2_CLASSES,
    label_file: str = DEFAULT_SOCCERNET_LABEL_FILE,
    prediction_file: str = "results_spotting.json",
    framerate: float = 2,
    metric: str = "loose",
    on_unknown: str = "raise",
) -> dict[str, Any]:
    """Official-style evaluation of folder/zip trees ``league/season/game/<file>.json``.

    ``games``: the game list (e.g. from ``SoccerNet.utils.getListGames``); default every game
    folder of ``labels_root`` that holds ``label_file``. Every listed game needs a prediction file.
    The files are read by ``e2espot.data.formats`` (``soccernet`` / ``soccernet-results``, two halves per
    game), the same reader ``e2espot evaluate`` uses; labels come from a folder (as the official
    ``SoccerNet_path``), predictions from a folder or a zip.
    """
    from e2espot.data.formats import read_labels

    label_tree, pred_tree = _Tree(labels_root), _Tree(preds_root)
    if label_tree.zip is not None:  # the official evaluator reads labels from a folder (SoccerNet_path)
        raise LabelFormatError(f"{labels_root}: labels must be a folder of league/season/game/{label_file}; "
                               "unzip it (predictions may be a zip)")
    game_list = list(games) if games is not None else label_tree.games_with(label_file)
    if not game_list:
        raise LabelFormatError(f"{labels_root}: no '{label_file}' found (expected league/season/game/{label_file})")
    have, labelled = set(pred_tree.games_with(prediction_file)), set(label_tree.games_with(label_file))
    for game in game_list:  # every listed game needs its files, as the official evaluator
        if game not in labelled:
            raise LabelFormatError(f"{labels_root}: missing '{game}/{label_file}'")
        if game not in have:
            raise LabelFormatError(f"{preds_root}: missing '{game}/{prediction_file}'")
    # the one SoccerNet reader (e2espot.data.formats), as `e2espot evaluate` reads them
    wanted = set(game_list)
    truth = read_labels(labels_root, "soccernet", label_file=label_file, layout="halves", probe_videos=False)
    pred = read_labels(preds_root, "soccernet-results", layout="halves", prediction_file=prediction_file)
    truth_videos = [v for v in truth.videos if v.extra.get("game") in wanted]
    pred_videos = [v for v in pred.videos if v.extra.get("game") in wanted]
    return soccernet_map(
        LabelSet(list(classes), truth_videos), LabelSet(list(classes), pred_videos), list(classes),
        framerate=framerate, metric=metric, on_unknown=on_unknown,
    )

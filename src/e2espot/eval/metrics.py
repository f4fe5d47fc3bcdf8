"""E2E-Spot frame-tolerance metrics (jhong93/spot ``util/score.py``), exact and vectorised.

The algorithm, per class present in the ground truth (GT) and per tolerance ``δ`` in frames:

* the predictions of that class (over all videos, in the prediction set's video order, then event
  order) are sorted by descending score with a *stable* sort;
* each prediction, in that order, looks for the nearest GT frame of its class in its video that
  is not matched yet (ties: the first in the video's event list); if it lies within ``±δ``
  (inclusive) the prediction is a true positive and that GT frame becomes matched;
* AP is the all-point interpolated area: the precision ``tp / rank`` at each true positive, made
  monotone with a suffix maximum, summed, divided by the number of GT events ``N``;
* mAP(δ) is the mean AP over the GT classes. Predictions of classes without GT are ignored.

As in the reference, matched GT is tracked by ``(video, frame)``: two GT events of one class on the
same frame count twice in ``N`` but can be matched only once.

Speed: a prediction farther than ``δ`` from every GT frame of its class can never match and never
changes the matching state, so only the predictions near GT are walked in order; isolated GT frames
(no other GT of the class within ``2δ``) are resolved fully vectorised: the best-ranked prediction
within ``δ`` matches them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from e2espot.constants import DEFAULT_TOLERANCES
from e2espot.data.labels import LabelSet
from e2espot.errors import ConfigError, LabelFormatError

__all__ = [
    "DEFAULT_TOLERANCES",
    "ClassConfusion",
    "MapResult",
    "PRF",
    "class_matches",
    "confusion_summary",
    "e2e_map",
    "greedy_nms",
    "precision_recall_f1",
    "spot_nms",
    "subset_map",
]


# ----------------------------------------------------------------------------- results


@dataclass
class MapResult:
    """E2E-Spot mAP at several frame tolerances.

    ``map_by_tolerance[δ]`` is the mAP at ``δ`` frames; ``ap[δ][class]`` the per-class AP.
    ``mean`` averages over all evaluated tolerances; ``spot_mean`` is what E2E-Spot's
    ``train_e2e.py`` reports as its validation criterion: the mean over the tolerances > 0
    (``{1, 2, 4}`` with the defaults).
    """

    tolerances: tuple[int, ...]
    classes: list[str]
    map_by_tolerance: dict[int, float]
    ap: dict[int, dict[str, float]]
    num_gt: dict[str, int] = field(default_factory=dict)
    num_pred: dict[str, int] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """Mean of mAP over every evaluated tolerance (spot's "Avg mAP (across tolerances)")."""
        if not self.map_by_tolerance:
            return float("nan")
        return float(np.mean([self.map_by_tolerance[d] for d in self.tolerances]))

    @property
    def spot_mean(self) -> float:
        """Mean of mAP over the tolerances > 0 (spot's training criterion, ``mean(mAPs[1:])``)."""
        vals = [self.map_by_tolerance[d] for d in self.tolerances if d > 0]
        return float(np.mean(vals)) if vals else float("nan")

    def map_over(self, classes: Iterable[str]) -> dict[int, float]:
        """mAP per tolerance over a subset of classes (e.g. without the rarest ones)."""
        names = list(classes)
        unknown = [c for c in names if c not in self.classes]
        if unknown:
            raise ConfigError(
                f"classes {unknown} have no ground truth in this result; evaluated classes: {self.classes}"
            )
        if not names:
            raise ConfigError("map_over needs at least one class")
        return {d: float(np.mean([self.ap[d][c] for c in names])) for d in self.tolerances}


@dataclass
class PRF:
    """Precision / recall / F1 of one class (or all classes pooled) at a threshold and tolerance."""

    tp: int
    num_pred: int
    num_gt: int

    @property
    def precision(self) -> float:
        return self.tp / self.num_pred if self.num_pred else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.num_gt if self.num_gt else 0.0

    @property
    def f1(self) -> float:
        denom = self.num_pred + self.num_gt
        return 2.0 * self.tp / denom if denom else 0.0


@dataclass
class ClassConfusion:
    """Counts for one class at a score threshold and tolerance.

    ``matched``: predictions matched to a GT event; ``missed``: GT events never matched;
    ``duplicate``: unmatched predictions within tolerance of a GT event of their class (already
    taken); ``spurious``: predictions with no GT event of their class within tolerance, of which
    ``wrong_class`` lie within tolerance of a GT event of another class.
    """

    matched: int
    missed: int
    duplicate: int
    spurious: int
    wrong_class: int


# ----------------------------------------------------------------------------- grouping


@dataclass
class _ClassData:
    """Flat arrays of one class: predictions in descending-score (stable) order, GT per video."""

    pred_video: np.ndarray  # (P,) int video index, in ranked order
    pred_frame: np.ndarray  # (P,) int
    pred_score: np.ndarray  # (P,) float
    gt_frames: dict[int, np.ndarray]  # video index -> sorted unique GT frames
    gt_first: dict[int, np.ndarray]  # video index -> first list position of each unique frame
    num_gt: int
    cache: tuple[np.ndarray, ...] | None = None  # see _keys


def _check_video_sets(truth: LabelSet, pred: LabelSet) -> None:
    t_ids = [v.video for v in truth.videos]
    p_ids = [v.video for v in pred.videos]
    t_set, p_set = set(t_ids), set(p_ids)
    if len(t_set) != len(t_ids) or len(p_set) != len(p_ids):
        which = "ground truth" if len(t_set) != len(t_ids) else "predictions"
        raise LabelFormatError(f"the {which} list a video id twice; each video must appear once")
    if t_set != p_set:
        missing = sorted(t_set - p_set)
        extra = sorted(p_set - t_set)
        parts = []
        if missing:
            parts.append(f"{len(missing)} ground-truth video(s) have no predictions: {_short(missing)}")
        if extra:
            parts.append(f"{len(extra)} predicted video(s) are not in the ground truth: {_short(extra)}")
        raise LabelFormatError(
            "video ids of truth and predictions differ: " + "; ".join(parts)
            + ". Predict every video of the split (an empty event list is fine) and use the same ids"
        )


def _short(items: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(repr(s) for s in items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def _group(
    truth: LabelSet, pred: LabelSet, classes: Sequence[str]
) -> dict[str, _ClassData]:
    """Arrays per class; video indices follow the prediction set's order."""
    _check_video_sets(truth, pred)
    vid_index = {v.video: i for i, v in enumerate(pred.videos)}
    wanted = set(classes)

    gt_lists: dict[str, dict[int, list[int]]] = {c: {} for c in classes}
    for v in truth.videos:
        vi = vid_index[v.video]
        for e in v.events:
            if e.label in wanted:
                gt_lists[e.label].setdefault(vi, []).append(int(e.frame))

    # Flat arrays over all predictions (list comprehensions: the LabelSet walk dominates the cost).
    cls_index = {c: i for i, c in enumerate(classes)}
    vid_parts, frame_parts, score_parts, cls_parts = [], [], [], []
    for vi, v in enumerate(pred.videos):
        evs = v.events
        if not evs:
            continue
        c_idx = np.fromiter((cls_index.get(e.label, -1) for e in evs), dtype=np.int64, count=len(evs))
        raw_scores = [e.score for e in evs]
        try:
            sc = np.asarray(raw_scores, dtype=np.float64)  # None becomes NaN
            bad = np.flatnonzero(np.isnan(sc))
        except (TypeError, ValueError):
            bad = [i for i, x in enumerate(raw_scores) if not isinstance(x, (int, float))]
        if len(bad):
            i = int(bad[0])
            raise LabelFormatError(
                f"predictions: video '{v.video}', event #{i}: score {raw_scores[i]!r} is not a number; "
                "predictions need a numeric 'score'"
            ) from None
        frame_parts.append(np.fromiter((e.frame for e in evs), dtype=np.int64, count=len(evs)))
        score_parts.append(sc)
        cls_parts.append(c_idx)
        vid_parts.append(np.full(len(evs), vi, dtype=np.int64))
    if frame_parts:
        all_vid = np.concatenate(vid_parts)
        all_frame = np.concatenate(frame_parts)
        all_score = np.concatenate(score_parts)
        all_cls = np.concatenate(cls_parts)
    else:
        all_vid = all_frame = all_cls = np.zeros(0, dtype=np.int64)
        all_score = np.zeros(0)
    by_class = np.argsort(all_cls, kind="stable")  # keeps video/event order within a class
    bounds = np.searchsorted(all_cls[by_class], np.arange(len(classes) + 1), side="left")

    out: dict[str, _ClassData] = {}
    for ci, c in enumerate(classes):
        sel = by_class[bounds[ci] : bounds[ci + 1]]
        scores = all_score[sel]
        order = np.argsort(-scores, kind="stable")
        gt_frames: dict[int, np.ndarray] = {}
        gt_first: dict[int, np.ndarray] = {}
        n = 0
        for vi, frames in gt_lists[c].items():
            arr = np.asarray(frames, dtype=np.int64)
            n += len(arr)
            uniq, first = np.unique(arr, return_index=True)
            gt_frames[vi] = uniq
            gt_first[vi] = first
        out[c] = _ClassData(
            pred_video=all_vid[sel][order],
            pred_frame=all_frame[sel][order],
            pred_score=scores[order],
            gt_frames=gt_frames,
            gt_first=gt_first,
            num_gt=n,
        )
    return out


# ----------------------------------------------------------------------------- matching


_VIDEO_STRIDE = 1 << 32  # key = video * stride + frame keeps videos far apart


def _keys(data: _ClassData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """GT keys (sorted), GT first positions, prediction keys and distance to the nearest GT frame."""
    if data.cache is None:
        vids = sorted(data.gt_frames)
        gt_key = np.concatenate([data.gt_frames[vi] + vi * _VIDEO_STRIDE for vi in vids])
        gt_first = np.concatenate([data.gt_first[vi] for vi in vids])
        pred_key = data.pred_frame + data.pred_video * _VIDEO_STRIDE
        pos = np.searchsorted(gt_key, pred_key)
        right = np.abs(gt_key[np.minimum(pos, len(gt_key) - 1)] - pred_key)
        left = np.abs(pred_key - gt_key[np.maximum(pos - 1, 0)])
        data.cache = (gt_key, gt_first, pred_key, np.minimum(left, right))
    return data.cache


def _match(data: _ClassData, tolerance: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy spot matching of one class.

    Returns ``(tp, near)``, both (P,) bool in ranked order: ``tp`` true positives, ``near``
    predictions within ``tolerance`` of some GT frame of their class (matched or not).
    """
    num_pred = len(data.pred_frame)
    tp = np.zeros(num_pred, dtype=bool)
    near = np.zeros(num_pred, dtype=bool)
    if num_pred == 0 or not data.gt_frames:
        return tp, near
    tol = int(tolerance)
    gt_key, gt_first, pred_key, dist = _keys(data)
    num_g = len(gt_key)
    cand_idx = np.flatnonzero(dist <= tol)  # ranked order; within tolerance of some GT frame
    near[cand_idx] = True
    if len(cand_idx) == 0:
        return tp, near
    c_key = pred_key[cand_idx]
    lo = np.zeros(num_pred, dtype=np.int64)
    hi = np.zeros(num_pred, dtype=np.int64)
    lo[cand_idx] = np.searchsorted(gt_key, c_key - tol, side="left")
    hi[cand_idx] = np.searchsorted(gt_key, c_key + tol, side="right")

    # Clusters of GT frames closer than 2*tol+1 (their tolerance windows can share predictions).
    gaps = np.diff(gt_key) <= 2 * tol
    cluster = np.concatenate([[0], np.cumsum(~gaps)])  # (G,) cluster id
    cluster_size = np.bincount(cluster)
    c_lo = lo[cand_idx]
    c_cluster = cluster[c_lo]
    isolated = cluster_size[c_cluster] == 1

    # Isolated GT frames: the first-ranked candidate within tolerance matches it.
    iso_idx = cand_idx[isolated]
    if len(iso_idx):
        g = lo[iso_idx]
        _, first_pos = np.unique(g, return_index=True)  # cand_idx is ranked, so first = best rank
        tp[iso_idx[first_pos]] = True

    # Clustered GT frames: walk the candidates in rank order with the exact reference rule.
    clu_idx = cand_idx[~isolated]
    if len(clu_idx):
        matched = bytearray(num_g)
        keys = gt_key.tolist()
        first = gt_first.tolist()
        pk = pred_key[clu_idx].tolist()
        plo = lo[clu_idx].tolist()
        phi = hi[clu_idx].tolist()
        for j, k, a, b in zip(clu_idx.tolist(), pk, plo, phi):
            # The nearest unmatched GT frame overall lies within tolerance iff one in [a, b) does,
            # so only [a, b) needs looking at; ties go to the first in the event list.
            best = -1
            best_d = 0
            best_first = 0
            for gi in range(a, b):
                if matched[gi]:
                    continue
                d = abs(k - keys[gi])
                if best < 0 or d < best_d or (d == best_d and first[gi] < best_first):
                    best, best_d, best_first = gi, d, first[gi]
            if best >= 0:
                matched[best] = 1
                tp[j] = True
    return tp, near


def _average_precision(tp: np.ndarray, num_gt: int) -> float:
    """All-point interpolated AP from ranked TP flags (spot ``compute_average_precision``)."""
    if num_gt == 0:
        return 0.0
    ranks = np.flatnonzero(tp) + 1
    if len(ranks) == 0:
        return 0.0
    pc = np.arange(1, len(ranks) + 1, dtype=np.float64) / ranks
    interp = np.maximum.accumulate(pc[::-1])
    return float(np.sum(interp) / num_gt)


# ----------------------------------------------------------------------------- public API


def _gt_classes(truth: LabelSet, classes: Sequence[str] | None) -> list[str]:
    present = {e.label for v in truth.videos for e in v.events}
    if classes is None:
        order = list(truth.classes) + sorted(present - set(truth.classes))
        return [c for c in order if c in present]
    names = list(classes)
    if len(set(names)) != len(names):
        raise ConfigError(f"classes list has duplicates: {names}")
    absent = [c for c in names if c not in present]
    if absent:
        raise ConfigError(
            f"classes {absent} have no ground-truth events, so their AP is undefined; "
            f"classes with ground truth: {sorted(present)}"
        )
    return names


def _check_tolerances(tolerances: Iterable[int]) -> tuple[int, ...]:
    tols = tuple(tolerances)
    if not tols:
        raise ConfigError("at least one tolerance is needed (frames, e.g. 0 1 2 4)")
    for d in tols:
        if isinstance(d, bool) or int(d) != d or d < 0:
            raise ConfigError(f"tolerance {d!r} is not a non-negative whole number of frames")
    return tuple(int(d) for d in tols)


def e2e_map(
    truth: LabelSet,
    pred: LabelSet,
    tolerances: Iterable[int] = DEFAULT_TOLERANCES,
    classes: Sequence[str] | None = None,
) -> MapResult:
    """E2E-Spot mAP at each tolerance (frames).

    ``classes``: restrict to these classes (each must have GT); default: every class present in
    the GT, in ``truth.classes`` order. Raises LabelFormatError when the video ids differ.
    """
    tols = _check_tolerances(tolerances)
    names = _gt_classes(truth, classes)
    if not names:
        raise LabelFormatError("the ground truth has no events, so mAP is undefined")
    data = _group(truth, pred, names)
    ap: dict[int, dict[str, float]] = {}
    for d in tols:
        ap[d] = {c: _average_precision(_match(data[c], d)[0], data[c].num_gt) for c in names}
    map_by_tol = {d: float(np.mean(list(ap[d].values()))) for d in tols}
    return MapResult(
        tolerances=tols,
        classes=names,
        map_by_tolerance=map_by_tol,
        ap=ap,
        num_gt={c: data[c].num_gt for c in names},
        num_pred={c: len(data[c].pred_frame) for c in names},
    )


def subset_map(
    truth: LabelSet, pred: LabelSet, classes: Sequence[str], tolerances: Iterable[int] = DEFAULT_TOLERANCES
) -> dict[int, float]:
    """mAP per tolerance over a class subset (e.g. "mAP@10" without the two rarest classes)."""
    return e2e_map(truth, pred, tolerances, classes=classes).map_by_tolerance


def class_matches(
    truth: LabelSet, pred: LabelSet, tolerance: int, classes: Sequence[str] | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Per class: ``(scores, tp, num_gt)`` with scores descending (stable) and the spot TP flags.

    Because matching is greedy in score order, the predictions kept by any score threshold are
    a prefix of this order and their matching is the prefix of ``tp``; threshold sweeps are cumsums.
    """
    (tol,) = _check_tolerances([tolerance])
    names = _gt_classes(truth, classes)
    data = _group(truth, pred, names)
    return {c: (data[c].pred_score, _match(data[c], tol)[0], data[c].num_gt) for c in names}


def precision_recall_f1(
    truth: LabelSet,
    pred: LabelSet,
    *,
    threshold: float | dict[str, float] = 0.5,
    tolerance: int = 1,
    classes: Sequence[str] | None = None,
) -> dict[str, PRF]:
    """P/R/F1 per class of the predictions with ``score >= threshold``, plus ``"all"`` pooled.

    Matching is the E2E-Spot greedy rule at ``tolerance`` frames. ``threshold`` may be a dict
    per class (missing classes use 0.0).
    """
    out: dict[str, PRF] = {}
    tot = PRF(0, 0, 0)
    for c, (scores, tp, num_gt) in class_matches(truth, pred, tolerance, classes).items():
        thr = threshold.get(c, 0.0) if isinstance(threshold, dict) else float(threshold)
        keep = int(np.count_nonzero(scores >= thr))  # scores are sorted descending
        r = PRF(int(np.count_nonzero(tp[:keep])), keep, num_gt)
        out[c] = r
        tot = PRF(tot.tp + r.tp, tot.num_pred + r.num_pred, tot.num_gt + r.num_gt)
    out["all"] = tot
    return out


def confusion_summary(
    truth: LabelSet,
    pred: LabelSet,
    *,
    threshold: float = 0.5,
    tolerance: int = 1,
    classes: Sequence[str] | None = None,
) -> dict[str, ClassConfusion]:
    """Matched / missed / duplicate / spurious (and wrong-class) counts per GT class."""
    (tol,) = _check_tolerances([tolerance])
    names = _gt_classes(truth, classes)
    all_present = _gt_classes(truth, None)
    data = _group(truth, pred, names)
    # GT frames of every class per video, to tell wrong-class detections apart.
    other = _group(truth, pred, all_present) if set(all_present) != set(names) else data
    out: dict[str, ClassConfusion] = {}
    for c in names:
        d = data[c]
        keep = d.pred_score >= threshold
        sub = _ClassData(d.pred_video[keep], d.pred_frame[keep], d.pred_score[keep],
                         d.gt_frames, d.gt_first, d.num_gt)
        tp, near = _match(sub, tol)
        matched = int(tp.sum())
        duplicate = int(np.count_nonzero(near & ~tp))
        spurious_mask = ~near
        wrong = np.zeros(len(sub.pred_frame), dtype=bool)
        for oc, od in other.items():
            if oc == c:
                continue
            for vi, frames in od.gt_frames.items():
                sel = spurious_mask & (sub.pred_video == vi)
                if not sel.any():
                    continue
                f = sub.pred_frame[sel]
                lo = np.searchsorted(frames, f - tol, side="left")
                hi = np.searchsorted(frames, f + tol, side="right")
                w = np.flatnonzero(sel)[hi > lo]
                wrong[w] = True
        out[c] = ClassConfusion(
            matched=matched,
            missed=d.num_gt - matched,
            duplicate=duplicate,
            spurious=int(spurious_mask.sum()),
            wrong_class=int(np.count_nonzero(wrong & spurious_mask)),
        )
    return out


# ----------------------------------------------------------------------------- eval NMS


def _spot_nms_keep(frames: np.ndarray, scores: np.ndarray, window: int) -> np.ndarray:
    """(n,) bool: event i survives unless another frame within ``±window`` scores strictly higher."""
    if len(frames) == 0 or window <= 0:
        return np.ones(len(frames), dtype=bool)
    uniq, inverse = np.unique(frames, return_inverse=True)
    best = np.full(len(uniq), -np.inf)
    np.maximum.at(best, inverse, scores)  # highest score on each frame
    neighbour = np.full(len(uniq), -np.inf)  # highest score on the *other* frames of the window
    for d in range(1, window + 1):
        for sign in (-1, 1):
            pos = np.searchsorted(uniq, uniq + sign * d)
            ok = pos < len(uniq)
            ok[ok] &= uniq[pos[ok]] == uniq[ok] + sign * d
            neighbour[ok] = np.maximum(neighbour[ok], best[pos[ok]])
    return ~(scores < neighbour[inverse])


def spot_nms(labels: LabelSet, window: int) -> LabelSet:
    """jhong93/spot's evaluation NMS (``util/eval.py:non_maximum_supression``), exactly.

    Per video and per label, an event is dropped only when another event of the same label at a
    *different* frame within ``±window`` frames (inclusive) has a strictly higher score. It is a
    local-maximum filter: equal scores and events on the same frame all survive, and in a chain
    ``a < b < c`` one frame apart only ``c`` survives (greedy NMS would keep ``a`` and ``c``).
    Survivors keep their score; each video's events come out grouped by label in first-appearance
    order and then stably sorted by frame, as spot writes them. ``window`` <= 0 keeps everything.
    Raises LabelFormatError for an event without a score.
    """
    if isinstance(window, bool) or int(window) != window:
        raise ConfigError(f"NMS window {window!r} is not a whole number of frames")
    videos = []
    for v in labels.videos:
        by_label: dict[str, list[int]] = {}
        for i, e in enumerate(v.events):
            if e.score is None:
                raise LabelFormatError(
                    f"predictions: video '{v.video}', event #{i}: no score; NMS needs scored predictions"
                )
            by_label.setdefault(e.label, []).append(i)
        kept: list[int] = []
        for idx in by_label.values():
            frames = np.asarray([v.events[i].frame for i in idx], dtype=np.int64)
            scores = np.asarray([v.events[i].score for i in idx], dtype=np.float64)
            keep = _spot_nms_keep(frames, scores, int(window))
            kept += [i for i, k in zip(idx, keep.tolist()) if k]
        kept.sort(key=lambda i: v.events[i].frame)  # stable, as spot's events.sort(key=frame)
        out = v.copy()
        out.events = [out.events[i] for i in kept]
        videos.append(out)
    return LabelSet(list(labels.classes), videos)


def greedy_nms(labels: LabelSet, window: int) -> LabelSet:
    """Greedy hard NMS (T-DEED ``non_maximum_supression``): per class take the best, drop ``±window``.

    Not spot's evaluation rule (see ``spot_nms``); it is what ``predict`` applies to its events.
    """
    from e2espot.infer.postprocess import nms_events

    return nms_events(labels, window=window, nms="hard")

"""Per-frame class scores -> events: threshold, hard NMS or soft-NMS, per-class thresholds.

* ``nms="none"``: every (frame, class) with ``score >= threshold`` (E2E-Spot's high-recall list,
  ``pred-*.recall.json.gz``, uses 0.01).
* ``nms="hard"``: per class, greedily take the highest score (ties: the earliest frame), drop every
  candidate within ``±window`` frames, repeat (T-DEED ``non_maximum_supression``).
* ``nms="soft"``: per class, take the highest score (stop when it is below the threshold), multiply
  the score of every remaining candidate within ``±window`` by ``(Δ / window)²`` and keep it in the
  pool (T-DEED ``soft_non_maximum_supression``). Kept events carry their decayed score.

Soft-NMS runs in vectorised rounds: a candidate whose (score, -frame) key beats every remaining
candidate within ``±window`` is taken by the sequential algorithm with its current score whatever
happens elsewhere (scores only decrease), so all such local maxima are taken at once; decays are
products, so their order does not matter (up to floating-point rounding of the product).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

import numpy as np

from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import ConfigError

__all__ = [
    "NMS_MODES", "action_scores", "choose_thresholds", "hard_nms_1d", "nms_events", "scores_to_events", "soft_nms_1d",
    "team_scores_to_events",
]

NMS_MODES = ("none", "hard", "soft")


def hard_nms_1d(frames: np.ndarray, scores: np.ndarray, window: int) -> np.ndarray:
    """Indices kept by greedy NMS of one class; ``frames`` strictly increasing."""
    if len(frames) == 0:
        return np.zeros(0, dtype=np.int64)
    if window <= 0:
        return np.arange(len(frames))
    order = np.argsort(-scores, kind="stable")  # ties: earliest frame first
    base = int(frames[0])
    size = int(frames[-1]) - base + 1
    suppressed = bytearray(size + 2 * window + 1)
    ones = b"\x01" * (2 * window + 1)
    keep = []
    f_list = (frames - base + window).tolist()  # shifted so the window never goes negative
    for i in order.tolist():
        f = f_list[i]
        if suppressed[f]:
            continue
        keep.append(i)
        suppressed[f - window : f + window + 1] = ones
    return np.sort(np.asarray(keep, dtype=np.int64))


def soft_nms_1d(
    frames: np.ndarray, scores: np.ndarray, window: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS of one class: ``(kept indices sorted by frame, their decayed scores)``."""
    n = len(frames)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    cur = np.asarray(scores, dtype=np.float64).copy()
    frames = np.asarray(frames, dtype=np.int64)
    if window <= 0:
        keep = np.flatnonzero(cur >= threshold)
        return keep, cur[keep]
    alive = cur >= threshold  # below-threshold candidates are never taken and never decay others
    kept: list[np.ndarray] = []
    kept_scores: list[np.ndarray] = []
    while True:
        idx = np.flatnonzero(alive)
        if len(idx) == 0:
            break
        if len(idx) < 64:
            k, s = _soft_nms_sequential(frames[idx], cur[idx], window, threshold)
            kept.append(idx[k])
            kept_scores.append(s)
            break
        f = frames[idx]
        s = cur[idx]
        is_max = np.ones(len(idx), dtype=bool)
        # Compare with every alive neighbour within the window (at most `window` on each side).
        for d in range(1, window + 1):
            if d >= len(idx):
                break
            close = (f[d:] - f[:-d]) <= window
            # left element i vs right element i+d: higher score wins, ties go to the earlier frame
            left_wins = s[:-d] >= s[d:]
            is_max[d:] &= ~(close & left_wins)
            is_max[:-d] &= ~(close & ~left_wins)
        sel = np.flatnonzero(is_max)
        kept.append(idx[sel])
        kept_scores.append(s[sel])
        alive[idx[sel]] = False
        # decay the alive neighbours of the selected ones
        sel_f = f[sel]
        for d in range(-window, window + 1):
            if d == 0:
                continue
            target = np.searchsorted(f, sel_f + d)
            ok = target < len(f)
            ok[ok] &= f[target[ok]] == sel_f[ok] + d
            t = idx[target[ok]]
            t = t[alive[t]]
            cur[t] *= (abs(d) / window) ** 2
        alive &= cur >= threshold
        if len(sel) * 8 < len(idx) and len(idx) < 20000:
            # slow progress (long monotone ramps): finish with the exact heap walk
            rest = np.flatnonzero(alive)
            k, s2 = _soft_nms_sequential(frames[rest], cur[rest], window, threshold)
            kept.append(rest[k])
            kept_scores.append(s2)
            break
    all_idx = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    all_s = np.concatenate(kept_scores) if kept_scores else np.zeros(0)
    order = np.argsort(all_idx, kind="stable")
    return all_idx[order], all_s[order]


def _soft_nms_sequential(
    frames: np.ndarray, scores: np.ndarray, window: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Reference soft-NMS walk with a lazy max-heap (scores only decrease)."""
    f_list = frames.tolist()
    cur = scores.astype(np.float64).tolist()
    pos = {f: i for i, f in enumerate(f_list)}
    heap = [(-s, f, i) for i, (f, s) in enumerate(zip(f_list, cur))]
    heapq.heapify(heap)
    done = bytearray(len(f_list))
    keep: list[int] = []
    keep_s: list[float] = []
    while heap:
        neg, f, i = heapq.heappop(heap)
        if done[i] or -neg != cur[i]:
            continue  # taken, or a stale entry of a decayed score
        if cur[i] < threshold:
            break
        done[i] = 1
        keep.append(i)
        keep_s.append(cur[i])
        for d in range(-window, window + 1):
            j = pos.get(f + d)
            if j is None or done[j] or d == 0:
                continue
            cur[j] = cur[j] * (abs(d) / window) ** 2
            heapq.heappush(heap, (-cur[j], f_list[j], j))
    order = np.argsort(np.asarray(keep, dtype=np.int64), kind="stable")
    return np.asarray(keep, dtype=np.int64)[order], np.asarray(keep_s)[order]


def scores_to_events(
    scores: np.ndarray,
    classes: Sequence[str],
    *,
    threshold: float = 0.01,
    nms: str = "hard",
    window: int = 1,
    fps: float | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> list[Event]:
    """Events from a per-frame score matrix ``(N, K+1)`` (column 0 = background).

    ``thresholds`` overrides ``threshold`` per class. Events are sorted by frame, then class order;
    with ``fps`` each event gets ``extra["time_s"]``.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != len(classes) + 1:
        raise ConfigError(
            f"scores must be (num_frames, {len(classes) + 1}) for {len(classes)} classes plus background; "
            f"got {scores.shape}"
        )
    if nms not in NMS_MODES:
        raise ConfigError(f"unknown nms '{nms}'; expected one of {', '.join(NMS_MODES)}")
    if isinstance(window, bool) or int(window) != window or window < 0:
        raise ConfigError(f"nms window {window!r} must be a non-negative whole number of frames")
    window = int(window)
    thresholds = dict(thresholds or {})
    unknown = sorted(set(thresholds) - set(classes))
    if unknown:
        raise ConfigError(f"thresholds for unknown classes {unknown}; classes: {list(classes)}")

    out_frames: list[np.ndarray] = []
    out_class: list[np.ndarray] = []
    out_score: list[np.ndarray] = []
    for k, name in enumerate(classes):
        thr = float(thresholds.get(name, threshold))
        col = scores[:, k + 1]
        frames = np.flatnonzero(col >= thr)
        s = col[frames].astype(np.float64)
        if nms == "hard":
            keep = hard_nms_1d(frames, s, window)
            frames, s = frames[keep], s[keep]
        elif nms == "soft":
            keep, s = soft_nms_1d(frames, s, window, thr)
            frames = frames[keep]
        out_frames.append(frames)
        out_class.append(np.full(len(frames), k))
        out_score.append(s)
    frames = np.concatenate(out_frames)
    cls = np.concatenate(out_class)
    sc = np.concatenate(out_score)
    order = np.lexsort((cls, frames))
    events = []
    for f, c, s in zip(frames[order].tolist(), cls[order].tolist(), sc[order].tolist()):
        extra = {"time_s": f / fps} if fps else {}
        events.append(Event(frame=f, label=classes[c], score=s, extra=extra))
    return events


def choose_thresholds(
    truth: LabelSet,
    pred: LabelSet,
    tolerance: int = 1,
    *,
    classes: Sequence[str] | None = None,
    default: float = 0.5,
) -> dict[str, float]:
    """Per-class score thresholds that maximise F1 on ``truth`` (a validation split).

    Matching is the E2E-Spot greedy rule at ``tolerance`` frames. The chosen threshold is a score
    that occurs in ``pred`` (the lowest score of the best prefix); classes without predictions or
    without any true positive get ``default``.
    """
    from e2espot.eval.metrics import class_matches

    out: dict[str, float] = {}
    for c, (s, tp, num_gt) in class_matches(truth, pred, tolerance, classes).items():
        if len(s) == 0 or not tp.any():
            out[c] = float(default)
            continue
        # a threshold keeps a prefix ending at the last index of a score value (ties stay together)
        last_of_value = np.ones(len(s), dtype=bool)
        last_of_value[:-1] = s[:-1] != s[1:]
        cum_tp = np.cumsum(tp)
        n = np.arange(1, len(s) + 1)
        f1 = 2.0 * cum_tp / (n + num_gt)
        f1[~last_of_value] = -1.0
        best = int(np.argmax(f1))
        out[c] = float(s[best])
    return out


def nms_events(
    pred: LabelSet, *, window: int, nms: str = "hard", threshold: float = 0.0
) -> LabelSet:
    """NMS on event lists (e.g. a high-recall prediction file), per video and class.

    Several events of one class on one frame keep the highest score first. Returns a new LabelSet.
    """
    if nms not in NMS_MODES:
        raise ConfigError(f"unknown nms '{nms}'; expected one of {', '.join(NMS_MODES)}")
    if isinstance(window, bool) or int(window) != window or window < 0:
        raise ConfigError(f"nms window {window!r} must be a non-negative whole number of frames")
    window = int(window)
    videos = []
    for v in pred.videos:
        by_label: dict[str, list[Event]] = {}
        for i, e in enumerate(v.events):
            if e.score is None:
                raise ConfigError(f"video '{v.video}', event #{i}: NMS needs scores, this event has none")
            by_label.setdefault(e.label, []).append(e)
        kept: list[Event] = []
        for evs in by_label.values():
            frames = np.array([e.frame for e in evs], dtype=np.int64)
            scores = np.array([e.score for e in evs], dtype=np.float64)
            # one candidate per frame: the best-scoring event there (first one on ties)
            order = np.lexsort((np.arange(len(evs)), -scores, frames))
            first = np.ones(len(order), dtype=bool)
            first[1:] = frames[order][1:] != frames[order][:-1]
            uniq = order[first]
            f_u, s_u = frames[uniq], scores[uniq]
            ok = s_u >= threshold
            uniq, f_u, s_u = uniq[ok], f_u[ok], s_u[ok]
            if nms == "hard":
                idx = hard_nms_1d(f_u, s_u, window)
                kept += [evs[j] for j in uniq[idx].tolist()]
            elif nms == "soft":
                idx, s_new = soft_nms_1d(f_u, s_u, window, threshold)
                for j, s in zip(uniq[idx].tolist(), s_new.tolist()):
                    e = evs[j]
                    kept.append(Event(e.frame, e.label, s, e.team, e.visibility, e.comment, dict(e.extra)))
            else:
                kept += [evs[j] for j in uniq.tolist()]
        kept.sort(key=lambda e: e.frame)
        events = [Event(e.frame, e.label, e.score, e.team, e.visibility, e.comment, dict(e.extra)) for e in kept]
        videos.append(VideoLabels(v.video, v.fps, v.num_frames, events, v.width, v.height, dict(v.extra)))
    return LabelSet(list(pred.classes), videos)


TEAMS = ("left", "right")


def _soft_nms_team(
    frames: np.ndarray, scores: np.ndarray, window: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS of one action over its left and right candidates together (several per frame).

    As T-DEED ``soft_non_maximum_supression`` run on Team-BAS events grouped by label without the team:
    take the highest score (ties: the earlier candidate in (frame, left-before-right) order), stop below
    ``threshold``, multiply every remaining candidate within ``±window`` frames by ``(Δ / window)²``, so
    the other team's candidate on the same frame drops to 0. Returns (kept indices, kept scores) in taking
    order. ``frames`` must be sorted with candidates of one frame in team order.
    """
    cur = np.asarray(scores, dtype=np.float64).tolist()
    f_list = np.asarray(frames, dtype=np.int64).tolist()
    heap = [(-s, i) for i, s in enumerate(cur)]  # index order = (frame, team) order: the tie-break
    heapq.heapify(heap)
    done = bytearray(len(cur))
    keep: list[int] = []
    keep_s: list[float] = []
    while heap:
        neg, i = heapq.heappop(heap)
        if done[i] or -neg != cur[i]:
            continue
        if cur[i] < threshold:
            break
        done[i] = 1
        keep.append(i)
        keep_s.append(cur[i])
        f = f_list[i]
        lo = int(np.searchsorted(frames, f - window, side="left"))
        hi = int(np.searchsorted(frames, f + window, side="right"))
        for j in range(lo, hi):
            if not done[j]:
                # score * Δ² / w², in T-DEED's operation order (util/eval.py @ ec1ad55)
                cur[j] = cur[j] * abs(f_list[j] - f) ** 2 / window**2 if window > 0 else 0.0
                heapq.heappush(heap, (-cur[j], j))
    return np.asarray(keep, dtype=np.int64), np.asarray(keep_s)


def team_scores_to_events(
    scores: np.ndarray,
    classes: Sequence[str],
    *,
    threshold: float = 0.01,
    nms: str = "soft",
    window: int = 12,
    fps: float | None = None,
) -> list[Event]:
    """Team events from a Team-BAS score matrix ``(N, 1 + 2K)``: column 2i+1 = class i left, 2i+2 = right.

    Every (frame, column) with score >= ``threshold`` becomes an event with ``team`` left / right. ``nms``:
    ``"none"`` keeps them all (sn-teamspotting's events before post-processing); ``"soft"`` is its SNMS
    (``mAPevaluateTest(..., postprocessing='SNMS')``, window 12 rows, threshold 0.01), grouping left and right
    of one action together; ``"hard"`` greedy NMS with the same grouping. Events are sorted by frame, then
    class order, then team.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != 2 * len(classes) + 1:
        raise ConfigError(
            f"team scores must be (num_frames, {2 * len(classes) + 1}) for {len(classes)} classes x (left, "
            f"right) plus background; got {scores.shape}"
        )
    if nms not in NMS_MODES:
        raise ConfigError(f"unknown nms '{nms}'; expected one of {', '.join(NMS_MODES)}")
    if isinstance(window, bool) or int(window) != window or window < 0:
        raise ConfigError(f"nms window {window!r} must be a non-negative whole number of frames")
    rows: list[tuple[int, int, int, float]] = []  # (frame, class, team, score)
    for k in range(len(classes)):
        pair = scores[:, 2 * k + 1 : 2 * k + 3]  # (N, 2): left, right
        frame_idx, team_idx = np.nonzero(pair >= threshold)  # row-major: (frame, team) order
        s = pair[frame_idx, team_idx].astype(np.float64)
        if nms == "soft":
            keep, s = _soft_nms_team(frame_idx, s, int(window), threshold)
        elif nms == "hard":
            keep = _hard_nms_team(frame_idx, s, int(window))
            s = s[keep]
        else:
            keep = np.arange(len(s))
        rows.extend(zip(frame_idx[keep].tolist(), [k] * len(keep), team_idx[keep].tolist(), s.tolist()))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return [
        Event(frame=f, label=classes[c], score=s, team=TEAMS[t], extra={"time_s": f / fps} if fps else {})
        for f, c, t, s in rows
    ]


def _hard_nms_team(frames: np.ndarray, scores: np.ndarray, window: int) -> np.ndarray:
    """Greedy NMS over one action's left and right candidates together (ties: the earlier candidate)."""
    if len(frames) == 0:
        return np.zeros(0, dtype=np.int64)
    suppressed = bytearray(int(frames.max()) + 2 * window + 1)
    ones = b"\x01" * (2 * window + 1)
    taken = []
    for i in np.argsort(-scores, kind="stable").tolist():
        f = int(frames[i]) + window
        if not suppressed[f]:
            taken.append(i)
            suppressed[f - window : f + window + 1] = ones
    return np.sort(np.asarray(taken, dtype=np.int64))


def action_scores(scores: np.ndarray) -> np.ndarray:
    """(N, 1 + 2K) Team-BAS scores -> (N, 1 + K) action scores: background, then left + right per action
    (for a team head exactly the class probability p_i, since (1 - σ)·p_i + σ·p_i = p_i)."""
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] % 2 != 1 or scores.shape[1] < 3:
        raise ConfigError(f"team scores must be (num_frames, 1 + 2K), got {scores.shape}")
    return np.concatenate([scores[:, :1], scores[:, 1::2] + scores[:, 2::2]], axis=1)

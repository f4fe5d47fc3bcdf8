"""mAP over class subsets chosen by frequency: the full mAP beside the mAP without the N rarest classes.

The SoccerNet Ball Action Spotting studies report mAP over all 12 classes and "mAP_10", without the two
rarest classes (FREE KICK and GOAL). ``drop_rarest(result, truth, 2)`` gives that figure for an E2E-Spot
:class:`~e2espot.eval.metrics.MapResult` or an official SoccerNet ``soccernet_map`` dict, from the same
per-class APs (a subset mean, so the per-class numbers are never recomputed).

Rarity is the number of ground-truth events of each class in the evaluated labels (the split being
scored). A tie across the cut (the N-th and the (N+1)-th rarest class with the same count) is refused,
since either choice would be a guess.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from e2espot.data.labels import LabelSet
from e2espot.errors import ConfigError
from e2espot.eval.metrics import MapResult

__all__ = ["SubsetScore", "class_counts", "drop_rarest", "rarest_classes"]


def class_counts(truth: LabelSet, classes: Sequence[str]) -> dict[str, int]:
    """Ground-truth events per class of ``classes`` (0 for a class without events), in that order."""
    counter = Counter(e.label for v in truth.videos for e in v.events)
    return {c: int(counter.get(c, 0)) for c in classes}


def rarest_classes(counts: Mapping[str, int], n: int) -> list[str]:
    """The ``n`` classes with the fewest events, rarest first.

    Raises ConfigError when ``n`` is not in 0..len(counts)-1 (at least one class must stay) or when the
    cut falls inside a tie (the n-th and (n+1)-th rarest classes have the same count).
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < len(counts):
        raise ConfigError(
            f"--classes-drop-rarest {n!r}: expected a whole number in 0..{len(counts) - 1} "
            f"(there are {len(counts)} evaluated classes and at least one must stay)"
        )
    order = sorted(counts, key=lambda c: counts[c])  # stable: equal counts keep the class order
    if 0 < n < len(order) and counts[order[n - 1]] == counts[order[n]]:
        tied = [c for c in order if counts[c] == counts[order[n]]]
        raise ConfigError(
            f"--classes-drop-rarest {n}: the cut falls inside a tie: {', '.join(tied)} all have "
            f"{counts[order[n]]} ground-truth events, so which to drop is undefined. Choose another N, or "
            "name the classes to keep with 'e2espot evaluate --classes ...'"
        )
    return order[:n]


@dataclass(frozen=True)
class SubsetScore:
    """mAP over the evaluated classes without the ``drop_rarest`` rarest ones (fractions in [0, 1])."""

    drop_rarest: int
    dropped: tuple[str, ...]  # rarest first
    classes: tuple[str, ...]  # the classes kept, in the result's order
    counts: dict[str, int]  # ground-truth events of every evaluated class
    mAP: float  # e2e: mean over tolerances (as MapResult.mean); soccernet: average-mAP (a_mAP)
    detail: dict[str, float] = field(default_factory=dict)  # e2e: "mAP@δ", "spot_mean"; soccernet: visible/unshown

    def to_json(self) -> dict[str, Any]:
        return {"drop_rarest": self.drop_rarest, "dropped": list(self.dropped), "classes": list(self.classes),
                "counts": dict(self.counts), "mAP": self.mAP, **self.detail}


def drop_rarest(result: MapResult | Mapping[str, Any], truth: LabelSet, n: int) -> SubsetScore:
    """The mAP of ``result`` over its classes without the ``n`` rarest in ``truth``.

    ``result``: an ``e2e_map`` MapResult (its classes are those with ground truth; counts are its
    ``num_gt``) or a ``soccernet_map`` dict (every listed class counts, with or without ground truth).
    ``n = 0`` reproduces the full mAP exactly.
    """
    if isinstance(result, MapResult):
        counts = {c: int(result.num_gt.get(c, 0)) for c in result.classes} if result.num_gt else \
            class_counts(truth, result.classes)
        dropped = rarest_classes(counts, n)
        kept = [c for c in result.classes if c not in dropped]
        by_tol = result.map_over(kept)
        detail = {f"mAP@{d}": by_tol[d] for d in result.tolerances}
        positive = [by_tol[d] for d in result.tolerances if d > 0]
        detail["spot_mean"] = float(np.mean(positive)) if positive else float("nan")
        headline = float(np.mean([by_tol[d] for d in result.tolerances]))
        return SubsetScore(n, tuple(dropped), tuple(kept), counts, headline, detail)
    if isinstance(result, Mapping) and "a_mAP" in result:
        classes = list(result["classes"])
        counts = class_counts(truth, classes)
        dropped = rarest_classes(counts, n)
        kept = [c for c in classes if c not in dropped]

        def mean(key: str) -> float:
            # the official a_mAP is the mean of the per-class average-mAPs (the trapezoid is linear)
            return float(np.mean([result[key][c] for c in kept]))

        detail = {"a_mAP_visible": mean("per_class_visible"), "a_mAP_unshown": mean("per_class_unshown")}
        return SubsetScore(n, tuple(dropped), tuple(kept), counts, mean("per_class"), detail)
    raise ConfigError(f"drop_rarest expects a MapResult or a soccernet_map dict, not {type(result).__name__}")

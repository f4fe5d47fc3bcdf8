"""Split one label set into train/val/test, deterministically, keeping the halves of a game together."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from e2espot.data.labels import LabelSet, VideoLabels
from e2espot.errors import ConfigError

SPLIT_NAMES = ("train", "val", "test")


def group_key(video: VideoLabels) -> str:
    """Videos with the same key go to the same split: the SoccerNet game for two-halves ids, else the id."""
    if "game" in video.extra:
        return str(video.extra["game"])
    head, _, last = video.video.rpartition("/")
    if head.count("/") >= 2 and last.removeprefix("half") in ("1", "2"):
        return head  # "<league>/<season>/<game>/<half>" (spot) or ".../half<h>" (T-DEED)
    return video.video


def _counts(fractions: Sequence[float], total: int) -> list[int]:
    """Largest-remainder allocation of ``total`` items to ``fractions`` (ties go to the earlier split)."""
    raw = [f * total for f in fractions]
    counts = [math.floor(r + 1e-9) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def split_labels(
    labels: LabelSet,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    names: Sequence[str] = SPLIT_NAMES,
) -> dict[str, LabelSet]:
    """Shuffle games/videos with ``seed`` and cut them by ``fractions`` (normalised, so 70/15/15 works).

    Every video lands in exactly one split; within a split videos keep their original order.
    Fractions count groups (games for SoccerNet two-halves ids), not events.
    """
    if len(fractions) != len(names):
        raise ConfigError(f"split fractions {list(fractions)} and split names {list(names)} differ in length")
    if len(set(names)) != len(names):
        raise ConfigError(f"split names {list(names)} must be distinct")
    if any(not math.isfinite(f) or f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ConfigError(
            f"split fractions {list(fractions)} must be non-negative with a positive sum, e.g. 70/15/15"
        )
    total = float(sum(fractions))
    groups = sorted({group_key(v) for v in labels.videos})
    random.Random(seed).shuffle(groups)
    counts = _counts([f / total for f in fractions], len(groups))
    assignment: dict[str, str] = {}
    start = 0
    for name, count in zip(names, counts):
        for group in groups[start : start + count]:
            assignment[group] = name
        start += count
    return {
        name: LabelSet(list(labels.classes), [v for v in labels.videos if assignment[group_key(v)] == name])
        for name in names
    }


def parse_fractions(text: str) -> tuple[float, ...]:
    """``"70/15/15"`` or ``"0.8,0.2"`` -> fractions (normalised later by ``split_labels``)."""
    parts = [p for p in text.replace(",", "/").split("/") if p.strip()]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"split '{text}' is not numbers separated by '/', e.g. 70/15/15") from None
    if not 1 <= len(values) <= len(SPLIT_NAMES):
        raise ConfigError(
            f"split '{text}' needs 1 to {len(SPLIT_NAMES)} parts (train/val/test), e.g. 70/15/15"
        )
    return values

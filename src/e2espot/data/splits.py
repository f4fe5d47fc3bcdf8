"""Split one label set into train/val/test, deterministically, keeping the halves of a game together."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from e2espot.data.labels import LabelSet, VideoLabels
from e2espot.errors import ConfigError, LabelFormatError

SPLIT_NAMES = ("train", "val", "test")
# The SoccerNet devkit spells the validation split "valid" (getListGames, OSL-ActionSpotting); both are read.
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {"val": ("val", "valid"), "valid": ("valid", "val")}


def split_candidates(name: str) -> tuple[str, ...]:
    """Names a split may be spelled with, preferred first: ``val`` -> ``(val, valid, Val, Valid)``.

    Capitalised names are OSL-ActionSpotting's split files (``Valid.json``, ``Test.json``).
    """
    names = SPLIT_ALIASES.get(name, (name,))
    return tuple(dict.fromkeys([*names, *(n.capitalize() for n in names)]))


def pick_split(mapping: Mapping[str, Any], name: str) -> str | None:
    """The key of ``mapping`` that holds split ``name`` (``val``/``valid`` are one split), else None."""
    return next((k for k in split_candidates(name) if k in mapping), None)


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


def split_list_games(entries: Any, source: str) -> list[str]:
    """Game (or video) ids of a split list in the T-DEED / AdaSpot style.

    ``entries``: a JSON list of ``{"video": id, "num_frames": n}`` objects (``events`` optional), as
    T-DEED's ``data/soccernet*/<split>.json``. SoccerNet half ids (``<game>/half1``, ``<game>/2``) give
    their game; other ids are kept. Order of first appearance. Raises LabelFormatError naming the entry.
    """
    if not isinstance(entries, list):
        raise LabelFormatError(f"{source}: a split list must be a JSON array of {{video, num_frames}} objects")
    games: dict[str, None] = {}
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            games[entry] = None
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("video"), str):
            raise LabelFormatError(f"{source}: entry #{i}: expected an object with a string 'video', got {entry!r:.80}")
        games[group_key(VideoLabels(entry["video"], None, None))] = None
    return list(games)


def read_split_games(splits: str | Path, split: str) -> list[str]:
    """Games of ``split`` from a splits file or folder.

    Accepted: a JSON object mapping split names to game lists (``{"train": [...], "valid": [...]}``;
    ``val`` and ``valid`` name the same split); a folder holding ``<split>.json`` split lists (T-DEED,
    AdaSpot: ``[{"video", "num_frames"}]``); or one such list file whose name is the split's.
    Raises LabelFormatError when the split is absent (callers may then go on without it).
    """
    path = Path(splits)
    if path.is_dir():
        file = next((path / f"{n}.json" for n in split_candidates(split) if (path / f"{n}.json").is_file()), None)
        if file is None:
            present = sorted(p.stem for p in path.glob("*.json"))
            raise LabelFormatError(f"--splits {path}: no '{split}.json' split list; has {present or 'none'}")
        return split_list_games(_load(file), str(file))
    data = _load(path)
    if isinstance(data, list):
        if path.stem not in split_candidates(split):
            raise LabelFormatError(
                f"--splits {path}: a split list for '{path.stem}', not for '{split}'; pass the folder holding "
                f"{split}.json, or a JSON object mapping split names to games"
            )
        return split_list_games(data, str(path))
    if not isinstance(data, dict):
        raise LabelFormatError(f"--splits {path}: expected a JSON object mapping split names to games")
    key = pick_split(data, split)
    if key is None:
        raise LabelFormatError(f"--splits {path}: no '{split}' entry; has {sorted(data)}")
    return split_list_games(data[key], f"{path} ['{key}']")


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--splits {path}: cannot read: {exc}") from None

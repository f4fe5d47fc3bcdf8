"""split_labels: deterministic, a partition, SoccerNet halves together."""

from __future__ import annotations

import pytest

from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.data.splits import group_key, parse_fractions, split_labels
from e2espot.errors import ConfigError


def _clips(n: int) -> LabelSet:
    return LabelSet(["a"], [VideoLabels(f"clip_{i:03d}", 25.0, 100, [Event(i % 100, "a")]) for i in range(n)])


def _halves(n_games: int) -> LabelSet:
    videos = [VideoLabels(f"league/2020/game {g}/{h}", 25.0, None) for g in range(n_games) for h in (1, 2)]
    return LabelSet(["a"], videos)


def test_partition_sizes_and_determinism() -> None:
    labels = _clips(100)
    parts = split_labels(labels, (0.7, 0.15, 0.15), seed=3)
    assert list(parts) == ["train", "val", "test"]
    assert [len(p) for p in parts.values()] == [70, 15, 15]
    ids = [v.video for p in parts.values() for v in p.videos]
    assert sorted(ids) == [v.video for v in labels.videos]  # each video exactly once
    assert all(p.classes == ["a"] for p in parts.values())
    again = split_labels(labels, (70, 15, 15), seed=3)  # percentages are normalised
    assert {k: [v.video for v in p] for k, p in again.items()} == {
        k: [v.video for v in p] for k, p in parts.items()
    }
    other = split_labels(labels, seed=4)
    assert [v.video for v in other["val"]] != [v.video for v in parts["val"]]
    # original order is kept inside a split
    train_ids = [v.video for v in parts["train"]]
    assert train_ids == sorted(train_ids)


def test_rounding_gives_every_video_a_split() -> None:
    parts = split_labels(_clips(7), (0.7, 0.15, 0.15))
    assert [len(p) for p in parts.values()] == [5, 1, 1]
    parts = split_labels(_clips(2), (0.5, 0.5, 0.0), names=("train", "val", "test"))
    assert [len(p) for p in parts.values()] == [1, 1, 0]


def test_soccernet_halves_stay_together() -> None:
    labels = _halves(20)
    for seed in range(5):
        parts = split_labels(labels, (0.6, 0.2, 0.2), seed=seed)
        assert [len(p) for p in parts.values()] == [24, 8, 8]  # 12/4/4 games
        for part in parts.values():
            games = [group_key(v) for v in part.videos]
            assert all(games.count(g) == 2 for g in games)
    by_extra = VideoLabels("whatever", 25.0, None, extra={"game": "l/s/g", "half": 2})
    assert group_key(by_extra) == "l/s/g"
    assert group_key(VideoLabels("l/s/g/half1", 25.0, None)) == "l/s/g"
    assert group_key(VideoLabels("clip_1", 25.0, None)) == "clip_1"


def test_bad_fractions() -> None:
    with pytest.raises(ConfigError, match=r"must be non-negative with a positive sum"):
        split_labels(_clips(3), (0.5, -0.5, 1.0))
    with pytest.raises(ConfigError, match=r"differ in length"):
        split_labels(_clips(3), (0.5, 0.5))
    assert parse_fractions("70/15/15") == (70.0, 15.0, 15.0)
    assert parse_fractions("0.8,0.2") == (0.8, 0.2)
    with pytest.raises(ConfigError, match=r"split '70-30' is not numbers"):
        parse_fractions("70-30")

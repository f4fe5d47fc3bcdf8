"""`spot_nms` is jhong93/spot's eval NMS (util/eval.py:non_maximum_supression), greedy NMS stays separate."""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np
import pytest

from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.eval.metrics import greedy_nms, spot_nms


def _reference(pred: list[dict], window: int) -> list[dict]:
    """jhong93/spot util/eval.py non_maximum_supression, transcribed (the algorithm, for comparison)."""
    new_pred = []
    for video_pred in pred:
        events_by_label = defaultdict(list)
        for e in video_pred["events"]:
            events_by_label[e["label"]].append(e)
        events = []
        for v in events_by_label.values():
            for e1 in v:
                if not any(e1["frame"] != e2["frame"] and abs(e1["frame"] - e2["frame"]) <= window
                           and e1["score"] < e2["score"] for e2 in v):
                    events.append(e1)
        events.sort(key=lambda x: x["frame"])
        new_video = copy.deepcopy(video_pred)
        new_video["events"] = events
        new_pred.append(new_video)
    return new_pred


def _labels(events: list[tuple[int, str, float]]) -> LabelSet:
    return LabelSet(["a", "b"], [VideoLabels("v", 25.0, 100, [Event(f, c, score=s) for f, c, s in events])])


def _kept(labels: LabelSet) -> list[tuple[int, str, float]]:
    return [(e.frame, e.label, e.score) for e in labels.videos[0].events]


def test_chain_of_three_one_frame_apart() -> None:
    chain = _labels([(10, "a", 0.5), (11, "a", 0.7), (12, "a", 0.9)])
    assert _kept(spot_nms(chain, 1)) == [(12, "a", 0.9)]  # 11 loses to 12, 10 loses to 11
    assert _kept(greedy_nms(chain, 1)) == [(10, "a", 0.5), (12, "a", 0.9)]  # 12 removes 11 only


def test_ties_and_same_frame_duplicates_survive() -> None:
    ties = _labels([(20, "a", 0.8), (21, "a", 0.8)])
    assert _kept(spot_nms(ties, 1)) == [(20, "a", 0.8), (21, "a", 0.8)]
    assert _kept(greedy_nms(ties, 1)) == [(20, "a", 0.8)]
    same = _labels([(30, "a", 0.9), (30, "a", 0.2), (32, "a", 0.5), (31, "b", 0.99)])
    # 0.2 on frame 30 survives (the same frame never suppresses), class b never suppresses a
    assert _kept(spot_nms(same, 1)) == [(30, "a", 0.9), (30, "a", 0.2), (31, "b", 0.99), (32, "a", 0.5)]
    # a suppressed event still suppresses: 31/a (dropped by 30/a 0.9) drops 30/a 0.2 at window 1
    chain = _labels([(30, "a", 0.9), (30, "a", 0.2), (31, "a", 0.5)])
    assert _kept(spot_nms(chain, 1)) == [(30, "a", 0.9)]
    assert _kept(spot_nms(same, 0)) == sorted(_kept(same), key=lambda e: e[0])  # all kept, by frame


@pytest.mark.parametrize("window", [1, 2, 5])
def test_matches_the_reference_on_random_lists(window: int) -> None:
    rng = np.random.default_rng(window)
    raw = []
    for vi in range(3):
        events = [{"frame": int(rng.integers(0, 60)), "label": str(rng.choice(["a", "b"])),
                   "score": float(rng.choice([0.1, 0.2, 0.5, 0.9, rng.random()]))} for _ in range(80)]
        raw.append({"video": f"v{vi}", "events": events})
    labels = LabelSet(["a", "b"], [VideoLabels(r["video"], 25.0, 60, [Event(e["frame"], e["label"], score=e["score"])
                                                                      for e in r["events"]]) for r in raw])
    got = spot_nms(labels, window)
    want = _reference(raw, window)
    for v, w in zip(got.videos, want):
        assert [(e.frame, e.label, e.score) for e in v.events] == [(e["frame"], e["label"], e["score"])
                                                                    for e in w["events"]]
    assert sum(len(v.events) for v in got.videos) < sum(len(r["events"]) for r in raw)

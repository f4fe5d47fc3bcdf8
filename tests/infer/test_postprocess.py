"""Score matrix -> events: threshold, hard NMS, soft-NMS (against plain-loop references), thresholds."""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import pytest

from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import ConfigError
from e2espot.infer.postprocess import choose_thresholds, scores_to_events, soft_nms_1d

CLASSES = ["a", "b", "c"]


def _events_by_label(scores, classes, threshold):
    out = defaultdict(list)
    for f in range(scores.shape[0]):
        for k, c in enumerate(classes):
            if scores[f, k + 1] >= threshold:
                out[c].append({"frame": f, "label": c, "score": float(scores[f, k + 1])})
    return out


def _ref_hard(scores, classes, window, threshold):
    """T-DEED ``non_maximum_supression`` semantics with plain lists."""
    kept = []
    for c, v in _events_by_label(scores, classes, threshold).items():
        v = list(v)
        while v:
            e1 = max(v, key=lambda x: x["score"])  # first max in frame order
            if e1["score"] < threshold:
                break
            kept.append(e1)
            v = [e for e in v if not (e1["frame"] - window <= e["frame"] <= e1["frame"] + window)]
    return sorted((e["frame"], classes.index(e["label"]), e["score"]) for e in kept)


def _ref_soft(scores, classes, window, threshold):
    """T-DEED ``soft_non_maximum_supression`` semantics with plain lists."""
    kept = []
    for c, v in _events_by_label(scores, classes, threshold).items():
        v = [dict(e) for e in v]
        while v:
            e1 = max(v, key=lambda x: x["score"])
            if e1["score"] < threshold:
                break
            kept.append(dict(e1))
            v.remove(e1)
            for e in v:
                if e1["frame"] - window <= e["frame"] <= e1["frame"] + window:
                    e["score"] = e["score"] * abs(e1["frame"] - e["frame"]) ** 2 / window**2
    return sorted((e["frame"], classes.index(e["label"]), e["score"]) for e in kept)


def _ours(events, classes):
    return sorted((e.frame, classes.index(e.label), e.score) for e in events)


def _random_scores(rng, num_frames, num_classes):
    x = rng.random((num_frames, num_classes + 1))
    if rng.random() < 0.5:
        x = np.round(x * 8) / 8  # many ties
    # smooth bumps like a real model's output
    kernel = np.array([0.25, 0.5, 1.0, 0.5, 0.25])
    for k in range(1, num_classes + 1):
        x[:, k] = np.convolve(x[:, k] * (rng.random(num_frames) < 0.3), kernel, mode="same")
    return x


def _assert_same(ours, ref):
    assert [(f, c) for f, c, _ in ours] == [(f, c) for f, c, _ in ref]
    np.testing.assert_allclose([s for *_, s in ours], [s for *_, s in ref], rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed", range(25))
def test_hard_and_soft_nms_match_reference(seed):
    rng = np.random.default_rng(seed)
    scores = _random_scores(rng, int(rng.integers(1, 300)), 3)
    window = int(rng.integers(0, 7))
    thr = float(rng.choice([0.01, 0.2, 0.5]))
    hard = scores_to_events(scores, CLASSES, nms="hard", window=window, threshold=thr)
    _assert_same(_ours(hard, CLASSES), _ref_hard(scores, CLASSES, window, thr))
    if window > 0:
        soft = scores_to_events(scores, CLASSES, nms="soft", window=window, threshold=thr)
        _assert_same(_ours(soft, CLASSES), _ref_soft(scores, CLASSES, window, thr))


def test_soft_nms_rounds_match_reference_on_long_input():
    # long enough to take the vectorised-rounds path (> 64 alive candidates)
    rng = np.random.default_rng(1)
    for window in (1, 3, 6, 12):
        scores = _random_scores(rng, 1500, 1)
        ours = scores_to_events(scores, ["a"], nms="soft", window=window, threshold=0.01)
        _assert_same(_ours(ours, ["a"]), _ref_soft(scores, ["a"], window, 0.01))
    # a monotone ramp (slow progress -> exact heap fallback)
    ramp = np.linspace(1, 0.5, 400)
    keep, s = soft_nms_1d(np.arange(400), ramp, 5, 0.01)
    ref = _ref_soft(np.stack([np.zeros(400), ramp], 1), ["a"], 5, 0.01)
    assert keep.tolist() == [f for f, _, _ in ref]
    np.testing.assert_allclose(s, [x for *_, x in ref], rtol=1e-12)


def test_hand_cases():
    # frames 0..5, class a scores .2 .9 .8 .1 .7 .7 (window 1, threshold .15)
    s = np.zeros((6, 2))
    s[:, 1] = [0.2, 0.9, 0.8, 0.1, 0.7, 0.7]
    none = scores_to_events(s, ["a"], nms="none", threshold=0.15)
    assert [e.frame for e in none] == [0, 1, 2, 4, 5]
    # hard: take 1 (drops 0, 2), then 4 (tie with 5: earliest first; drops 5)
    hard = scores_to_events(s, ["a"], nms="hard", window=1, threshold=0.15)
    assert [(e.frame, e.score) for e in hard] == [(1, 0.9), (4, 0.7)]
    # soft, window 2: take 1 (0.9); decay 0 by (1/2)^2 -> .05, 2 -> .2, 3 -> .1*(2/2)^2 = .1;
    # next max 4 (.7): decay 2 -> .2*(2/2)^2 = .2, 3 -> .1/4 = .025, 5 -> .7/4 = .175;
    # then 2 (.2), then 5 (.175); 0 (.05) and 3 (.025) are below .15.
    soft = scores_to_events(s, ["a"], nms="soft", window=2, threshold=0.15)
    assert [(e.frame, round(e.score, 9)) for e in soft] == [(1, 0.9), (2, 0.2), (4, 0.7), (5, 0.175)]
    # per-class thresholds and fps
    s2 = np.zeros((3, 3))
    s2[:, 1] = [0.3, 0.0, 0.0]
    s2[:, 2] = [0.0, 0.3, 0.6]
    ev = scores_to_events(s2, ["a", "b"], nms="none", threshold=0.1, thresholds={"b": 0.5}, fps=2.0)
    assert [(e.frame, e.label) for e in ev] == [(0, "a"), (2, "b")]
    assert ev[1].extra["time_s"] == 1.0


def test_bad_arguments():
    with pytest.raises(ConfigError, match=r"\(num_frames, 3\)"):
        scores_to_events(np.zeros((5, 2)), ["a", "b"])
    with pytest.raises(ConfigError, match="nms"):
        scores_to_events(np.zeros((5, 2)), ["a"], nms="greedy")
    with pytest.raises(ConfigError, match="window"):
        scores_to_events(np.zeros((5, 2)), ["a"], window=-1)
    with pytest.raises(ConfigError, match="unknown classes"):
        scores_to_events(np.zeros((5, 2)), ["a"], thresholds={"z": 0.5})


def test_ninety_minutes_at_25fps_is_fast():
    rng = np.random.default_rng(0)
    n, k = 90 * 60 * 25, 17
    logits = rng.normal(size=(n, k + 1)).astype(np.float32)
    logits[:, 0] += 4.0  # background dominates, as in a trained model
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    classes = [f"c{i}" for i in range(k)]
    t0 = time.perf_counter()
    hard = scores_to_events(scores, classes, nms="hard", window=12, threshold=0.01)
    t1 = time.perf_counter()
    soft = scores_to_events(scores, classes, nms="soft", window=12, threshold=0.01)
    t2 = time.perf_counter()
    print(f"90 min @ 25 fps, 17 classes: hard {t1 - t0:.2f} s ({len(hard)} events), "
          f"soft {t2 - t1:.2f} s ({len(soft)} events)")
    assert 0 < len(hard) < len(soft)
    frames = np.array([e.frame for e in hard if e.label == "c0"])
    assert np.diff(frames).min() > 12  # hard NMS leaves no two events within the window


def test_choose_thresholds_maximises_f1():
    # class a: GT at 10, 20, 30. Preds (score): 10 (.9) TP, 50 (.8) FP, 20 (.7) TP, 60 (.6) FP,
    # 70 (.5) FP, 30 (.4) TP. F1 by prefix: .9 -> 2/4=.5, .8 -> 2/5, .7 -> 4/6=.667, .6 -> 4/7,
    # .5 -> 4/8, .4 -> 6/9=.667 (tie with .7: the higher threshold, found first, wins).
    truth = LabelSet(["a", "b"], [VideoLabels("v", 25.0, 100, [Event(10, "a"), Event(20, "a"), Event(30, "a"),
                                                                Event(5, "b")])])
    pred = LabelSet(["a", "b"], [VideoLabels("v", 25.0, 100, [
        Event(10, "a", score=.9), Event(50, "a", score=.8), Event(20, "a", score=.7),
        Event(60, "a", score=.6), Event(70, "a", score=.5), Event(30, "a", score=.4)])])
    thr = choose_thresholds(truth, pred, tolerance=1, default=0.3)
    assert thr == {"a": pytest.approx(0.7), "b": 0.3}


def test_the_ranked_list_of_test_is_greedy_nms_over_the_high_recall_list_not_spots_rule():
    """``e2espot test``'s ranked list (the run's hard NMS over scores >= 0.01) equals ``evaluate
    --greedy-nms-window W`` over ``pred-SPLIT.recall.json.gz``; spot's ``--nms-window`` (a local-maximum
    filter) keeps more events on a rising chain, so it is not the flag that reproduces ``test``."""
    from e2espot.config import DataConfig, ModelConfig, RunConfig
    from e2espot.data.labels import LabelSet
    from e2espot.eval.metrics import greedy_nms, spot_nms
    from e2espot.infer.predict import high_recall_labels, scores_to_video_labels

    classes = ("PASS", "SHOT")
    cfg = RunConfig(ModelConfig(num_classes=2, clip_len=8), DataConfig(clip_len=8), classes)
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(3) * 0.3, size=400).astype(np.float32)  # (N, 1 + K), background first
    scores[96:107, 1] = 0.02
    scores[100:103, 1] = [0.30, 0.40, 0.50]  # a rising chain one frame apart: greedy keeps 100 and 102
    for window in (1, 2, 4):
        ranked = scores_to_video_labels(scores, cfg, "v", 25.0, threshold=0.01, nms="hard", nms_window=window)
        recall = LabelSet(list(classes), [high_recall_labels(scores, cfg, "v", 25.0)])
        greedy = greedy_nms(recall, window).videos[0]
        key = lambda v: sorted((e.frame, e.label, e.score) for e in v.events)  # noqa: E731
        assert key(greedy) == key(ranked)
        assert len(spot_nms(recall, window).videos[0].events) != len(ranked.events)
    chain = {e.frame for e in scores_to_video_labels(scores, cfg, "v", 25.0, threshold=0.01, nms="hard",
                                                     nms_window=1).events if e.label == "PASS" and 99 < e.frame < 104}
    assert {100, 102} <= chain and 101 not in chain

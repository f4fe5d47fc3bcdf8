"""E2E-Spot mAP: hand-computed cases, an independent reference on random cases, the real Tennis labels."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import numpy as np
import pytest

from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import ConfigError, LabelFormatError
from e2espot.eval.metrics import (
    class_matches,
    confusion_summary,
    e2e_map,
    precision_recall_f1,
    subset_map,
)


def _ls(classes, videos):
    """videos: {video_id: [(frame, label[, score]), ...]}"""
    out = []
    for vid, evs in videos.items():
        out.append(VideoLabels(vid, 25.0, 1000, [Event(e[0], e[1], score=e[2] if len(e) > 2 else None)
                                                  for e in evs]))
    return LabelSet(list(classes), out)


# ----------------------------------------------------------------------------- hand-computed


def test_hand_case_tolerance_changes_tp():
    # GT a@10, a@20. Ranked preds: 10 (.9), 21 (.8), 30 (.7), 19 (.6).
    # δ=0: only 10 matches -> TP at rank 1 (P=1); AP = 1/2 = 0.5.
    # δ=1: 10 TP (P=1/1), 21 -> nearest unmatched 20 at distance 1: TP (P=2/2); AP = (1+1)/2 = 1.
    truth = _ls(["a"], {"v": [(10, "a"), (20, "a")]})
    pred = _ls(["a"], {"v": [(10, "a", .9), (21, "a", .8), (30, "a", .7), (19, "a", .6)]})
    r = e2e_map(truth, pred, tolerances=(0, 1, 2))
    assert r.ap[0]["a"] == pytest.approx(0.5)
    assert r.ap[1]["a"] == pytest.approx(1.0)
    assert r.map_by_tolerance == {0: pytest.approx(0.5), 1: pytest.approx(1.0), 2: pytest.approx(1.0)}
    assert r.mean == pytest.approx((0.5 + 1 + 1) / 3)
    assert r.spot_mean == pytest.approx(1.0)  # mean over δ > 0


def test_hand_case_interpolation():
    # GT 0, 100, 200. Ranked: 50 FP, 0 TP (P=1/2), 300 FP, 100 TP (P=2/4), 200 TP (P=3/5).
    # precisions at TPs [.5, .5, .6]; suffix max [.6, .6, .6]; AP = 1.8 / 3 = 0.6
    truth = _ls(["a"], {"v": [(0, "a"), (100, "a"), (200, "a")]})
    pred = _ls(["a"], {"v": [(50, "a", .9), (0, "a", .8), (300, "a", .7), (100, "a", .6), (200, "a", .5)]})
    assert e2e_map(truth, pred, tolerances=(0,)).ap[0]["a"] == pytest.approx(0.6)


@pytest.mark.parametrize("gt_order,expected", [((12, 10), 0.5), ((10, 12), 1.0)])
def test_hand_case_equal_distance_tie_goes_to_first_listed_gt(gt_order, expected):
    # δ=2. Pred 11 (.9) is 1 frame from both GT 10 and 12: it takes the GT listed first.
    # Then pred 13 (.8): if 12 was taken, the nearest unmatched is 10 at distance 3 > 2 -> FP,
    # AP = 1/2; if 10 was taken, 13 matches 12 -> AP = (1 + 1)/2 = 1.
    truth = _ls(["a"], {"v": [(f, "a") for f in gt_order]})
    pred = _ls(["a"], {"v": [(11, "a", .9), (13, "a", .8)]})
    assert e2e_map(truth, pred, tolerances=(2,)).ap[2]["a"] == pytest.approx(expected)


def test_hand_case_nearest_gt_even_if_a_farther_one_is_free():
    # GT 10 and 14, δ=4. Pred 13 (.9) takes 14 (nearest). Pred 17 (.8): nearest unmatched is 10
    # (distance 7) -> FP. Pred 9 (.7) -> 10, TP at rank 3: AP = (1 + 2/3) / 2 = 5/6.
    truth = _ls(["a"], {"v": [(10, "a"), (14, "a")]})
    pred = _ls(["a"], {"v": [(13, "a", .9), (17, "a", .8), (9, "a", .7)]})
    assert e2e_map(truth, pred, tolerances=(4,)).ap[4]["a"] == pytest.approx(5 / 6)


def test_hand_case_duplicate_gt_frames_match_once():
    # spot tracks matched GT by (video, frame): GT a@10 twice -> N=2, but only one can match.
    truth = _ls(["a"], {"v": [(10, "a"), (10, "a")]})
    pred = _ls(["a"], {"v": [(10, "a", .9), (10, "a", .8)]})
    assert e2e_map(truth, pred, tolerances=(0,)).ap[0]["a"] == pytest.approx(0.5)


def test_hand_case_classes_and_videos():
    # class b has GT but no predictions (AP 0); class c has predictions but no GT (ignored);
    # class a in two videos, equal scores keep list order (stable): v1@5 then v2@7.
    # a: ranked v1@5 (TP, 1/1), v2@7 (FP: GT of v2 is at 50), v2@50 (.5, TP 2/3) -> AP = (1 + 2/3)/2
    truth = _ls(["a", "b", "c"], {"v1": [(5, "a"), (9, "b")], "v2": [(50, "a")]})
    pred = _ls(["a", "b", "c"], {"v1": [(5, "a", .7), (1, "c", .99)], "v2": [(7, "a", .7), (50, "a", .5)]})
    r = e2e_map(truth, pred, tolerances=(0,))
    assert r.classes == ["a", "b"]
    assert r.ap[0] == {"a": pytest.approx(5 / 6), "b": 0.0}
    assert r.map_by_tolerance[0] == pytest.approx(5 / 12)
    assert r.num_gt == {"a": 2, "b": 1} and r.num_pred == {"a": 3, "b": 0}
    assert subset_map(truth, pred, ["a"], (0,)) == {0: pytest.approx(5 / 6)}
    assert r.map_over(["b"]) == {0: 0.0}
    with pytest.raises(ConfigError, match="no ground-truth"):
        e2e_map(truth, pred, classes=["c"])


def test_video_mismatch_raises_with_ids():
    truth = _ls(["a"], {"v1": [(5, "a")], "v2": []})
    pred = _ls(["a"], {"v1": [(5, "a", .5)], "v3": []})
    with pytest.raises(LabelFormatError, match=r"'v2'.*'v3'"):
        e2e_map(truth, pred)


def test_bad_tolerance_and_missing_score():
    truth = _ls(["a"], {"v": [(5, "a")]})
    with pytest.raises(ConfigError, match="tolerance"):
        e2e_map(truth, _ls(["a"], {"v": []}), tolerances=(-1,))
    with pytest.raises(LabelFormatError, match="score"):
        e2e_map(truth, _ls(["a"], {"v": [(5, "a")]}))


def test_precision_recall_f1_and_confusion_hand_case():
    # GT a@10, a@20, b@40; δ=1, threshold .5.
    # a preds >= .5: 10 (.9) TP, 11 (.8) duplicate (10 taken), 40 (.7) spurious AND wrong class (b@40),
    #   30 (.6) spurious; 20 (.4) below threshold -> a: TP 1, 4 preds, 2 GT, missed 1.
    # b preds: 41 (.95) TP.
    truth = _ls(["a", "b"], {"v": [(10, "a"), (20, "a"), (40, "b")]})
    pred = _ls(["a", "b"], {"v": [(10, "a", .9), (11, "a", .8), (40, "a", .7), (30, "a", .6),
                                  (20, "a", .4), (41, "b", .95)]})
    prf = precision_recall_f1(truth, pred, threshold=0.5, tolerance=1)
    assert (prf["a"].tp, prf["a"].num_pred, prf["a"].num_gt) == (1, 4, 2)
    assert prf["a"].precision == pytest.approx(0.25) and prf["a"].recall == pytest.approx(0.5)
    assert prf["a"].f1 == pytest.approx(2 * 1 / (4 + 2))
    assert (prf["all"].tp, prf["all"].num_pred, prf["all"].num_gt) == (2, 5, 3)
    conf = confusion_summary(truth, pred, threshold=0.5, tolerance=1)
    a = conf["a"]
    assert (a.matched, a.missed, a.duplicate, a.spurious, a.wrong_class) == (1, 1, 1, 2, 1)
    b = conf["b"]
    assert (b.matched, b.missed, b.duplicate, b.spurious, b.wrong_class) == (1, 0, 0, 0, 0)


# ----------------------------------------------------------------------------- independent reference


def _reference_map(truth, pred, tolerances):
    """Straight from spot's published algorithm (A5), written independently with plain loops."""
    truth_by_label = defaultdict(lambda: defaultdict(list))
    for v in truth.videos:
        for e in v.events:
            truth_by_label[e.label][v.video].append(e.frame)
    pred_by_label = defaultdict(list)
    for v in pred.videos:
        for e in v.events:
            pred_by_label[e.label].append((v.video, e.frame, e.score))
    out = {}
    for tol in tolerances:
        aps = {}
        for label, gt in truth_by_label.items():
            total = sum(len(x) for x in gt.values())
            recalled = set()
            pc = []
            for i, (vid, frame, _) in enumerate(sorted(pred_by_label[label], key=lambda x: -x[2]), 1):
                closest = None
                for g in gt.get(vid, []):
                    if (vid, g) in recalled:
                        continue
                    if closest is None or abs(frame - closest) > abs(frame - g):
                        closest = g
                if closest is not None and abs(frame - closest) <= tol:
                    recalled.add((vid, closest))
                    pc.append(len(recalled) / i)
            acc, best = 0.0, 0.0
            for p in reversed(pc):
                best = max(best, p)
                acc += best
            aps[label] = acc / total
        out[tol] = aps
    return out


def _random_sets(rng, num_videos, classes, length):
    truth, pred = [], []
    for vi in range(num_videos):
        vid = f"video_{vi}"
        gt = []
        for c in classes:
            if rng.random() < 0.2:
                continue
            n = int(rng.integers(1, 12))
            # clustered GT (shared windows) and occasional duplicates of a frame
            centers = rng.integers(0, length, size=max(1, n // 3))
            for _ in range(n):
                gt.append((int(np.clip(rng.choice(centers) + rng.integers(-6, 7), 0, length - 1)), c))
        rng.shuffle(gt)
        quant = rng.choice([0.1, 0.02, 0.0])
        pr = []
        for c in classes + ["extra"]:
            for f in rng.integers(0, length, size=int(rng.integers(0, 40))):
                pr.append((int(f), c))
            for f, gc in gt:
                if gc == c:
                    for _ in range(int(rng.integers(0, 4))):
                        pr.append((int(np.clip(f + rng.integers(-5, 6), 0, length - 1)), c))
        events = []
        for f, c in pr:
            s = float(rng.random())
            if quant:
                s = round(s / quant) * quant  # many ties
            events.append(Event(f, c, score=s))
        truth.append(VideoLabels(vid, 25.0, length, [Event(f, c) for f, c in gt]))
        pred.append(VideoLabels(vid, 25.0, length, events))
    order = rng.permutation(num_videos)  # prediction video order differs from the truth's
    return LabelSet(classes, truth), LabelSet(classes + ["extra"], [pred[i] for i in order])


@pytest.mark.parametrize("seed", range(40))
def test_random_cases_match_reference(seed):
    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(int(rng.integers(1, 5)))]
    truth, pred = _random_sets(rng, int(rng.integers(1, 5)), classes, int(rng.integers(30, 300)))
    tols = (0, 1, 2, 4, 8)
    ref = _reference_map(truth, pred, tols)
    if not any(v.events for v in truth):
        with pytest.raises(LabelFormatError, match="no events"):
            e2e_map(truth, pred, tolerances=tols)
        return
    ours = e2e_map(truth, pred, tolerances=tols)
    for d in tols:
        assert set(ours.ap[d]) == set(ref[d])
        for c in ref[d]:
            assert ours.ap[d][c] == pytest.approx(ref[d][c], abs=1e-12), (d, c)
        assert ours.map_by_tolerance[d] == pytest.approx(np.mean(list(ref[d].values())), abs=1e-12)


def test_threshold_prefix_property():
    # P/R at a threshold must equal re-running the matching on the thresholded predictions.
    rng = np.random.default_rng(3)
    truth, pred = _random_sets(rng, 3, ["a", "b"], 200)
    for thr in (0.2, 0.5, 0.8):
        kept = LabelSet(pred.classes, [VideoLabels(v.video, v.fps, v.num_frames,
                                                   [e for e in v.events if e.score >= thr]) for v in pred])
        prf = precision_recall_f1(truth, pred, threshold=thr, tolerance=2)
        for c, (_, tp, _) in class_matches(truth, kept, 2).items():
            assert prf[c].tp == int(tp.sum())
            assert prf[c].num_pred == len(tp)


# ----------------------------------------------------------------------------- real labels, dense preds


def test_tennis_dense_predictions(spot_fixtures):
    data = json.loads((spot_fixtures / "tennis" / "test.json").read_text())
    classes = sorted({e["label"] for v in data for e in v["events"]})
    truth = LabelSet(classes, [VideoLabels(v["video"], v["fps"], v["num_frames"],
                                           [Event(e["frame"], e["label"]) for e in v["events"]])
                               for v in data])
    rng = np.random.default_rng(0)
    pred_videos, perfect_videos = [], []
    num_pred = 0
    for v in data:
        n = v["num_frames"]
        near = np.zeros(n, dtype=bool)
        for e in v["events"]:
            near[max(0, e["frame"] - 3): e["frame"] + 4] = True
        near |= rng.random(n) < 0.02
        frames = np.flatnonzero(near)
        scores = rng.uniform(0.01, 0.99, size=(len(frames), len(classes)))
        events = [Event(f, c, score=s) for f, row in zip(frames.tolist(), scores.tolist())
                  for c, s in zip(classes, row)]
        num_pred += len(events)
        pred_videos.append(VideoLabels(v["video"], v["fps"], n, events))
        # the same plus every GT event with score 1: AP must become exactly 1 at every tolerance
        perfect_videos.append(VideoLabels(v["video"], v["fps"], n,
                                          [Event(e["frame"], e["label"], score=1.0) for e in v["events"]]
                                          + events))
    assert num_pred > 500_000
    t0 = time.perf_counter()
    r = e2e_map(truth, LabelSet(classes, pred_videos))
    elapsed = time.perf_counter() - t0
    print(f"tennis test: {len(data)} videos, {num_pred} predictions, e2e_map in {elapsed:.2f} s")
    assert r.classes == classes and r.num_gt["near_court_serve"] > 0
    maps = [r.map_by_tolerance[d] for d in (0, 1, 2, 4)]
    assert all(0.0 < m < 1.0 for m in maps)
    assert maps == sorted(maps)  # larger tolerance never lowers the random baseline here
    rp = e2e_map(truth, LabelSet(classes, perfect_videos))
    for d in (0, 1, 2, 4):
        # duplicates at the same frame in the GT can only be matched once (spot's (video, frame) rule)
        assert rp.map_by_tolerance[d] > 0.99

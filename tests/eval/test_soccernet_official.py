"""Our SoccerNet average-mAP against the official ``SoccerNet`` package (the reference).

Randomised cases are small (short grids, few games) because the official code is slow Python.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import ConfigError, LabelFormatError
from e2espot.eval import soccernet as sn

official = pytest.importorskip("SoccerNet.Evaluation.ActionSpotting")
official_utils = pytest.importorskip("SoccerNet.Evaluation.utils")

V2 = list(official_utils.EVENT_DICTIONARY_V2)  # the official EVENT_DICTIONARY_V2 order


def _silence_tqdm(monkeypatch):
    # the official code wraps loops in tqdm; keep test output clean
    monkeypatch.setattr(official, "tqdm", lambda x, *a, **k: x)


def _assert_same(ours, ref):
    names = ["a_mAP", "per_class", "visible", "per_class_visible", "unshown", "per_class_unshown"]
    for name, a, b in zip(names, ours, ref):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                   rtol=0, atol=1e-9, err_msg=name)


def test_metric_deltas_match_official():
    np.testing.assert_array_equal(sn.metric_deltas("loose"), np.arange(12) * 5 + 5)
    np.testing.assert_array_equal(sn.metric_deltas("tight"), np.arange(5) + 1)
    np.testing.assert_array_equal(sn.metric_deltas("at3"), [3])
    with pytest.raises(ConfigError, match="tight"):
        sn.metric_deltas("strict")
    assert list(sn.SOCCERNET_V2_CLASSES) == V2


# ----------------------------------------------------------------------------- dense grids


def _official_closest(target):
    """The closest-GT loop of the official ``evaluate`` (copied in spirit: inline there, no function)."""
    out = np.zeros(target.shape) - 1
    for c in range(target.shape[-1]):
        idx = np.where(target[:, c] != 0)[0].tolist()
        if not idx:
            continue
        idx.insert(0, -idx[0])
        idx.append(2 * out.shape[0])
        for i in np.arange(len(idx) - 2) + 1:
            start = max(0, (idx[i - 1] + idx[i]) // 2)
            stop = min(out.shape[0], (idx[i] + idx[i + 1]) // 2)
            out[start:stop, c] = target[idx[i], c]
    return out


def _random_half(rng, length, num_classes, delta_frames):
    target = np.zeros((length, num_classes))
    detection = np.full((length, num_classes), -1.0)
    for c in range(num_classes):
        if rng.random() < 0.15:
            continue  # a class with no GT in this half
        n_gt = rng.integers(0, max(2, length // 12))
        gts = rng.choice(length, size=n_gt, replace=False) if n_gt else []
        for g in gts:
            target[g, c] = -1 if rng.random() < 0.3 else 1
        # predictions: near GT (incl. exactly on the ±delta/2 border), random ones, quantised scores (ties)
        quant = rng.choice([0.05, 0.1, 1 / 199, None])
        cand = list(rng.choice(length, size=rng.integers(0, length // 4 + 1), replace=False))
        for g in gts:
            for off in (-delta_frames // 2, delta_frames // 2, -(delta_frames // 2) - 1,
                        (delta_frames // 2) + 1, 0, int(rng.integers(-delta_frames, delta_frames + 1))):
                if rng.random() < 0.5:
                    cand.append(g + off)
        for f in cand:
            if 0 <= f < length:
                s = rng.random()
                if quant is not None:
                    s = round(s / quant) * quant
                if rng.random() < 0.05:
                    s = rng.choice([0.0, 1.0, 1.2])
                detection[f, c] = min(s, 1.5)
    return target, detection


@pytest.mark.parametrize("seed", range(36))
def test_average_map_dense_random_matches_official(seed, monkeypatch):
    _silence_tqdm(monkeypatch)
    rng = np.random.default_rng(seed)
    framerate = int(rng.choice([1, 2, 25]))
    if framerate == 25:
        deltas = np.array([1])
    else:
        deltas = [np.arange(5) + 1, np.array([int(rng.integers(1, 6))]), np.arange(3) * 5 + 5][seed % 3]
    num_classes = int(rng.integers(1, 5))
    halves = int(rng.integers(1, 5))
    delta_frames = int(deltas.max() * framerate)
    targets, detections, closests = [], [], []
    for _ in range(halves):
        t, d = _random_half(rng, int(rng.integers(20, 160)), num_classes, delta_frames)
        targets.append(t)
        detections.append(d)
        closests.append(_official_closest(t))
    ref = official.average_mAP(targets, detections, closests, framerate, deltas)
    ours = sn.average_mAP(targets, detections, closests, framerate, deltas)
    _assert_same(ours, ref)


def test_closest_map_matches_official_loop():
    rng = np.random.default_rng(7)
    for _ in range(50):
        t = np.zeros((int(rng.integers(1, 80)), 3))
        for c in range(3):
            for g in rng.choice(len(t), size=int(rng.integers(0, min(6, len(t)) + 1)), replace=False):
                t[g, c] = rng.choice([-1, 1])
        np.testing.assert_array_equal(sn.closest_map(t), _official_closest(t))


def test_average_map_hand_case():
    # one half, one class, GT at 10 (visible); predictions at 10 (0.9) and 30 (0.8): P/R gives
    # recall 1 with precision 1 for thresholds in (0.8, 0.9], so every 11-point level reaches 1.
    t = np.zeros((40, 1)); t[10, 0] = 1
    d = np.full((40, 1), -1.0); d[10, 0] = 0.9; d[30, 0] = 0.8
    a_map, per_class, vis, _, uns, _ = sn.average_mAP([t], [d], [sn.closest_map(t)], 2, np.array([1]))
    assert a_map == pytest.approx(1.0) and vis == pytest.approx(1.0) and uns == 0.0
    # shifted out of the ±δ/2 window (δ = 1 s at 2 fps -> radius 1 frame): AP 0
    d2 = np.full((40, 1), -1.0); d2[12, 0] = 0.9
    assert sn.average_mAP([t], [d2], [sn.closest_map(t)], 2, np.array([1]))[0] == 0.0


# ----------------------------------------------------------------------------- files


def _position(rng, framerate):
    return int(rng.integers(0, 40 * 1000 // framerate))  # ~first 20 s of a half at 2 fps


def _write_games(root: Path, games, label_file, rng, classes, framerate, delta_s, foreign=False):
    """Random label + prediction files; returns (labels_root, preds_root)."""
    lab_root, pred_root = root / "labels", root / "preds"
    ms_per_cell = 1000 / framerate
    for game in games:
        ann, preds = [], []
        for half in (1, 2):
            if rng.random() < 0.2:
                continue  # an empty half
            for c in classes:
                if rng.random() < 0.2:
                    continue  # empty class in this half
                for _ in range(int(rng.integers(1, 5))):
                    pos = _position(rng, framerate)
                    vis = "not shown" if rng.random() < 0.25 else "visible"
                    ann.append({"gameTime": f"{half} - 00:{pos // 1000 % 60:02d}", "label": c,
                                "position": str(pos), "team": "left", "visibility": vis})
                    # predictions around it: on the window borders, inside, duplicates in one cell
                    for off_cells in (0, delta_s * framerate / 2, -delta_s * framerate / 2,
                                      delta_s * framerate / 2 + 1, rng.integers(-5, 6)):
                        if rng.random() < 0.6:
                            p = int(pos + off_cells * ms_per_cell)
                            if p >= 0:
                                conf = float(round(rng.random(), int(rng.choice([1, 2, 6]))))
                                preds.append({"gameTime": "", "label": c, "position": str(p),
                                              "half": str(half), "confidence": str(conf)})
                for _ in range(int(rng.integers(0, 4))):  # false positives
                    preds.append({"gameTime": "", "label": c, "position": _position(rng, framerate),
                                  "half": half, "confidence": float(rng.random())})
        if preds and rng.random() < 0.5:
            preds.append(dict(preds[0], confidence="0.3"))  # same cell again: last write wins
        if foreign:
            preds.append({"gameTime": "", "label": "NOT A CLASS", "position": "1000", "half": "1",
                          "confidence": "0.9"})
        rng.shuffle(ann)
        (lab_root / game).mkdir(parents=True)
        (pred_root / game).mkdir(parents=True)
        (lab_root / game / label_file).write_text(json.dumps({"UrlLocal": game, "annotations": ann}))
        (pred_root / game / "results_spotting.json").write_text(
            json.dumps({"UrlLocal": game, "predictions": preds}))
    return lab_root, pred_root


def _official_evaluate(labels, preds, label_file, classes, framerate, metric):
    return official.evaluate(
        SoccerNet_path=str(labels), Predictions_path=str(preds), prediction_file="results_spotting.json",
        split="test", version=2, framerate=framerate, metric=metric, label_files=label_file,
        dataset=None, EVENT_DICTIONARY={c: i for i, c in enumerate(classes)},
    )


def _compare(ours, ref):
    for key in ("a_mAP", "a_mAP_visible", "a_mAP_unshown"):
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-9), key
    for key in ("a_mAP_per_class", "a_mAP_per_class_visible", "a_mAP_per_class_unshown"):
        np.testing.assert_allclose(ours[key], np.asarray(ref[key], dtype=float), rtol=0, atol=1e-9,
                                   err_msg=key)


GAMES = ["england_epl/2015-2016/2015-08-29 - 17-00 Chelsea 1 - 2 Crystal Palace",
         "italy_serie-a/2016-2017/2016-09-20 - 21-45 AC Milan 2 - 0 Lazio",
         "spain_laliga/2019-2020/2019-10-01 - Reading - Fulham"]


V2_CASES = [
    # (seed, metric, classes evaluated, number of games)
    (0, "tight", V2, 2),
    (1, "loose", V2[:4], 1),
    (2, "tight", V2[:8], 3),
    (3, "at2", V2[:6], 2),
    (4, "at1", V2, 1),
    pytest.param(5, "loose", V2, 2, marks=pytest.mark.slow),  # official loose on 17 classes: ~10 s
]


@pytest.mark.parametrize("seed,metric,classes,num_games", V2_CASES)
def test_v2_files_match_official(tmp_path, monkeypatch, seed, metric, classes, num_games):
    _silence_tqdm(monkeypatch)
    rng = np.random.default_rng(100 + seed)
    deltas = sn.metric_deltas(metric)
    delta_s = int(deltas[int(rng.integers(0, len(deltas)))])
    labels, preds = _write_games(tmp_path, GAMES[:num_games], "Labels-v2.json", rng, classes, 2, delta_s)
    ref = _official_evaluate(labels, preds, "Labels-v2.json", classes, 2, metric)
    ours = sn.evaluate_soccernet(labels, preds, classes=classes, framerate=2, metric=metric)
    _compare(ours, ref)
    assert 0.0 < ours["a_mAP"] < 1.0  # a non-trivial case
    assert list(ours["per_class"]) == list(classes)
    assert ours["per_class"][classes[0]] == ours["a_mAP_per_class"][0]


BALL12 = ["PASS", "DRIVE", "HEADER", "HIGH PASS", "OUT", "CROSS", "THROW IN", "SHOT",
          "BALL PLAYER BLOCK", "PLAYER SUCCESSFUL TACKLE", "FREE KICK", "GOAL"]


@pytest.mark.parametrize("seed", range(3))
def test_ball_at1_25fps_files_match_official(tmp_path, monkeypatch, seed):
    _silence_tqdm(monkeypatch)
    assert list(sn.BALL_CLASSES) == BALL12
    rng = np.random.default_rng(200 + seed)
    labels, preds = _write_games(tmp_path, GAMES[:2], "Labels-ball.json", rng, BALL12, 25, 1)
    ref = _official_evaluate(labels, preds, "Labels-ball.json", BALL12, 25, "at1")
    ours = sn.evaluate_soccernet(labels, preds, classes=BALL12, label_file="Labels-ball.json",
                                 framerate=25, metric="at1")
    _compare(ours, ref)


def test_zip_inputs_and_unknown_class_policy(tmp_path, monkeypatch):
    _silence_tqdm(monkeypatch)
    rng = np.random.default_rng(5)
    labels, preds = _write_games(tmp_path, GAMES[:2], "Labels-v2.json", rng, V2[:4], 2, 1, foreign=True)
    classes = V2[:4]
    zpath = tmp_path / "preds.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in preds.rglob("*.json"):
            z.write(f, f.relative_to(preds).as_posix())
    # unknown prediction class: an error by default, the official silent drop on request
    with pytest.raises(LabelFormatError, match="NOT A CLASS"):
        sn.evaluate_soccernet(labels, zpath, classes=classes, metric="tight")
    ref = _official_evaluate(labels, zpath, "Labels-v2.json", classes, 2, "tight")
    ours = sn.evaluate_soccernet(labels, zpath, classes=classes, metric="tight", on_unknown="ignore")
    _compare(ours, ref)


def test_missing_prediction_game_raises(tmp_path):
    rng = np.random.default_rng(9)
    labels, preds = _write_games(tmp_path, GAMES[:2], "Labels-v2.json", rng, V2[:3], 2, 1)
    (preds / GAMES[1] / "results_spotting.json").unlink()
    with pytest.raises(LabelFormatError, match="missing"):
        sn.evaluate_soccernet(labels, preds, classes=V2)


# ----------------------------------------------------------------------------- label sets


def test_soccernet_map_from_frames_matches_official(tmp_path, monkeypatch):
    """LabelSets with frames + fps (no position_ms), two halves per game, vs official files."""
    _silence_tqdm(monkeypatch)
    rng = np.random.default_rng(11)
    fps = 25.0
    classes = V2[:5]
    truth_videos, pred_videos = [], []
    lab_root, pred_root = tmp_path / "l", tmp_path / "p"
    for game in GAMES[:2]:
        ann, preds = [], []
        for half in (1, 2):
            gt_ev, pr_ev = [], []
            for c in classes:
                for f in rng.choice(1500, size=int(rng.integers(0, 6)), replace=False).tolist():
                    vis = "not shown" if rng.random() < 0.3 else "visible"
                    gt_ev.append(Event(f, c, visibility=vis))
                    ann.append({"gameTime": f"{half} - 00:00", "label": c,
                                "position": str(int(f * 1000.0 / fps + 1e-6)), "visibility": vis})
                    for _ in range(3):
                        pf = int(max(0, f + rng.integers(-40, 41)))
                        s = float(rng.random())
                        pr_ev.append(Event(pf, c, score=s))
                        preds.append({"label": c, "position": int(pf * 1000.0 / fps + 1e-6),
                                      "half": half, "confidence": s})
            extra = {"game": game, "half": half}
            truth_videos.append(VideoLabels(f"{game}/{half}", fps, 1500, gt_ev, extra=dict(extra)))
            pred_videos.append(VideoLabels(f"{game}/{half}", fps, 1500, pr_ev))  # game/half from truth
        (lab_root / game).mkdir(parents=True)
        (pred_root / game).mkdir(parents=True)
        (lab_root / game / "Labels-v2.json").write_text(json.dumps({"annotations": ann}))
        (pred_root / game / "results_spotting.json").write_text(json.dumps({"predictions": preds}))
    for metric in ("tight", "at1"):
        ref = _official_evaluate(lab_root, pred_root, "Labels-v2.json", classes, 2, metric)
        ours = sn.soccernet_map(LabelSet(classes, truth_videos), LabelSet(classes, pred_videos),
                                framerate=2, metric=metric)
        _compare(ours, ref)


def test_soccernet_map_game_mismatch_and_defaults():
    truth = LabelSet(["A"], [VideoLabels("g1", 2.0, 100, [Event(10, "A")])])
    pred_ok = LabelSet(["A"], [VideoLabels("g1", 2.0, 100, [Event(10, "A", score=0.9)])])
    res = sn.soccernet_map(truth, pred_ok, metric="at1")
    assert res["a_mAP"] == pytest.approx(1.0)
    assert res["per_class"] == {"A": pytest.approx(1.0)}
    pred_bad = LabelSet(["A"], [VideoLabels("g2", 2.0, 100, [Event(10, "A", score=0.9)])])
    with pytest.raises(LabelFormatError, match="g1"):
        sn.soccernet_map(truth, pred_bad, metric="at1")
    pred_unknown = LabelSet(["A"], [VideoLabels("g1", 2.0, 100, [Event(10, "B", score=0.9)])])
    with pytest.raises(LabelFormatError, match="'B'"):
        sn.soccernet_map(truth, pred_unknown)
    # a class with no GT counts as AP 0 in the mean
    res2 = sn.soccernet_map(truth, pred_ok, ["A", "Z"], metric="at1")
    assert res2["a_mAP"] == pytest.approx(0.5)

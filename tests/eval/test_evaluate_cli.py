"""`e2espot evaluate` end to end on files: E2E-Spot labels + our prediction JSON, SoccerNet trees."""

from __future__ import annotations

import json

import numpy as np
import pytest

from e2espot.cli import main
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.eval.metrics import e2e_map
from e2espot.eval.soccernet import SOCCERNET_V2_CLASSES


def test_evaluate_spot_tennis(spot_fixtures, tmp_path, capsys):
    data = json.loads((spot_fixtures / "tennis" / "test.json").read_text())
    rng = np.random.default_rng(0)
    preds = []
    for v in data:
        events = []
        for e in v["events"]:
            if rng.random() < 0.8:
                events.append({"frame": max(0, e["frame"] + int(rng.integers(-2, 3))), "label": e["label"],
                               "score": float(rng.random())})
        events.append({"frame": int(rng.integers(0, v["num_frames"])), "label": data[0]["events"][0]["label"],
                       "score": float(rng.random())})
        preds.append({"video": v["video"], "fps": v["fps"], "num_frames": v["num_frames"], "events": events})
    pred_path = tmp_path / "pred-test.json"
    pred_path.write_text(json.dumps(preds))
    out_json = tmp_path / "res.json"
    rc = main(["evaluate", str(spot_fixtures / "tennis"), str(pred_path), "--split", "test",
               "--json", str(out_json)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mAP" in text and "AP @ tol" in text
    res = json.loads(out_json.read_text())

    classes = sorted({e["label"] for v in data for e in v["events"]})
    truth = LabelSet(classes, [VideoLabels(v["video"], v["fps"], v["num_frames"],
                                           [Event(e["frame"], e["label"]) for e in v["events"]]) for v in data])
    pred = LabelSet(classes, [VideoLabels(p["video"], p["fps"], p["num_frames"],
                                          [Event(e["frame"], e["label"], score=e["score"]) for e in p["events"]])
                              for p in preds])
    expected = e2e_map(truth, pred)
    assert res["metric"] == "e2e"
    for d in (0, 1, 2, 4):
        assert res["by_tolerance"][str(d)]["mAP"] == pytest.approx(expected.map_by_tolerance[d], abs=1e-12)
    assert res["mAP"] == pytest.approx(expected.mean, abs=1e-12)
    assert 0.3 < expected.map_by_tolerance[2] < 1.0

    # with a threshold: P/R/F1 and confusion tables, and a JSON section
    rc = main(["evaluate", str(spot_fixtures / "tennis"), str(pred_path), "--threshold", "0.5",
               "--tolerances", "2", "--nms-window", "1", "--json", str(out_json)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "F1" in text and "duplicate" in text
    res = json.loads(out_json.read_text())
    assert res["at_threshold"]["tolerance"] == 2
    assert 0 < res["at_threshold"]["per_class"]["all"]["recall"] < 1


def _write_soccernet(root, rng):
    games = ["england_epl/2016-2017/2016-09-10 - 17-00 Arsenal 2 - 1 Southampton",
             "england_epl/2016-2017/2016-10-01 - 14-30 Swansea 1 - 2 Liverpool"]
    classes = ["Goal", "Corner", "Foul", "Throw-in"]
    for game in games:
        ann, preds = [], []
        for half in (1, 2):
            for c in classes:
                for _ in range(int(rng.integers(1, 5))):
                    pos = int(rng.integers(0, 60_000))
                    vis = "not shown" if rng.random() < 0.3 else "visible"
                    ann.append({"gameTime": f"{half} - {pos // 60000:02d}:{pos // 1000 % 60:02d}", "label": c,
                                "position": str(pos), "team": "home", "visibility": vis})
                    for _ in range(2):
                        p = max(0, pos + int(rng.integers(-3000, 3000)))
                        preds.append({"gameTime": f"{half} - {p // 60000:02d}:{p // 1000 % 60:02d}", "label": c,
                                      "position": str(p), "half": str(half), "confidence": f"{rng.random():.4f}"})
        (root / "labels" / game).mkdir(parents=True)
        (root / "preds" / game).mkdir(parents=True)
        (root / "labels" / game / "Labels-v2.json").write_text(json.dumps({"UrlLocal": game, "annotations": ann}))
        (root / "preds" / game / "results_spotting.json").write_text(
            json.dumps({"UrlLocal": game, "predictions": preds}))
    return root / "labels", root / "preds"


def test_evaluate_soccernet_matches_official(tmp_path, capsys, monkeypatch):
    official = pytest.importorskip("SoccerNet.Evaluation.ActionSpotting")
    monkeypatch.setattr(official, "tqdm", lambda x, *a, **k: x)
    labels, preds = _write_soccernet(tmp_path, np.random.default_rng(1))
    out_json = tmp_path / "sn.json"
    rc = main(["evaluate", str(labels), str(preds), "--soccernet-metric", "tight", "--json", str(out_json)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "SoccerNet tight average-mAP" in text
    res = json.loads(out_json.read_text())
    ref = official.evaluate(SoccerNet_path=str(labels), Predictions_path=str(preds), split="test", version=2,
                            framerate=2, metric="tight", label_files="Labels-v2.json", dataset=None,
                            EVENT_DICTIONARY={c: i for i, c in enumerate(SOCCERNET_V2_CLASSES)})
    assert res["metric"] == "soccernet-tight"
    assert res["classes"] == list(SOCCERNET_V2_CLASSES)  # all 17 count, as in the official mean
    assert res["mAP"] == pytest.approx(float(ref["a_mAP"]), abs=1e-9)
    assert res["a_mAP_unshown"] == pytest.approx(float(ref["a_mAP_unshown"]), abs=1e-9)
    np.testing.assert_allclose(res["a_mAP_per_class_visible"], ref["a_mAP_per_class_visible"], atol=1e-9)
    assert 0 < res["mAP"] < 1


def test_evaluate_errors_are_one_line(tmp_path, capsys):
    labels, preds = _write_soccernet(tmp_path, np.random.default_rng(2))
    assert main(["evaluate", str(labels), str(preds), "--soccernet-metric", "strict"]) == 2
    assert "error: ConfigError: unknown SoccerNet metric 'strict'" in capsys.readouterr().err
    assert main(["evaluate", str(labels), str(preds), "--split", "test"]) == 2  # SoccerNet split, no splits file
    assert "SoccerNet labels need --splits FILE.json" in capsys.readouterr().err


def test_evaluate_soccernet_split_restricts_the_games(tmp_path, capsys):
    """Predictions for the test games only: --split test evaluates those games, without it it is an error."""
    from e2espot.data.formats import read_labels, write_labels
    from e2espot.data.labels import LabelSet
    from e2espot.data.synthetic import generate_dataset

    generate_dataset(tmp_path / "syn", num_videos=4, seed=3, tiny=True)
    root = tmp_path / "syn" / "soccernet"
    truth = read_labels(root, "soccernet", probe_videos=False)
    test_games = json.loads((root / "splits.json").read_text())["test"]
    test_videos = [v for v in truth if v.extra["game"] in test_games]
    for v in test_videos:
        for e in v.events:
            e.score = 0.9
    write_labels(LabelSet(truth.classes, test_videos), tmp_path / "preds", "soccernet-results")
    args = ["evaluate", str(root), str(tmp_path / "preds"), "--metric", "soccernet", "--framerate", "25",
            "--soccernet-metric", "at1", "--json", str(tmp_path / "out.json")]
    assert main(args) == 2
    assert "no predictions for" in capsys.readouterr().err
    assert main(args + ["--split", "test"]) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    present = {e.label for v in test_videos for e in v.events}
    assert all(out["per_class"][c] == pytest.approx(1.0) for c in present)

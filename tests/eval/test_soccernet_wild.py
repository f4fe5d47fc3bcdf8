"""SoccerNet files as the field writes them, scored by `e2espot evaluate` exactly as the official package.

Generated inputs: unpadded ``gameTime`` ("1 - 0:8") in result zips, half 3, ground truth without
``position``, classes absent from the evaluated games, a negative position (a documented error).
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest

from e2espot.cli import main
from e2espot.data.formats import read_labels
from e2espot.errors import LabelFormatError
from e2espot.eval.soccernet import BALL_CLASSES, SOCCERNET_V2_CLASSES, evaluate_soccernet

GAMES = ["england_epl/2016-2017/2016-09-10 - 17-00 Arsenal 2 - 1 Southampton",
         "england_epl/2016-2017/2016-10-01 - 14-30 Swansea 1 - 2 Liverpool"]


def _padded(half: int, pos: int) -> str:
    return f"{half} - {pos // 60000:02d}:{pos // 1000 % 60:02d}"


def _unpadded(half: int, pos: int) -> str:  # as the official baselines' result zips write it
    return f"{half} - {pos // 60000}:{pos // 1000 % 60}"


def _write(root: Path, rng: np.random.Generator, classes: list[str], label_file: str, halves: tuple[int, ...],
           *, half3: bool = False, no_position: bool = False) -> tuple[Path, Path]:
    labels = root / "labels"
    zip_path = root / "preds.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for game in GAMES:
            ann, preds = [], []
            for half in halves + ((3,) if half3 else ()):
                for c in classes:
                    for _ in range(int(rng.integers(1, 4))):
                        pos = int(rng.integers(0, 90_000))
                        a = {"gameTime": _padded(half, pos), "label": c, "position": str(pos),
                             "visibility": "not shown" if rng.random() < 0.3 else "visible"}
                        if no_position and rng.random() < 0.3:
                            del a["position"]
                        ann.append(a)
                        for _ in range(2):
                            p = max(0, pos + int(rng.integers(-2500, 2500)))
                            preds.append({"gameTime": _unpadded(half, p), "label": c, "position": str(p),
                                          "half": str(half), "confidence": f"{rng.random():.4f}"})
            (labels / game).mkdir(parents=True)
            (labels / game / label_file).write_text(json.dumps({"UrlLocal": game, "annotations": ann}))
            archive.writestr(f"{game}/results_spotting.json", json.dumps({"UrlLocal": game, "predictions": preds}))
    return labels, zip_path


def _official(labels: Path, preds: Path, classes, label_file: str, framerate: int, metric: str, monkeypatch):
    official = pytest.importorskip("SoccerNet.Evaluation.ActionSpotting")
    monkeypatch.setattr(official, "tqdm", lambda x, *a, **k: x)
    return official.evaluate(SoccerNet_path=str(labels), Predictions_path=str(preds), split="test", version=2,
                             framerate=framerate, metric=metric, label_files=label_file, dataset=None,
                             EVENT_DICTIONARY={c: i for i, c in enumerate(classes)})


def test_result_zip_with_unpadded_game_time_half3_and_missing_position(tmp_path, monkeypatch, capsys, caplog):
    classes = ["Goal", "Corner", "Throw-in"]
    labels, preds = _write(tmp_path, np.random.default_rng(4), classes, "Labels-v2.json", (1, 2),
                           half3=True, no_position=True)
    ref = _official(labels, preds, SOCCERNET_V2_CLASSES, "Labels-v2.json", 2, "tight", monkeypatch)
    out = tmp_path / "res.json"
    with caplog.at_level(logging.WARNING):
        assert main(["evaluate", str(labels), str(preds), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SoccerNet metric: tight at 2 fps (defaults from Labels-v2.json" in text
    res = json.loads(out.read_text())
    assert res["mAP"] == pytest.approx(float(ref["a_mAP"]), abs=1e-12)
    assert res["a_mAP_visible"] == pytest.approx(float(ref["a_mAP_visible"]), abs=1e-12)
    assert res["a_mAP_unshown"] == pytest.approx(float(ref["a_mAP_unshown"]), abs=1e-12)
    np.testing.assert_allclose(res["a_mAP_per_class"], ref["a_mAP_per_class"], atol=1e-12)
    assert 0.05 < res["mAP"] < 1
    # the folder/zip evaluator of the library gives the same
    direct = evaluate_soccernet(labels, preds, metric="tight", framerate=2)
    assert direct["a_mAP"] == pytest.approx(float(ref["a_mAP"]), abs=1e-12)
    messages = [r.getMessage() for r in caplog.records]
    # one warning per file and kind: half 3 ignored (labels and predictions), positions from gameTime
    assert any("Labels-v2.json" in m and "in half 3" in m and "ignored, as the official" in m for m in messages)
    assert any("results_spotting.json" in m and "in half 3" in m for m in messages)
    assert any("without position" in m and "placed at the gameTime second" in m for m in messages)
    assert not any("disagrees" in m for m in messages)  # unpadded gameTime agrees with its position


def test_ball_split_lacking_classes_averages_over_all_classes(tmp_path, monkeypatch, capsys):
    present = ["PASS", "DRIVE", "OUT"]  # 9 of the 12 ball classes have no ground truth here
    labels, preds = _write(tmp_path, np.random.default_rng(5), present, "Labels-ball.json", (1,))
    ref = _official(labels, preds, BALL_CLASSES, "Labels-ball.json", 25, "at1", monkeypatch)
    out = tmp_path / "res.json"
    assert main(["evaluate", str(labels), str(preds), "--json", str(out)]) == 0
    assert "SoccerNet metric: at1 at 25 fps (defaults from Labels-ball.json" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["classes"] == list(BALL_CLASSES)
    assert res["mAP"] == pytest.approx(float(ref["a_mAP"]), abs=1e-12)
    assert res["per_class"]["GOAL"] == 0.0 and res["per_class"]["PASS"] > 0
    # --classes naming a class absent from the ground truth is scored (AP 0), not an error
    assert main(["evaluate", str(labels), str(preds), "--classes", *BALL_CLASSES, "--json", str(out)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("--classes:"))
    assert line.startswith("--classes: HEADER, HIGH PASS,") and "DRIVE" not in line and "GOAL" in line
    assert "count with AP 0 in the mean, as the official" in line
    assert json.loads(out.read_text())["mAP"] == pytest.approx(float(ref["a_mAP"]), abs=1e-12)


def test_game_time_disagreeing_with_position_warns_once_per_file(tmp_path, caplog):
    game = tmp_path / GAMES[0]
    game.mkdir(parents=True)
    ann = [{"gameTime": "1 - 00:08", "label": "Goal", "position": "8500"},
           {"gameTime": "1 - 0:8", "label": "Goal", "position": "8500"},  # unpadded: fine
           {"gameTime": "1 - 05:00", "label": "Foul", "position": "8500"},
           {"gameTime": "2 - 00:08", "label": "Foul", "position": "70000"}]
    (game / "Labels-v2.json").write_text(json.dumps({"annotations": ann}))
    with caplog.at_level(logging.WARNING):
        labels = read_labels(tmp_path, "soccernet", probe_videos=False)
    assert [e.extra["position_ms"] for v in labels for e in v.events] == [8500, 8500, 8500, 70000]
    warnings = [r.getMessage() for r in caplog.records if "disagrees" in r.getMessage()]
    assert len(warnings) == 1
    assert "2 events whose gameTime disagrees with half/position" in warnings[0]
    assert "annotation #2 gameTime '1 - 05:00', half 1, position 8500" in warnings[0]


def test_negative_position_is_a_documented_error(tmp_path):
    game = tmp_path / "labels" / GAMES[0]
    game.mkdir(parents=True)
    (game / "Labels-v2.json").write_text(json.dumps({"annotations": [
        {"gameTime": "1 - 00:00", "label": "Goal", "position": "-600"}]}))
    with pytest.raises(LabelFormatError, match=r"annotation #0: position '-600' ms is negative.*official SoccerNet"):
        read_labels(tmp_path / "labels", "soccernet", probe_videos=False)
    pred = tmp_path / "preds" / GAMES[0] / "results_spotting.json"
    pred.parent.mkdir(parents=True)
    pred.write_text(json.dumps({"predictions": [
        {"label": "Goal", "position": -1, "half": 1, "confidence": 0.5}]}))
    with pytest.raises(LabelFormatError, match=r"prediction #0: position -1 ms is negative"):
        read_labels(tmp_path / "preds", "soccernet-results")

"""mAP without the N rarest classes (--classes-drop-rarest): hand-computed cases, ties, SoccerNet, the CLI."""

from __future__ import annotations

import json

import pytest

from e2espot.cli import main
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import ConfigError
from e2espot.eval.metrics import e2e_map
from e2espot.eval.soccernet import soccernet_map
from e2espot.eval.subsets import class_counts, drop_rarest, rarest_classes

CLASSES = ["A", "B", "C"]
GT = {"A": [5, 20, 40, 60], "B": [30], "C": [10, 50]}  # 4, 1 and 2 events
# A: every event found (AP 1); B: missed (AP 0); C: one of two found, ranked first (AP 0.5)
PRED = {"A": [(5, 0.9), (20, 0.8), (40, 0.7), (60, 0.6)], "B": [(80, 0.5)], "C": [(10, 0.95)]}


def _labels(by_class, scored: bool) -> LabelSet:
    events = []
    for label, items in by_class.items():
        for item in items:
            frame, score = item if scored else (item, None)
            events.append(Event(frame, label, score=score))
    events.sort(key=lambda e: e.frame)
    return LabelSet(CLASSES, [VideoLabels("v1", 25.0, 100, events)])


def test_hand_computed_e2e():
    truth, pred = _labels(GT, False), _labels(PRED, True)
    result = e2e_map(truth, pred, tolerances=[0])
    assert result.map_by_tolerance[0] == pytest.approx(0.5)  # (1 + 0 + 0.5) / 3
    one = drop_rarest(result, truth, 1)
    assert one.dropped == ("B",) and one.classes == ("A", "C")
    assert one.mAP == pytest.approx(0.75) and one.detail["mAP@0"] == pytest.approx(0.75)
    two = drop_rarest(result, truth, 2)
    assert two.dropped == ("B", "C") and two.mAP == pytest.approx(1.0)
    assert drop_rarest(result, truth, 0).mAP == pytest.approx(result.mean)


def test_counts_and_ties():
    truth = _labels(GT, False)
    assert class_counts(truth, CLASSES + ["D"]) == {"A": 4, "B": 1, "C": 2, "D": 0}
    assert rarest_classes({"A": 2, "B": 2, "C": 1}, 1) == ["C"]
    with pytest.raises(ConfigError, match="tie: A, B all have 2 ground-truth events"):
        rarest_classes({"A": 2, "B": 2, "C": 1}, 2)
    with pytest.raises(ConfigError, match=r"expected a whole number in 0\.\.2"):
        rarest_classes({"A": 2, "B": 2, "C": 1}, 3)
    with pytest.raises(ConfigError, match="whole number"):
        rarest_classes({"A": 2}, -1)


def test_soccernet_subset_is_the_mean_of_kept_classes():
    truth, pred = _labels(GT, False), _labels(PRED, True)
    full = soccernet_map(truth, pred, CLASSES + ["D"], framerate=25, metric="at1")
    zero = drop_rarest(full, truth, 0)
    # the official a_mAP is the mean of the per-class values: dropping nothing reproduces it
    assert zero.mAP == pytest.approx(full["a_mAP"], abs=1e-12)
    assert zero.detail["a_mAP_visible"] == pytest.approx(full["a_mAP_visible"], abs=1e-12)
    two = drop_rarest(full, truth, 2)
    assert two.dropped == ("D", "B")  # D has no ground truth: it still counts in SoccerNet's mean
    assert two.mAP == pytest.approx((full["per_class"]["A"] + full["per_class"]["C"]) / 2)
    assert two.mAP > full["a_mAP"]


def _write(tmp_path):
    def video(by_class, scored):
        labels = _labels(by_class, scored).videos[0]
        return {"video": labels.video, "fps": labels.fps, "num_frames": labels.num_frames,
                "events": [{"frame": e.frame, "label": e.label, **({"score": e.score} if scored else {})}
                           for e in labels.events]}

    root = tmp_path / "labels"
    root.mkdir()
    (root / "class.txt").write_text("\n".join(CLASSES) + "\n")
    (root / "test.json").write_text(json.dumps([video(GT, False)]))
    pred = tmp_path / "pred-test.json"
    pred.write_text(json.dumps([video(PRED, True)]))
    return root, pred


def test_evaluate_cli_reports_subset_beside_full(tmp_path, capsys):
    root, pred = _write(tmp_path)
    out_json = tmp_path / "res.json"
    rc = main(["evaluate", str(root), str(pred), "--split", "test", "--tolerances", "0",
               "--classes-drop-rarest", "1", "--json", str(out_json)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mAP over 2 classes without the 1 rarest [B (1) GT events]: 75.00 (all 3 classes: 50.00)" in text
    res = json.loads(out_json.read_text())
    assert res["mAP"] == pytest.approx(0.5)
    assert res["drop_rarest"]["mAP"] == pytest.approx(0.75)
    assert res["drop_rarest"]["dropped"] == ["B"] and res["drop_rarest"]["counts"] == {"A": 4, "B": 1, "C": 2}


def test_evaluate_cli_bad_n(tmp_path, capsys):
    root, pred = _write(tmp_path)
    rc = main(["evaluate", str(root), str(pred), "--split", "test", "--classes-drop-rarest", "3"])
    assert rc != 0
    assert "--classes-drop-rarest 3: expected a whole number in 0..2" in capsys.readouterr().err

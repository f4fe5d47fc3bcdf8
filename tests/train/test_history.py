"""One unit for the validation mAP a run logs (percent), and old runs' fractions read back as percent."""

from __future__ import annotations

import json

import pytest

from e2espot.export.plots import plot_training_curves, read_metrics
from e2espot.train.history import history_in_percent, resumed_in_percent, row_in_percent


def test_rows_without_the_marker_are_old_fractions_and_marked_rows_stay():
    old = {"epoch": 3, "train_loss": 0.5, "val_map": 0.468}
    assert row_in_percent(old) == {"epoch": 3, "train_loss": 0.5, "val_map": pytest.approx(46.8), "map_unit": "percent"}
    new = {"epoch": 0, "val_map": 0.8, "map_unit": "percent"}  # an early epoch at 0.8 %: not a fraction
    assert row_in_percent(new) == new
    assert row_in_percent({"epoch": 1, "train_loss": 0.4}) == {"epoch": 1, "train_loss": 0.4, "map_unit": "percent"}
    assert row_in_percent({"epoch": 1, "val_map": None})["val_map"] is None


def test_resume_converts_the_best_score_of_an_old_map_run_only():
    old = [{"epoch": 0, "val_map": 0.25}, {"epoch": 1, "val_map": 0.40}]
    rows, best = resumed_in_percent(old, 0.40, "map")
    assert best == pytest.approx(40.0) and [r["val_map"] for r in rows] == pytest.approx([25.0, 40.0])
    new = history_in_percent(old)
    assert resumed_in_percent(new, 40.0, "map")[1] == 40.0  # already percent: unchanged
    assert resumed_in_percent(old, -1.25, "loss")[1] == -1.25  # minus the val loss, not a mAP
    assert resumed_in_percent([{"epoch": 0, "train_loss": 1.0}], None, "map") == (
        [{"epoch": 0, "train_loss": 1.0, "map_unit": "percent"}], None)


def test_read_metrics_gives_percent_for_old_and_new_logs(tmp_path):
    (tmp_path / "old.csv").write_text("epoch,train_loss,val_loss,val_map\n0,1.2,1.3,0.1\n1,0.8,1.0,\n")
    assert [r["val_map"] for r in read_metrics(tmp_path / "old.csv")] == pytest.approx([10.0, None], nan_ok=True)
    (tmp_path / "new.csv").write_text("epoch,train_loss,val_loss,val_map,lr,clips_per_s,map_unit\n"
                                      "0,1.2,1.3,0.5,0.001,2.0,percent\n")
    assert read_metrics(tmp_path / "new.csv")[0]["val_map"] == 0.5
    (tmp_path / "old.json").write_text(json.dumps([{"epoch": 0, "val_map": 0.2}]))
    assert read_metrics(tmp_path / "old.json")[0]["val_map"] == pytest.approx(20.0)
    (tmp_path / "new.json").write_text(json.dumps([{"epoch": 0, "val_map": 20.0, "map_unit": "percent"}]))
    assert read_metrics(tmp_path / "new.json")[0]["val_map"] == 20.0


def test_curves_of_old_and_new_runs_draw_the_same_percent(tmp_path, monkeypatch):
    drawn = []
    import matplotlib.axes

    real = matplotlib.axes.Axes.annotate
    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", lambda self, text, *a, **k: drawn.append(text)
                        or real(self, text, *a, **k))
    plot_training_curves([{"epoch": 0, "train_loss": 1.0, "val_map": 0.42}], tmp_path / "old.png")
    plot_training_curves([{"epoch": 0, "train_loss": 1.0, "val_map": 42.0, "map_unit": "percent"}],
                         tmp_path / "new.png")
    assert drawn == ["best 42.0 % (epoch 0)", "best 42.0 % (epoch 0)"]

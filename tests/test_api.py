"""The public facade: ``from e2espot import open_video, load_model, predict, evaluate`` (issue 13)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from e2espot.data.labels import Event, LabelSet, VideoLabels


def test_import_stays_light():
    code = ("import sys, e2espot; heavy = [m for m in ('torch', 'numpy', 'av', 'cv2') if m in sys.modules];"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_facade_names_are_the_library_functions():
    import e2espot
    from e2espot.data.video import open_video
    from e2espot.infer.predict import load_run, predict_file

    assert e2espot.open_video is open_video
    assert e2espot.load_model is load_run
    assert e2espot.predict is predict_file
    assert {"open_video", "load_model", "predict", "evaluate"} <= set(dir(e2espot))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        e2espot.nope  # noqa: B018


def test_evaluate_label_sets_and_paths(tmp_path):
    from e2espot import evaluate

    truth = LabelSet(["a", "b"], [VideoLabels("v", 25.0, 100, [Event(10, "a"), Event(50, "b")])])
    pred = LabelSet(["a", "b"], [VideoLabels("v", 25.0, 100, [Event(11, "a", 0.9), Event(70, "b", 0.8)])])
    res = evaluate(truth, pred, tolerances=(0, 1))
    assert res.map_by_tolerance == {0: 0.0, 1: 0.5}
    (tmp_path / "t.json").write_text(json.dumps([{"video": "v", "num_frames": 100, "fps": 25, "events": [
        {"frame": 10, "label": "a"}, {"frame": 50, "label": "b"}]}]))
    from e2espot.data.formats import write_prediction_json

    write_prediction_json(pred, tmp_path / "p.json")
    assert evaluate(tmp_path / "t.json", tmp_path / "p.json", (0, 1)).map_by_tolerance == {0: 0.0, 1: 0.5}

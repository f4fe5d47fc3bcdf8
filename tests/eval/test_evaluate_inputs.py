"""`e2espot evaluate` on the inputs users have: predict's per-video folder, synth's folder, other fps,
a zip of every split's games, spot's NMS rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2espot.cli import main
from e2espot.data.formats import read_labels, write_labels
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.data.synthetic import generate_dataset
from e2espot.eval.metrics import e2e_map, spot_nms


@pytest.fixture(scope="module")
def syn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("syn")
    generate_dataset(root, num_videos=4, seed=3, tiny=True)
    return root


def _noisy(truth: LabelSet, fps: float = 25, scale: int = 1) -> LabelSet:
    """Predictions near every GT event (and a decoy), frames at ``fps`` (``scale`` = fps / label fps)."""
    videos = []
    for v in truth.videos:
        events = []
        for i, e in enumerate(v.events):
            events.append(Event((e.frame + (i % 3) - 1) * scale, e.label, score=0.9 - 0.1 * i))
            events.append(Event(e.frame * scale, e.label, score=0.3))
        events.append(Event(0, truth.classes[0], score=0.95))
        videos.append(VideoLabels(v.video, fps, None if v.num_frames is None else v.num_frames * scale, events))
    return LabelSet(list(truth.classes), videos)


def test_synth_folder_and_a_folder_of_per_video_predictions(syn, tmp_path, capsys):
    truth = read_labels(syn, split="test")
    preds = tmp_path / "preds"
    for v in _noisy(truth).videos:  # what `e2espot predict` writes per video
        write_labels(LabelSet(truth.classes, [v]), preds / f"{v.video}.recall.json", "spot", write_classes=False)
        write_labels(LabelSet(truth.classes, [VideoLabels(v.video, v.fps, v.num_frames, v.events[:1])]),
                     preds / f"{v.video}.json", "spot", write_classes=False)
        (preds / f"{v.video}.csv").write_text("video,frame,time_s,label,score\n")
    out = tmp_path / "r.json"
    assert main(["evaluate", str(syn), str(preds), "--json", str(out)]) == 0  # no extra flags
    text = capsys.readouterr().out
    assert f"predictions: {len(truth)} per-video prediction files in {preds} (high-recall lists, no NMS)" in text
    expected = e2e_map(truth, _noisy(truth))
    assert json.loads(out.read_text())["mAP"] == pytest.approx(expected.mean, abs=1e-12)
    assert json.loads(out.read_text())["units"].startswith("fraction (0..1)")  # the unit is stated
    # predictions of every split: the test split's are scored, the others left out with a note
    for split in ("train", "val"):
        for v in _noisy(read_labels(syn, split=split)).videos:
            write_labels(LabelSet(truth.classes, [v]), preds / f"{v.video}.recall.json", "spot", write_classes=False)
    assert main(["evaluate", str(syn), str(preds), "--json", str(out)]) == 0
    assert "--split test: left out predictions of 3 videos outside the split" in capsys.readouterr().out
    assert json.loads(out.read_text())["mAP"] == pytest.approx(expected.mean, abs=1e-12)
    # spot's NMS rule at W = 1, not greedy NMS
    assert main(["evaluate", str(syn), str(preds), "--nms-window", "1", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["mAP"] == pytest.approx(e2e_map(truth, spot_nms(_noisy(truth), 1)).mean,
                                                               abs=1e-12)


def test_unknown_prediction_folder_names_flags_that_exist(syn, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", str(syn), str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no prediction files" in err and "--preds-format" in err and "--from" not in err
    (tmp_path / "notes.txt").write_text("x")
    assert main(["evaluate", str(tmp_path / "notes.txt"), str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "pass it explicitly (--labels-format)" in err
    with pytest.raises(SystemExit):  # --labels-format is a real flag, whose choices are the format keys
        main(["evaluate", str(syn), str(tmp_path / "empty"), "--labels-format", "nope"])


def test_predictions_at_another_fps_are_retimed(syn, tmp_path, capsys):
    truth = read_labels(syn, split="test")
    write_labels(_noisy(truth, fps=50, scale=2), tmp_path / "p50.json", "spot")
    write_labels(_noisy(truth), tmp_path / "p25.json", "spot")
    out25, out50 = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["evaluate", str(syn), str(tmp_path / "p25.json"), "--json", str(out25)]) == 0
    assert main(["evaluate", str(syn), str(tmp_path / "p50.json"), "--json", str(out50)]) == 0
    assert "re-timed the predictions of 1 video(s) to the labels' fps by time: synth_003: 50 -> 25 fps" in \
        capsys.readouterr().out
    assert json.loads(out50.read_text())["mAP"] == json.loads(out25.read_text())["mAP"] > 0.3
    # predictions without fps against labels with one: an error, never raw frame numbers
    rows = "".join(f"{v.video},{e.frame},,{e.label},{e.score}\n" for v in _noisy(truth, 50, 2) for e in v.events)
    (tmp_path / "p.csv").write_text("video,frame,time_s,label,score\n" + rows)
    assert main(["evaluate", str(syn), str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "the predictions carry no fps" in err and "Pass --fps F" in err
    assert main(["evaluate", str(syn), str(tmp_path / "p.csv"), "--fps", "50", "--json", str(out50)]) == 0
    assert json.loads(out50.read_text())["mAP"] == json.loads(out25.read_text())["mAP"]


def test_split_filters_a_zip_of_every_game(syn, tmp_path, capsys):
    root = syn / "soccernet"
    truth = read_labels(root, "soccernet", probe_videos=False)
    for v in truth:
        for e in v.events:
            e.score = 0.8
    write_labels(truth, tmp_path / "all.zip", "soccernet-results")
    out = tmp_path / "r.json"
    assert main(["evaluate", str(root), str(tmp_path / "all.zip"), "--split", "test", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "--split test: left out predictions of 3 game halves/videos outside the split" in text
    assert "SoccerNet metric: at1 at 25 fps (defaults from Labels-ball.json" in text
    res = json.loads(out.read_text())
    assert res["metric"] == "soccernet-at1" and res["framerate"] == 25 and res["by_tolerance"]["deltas_s"] == [1.0]
    test_games = json.loads((root / "splits.json").read_text())["test"]
    present = {e.label for v in truth for e in v.events if v.extra["game"] in test_games}
    assert present and all(res["per_class"][c] == pytest.approx(1.0) for c in present)

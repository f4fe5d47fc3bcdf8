"""`e2espot render` and `e2espot export` end to end through cli.main."""

import json

import numpy as np
import pytest
from PIL import Image

from e2espot.cli import main
from e2espot.data.labels import Event, VideoLabels
from e2espot.data.video.writer import write_video
from e2espot.export.render import probe_video
from e2espot.export.writers import read_predictions, write_prediction_json


@pytest.fixture()
def files(tmp_path):
    video = write_video(tmp_path / "clip.mp4", np.full((40, 48, 64, 3), 90, np.uint8), 20.0)
    preds = write_prediction_json(
        VideoLabels("clip", 20.0, 40, [Event(5, "goal", 0.9), Event(20, "shot", 0.3), Event(30, "goal", 0.6)]),
        tmp_path / "clip.json")
    truth = write_prediction_json(VideoLabels("clip", 20.0, 40, [Event(5, "goal"), Event(35, "shot")]),
                                  tmp_path / "gt.json")
    return video, preds, truth


def test_commands_registered(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "render" in out and "export" in out and "serve" in out
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--max-upload-mb" in capsys.readouterr().out


def test_render_cli(files, tmp_path):
    video, preds, truth = files
    rc = main(["render", str(video), "--events", str(preds), "-o", str(tmp_path / "out.mp4"), "--labels", str(truth),
               "--slowmo", "0.1", "--slowmo-factor", "2", "--timeline", str(tmp_path / "t.png"),
               "--review", str(tmp_path / "r.html")])
    assert rc == 0
    # slow motion: 0.1 s = 2 frames each side of 3 events -> 3 * 5 frames doubled
    assert probe_video(tmp_path / "out.mp4").num_frames == 40 + 15
    with Image.open(tmp_path / "t.png") as im:
        assert im.format == "PNG"
    html = (tmp_path / "r.html").read_text()
    assert "Missed (1)" in html and "Spurious (2)" in html


def test_render_review_needs_labels(files, tmp_path, capsys):
    video, preds, _ = files
    rc = main(["render", str(video), "--events", str(preds), "-o", str(tmp_path / "o.mp4"),
               "--review", str(tmp_path / "r.html")])
    assert rc == 2 and "--review needs --labels" in capsys.readouterr().err


def test_export_cli(files, tmp_path, capsys):
    video, preds, _ = files
    assert main(["export", str(preds), "--to", "csv", "-o", str(tmp_path / "e.csv"), "--min-score", "0.5"]) == 0
    assert (tmp_path / "e.csv").read_text().splitlines() == [
        "video,frame,time_s,label,score", "clip,5,0.250000,goal,0.9", "clip,30,1.500000,goal,0.6"]
    assert main(["export", str(preds), "--to", "soccernet", "-o", str(tmp_path / "r.json"), "--half", "2"]) == 0
    sn = json.loads((tmp_path / "r.json").read_text())
    assert [(p["half"], p["position"], p["gameTime"]) for p in sn["predictions"]] == [
        (2, 250, "2 - 00:00"), (2, 1000, "2 - 00:01"), (2, 1500, "2 - 00:01")]
    assert main(["export", str(preds), "--to", "chapters", "-o", str(tmp_path / "c.vtt"), "--classes", "goal"]) == 0
    assert "00:00:00.250 --> 00:00:01.500" in (tmp_path / "c.vtt").read_text()
    assert main(["export", str(preds), "--to", "chapters", "-o", str(tmp_path / "c.txt")]) == 0
    assert (tmp_path / "c.txt").read_text().startswith(";FFMETADATA1")
    assert main(["export", str(preds), "--to", "highlights", "-o", str(tmp_path / "h.mp4"), "--video", str(video),
                 "--classes", "goal", "--pad-s", "0.1", "--title-s", "0.1"]) == 0
    # two cuts of 5 frames + two 2-frame title cards
    assert probe_video(tmp_path / "h.mp4").num_frames == 14
    assert main(["export", str(preds), "--to", "highlights", "-o", str(tmp_path / "h2.mp4")]) == 2
    assert "needs --video" in capsys.readouterr().err


def _run_dir(path, thresholds):
    """A run directory's config.json with per-class thresholds chosen on validation (what train writes)."""
    from e2espot.config import DataConfig, ModelConfig, RunConfig

    path.mkdir(parents=True, exist_ok=True)
    post = {"nms": "hard", "nms_window": 1, "thresholds": thresholds, "chosen_on": "val", "f1_tolerance_frames": 2}
    RunConfig(model=ModelConfig(num_classes=2, backbone="test_tiny"), data=DataConfig(height=48), classes=("goal", "shot"),
              train={"postprocess": post}).save(path / "config.json")
    return path


def _chapter_times(path):
    return [line for line in path.read_text().splitlines() if "-->" in line]


def test_chapters_use_the_run_thresholds_by_default_and_say_so(files, tmp_path, capsys):
    """Issue 12: chapters and highlights apply the run's per-class thresholds (from --run, or the run
    directory the events file lies in, as `test` writes pred-<split>.json), printed with their source."""
    video, preds, _ = files  # goal 0.9 @5, shot 0.3 @20, goal 0.6 @30
    capsys.readouterr()
    # no run known: every event of the file, and the line says so
    assert main(["export", str(preds), "--to", "chapters", "-o", str(tmp_path / "all.vtt")]) == 0
    assert len(_chapter_times(tmp_path / "all.vtt")) == 3
    out = capsys.readouterr().out
    assert "score thresholds: no threshold (every event of clip.json is kept" in out and "--run RUN_DIR" in out
    # --run: goal 0.7 drops the goal at 0.6, shot 0.2 keeps the shot at 0.3
    run = _run_dir(tmp_path / "run", {"goal": 0.7, "shot": 0.2})
    assert main(["export", str(preds), "--to", "chapters", "-o", str(tmp_path / "run.vtt"), "--run", str(run)]) == 0
    assert _chapter_times(tmp_path / "run.vtt") == ["00:00:00.250 --> 00:00:01.000", "00:00:01.000 --> 00:00:02.000"]
    out = capsys.readouterr().out
    assert "score thresholds: per-class thresholds goal 0.700, shot 0.200" in out
    assert f"{run / 'config.json'}: best F1 at 2 frames on val" in out and "--min-score S overrides" in out
    # the events file inside a run directory: that run's thresholds without --run
    inside = write_prediction_json(read_predictions(preds), run / "pred-test.json")
    assert main(["export", str(inside), "--to", "chapters", "-o", str(tmp_path / "in.vtt")]) == 0
    assert _chapter_times(tmp_path / "in.vtt") == _chapter_times(tmp_path / "run.vtt")
    assert "the events file's run directory" in capsys.readouterr().out
    # --min-score wins over the run's thresholds, for every class
    assert main(["export", str(inside), "--to", "chapters", "-o", str(tmp_path / "m.vtt"), "--min-score", "0.5"]) == 0
    assert len(_chapter_times(tmp_path / "m.vtt")) == 2
    assert "threshold 0.5 for every class (--min-score, for every class)" in capsys.readouterr().out
    # highlights: the run's goal threshold leaves one goal cut (5 frames) after its 2-frame title card
    assert main(["export", str(preds), "--to", "highlights", "-o", str(tmp_path / "h.mp4"), "--video", str(video),
                 "--classes", "goal", "--pad-s", "0.1", "--title-s", "0.1", "--run", str(run)]) == 0
    assert probe_video(tmp_path / "h.mp4").num_frames == 7


def test_export_run_errors_name_the_fix(files, tmp_path, capsys):
    _, preds, _ = files
    assert main(["export", str(preds), "--to", "csv", "-o", str(tmp_path / "e.csv"), "--run", str(tmp_path)]) == 2
    assert "--run applies to --to chapters and highlights" in capsys.readouterr().err
    assert main(["export", str(preds), "--to", "chapters", "-o", str(tmp_path / "c.vtt"),
                 "--run", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "no config.json there" in err and "nothing" in err

"""`e2espot test` prints Team-mAP@1 when the labels have teams and the predictions carry them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from e2espot.cli import main
from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.infer import split as split_mod

CLASSES = ("PASS", "SHOT")
FPS = 25.0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    from e2espot.data.video.writer import write_video
    from e2espot.models import create_spotter

    root = tmp_path_factory.mktemp("team")
    rng = np.random.default_rng(0)
    write_video(root / "videos" / "v1.mp4", rng.integers(0, 255, (40, 32, 48, 3), dtype=np.uint8), fps=FPS)
    labels = root / "labels"
    labels.mkdir()
    (labels / "class.txt").write_text("\n".join(CLASSES))
    events = [{"frame": 10, "label": "PASS", "team": "left"}, {"frame": 30, "label": "SHOT", "team": "right"}]
    entry = {"video": "v1", "num_frames": 40, "fps": FPS, "events": events}
    (labels / "test.json").write_text(json.dumps([entry]))
    cfg = RunConfig(
        model=ModelConfig(num_classes=2, backbone="test_tiny", temporal_module="gsm", head="gru", clip_len=8),
        data=DataConfig(fps=None, height=32, clip_len=8), classes=CLASSES,
        dataset={"labels": str(labels), "videos": str(root / "videos"), "format": "spot"},
    )
    run = root / "run"
    run.mkdir()
    cfg.save(run / "config.json")
    torch.manual_seed(0)
    torch.save({"model": create_spotter(cfg.model).state_dict(), "config": cfg.to_dict(), "epoch": 1},
               run / "best.pt")
    return {"run": run, "labels": labels}


def test_cli_test_prints_team_map_when_predictions_carry_team(workspace, monkeypatch, capsys):
    original = split_mod.scores_to_video_labels

    def with_team(*args, **kwargs):  # stands in for a model with a team head: every event says "left"
        video = original(*args, **kwargs)
        for e in video.events:
            e.team, e.extra["team_score"] = "left", 0.75
        return video

    monkeypatch.setattr(split_mod, "scores_to_video_labels", with_team)
    assert main(["test", str(workspace["run"]), "-s", "test", "--device", "cpu", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "Team-mAP@1 of the ranked list" in out
    # SHOT has only right GT and every prediction says left: its team-AP is 0, so Team-mAP@1 <= PASS / 2
    line = next(x for x in out.splitlines() if x.startswith("Team-mAP@1: "))
    team_value = float(line.split()[1])
    shot = next(x for x in out.splitlines() if x.startswith("SHOT "))
    assert float(shot.split()[1]) == 0.0 and team_value <= 50.0
    prefix = "team accuracy on spotted events (±4 frames)"
    accuracy = next(x for x in out.splitlines() if x.startswith(prefix))
    correct, total = (int(n) for n in accuracy.split("(")[2].split()[0].split("/"))
    # of the ranked list (the run's NMS over every score >= 0.01): every prediction says left, so the
    # matched PASS (left) is right and the matched SHOT (right) is wrong
    assert total >= 1 and 0 <= correct < total
    pred = json.loads((workspace["run"] / "pred-test.json").read_text())  # thresholded: teams when any
    assert all(e["team"] == "left" and e["team_score"] == 0.75 for v in pred for e in v["events"])


def test_cli_test_says_why_without_predicted_teams(workspace, capsys):
    assert main(["test", str(workspace["run"]), "-s", "test", "--device", "cpu", "--precision", "fp32"]) == 0
    assert "Team-mAP@1: the ground truth has teams but the predictions carry none" in capsys.readouterr().out


def test_team_scores_helper():
    truth = LabelSet(list(CLASSES), [VideoLabels("v", FPS, 50, [Event(10, "PASS", team="left"),
                                                                 Event(20, "SHOT", team="not applicable")])])
    pred = LabelSet(list(CLASSES), [VideoLabels("v", FPS, 50, [Event(10, "PASS", score=0.9, team="left")])])
    result, note = split_mod.team_scores(truth, pred, list(CLASSES))
    assert note is None and result.per_class["PASS"] == 1.0 and result.num_without_team["truth"] == 1
    assert split_mod.team_scores(LabelSet(list(CLASSES), [VideoLabels("v", FPS, 50, [])]), pred,
                                 list(CLASSES)) == (None, None)
    home = LabelSet(list(CLASSES), [VideoLabels("v", FPS, 50, [Event(10, "PASS", team="left"),
                                                                Event(12, "PASS", team="home")])])
    result, note = split_mod.team_scores(home, pred, list(CLASSES))
    assert result is None and "team 'home'" in note

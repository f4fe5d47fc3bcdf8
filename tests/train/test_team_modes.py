"""Team-BAS training modes: joint labels, flip map, action scores, and tiny trainings of both heads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.data.sources import read_split
from e2espot.data.synthetic import generate_dataset
from e2espot.errors import ConfigError, LabelFormatError
from e2espot.eval.team import split_joint_labels
from e2espot.train.loop import TrainOptions, train
from e2espot.train.team import action_scores, flip_class_map, join_team_labels, joint_classes, team_mode


def _labels() -> LabelSet:
    events = [Event(3, "PASS", team="left"), Event(5, "SHOT", team="right"), Event(9, "PASS", team="right")]
    return LabelSet(["PASS", "SHOT"], [VideoLabels("v", 25.0, 20, events)])


def test_joint_classes_and_labels_round_trip_through_split_joint_labels():
    assert joint_classes(["PASS", "SHOT"]) == ["PASS-left", "PASS-right", "SHOT-left", "SHOT-right"]
    joint = join_team_labels(_labels())
    assert list(joint.classes) == ["PASS-left", "PASS-right", "SHOT-left", "SHOT-right"]
    assert [(e.frame, e.label) for e in joint.videos[0].events] == [(3, "PASS-left"), (5, "SHOT-right"),
                                                                    (9, "PASS-right")]
    back = split_joint_labels(joint, actions=["PASS", "SHOT"])
    assert [(e.frame, e.label, e.team) for e in back.videos[0].events] == [
        (e.frame, e.label, e.team) for e in _labels().videos[0].events]
    assert _labels().videos[0].events[0].label == "PASS"  # the input is not changed


def test_joint_labels_need_a_team_on_every_event():
    labels = _labels()
    labels.videos[0].events[1].team = "not applicable"
    with pytest.raises(LabelFormatError, match=r"video 'v', event #1 \(SHOT at frame 5\) has team 'not applicable'"):
        join_team_labels(labels)


def test_flip_class_map_and_action_scores():
    assert flip_class_map(3) == [0, 2, 1, 4, 3, 6, 5]
    with pytest.raises(ConfigError, match="num_actions 0"):
        flip_class_map(0)
    scores = np.array([[0.5, 0.1, 0.2, 0.15, 0.05]])
    np.testing.assert_allclose(action_scores(scores), [[0.5, 0.3, 0.2]])
    with pytest.raises(ConfigError, match=r"\(num_frames, 1 \+ 2K\)"):
        action_scores(np.zeros((2, 4)))


def test_team_mode_of_a_run_config():
    model = ModelConfig(num_classes=2, backbone="test_tiny")
    cfg = RunConfig(model=model, data=DataConfig(), classes=("a", "b"))
    assert team_mode(cfg) is None
    assert team_mode(RunConfig(model=ModelConfig(num_classes=2, backbone="test_tiny", team_head=True),
                               data=DataConfig(), classes=("a", "b"))) == "head"
    assert team_mode(RunConfig(model=ModelConfig(num_classes=4, backbone="test_tiny"), data=DataConfig(),
                               classes=("a", "b"), train={"team_joint": True})) == "joint"


# --- tiny trainings -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tinyteam")
    generate_dataset(root, num_videos=4, seed=3, tiny=True, soccernet=False)
    return root


def _setup(root: Path, joint: bool):
    tr, va = read_split(root, "train"), read_split(root, "val")
    va = LabelSet(list(va.classes), va.videos[:1])  # one short validation video: a fast test
    classes = tuple(tr.classes)
    model = ModelConfig(num_classes=len(classes) * (2 if joint else 1), backbone="test_tiny",
                        temporal_module="tsm", head="gru", clip_len=16, team_head=not joint)
    run_cfg = RunConfig(model=model, data=DataConfig(height=48, clip_len=16, crop=32), classes=classes,
                        dataset={"videos": str(root / "videos")})
    opts = TrainOptions(num_epochs=1, epoch_clips=2, batch_size=2, warmup_epochs=0, num_workers=0, device="cpu",
                        precision="fp32", start_val_epoch=0, seed=5, fg_upsample=1.0, team_joint=joint)
    return run_cfg, tr, va, opts


@pytest.mark.parametrize("joint", [False, True])
def test_tiny_team_training_records_config_and_predicts_teams(tiny_data, tmp_path, joint):
    from e2espot.infer.predict import load_run, predict_file, score_columns

    run_cfg, tr, va, opts = _setup(tiny_data, joint)
    train(run_cfg, tr, va, tmp_path / "run", opts)
    saved = RunConfig.load(tmp_path / "run" / "config.json")
    assert saved.model.team_head is (not joint) and saved.train.get("team_joint", False) is joint
    assert tuple(saved.classes) == tuple(tr.classes) and saved.model.num_classes == len(tr.classes) * (2 if joint else 1)
    assert sorted(saved.postprocess.thresholds) == sorted(tr.classes)  # per action
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert rows[0]["val_loss"] > 0 and 0.0 <= rows[0]["val_map"] <= 100.0
    model, cfg = load_run(tmp_path / "run")
    assert team_mode(cfg) == ("joint" if joint else "head")
    video = tiny_data / "videos" / f"{va.videos[0].video}.mp4"
    files = predict_file(video, (model, cfg), tmp_path / "out", threshold=0.0)
    with np.load(files.scores_npz) as npz:
        assert list(npz["classes"]) == score_columns(cfg) == joint_classes(list(tr.classes))
        assert npz["scores"].shape[1] == 1 + 2 * len(tr.classes)
        np.testing.assert_allclose(npz["scores"].sum(1), 1.0, atol=1e-5)  # softmax mass, split by team
    events = json.loads(files.recall_json.read_text())[0]["events"]
    assert events and {e["team"] for e in events} <= {"left", "right"}
    assert {e["label"] for e in events} <= set(tr.classes)


def test_team_head_and_joint_together_are_refused(tiny_data, tmp_path):
    run_cfg, tr, va, opts = _setup(tiny_data, joint=True)
    from dataclasses import replace

    run_cfg = replace(run_cfg, model=replace(run_cfg.model, team_head=True))
    with pytest.raises(ConfigError, match="--team-head and --team-joint are two ways"):
        train(run_cfg, tr, va, tmp_path / "run", opts)
    run_cfg, tr, va, opts = _setup(tiny_data, joint=True)
    run_cfg = replace(run_cfg, model=replace(run_cfg.model, num_classes=len(tr.classes)))
    with pytest.raises(ConfigError, match=rf"a joint head over {len(tr.classes)} actions x left/right needs"):
        train(run_cfg, tr, va, tmp_path / "run2", opts)


def test_train_cli_team_flags(tiny_data, tmp_path, capsys):
    from e2espot.cli import main

    args = ["train", str(tiny_data), str(tiny_data / "videos"), "-s", str(tmp_path / "run"), "-m", "test_tiny_tsm",
            "-t", "fc", "--clip-len", "16", "--height", "48", "--epoch-clips", "2", "--batch-size", "2", "-j", "0",
            "--device", "cpu", "--precision", "fp32", "--no-mixup", "--warmup-epochs", "0", "--num-epochs", "1"]
    assert main([*args, "--team-head", "--team-joint"]) == 2
    assert "--team-head and --team-joint are two ways" in capsys.readouterr().err
    assert main([*args, "--team-joint", "--start-val-epoch", "5"]) == 0
    cfg = RunConfig.load(tmp_path / "run" / "config.json")
    assert cfg.train["team_joint"] is True and cfg.model.num_classes == 2 * len(cfg.classes)
    assert not cfg.model.team_head

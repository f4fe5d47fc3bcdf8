"""Our own team models through the default ("aligned") windowing: team head split and joint head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.video import open_video
from e2espot.errors import ConfigError
from e2espot.infer.predict import predict_file, predict_scores, scores_to_video_labels, window_starts
from e2espot.models import create_spotter

CLASSES = ("pass", "shot")


def _frames(tmp_path, num=21):
    folder = tmp_path / "game"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(num):
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(folder / f"frame{i}.jpg")
    (folder / "fps.txt").write_text("25\n")
    return folder


def _cfg(mode: str, displacement: bool = False) -> RunConfig:
    model = ModelConfig(num_classes=len(CLASSES) * (2 if mode == "joint" else 1), backbone="test_tiny",
                        temporal_module=None, head="gru", clip_len=8, team_head=mode == "head",
                        displacement=displacement)
    return RunConfig(model=model, data=DataConfig(fps=None, height=32, clip_len=8), classes=CLASSES,
                     train={"team_joint": mode == "joint"})


def _model(cfg: RunConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_spotter(cfg.model).eval()
    if cfg.model.team_head:
        with torch.no_grad():
            model.team_head[1].weight.mul_(20)  # sigmoids far from 0.5: a wrong split would show
    return model


def _reference(model, frames: np.ndarray, clip_len: int, overlap: int, mode: str) -> np.ndarray:
    """Aligned windows, each window's softmax (displacement-decoded) split by sigmoid(team) per row, averaged."""
    from e2espot.infer.predict import decode_displacement

    n = len(frames)
    total, count = np.zeros((n, 1 + 2 * len(CLASSES))), np.zeros(n)
    for s in window_starts(n, clip_len, overlap):
        x = torch.from_numpy(frames[s:s + clip_len]).permute(0, 3, 1, 2).float()[None] / 255
        with torch.no_grad():
            out = model(x)
        p = torch.softmax(out.logits.float(), -1)
        if out.displacement is not None:
            p = decode_displacement(p, out.displacement)
        p = p[0].double().numpy()  # (T, C)
        if mode == "head":
            sig = torch.sigmoid(out.team[0]).double().numpy()[:, None]  # (T, 1)
            p = np.concatenate([p[:, :1], np.stack([(1 - sig) * p[:, 1:], sig * p[:, 1:]], -1).reshape(len(p), -1)], 1)
        total[s:s + clip_len] += p
        count[s:s + clip_len] += 1
    return total / count[:, None]


@pytest.mark.parametrize(("mode", "displacement"), [("head", False), ("head", True), ("joint", False)])
def test_aligned_team_scores_equal_the_hand_split(tmp_path, mode, displacement):
    cfg = _cfg(mode, displacement)
    model = _model(cfg)
    with open_video(_frames(tmp_path), height=32) as reader:
        frames = reader.read_clip(0, reader.num_frames)
        scores = predict_scores(model, reader, cfg, overlap=4, batch_size=2, chunk_len=4, precision="fp32")
    assert scores.shape == (21, 5)
    np.testing.assert_allclose(scores, _reference(model, frames, 8, 4, mode), atol=1e-5)
    np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)
    if mode == "head":  # the team head's share, not a copy: left and right differ
        assert np.abs(scores[:, 1::2] - scores[:, 2::2]).max() > 0.01


@pytest.mark.parametrize("mode", ["head", "joint"])
def test_predict_file_gives_events_with_teams(tmp_path, mode):
    cfg = _cfg(mode)
    files = predict_file(_frames(tmp_path), (_model(cfg), cfg), tmp_path / "out", threshold=0.0, nms="hard",
                         precision="fp32")
    with np.load(files.scores_npz) as npz:
        assert list(npz["classes"]) == ["pass-left", "pass-right", "shot-left", "shot-right"]
    recall = json.loads(files.recall_json.read_text())[0]["events"]
    assert len(recall) == 21 * 4  # every (frame, class, team) >= 0.01, no NMS
    events = files.video_labels.events
    assert events and {e.team for e in events} <= {"left", "right"} and {e.label for e in events} <= set(CLASSES)
    # hard NMS groups left and right of an action: one event per (frame, action) at most
    assert len({(e.frame, e.label) for e in events}) == len(events)


def test_team_model_per_class_thresholds_filter_events():
    cfg = _cfg("head")
    scores = np.zeros((6, 5), np.float32)
    scores[:, 0] = 0.2
    scores[1] = [0.2, 0.5, 0.3, 0.0, 0.0]  # pass left 0.5
    scores[4] = [0.2, 0.0, 0.0, 0.1, 0.7]  # shot right 0.7
    labels = scores_to_video_labels(scores, cfg, "v", 25.0, threshold=0.5, nms="hard", nms_window=1,
                                    thresholds={"pass": 0.6, "shot": 0.2})
    assert [(e.frame, e.label, e.team, round(e.score, 3)) for e in labels.events] == [(4, "shot", "right", 0.7)]
    labels = scores_to_video_labels(scores, cfg, "v", 25.0, threshold=0.05, nms="hard", nms_window=1)
    assert [(e.frame, e.label, e.team) for e in labels.events] == [(1, "pass", "left"), (4, "shot", "right")]


def test_joint_model_of_the_wrong_width_is_a_config_error(tmp_path):
    cfg = _cfg("joint")
    wrong = _cfg("head")  # K+1 logits where the joint config expects 2K+1
    model = create_spotter(wrong.model).eval()
    match = r"x 5 classes \(K=2 x 2 teams \(joint head\) \+ background\)"
    with open_video(_frames(tmp_path, 9), height=32) as reader, pytest.raises(ConfigError, match=match):
        predict_scores(model, reader, cfg)

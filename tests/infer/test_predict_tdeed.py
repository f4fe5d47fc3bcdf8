"""T-DEED windowing (DataConfig.windowing="tdeed") and Team-BAS outputs through predict_file, on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.video import open_video
from e2espot.errors import ConfigError
from e2espot.infer.predict import predict_file, predict_scores, tdeed_window_starts
from e2espot.models import create_spotter

CLASSES = ("pass", "shot")


def _frames(tmp_path, num_raw=30):
    folder = tmp_path / "game"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(num_raw):
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(folder / f"frame{i}.jpg")
    (folder / "fps.txt").write_text("25\n")
    return folder


def _cfg(team: bool, windowing: str = "tdeed") -> RunConfig:
    model = ModelConfig(num_classes=2, backbone="test_tiny", temporal_module=None, head="edsgp", clip_len=8,
                        displacement=True, team_head=team, head_kwargs={"num_layers": 1, "kernel_size": 3, "r": 2})
    data = DataConfig(fps=12.5, height=32, clip_len=8, windowing=windowing)
    return RunConfig(model=model, data=data, classes=CLASSES, train={"postprocess": {"nms": "soft", "nms_window": 12}})


def _model(cfg: RunConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_spotter(cfg.model).eval()
    with torch.no_grad():
        model.displacement_head[1].weight.mul_(30)  # displacements of several frames: rows get skipped
    return model


def _reference_loop(model, frames: np.ndarray, clip_len: int, overlap: int, team: bool) -> np.ndarray:
    """T-DEED util/eval.py:evaluate + process_double_head (+ process_predictionTeam), written as loops."""
    n = len(frames)
    width = 1 + len(CLASSES) * (2 if team else 1)
    scores, support = np.zeros((n, width), np.float32), np.zeros(n, np.int32)
    for start in range(-5, max(0, n - overlap), clip_len - overlap):
        clip = np.zeros((clip_len, *frames.shape[1:]), np.uint8)
        for r in range(clip_len):
            if 0 <= start + r < n:
                clip[r] = frames[start + r]
        x = torch.from_numpy(clip).permute(0, 3, 1, 2).float()[None] / 255
        with torch.no_grad():
            out = model(x)
        p = torch.softmax(out.logits, 2)
        agg = torch.zeros_like(p)
        for t in range(clip_len):
            j = max(0, min(clip_len - 1, t - int(out.displacement[0, t].round())))
            agg[0, j] = torch.maximum(agg[0, j], p[0, t])
        if team:
            s = torch.sigmoid(out.team).unsqueeze(-1)
            o = torch.zeros(1, clip_len, width)
            o[..., 0] = agg[..., 0]
            o[..., 1::2] = (1 - s) * agg[..., 1:]
            o[..., 2::2] = s * agg[..., 1:]
            agg = o
        pred = agg[0].numpy()
        lo, hi = max(0, -start), min(clip_len, n - start)
        scores[start + lo:start + hi] += pred[lo:hi]
        support[start + lo:start + hi] += pred[lo:hi].sum(axis=1) != 0
    support[support == 0] = 1
    return scores / support[:, None]


@pytest.mark.parametrize("team", [False, True])
def test_tdeed_windowing_equals_reference_loop(tmp_path, team):
    cfg = _cfg(team)
    model = _model(cfg)
    stats = {}
    with open_video(_frames(tmp_path), fps=12.5, height=32) as reader:
        frames = reader.read_clip(0, reader.num_frames)
        scores = predict_scores(model, reader, cfg, precision="fp32", batch_size=3, chunk_len=4, stats=stats)
    assert scores.shape == (15, 5 if team else 3)
    assert stats["num_windows"] == len(tdeed_window_starts(15, 8, 6)) == 7  # starts -5, -3, ..., 7
    expected = _reference_loop(model, frames, 8, 6, team)
    np.testing.assert_allclose(scores, expected, atol=1e-6, rtol=1e-5)
    assert (scores.sum(1) == 0).sum() == (expected.sum(1) == 0).sum()


def test_predict_file_writes_team_events_and_columns(tmp_path):
    cfg = _cfg(team=True)
    files = predict_file(_frames(tmp_path), (_model(cfg), cfg), tmp_path / "out", precision="fp32", threshold=0.01)
    with np.load(files.scores_npz) as npz:
        assert list(npz["classes"]) == ["pass-left", "pass-right", "shot-left", "shot-right"]
        assert npz["scores"].shape == (15, 5)
    events = json.loads(files.recall_json.read_text())[0]["events"]
    assert events and {e["team"] for e in events} <= {"left", "right"}
    assert len(files.video_labels.events) <= len(events)  # soft-NMS over left and right together


def test_unknown_windowing(tmp_path):
    cfg = _cfg(team=False, windowing="spot-ish")
    with open_video(_frames(tmp_path, 10), fps=12.5, height=32) as reader:
        with pytest.raises(ConfigError, match="data.windowing 'spot-ish' is unknown"):
            predict_scores(_model(cfg), reader, cfg)

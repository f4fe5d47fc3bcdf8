"""Per-frame feature caching across overlapping windows (backbones without a temporal module): the same
scores as running every window through the whole model, with each frame through the backbone once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.errors import ConfigError
from e2espot.infer.predict import predict_scores
from e2espot.models import create_spotter

CLASSES = ("a", "b")


class RandomReader:
    """Random 24x32 frames, streamed in chunks as the real readers do."""

    def __init__(self, num_frames: int, seed: int = 0) -> None:
        self.num_frames = num_frames
        self.frames = np.random.default_rng(seed).integers(0, 256, (num_frames, 24, 32, 3), dtype=np.uint8)
        self.fps = 25.0
        self.path = "random.mp4"

    def iter_chunks(self, chunk_len: int, start: int = 0, stop: int | None = None):
        for s in range(start, self.num_frames if stop is None else stop, chunk_len):
            yield s, self.frames[s : s + chunk_len].copy()


def spotter_and_cfg(module: str | None, head: str = "gru", clip_len: int = 16):
    model_cfg = ModelConfig(num_classes=len(CLASSES), backbone="test_tiny", temporal_module=module, head=head,
                            clip_len=clip_len, displacement=True)
    cfg = RunConfig(model=model_cfg, data=DataConfig(height=24, clip_len=clip_len), classes=CLASSES)
    torch.manual_seed(0)
    return create_spotter(model_cfg).eval(), cfg


def test_frame_features_then_head_equals_forward():
    model, _ = spotter_and_cfg(None)
    x = torch.rand(2, 16, 3, 24, 32)
    with torch.inference_mode():
        whole = model(x)
        feats = model.frame_features(x.reshape(32, 3, 24, 32)).reshape(2, 16, -1)  # (B, T, D)
        split = model.forward_head(feats)
    torch.testing.assert_close(split.logits, whole.logits, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(split.displacement, whole.displacement, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("num_frames,overlap,batch_size", [(100, 8, 4), (61, 12, 3), (10, 8, 2), (16, 0, 1)])
def test_cached_scores_equal_uncached_and_each_frame_runs_once(num_frames, overlap, batch_size):
    model, cfg = spotter_and_cfg(None)
    stats_on: dict[str, int] = {}
    stats_off: dict[str, int] = {}
    common = dict(overlap=overlap, batch_size=batch_size, precision="fp32", chunk_len=8)
    on = predict_scores(model, RandomReader(num_frames), cfg, feature_cache=True, stats=stats_on, **common)
    off = predict_scores(model, RandomReader(num_frames), cfg, feature_cache=False, stats=stats_off, **common)
    np.testing.assert_allclose(on, off, atol=1e-6)
    assert "backbone_frames" not in stats_off
    # every real frame once (+ the black padding frame for a video shorter than a window; + at most one
    # window's frames recomputed for the end-aligned last window)
    padding = 1 if num_frames < cfg.data.clip_len else 0
    assert num_frames + padding <= stats_on["backbone_frames"] <= num_frames + padding + cfg.data.clip_len
    if overlap and stats_on["num_windows"] > 1:
        windows_frames = stats_on["num_windows"] * min(num_frames, cfg.data.clip_len)
        assert stats_on["backbone_frames"] < windows_frames  # the point: less backbone work


def test_cache_is_the_default_only_without_temporal_modules():
    reader_frames = 40
    model, cfg = spotter_and_cfg(None)
    stats: dict[str, int] = {}
    predict_scores(model, RandomReader(reader_frames), cfg, precision="fp32", stats=stats)
    assert stats["backbone_frames"] == reader_frames  # on by default
    model, cfg = spotter_and_cfg("gsm")
    stats = {}
    predict_scores(model, RandomReader(reader_frames), cfg, precision="fp32", stats=stats)
    assert "backbone_frames" not in stats  # a temporal module mixes frames: whole windows
    with pytest.raises(ConfigError, match="feature_cache needs a PyTorch Spotter without temporal modules"):
        predict_scores(model, RandomReader(reader_frames), cfg, feature_cache=True)
    with pytest.raises(ConfigError, match="per-frame features are not defined"):
        model.frame_features(torch.rand(2, 3, 24, 32))


def test_clip_backbones_are_never_cached():
    """X3D mixes neighbouring frames in its 3D convolutions: no per-frame features."""
    model_cfg = ModelConfig(num_classes=2, backbone="x3d_xs", temporal_module=None, head="fc", clip_len=8)
    assert not create_spotter(model_cfg).has_frame_features

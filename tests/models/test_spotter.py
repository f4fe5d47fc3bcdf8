"""The Spotter: every temporal module × head on test_tiny, parameter counts, summary, input checks."""

import time

import pytest
import torch

from e2espot.config import ModelConfig
from e2espot.errors import ConfigError
from e2espot.models import SpotterOutput, create_spotter, list_heads, list_temporal_modules


def _clip(b: int = 2, t: int = 8) -> torch.Tensor:
    return torch.rand(b, t, 3, 32, 32)  # (B, T, 3, H, W) in [0, 1]


FAST_COMBOS = [(m, "gru") for m in [None, *list_temporal_modules()]] + [
    ("gsm", h) for h in list_heads() if h != "gru"]
ALL_COMBOS = [(m, h) for m in [None, *list_temporal_modules()] for h in list_heads()]


@pytest.mark.parametrize(("module", "head"), FAST_COMBOS)
def test_every_module_and_head_forward_backward(module, head):
    _check_combo(module, head)


@pytest.mark.slow
@pytest.mark.parametrize(("module", "head"), [c for c in ALL_COMBOS if c not in FAST_COMBOS])
def test_all_module_head_pairs(module, head):
    _check_combo(module, head)


def _check_combo(module, head):
    torch.manual_seed(0)
    cfg = ModelConfig(num_classes=3, backbone="test_tiny", temporal_module=module, head=head, clip_len=8,
                      displacement=True)
    model = create_spotter(cfg)
    out = model(_clip())
    assert isinstance(out, SpotterOutput)
    assert out.logits.shape == (2, 8, 4)
    assert out.displacement.shape == (2, 8)
    assert out.features.shape == (2, 8, 64)
    assert out.stage_logits[-1] is out.logits
    (out.logits.logsumexp(-1).mean() + out.displacement.square().mean()).backward()
    stem = model.backbone.model.stem[0].weight
    assert stem.grad is not None and stem.grad.abs().sum() > 0


def test_no_displacement_head_by_default_and_other_clip_lengths():
    model = create_spotter(ModelConfig(num_classes=2, backbone="test_tiny", temporal_module="gsm", clip_len=8))
    assert model.displacement_head is None
    for t in (1, 3, 12):  # any T works for the shift modules and the GRU
        out = model(_clip(1, t))
        assert out.logits.shape == (1, t, 3) and out.displacement is None


def test_normalisation_inside():
    model = create_spotter(ModelConfig(num_classes=2, backbone="test_tiny", temporal_module=None, head="fc")).eval()
    seen = {}
    model.backbone.model.stem.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    x = torch.full((1, 2, 3, 8, 8), 0.485)
    model(x)
    assert torch.allclose(seen["x"][:, 0], torch.zeros(2, 8, 8), atol=1e-6)  # (0.485 - mean) / std = 0 for R


def test_channels_last_matches():
    torch.manual_seed(0)
    model = create_spotter(ModelConfig(num_classes=2, backbone="test_tiny", temporal_module="gsm", clip_len=4)).eval()
    x = _clip(1, 4)
    with torch.no_grad():
        ref = model(x).logits
        model = model.to(memory_format=torch.channels_last)
        out = model(x).logits
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_input_checks():
    model = create_spotter(ModelConfig(num_classes=2, backbone="test_tiny", temporal_module=None, head="fc"))
    with pytest.raises(ConfigError, match=r"\(B, T, 3, H, W\)"):
        model(torch.rand(2, 3, 32, 32))
    with pytest.raises(ConfigError, match="uint8"):
        model(torch.zeros(1, 2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="num_classes"):
        create_spotter(ModelConfig(num_classes=0, backbone="test_tiny"))


def test_summary_and_counts():
    model = create_spotter(ModelConfig(num_classes=3, backbone="test_tiny", temporal_module="gsm", head="gru",
                                       displacement=True))
    text = model.summary()
    for word in ("backbone test_tiny", "temporal module gsm", "head gru", "displacement head", "total"):
        assert word in text
    assert f"{model.num_parameters():,}" in text
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    assert model.feature_dim == 64


def test_config_round_trip_rebuilds_same_model():
    cfg = ModelConfig(num_classes=3, backbone="test_tiny", temporal_module="astrm", temporal_stages=(2,),
                      head="mstcn", clip_len=8)
    a = create_spotter(cfg)
    b = create_spotter(ModelConfig.from_dict(cfg.to_dict()))
    b.load_state_dict(a.state_dict())
    assert a.num_parameters() == b.num_parameters()


@pytest.mark.parametrize(("backbone", "expected"), [("rny002", 4.46e6), ("rny008", 12.63e6)])
def test_published_parameter_counts(backbone, expected):
    t0 = time.perf_counter()
    model = create_spotter(ModelConfig(num_classes=12, backbone=backbone, temporal_module="gsm", head="gru"))
    n = model.num_parameters()
    assert n == pytest.approx(expected, rel=0.02)
    temporal = sum(p.numel() for m in model.backbone.temporal_modules() for p in m.parameters())
    cnn = sum(p.numel() for p in model.backbone.parameters())
    assert cnn == pytest.approx({"rny002": 2.82e6, "rny008": 5.52e6}[backbone], rel=0.01)
    assert 0 < temporal < 0.05e6
    assert time.perf_counter() - t0 < 60

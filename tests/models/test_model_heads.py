"""Every head: (B, T, D) → (B, T, K+1), stages, hidden width, and the published parameter counts."""

import pytest
import torch

from e2espot.errors import ConfigError
from e2espot.models import create_head, list_heads

D, K1 = 32, 5  # feature width, K + 1


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", list_heads())
@pytest.mark.parametrize("num_frames", [8, 5])
def test_head_contract_forward_backward(name, num_frames):
    torch.manual_seed(0)
    head = create_head(name, D, K1, clip_len=8)
    x = torch.randn(2, num_frames, D, requires_grad=True)
    stages, hidden = head.forward_stages(x)
    assert len(stages) == head.num_stages
    for logits in stages:
        assert logits.shape == (2, num_frames, K1)
    assert hidden.shape == (2, num_frames, head.num_features)
    sum(s.sum() for s in stages).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    head.eval()
    with torch.no_grad():
        assert torch.equal(head(x), head.forward_stages(x)[0][-1])


def test_stage_counts():
    assert create_head("mstcn", D, K1).num_stages == 3
    assert create_head("asformer", D, K1).num_stages == 4  # encoder + 3 decoders
    assert create_head("gru", D, K1).num_stages == 1


def test_rnn_hidden_clamped_to_768():
    assert create_head("gru", 2048, K1).num_features == 2 * 768
    assert create_head("lstm", 368, K1).num_features == 2 * 368


@pytest.mark.parametrize(("name", "dim", "expected"), [
    # anchors §A2 (E2E-Spot, K = 12): gru / deeper_gru / mstcn / asformer
    ("gru", 368, 1.64e6), ("deeper_gru", 368, 6.52e6), ("mstcn", 368, 4.05e6), ("asformer", 368, 0.53e6),
    ("gru", 768, 7.11e6), ("deeper_gru", 768, 28.36e6), ("mstcn", 768, 4.15e6), ("asformer", 768, 0.55e6),
])
def test_head_parameter_counts_match_e2e_spot(name, dim, expected):
    assert _count(create_head(name, dim, 13)) == pytest.approx(expected, rel=0.01)


def test_edsgp_parameter_count_matches_tdeed():
    # anchors §B2: FineDiving_small = rny002_gsf (2.82 M) + 9.4 M temporal (n_layers 2, ks 9, r 4)
    head = create_head("edsgp", 368, 5, clip_len=100, num_layers=2, kernel_size=9, r=4)
    assert _count(head) == pytest.approx(9.4e6, rel=0.02)


def test_edsgp_pads_short_clips_and_rejects_long_ones():
    head = create_head("edsgp", D, K1, clip_len=8).eval()
    x = torch.randn(1, 8, D)
    full = head(x)
    short = head(x[:, :6])
    assert short.shape == (1, 6, K1)
    with pytest.raises(ConfigError, match="built for clips of 8 frames and got 9"):
        head(torch.randn(1, 9, D))
    with pytest.raises(ConfigError, match="divisible by 16"):
        create_head("edsgp", 40, K1, clip_len=8)
    assert full.shape == (1, 8, K1)


def test_transformer_longer_than_table():
    head = create_head("transformer", D, K1, clip_len=4).eval()
    assert head(torch.randn(1, 9, D)).shape == (1, 9, K1)


def test_asformer_window_attention_is_local():
    """Layer i attends within a window of 2^i around each frame: frame 0 of the encoder's first layer
    (block 1) must ignore a change far away after one layer."""
    from e2espot.models.heads import _WindowAttention
    att = _WindowAttention(8, 8, 2, 2, block=2, cross=False)
    x = torch.randn(1, 8, 10)
    y1 = att(x, None)
    x2 = x.clone()
    x2[:, :, 9] += 5.0
    y2 = att(x2, None)
    assert torch.allclose(y1[:, :, :6], y2[:, :, :6])
    assert not torch.allclose(y1[:, :, 8:], y2[:, :, 8:])

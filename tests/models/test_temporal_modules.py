"""TSM / GSM / GSF / ASTRM on hand-built tensors: exactly which channels move, and by how much."""

import pytest
import torch

from e2espot.errors import ConfigError
from e2espot.models import create_temporal_module
from e2espot.models.temporal import gsm_fold

B, T, C, H, W = 2, 5, 16, 3, 3


def _clip() -> torch.Tensor:
    """x[b, t, c] = 1000·b + 100·c + t + 1 (distinct everywhere, never 0), as (B·T, C, H, W)."""
    b = torch.arange(B).view(B, 1, 1, 1, 1)
    t = torch.arange(T).view(1, T, 1, 1, 1)
    c = torch.arange(C).view(1, 1, C, 1, 1)
    x = (1000 * b + 100 * c + t + 1).float().expand(B, T, C, H, W)
    return x.reshape(B * T, C, H, W).clone()


def _as_clip(y: torch.Tensor) -> torch.Tensor:
    return y.reshape(B, T, C, H, W)


def _shift(x5: torch.Tensor, offset: int) -> torch.Tensor:
    """Reference: frame t takes t + offset, zeros outside the clip."""
    out = torch.zeros_like(x5)
    for t in range(T):
        if 0 <= t + offset < T:
            out[:, t] = x5[:, t + offset]
    return out


def test_tsm_moves_one_eighth_each_way():
    tsm = create_temporal_module("tsm", C)
    tsm.num_frames = T
    x = _clip()
    x_before = x.clone()
    y5, x5 = _as_clip(tsm(x)), _as_clip(x)
    fold = C // 8  # 2
    assert torch.equal(y5[:, :, :fold], _shift(x5[:, :, :fold], +1))  # frame t takes t+1
    assert torch.equal(y5[:, :, fold:2 * fold], _shift(x5[:, :, fold:2 * fold], -1))  # frame t takes t-1
    assert torch.equal(y5[:, :, 2 * fold:], x5[:, :, 2 * fold:])
    assert torch.equal(x, x_before)  # out of place
    assert y5[0, T - 1, 0, 0, 0] == 0 and y5[0, 0, fold, 0, 0] == 0  # zeros at the clip edges
    assert y5[1, 2, 1, 0, 0] == 1000 + 100 + 3 + 1  # sample 1, frame 2, channel 1 = frame 3's value


def _gsm_permutation(fold: int) -> list[int]:
    """GSM's documented re-interleave: in each half, output channel 2j+i = input channel i·fold/4 + j."""
    half, quarter = fold // 2, fold // 4
    perm = []
    for h in range(2):
        for j in range(quarter):
            for i in range(2):
                perm.append(h * half + i * quarter + j)
    return perm


def test_gsm_zero_init_is_fixed_permutation():
    gsm = create_temporal_module("gsm", C)
    gsm.num_frames = T
    fold = gsm_fold(C)
    assert fold == 4 and gsm_fold(368) == 92 and gsm_fold(24) == 8
    x = _clip()
    y5, x5 = _as_clip(gsm(x)), _as_clip(x)
    perm = _gsm_permutation(fold)
    assert perm == [0, 1, 2, 3]  # fold 4: quarter 1, the permutation is trivial
    gsm32 = create_temporal_module("gsm", 64).eval()  # fold 16: a real permutation
    gsm32.num_frames = 1
    x32 = torch.arange(64.0).view(1, 64, 1, 1)
    expected = _gsm_permutation(16) + list(range(16, 64))
    assert expected[:8] == [0, 4, 1, 5, 2, 6, 3, 7]
    assert torch.equal(gsm32(x32).flatten(), torch.tensor(expected, dtype=torch.float32))
    assert torch.equal(y5[:, :, perm], x5[:, :, :fold][:, :, perm]) and torch.equal(y5[:, :, fold:], x5[:, :, fold:])


def test_gsm_with_open_gate_shifts_half_each_way():
    gsm = create_temporal_module("gsm", 64)
    fold, half = gsm_fold(64), gsm_fold(64) // 2  # 16, 8
    with torch.no_grad():
        gsm.conv3d.bias.fill_(20.0)  # tanh(20) == 1.0 in float32: gate fully open
    gsm.eval()
    gsm.num_frames = T
    x = torch.randn(B * T, 64, 2, 2)
    y5, x5 = gsm(x).reshape(B, T, 64, 2, 2), x.reshape(B, T, 64, 2, 2)
    perm = _gsm_permutation(fold)
    expected = torch.cat([_shift(x5[:, :, :half], +1), _shift(x5[:, :, half:fold], -1)], dim=2)[:, :, perm]
    assert torch.equal(y5[:, :, :fold], expected)
    assert torch.equal(y5[:, :, fold:], x5[:, :, fold:])


def test_gsm_with_half_gate_mixes():
    gsm = create_temporal_module("gsm", 16)
    g = 0.5
    with torch.no_grad():
        gsm.conv3d.bias.fill_(float(torch.atanh(torch.tensor(g))))
    gsm.eval()
    gsm.num_frames = T
    x = _clip()
    y5, x5 = _as_clip(gsm(x)), _as_clip(x)
    expected1 = g * _shift(x5[:, :, :2], +1) + (1 - g) * x5[:, :, :2]
    expected2 = g * _shift(x5[:, :, 2:4], -1) + (1 - g) * x5[:, :, 2:4]
    torch.testing.assert_close(y5[:, :, :4], torch.cat([expected1, expected2], 2), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("name", ["tsm", "gsm", "gsf", "astrm"])
@pytest.mark.parametrize("num_frames", [1, 3, 7])
def test_any_clip_length_shapes_and_gradients(name, num_frames):
    module = create_temporal_module(name, 16)
    module.num_frames = num_frames
    x = torch.randn(2 * num_frames, 16, 4, 4, requires_grad=True)
    if name == "astrm" and num_frames == 1:
        module.eval()  # BatchNorm over B·T = 2 pooled values still trains; eval keeps the test deterministic
    y = module(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    params = [p for p in module.parameters()]
    if name != "tsm":
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def test_frames_must_divide_batch():
    module = create_temporal_module("tsm", 16)
    module.num_frames = 3
    with pytest.raises(ConfigError, match="not a whole number of clips"):
        module(torch.zeros(4, 16, 2, 2))
    module.num_frames = None
    with pytest.raises(ConfigError, match="clip length is unknown"):
        module(torch.zeros(4, 16, 2, 2))


def test_gsf_fuses_and_keeps_the_rest():
    gsf = create_temporal_module("gsf", 32)
    gsf.num_frames = T
    x = torch.randn(B * T, 32, 3, 3)
    y = gsf(x)
    fold = gsm_fold(32)
    assert torch.equal(y[:, fold:], x[:, fold:])
    assert not torch.allclose(y[:, :fold], x[:, :fold])
    assert hasattr(gsf, "fuse_conv1") and gsf.conv3d.weight.abs().sum() > 0  # default (not zero) init


def test_astrm_mixes_only_within_a_clip_and_neighbours():
    astrm = create_temporal_module("astrm", 16).eval()
    astrm.num_frames = T
    x = torch.randn(B * T, 16, 4, 4, requires_grad=True)
    y = astrm(x)
    # the output of sample 0, frame 2 depends (through the temporal kernel of size 3) on frames 1..3 of
    # sample 0 directly, and on every frame of sample 0 through the global kernel/gates; never on sample 1
    y.reshape(B, T, 16, 4, 4)[0, 2].sum().backward()
    grad = x.grad.reshape(B, T, 16, 4, 4)
    assert grad[1].abs().sum() == 0
    assert all(grad[0, t].abs().sum() > 0 for t in (1, 2, 3))
    kernel_bias = astrm.g_fc2.bias.detach()
    assert torch.softmax(kernel_bias, 0)[1] > 0.9  # initialised close to the identity kernel

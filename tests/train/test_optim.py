"""AdamW, SAM / ASAM and the warm-up + cosine schedule."""

import copy
import math

import pytest
import torch
from torch import nn

from e2espot.errors import ConfigError, UnknownNameError
from e2espot.train.optim import SAM, build_optimizer, sam_step, warmup_cosine_factor, warmup_cosine_schedule


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g)


def _closure(model, counter=None):
    x, y = _data()

    def closure():
        if counter is not None:
            counter.append(1)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("name", ["sam", "asam"])
def test_sam_two_passes_and_different_step(name):
    plain, sharp = _model(), _model()
    opt_plain = build_optimizer(plain, "adamw", lr=0.1)
    opt_sharp = build_optimizer(sharp, name, lr=0.1, rho=0.5)
    assert isinstance(opt_sharp, SAM) and opt_sharp.param_groups is opt_sharp.base_optimizer.param_groups
    calls = []
    sam_step(plain, _closure(plain), opt_plain)
    loss = sam_step(sharp, _closure(sharp, calls), opt_sharp)
    assert len(calls) == 2 and torch.isfinite(loss)
    diffs = [(a - b).abs().max().item() for a, b in zip(plain.parameters(), sharp.parameters())]
    assert max(diffs) > 1e-4
    # BN running statistics come from the first pass only (the perturbed pass leaves them alone)
    torch.testing.assert_close(sharp[1].running_mean, plain[1].running_mean)
    torch.testing.assert_close(sharp[1].running_var, plain[1].running_var)
    assert all(p.grad is None for p in sharp.parameters())


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_equals_adamw_on_perturbed_gradient(adaptive):
    rho, eta = 0.3, 0.01
    model = _model().eval()  # no BN statistics in play
    ref = copy.deepcopy(model)
    opt = SAM(model.parameters(), torch.optim.AdamW, rho=rho, adaptive=adaptive, lr=0.05)
    closure = _closure(model)
    closure()
    grads = [p.grad.clone() for p in model.parameters()]
    weights = [p.detach().clone() for p in model.parameters()]
    opt.first_step(zero_grad=True)
    # the perturbation: e = rho·T²g / ‖T g‖ (T = |w| + eta for ASAM, 1 for SAM)
    scales = [(w.abs() + eta) if adaptive else torch.ones_like(w) for w in weights]
    norm = torch.sqrt(sum(((s * g) ** 2).sum() for s, g in zip(scales, grads)))
    for p, w, s, g in zip(model.parameters(), weights, scales, grads):
        torch.testing.assert_close(p.detach() - w, rho * s * s * g / norm, rtol=1e-4, atol=1e-7)
    closure()
    perturbed_grads = [p.grad.clone() for p in model.parameters()]
    opt.second_step(zero_grad=True)
    # reference: AdamW from the original weights with the perturbed gradients
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=0.05)
    for p, g in zip(ref.parameters(), perturbed_grads):
        p.grad = g
    ref_opt.step()
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b)


def test_sam_state_dict_round_trip_and_step_closure():
    model = _model()
    opt = build_optimizer(model, "sam", lr=0.01)
    opt.step(_closure(model))
    state = opt.state_dict()
    assert "state" in state and len(state["state"]) > 0
    opt2 = build_optimizer(_model(), "sam", lr=0.01)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == 0.01
    with pytest.raises(ConfigError, match="closure"):
        opt.step()


def test_build_optimizer_names_and_defaults():
    model = _model()
    opt = build_optimizer(model, "adamw", lr=1e-3)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(UnknownNameError, match="did you mean 'asam'"):
        build_optimizer(model, "asm")
    with pytest.raises(ConfigError):
        build_optimizer(model, "sam", rho=0.0)


def test_warmup_then_cosine_curve():
    model = nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=2.0)
    sched = warmup_cosine_schedule(opt, warmup_steps=10, total_steps=110)
    lrs = []
    for _ in range(121):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(2.0 * 0.01)  # warm-up starts at 1 % of the peak
    assert lrs[5] == pytest.approx(2.0 * (0.01 + 0.99 * 0.5))
    assert lrs[10] == pytest.approx(2.0)  # peak exactly at the end of the warm-up: the cosine starts here
    assert lrs[35] == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert lrs[60] == pytest.approx(1.0)  # half-way through the cosine
    assert lrs[110] == pytest.approx(0.0, abs=1e-12) and lrs[120] == pytest.approx(0.0, abs=1e-12)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:11]))  # rising during warm-up
    assert all(a >= b for a, b in zip(lrs[10:110], lrs[11:111]))  # never rises again
    assert warmup_cosine_factor(0, 0, 10) == 1.0  # no warm-up: starts at the peak
    assert warmup_cosine_factor(10, 0, 10, min_factor=0.1) == pytest.approx(0.1)


def test_schedule_on_sam_shares_param_groups():
    model = _model()
    opt = build_optimizer(model, "asam", lr=1.0)
    sched = warmup_cosine_schedule(opt.base_optimizer, warmup_steps=2, total_steps=4)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    sam_step(model, _closure(model), opt)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.505)
    with pytest.raises(ConfigError):
        warmup_cosine_schedule(opt.base_optimizer, warmup_steps=-1, total_steps=4)
    assert warmup_cosine_factor(3, 10, 5) == pytest.approx(0.01 + 0.99 * 0.3)  # warm-up longer than the run

"""AdamW, SAM / ASAM and the warm-up + cosine schedule."""

import copy
import math

import pytest
import torch
from torch import nn

from e2espot.errors import ConfigError, UnknownNameError
from e2espot.train.optim import (
    SAM,
    build_lr_schedule,
    build_optimizer,
    sam_step,
    spot_lr_factor,
    warmup_cosine_factor,
    warmup_cosine_schedule,
)


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


def _spot_lrs(num_epochs: int, warmup_epochs: int, steps_per_epoch: int, lr: float = 1e-3) -> list[float]:
    model = nn.Linear(2, 2)
    opt = build_optimizer(model, "sam", lr=lr)  # scheduled on the base optimiser, as the loop does
    sched = build_lr_schedule("spot", opt.base_optimizer, warmup_epochs * steps_per_epoch,
                              num_epochs * steps_per_epoch)
    lrs = []
    for _ in range(num_epochs * steps_per_epoch + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.base_optimizer.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("num_epochs, warmup_epochs, steps", [(6, 3, 50), (50, 3, 7), (10, 0, 9)])
def test_spot_schedule_matches_its_formula_per_step(num_epochs, warmup_epochs, steps):
    """jhong93/spot train_e2e.py: ChainedScheduler(LinearLR(0.01 -> 1, W), CosineAnnealingLR(T - W)),
    both multiplying from step 0: lr(s) = lr * (0.01 + 0.99 min(s, W) / W) * (1 + cos(pi s / (T - W))) / 2."""
    lrs = _spot_lrs(num_epochs, warmup_epochs, steps)
    warm, cos_steps = warmup_epochs * steps, (num_epochs - warmup_epochs) * steps
    for s, got in enumerate(lrs):
        linear = 0.01 + 0.99 * (min(s, warm) / warm if warm else 1.0)
        expected = 1e-3 * linear * 0.5 * (1 + math.cos(math.pi * s / cos_steps))
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-15), s
        assert spot_lr_factor(s, warm, cos_steps) * 1e-3 == pytest.approx(expected, rel=1e-12, abs=1e-18)


def test_spot_schedule_at_a_six_epoch_budget():
    """The numbers of issue 18: peak near 2.6e-4 inside the warm-up, 0 at epoch 3, back to 1e-3 at epoch 6."""
    lrs = _spot_lrs(6, 3, 100)
    assert max(lrs) == pytest.approx(1e-3)  # only at the very end
    assert max(lrs[:300]) == pytest.approx(2.66e-4, abs=0.01e-4)
    assert lrs[300] == pytest.approx(0.0, abs=1e-15)
    assert lrs[600] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(lrs[300:600], lrs[301:601]))  # climbs back after epoch 3
    # ours: peak exactly at the end of the warm-up, then down to 0 at the end
    ours = warmup_cosine_factor(300, 300, 600), warmup_cosine_factor(600, 300, 600)
    assert ours == pytest.approx((1.0, 0.0), abs=1e-12)


def test_spot_schedule_refusals():
    opt = torch.optim.AdamW(nn.Linear(2, 2).parameters(), lr=1e-3)
    with pytest.raises(ConfigError, match="Raise --num-epochs above --warmup-epochs"):
        build_lr_schedule("spot", opt, 30, 30)
    with pytest.raises(UnknownNameError, match="did you mean 'spot'"):
        build_lr_schedule("spto", opt, 3, 30)


def _scaled_closure(model, scaler, poison=None):
    """Forward + scaled backward; ``poison`` = list of pass numbers whose gradients get an inf."""
    x, y = _data()
    calls = []

    def closure():
        calls.append(1)
        loss = nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        if poison and len(calls) in poison:
            next(model.parameters()).grad[0, 0] = float("inf")
        return loss

    return closure, calls


@pytest.mark.parametrize("name", ["adamw", "sam", "asam"])
def test_gradient_scaler_path_equals_unscaled_step(name):
    """fp16's GradScaler path, faked on the CPU in fp32: scaling by 2**10 and unscaling must give the step
    of the unscaled optimiser (SAM: unscale before the perturbation, restore, base step via scaler.step)."""
    plain, scaled = _model(), _model()
    opt_plain = build_optimizer(plain, name, lr=0.05)
    opt_scaled = build_optimizer(scaled, name, lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    off = torch.amp.GradScaler("cpu", enabled=False)
    for _ in range(3):
        sam_step(plain, _scaled_closure(plain, off)[0], opt_plain, off)
        closure, calls = _scaled_closure(scaled, scaler)
        sam_step(scaled, closure, opt_scaled, scaler)
        assert len(calls) == (1 if name == "adamw" else 2)
    for a, b in zip(plain.state_dict().values(), scaled.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert scaler.get_scale() == 2.0**10  # no overflow: the scale is kept


@pytest.mark.parametrize("poison", [[1], [2]])
def test_gradient_scaler_with_sam_skips_an_overflowing_step(poison):
    """An inf in either SAM pass skips the step (weights exactly as before, not left perturbed) and
    halves the scale, as scaler.step does for a plain optimiser."""
    model = _model()
    opt = build_optimizer(model, "sam", lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    weights = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    closure, calls = _scaled_closure(model, scaler, poison=poison)
    sam_step(model, closure, opt, scaler)
    assert len(calls) == (1 if poison == [1] else 2)  # an overflow in pass 1: no perturbation at all
    for k, v in weights.items():
        if "running" not in k:  # BatchNorm statistics move in the forward, as in any skipped step
            torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert scaler.get_scale() == 2.0**9
    assert all(p.grad is None for p in model.parameters())
    closure, _ = _scaled_closure(model, scaler)
    sam_step(model, closure, opt, scaler)  # the next step goes through
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in weights.items())

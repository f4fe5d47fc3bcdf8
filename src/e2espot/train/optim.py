"""Optimisers (AdamW; SAM / ASAM wrapping it), one optimiser step for every optimiser x gradient-scaler
combination, and the learning-rate schedules (ours, and jhong93/spot's reproduced exactly)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import ChainedScheduler, CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler

from e2espot.errors import ConfigError, unknown_name
from e2espot.models.registry import Registry

# optimiser key -> factory(params, *, lr, weight_decay, rho, **kwargs); the CLI's --optimizer choices
OPTIMIZERS = Registry("optimizer")
# "cosine": linear warm-up, then a cosine that starts after it (ours, the default);
# "spot": jhong93/spot train_e2e.py get_lr_scheduler, warm-up and cosine multiplied from step 0
LR_SCHEDULES = ("cosine", "spot")
WARMUP_START = 0.01  # both schedules start the warm-up at 1 % of the peak LR (spot: LinearLR start_factor)


class SAM(torch.optim.Optimizer):
    """Sharpness-aware minimisation (Foret et al. 2021) and its adaptive form ASAM (Kwon et al. 2021).

    One step is two forward/backward passes::

        loss(w).backward(); opt.first_step(zero_grad=True)    # w ← w + e(w)
        loss(w).backward(); opt.second_step(zero_grad=True)   # w ← old w, then the base step with ∇L(w + e)

    SAM:  e = ρ·g / ‖g‖.  ASAM: e = ρ·T²g / ‖T g‖ with T = |w| + η (element-wise).
    ``param_groups`` are the base optimiser's, so an LR scheduler may wrap either object.
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer], rho: float = 0.05,
                 adaptive: bool = False, eta: float = 0.01, **kwargs: Any) -> None:
        if rho <= 0:
            raise ConfigError(f"SAM rho must be > 0, got {rho}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, eta=eta, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    def _scale(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor | float:
        return p.abs() + group["eta"] if group["adaptive"] else 1.0

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [(self._scale(g, p) * p.grad).norm(2) for g in self.param_groups for p in g["params"]
                 if p.grad is not None]
        if not norms:
            return torch.zeros(())
        return torch.stack([n.to(norms[0].device) for n in norms]).norm(2)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move the weights to the (approximate) worst point within radius ρ; remember the originals."""
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.detach().clone()
                t = self._scale(group, p)
                p.add_(t * t * p.grad * scale.to(p.device))
        if zero_grad:
            self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def restore(self) -> None:
        """Put back the weights saved by ``first_step`` (the gradients stay: they are the perturbed ones)."""
        for group in self.param_groups:
            for p in group["params"]:
                if "old_p" in self.state[p]:
                    p.copy_(self.state[p].pop("old_p"))

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore the weights and take the base optimiser's step with the perturbed gradients."""
        self.restore()
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Both passes in one call; ``closure`` must zero nothing, compute the loss and call backward."""
        if closure is None:
            raise ConfigError("SAM.step needs a closure (forward + backward), or call first_step/second_step")
        closure = torch.enable_grad()(closure)
        loss = closure()
        self.first_step(zero_grad=True)
        closure()
        self.second_step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups


@OPTIMIZERS.register("adamw", help="AdamW")
def _adamw(params: list[Any], *, lr: float, weight_decay: float, rho: float, **kwargs: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **kwargs)


@OPTIMIZERS.register("sam", help="SAM around AdamW (two passes a step; --rho)")
def _sam(params: list[Any], *, lr: float, weight_decay: float, rho: float, **kwargs: Any) -> torch.optim.Optimizer:
    return SAM(params, torch.optim.AdamW, rho=rho, adaptive=False, lr=lr, weight_decay=weight_decay, **kwargs)


@OPTIMIZERS.register("asam", help="adaptive SAM (ASAM) around AdamW")
def _asam(params: list[Any], *, lr: float, weight_decay: float, rho: float, **kwargs: Any) -> torch.optim.Optimizer:
    return SAM(params, torch.optim.AdamW, rho=rho, adaptive=True, lr=lr, weight_decay=weight_decay, **kwargs)


def build_optimizer(params: Iterable[Any] | nn.Module, name: str = "adamw", *, lr: float = 1e-3,
                    weight_decay: float = 0.01, rho: float = 0.05, **kwargs: Any) -> torch.optim.Optimizer:
    """The optimiser registered as ``name`` in ``OPTIMIZERS`` (AdamW, or SAM / ASAM around AdamW).
    ``params`` may be a module or an iterable of parameters. UnknownNameError for an unknown name."""
    factory = OPTIMIZERS.get(name).factory
    if isinstance(params, nn.Module):
        params = params.parameters()
    params = [p for p in params if p.requires_grad]
    if lr <= 0:
        raise ConfigError(f"learning rate must be > 0, got {lr}")
    return factory(params, lr=lr, weight_decay=weight_decay, rho=rho, **kwargs)


def _set_bn_momentum(model: nn.Module, freeze: bool) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if freeze:
                m._sam_momentum = m.momentum
                m.momentum = 0.0
            elif hasattr(m, "_sam_momentum"):
                m.momentum = m._sam_momentum
                del m._sam_momentum


def sam_step(model: nn.Module, closure: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """One optimiser step. ``closure()`` runs forward + backward and returns the loss; with a
    ``scaler`` it must call ``scaler.scale(loss).backward()`` (a disabled scaler's ``scale`` is a no-op).

    With SAM/ASAM: two passes; BatchNorm running statistics are frozen during the second (perturbed)
    pass so they are updated once per step. With a plain optimiser: one pass and ``step()``.
    Gradients are zeroed before and after. Returns the loss of the first pass.

    fp16 gradient scaling (an enabled ``torch.amp.GradScaler``) with SAM/ASAM: the first pass's
    gradients are unscaled (``scaler.unscale_``) before the perturbation, whose size ``rho / ||g||``
    needs true gradients; an inf/NaN there skips the whole step (weights untouched) and lowers the
    scale, as ``scaler.step`` does. After the second pass the weights are restored and the base
    optimiser steps through ``scaler.step`` (it unscales the perturbed gradients and skips on inf/NaN);
    ``scaler.update()`` then sees the checks of both passes.
    """
    scaling = scaler is not None and scaler.is_enabled()
    optimizer.zero_grad(set_to_none=True)
    loss = closure()
    if torch.is_tensor(loss):
        loss = loss.detach()
    if not isinstance(optimizer, SAM):
        if scaling:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss
    if scaling:
        scaler.unscale_(optimizer)
        if not _grads_finite(optimizer):  # fp16 overflow: skip the step, as scaler.step would
            optimizer.zero_grad(set_to_none=True)
            scaler.update()
            return loss
    optimizer.first_step(zero_grad=True)
    _set_bn_momentum(model, freeze=True)
    try:
        closure()
    finally:
        _set_bn_momentum(model, freeze=False)
    if scaling:
        optimizer.restore()
        scaler.step(optimizer.base_optimizer)  # its own scaler state: a second unscale is allowed
        scaler.update()
    else:
        optimizer.second_step()
    optimizer.zero_grad(set_to_none=True)
    return loss


@torch.no_grad()
def _grads_finite(optimizer: torch.optim.Optimizer) -> bool:
    flags = [torch.isfinite(p.grad).all() for g in optimizer.param_groups for p in g["params"]
             if p.grad is not None]
    return bool(torch.stack([f.cpu() for f in flags]).all()) if flags else True


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, *, warmup_start: float = 0.01,
                         min_factor: float = 0.0) -> float:
    """LR multiplier at ``step``: linear warm-up_start → 1 over ``warmup_steps``, then a cosine from 1 to
    ``min_factor`` over the remaining ``total_steps - warmup_steps`` (it starts after the warm-up), then flat.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return warmup_start + (1.0 - warmup_start) * step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, *,
                           warmup_start: float = 0.01, min_factor: float = 0.0) -> LambdaLR:
    """LambdaLR with :func:`warmup_cosine_factor`; step it once per optimiser step.

    A warm-up longer than the run is allowed (short demo runs): the LR then only rises.
    """
    if warmup_steps < 0 or total_steps < 1:
        raise ConfigError(
            f"LR schedule: need warmup_steps >= 0 and total_steps >= 1, "
            f"got warmup_steps={warmup_steps}, total_steps={total_steps}"
        )
    return LambdaLR(optimizer, lambda step: warmup_cosine_factor(
        step, warmup_steps, total_steps, warmup_start=warmup_start, min_factor=min_factor))


def spot_lr_factor(step: int, warmup_steps: int, cosine_steps: int, *, warmup_start: float = WARMUP_START
                   ) -> float:
    """The LR multiplier of jhong93/spot at ``step`` (its ``train_e2e.py`` ``get_lr_scheduler``):
    ``ChainedScheduler([LinearLR(start_factor=0.01, total_iters=warmup_steps),
    CosineAnnealingLR(T_max=cosine_steps)])`` with ``warmup_steps = warm_up_epochs x steps_per_epoch``
    and ``cosine_steps = (num_epochs - warm_up_epochs) x steps_per_epoch``. Both act from step 0 and
    multiply::

        linear(s) = 0.01 + 0.99 * min(s, warmup_steps) / warmup_steps
        cosine(s) = (1 + cos(pi * s / cosine_steps)) / 2          # period 2 * cosine_steps: it rises again
        factor(s) = linear(s) * cosine(s)

    So at a 6-epoch budget with 3 warm-up epochs the LR peaks near 0.26 x lr inside the warm-up, is 0 at
    epoch 3 and climbs back to lr at epoch 6. This closed form equals torch's recursive schedulers (what
    ``spot_schedule`` uses) whenever ``warmup_steps <= cosine_steps``; with a longer warm-up torch's
    restart branch of CosineAnnealingLR adds the base LR unscaled by the warm-up, and ``spot_schedule``
    follows torch, as spot does.
    """
    linear = warmup_start + (1.0 - warmup_start) * (min(step, warmup_steps) / warmup_steps if warmup_steps else 1.0)
    return linear * 0.5 * (1.0 + math.cos(math.pi * step / cosine_steps))


def spot_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> LRScheduler:
    """jhong93/spot's schedule, built from the same torch schedulers it uses (see ``spot_lr_factor``).

    ``total_steps`` is ``num_epochs x steps_per_epoch``; the cosine spans ``total_steps - warmup_steps``.
    Raises ConfigError when that is < 1 (spot divides by zero there).
    """
    cosine_steps = total_steps - warmup_steps
    if warmup_steps < 0 or cosine_steps < 1:
        raise ConfigError(
            f"--lr-schedule spot: the cosine spans (num_epochs - warmup_epochs) epochs and must be at least "
            f"one step; got warmup_steps={warmup_steps}, total_steps={total_steps}. "
            "Raise --num-epochs above --warmup-epochs"
        )
    schedulers: list[LRScheduler] = []
    if warmup_steps > 0:  # spot always has one; total_iters=0 would divide by zero in LinearLR
        schedulers.append(LinearLR(optimizer, start_factor=WARMUP_START, end_factor=1.0, total_iters=warmup_steps))
    schedulers.append(CosineAnnealingLR(optimizer, cosine_steps))
    return ChainedScheduler(schedulers, optimizer=optimizer)


def build_lr_schedule(name: str, optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
                      ) -> LRScheduler:
    """The schedule registered as ``name`` in ``LR_SCHEDULES``; step it once per optimiser step."""
    if name == "cosine":
        return warmup_cosine_schedule(optimizer, warmup_steps, total_steps)
    if name == "spot":
        return spot_schedule(optimizer, warmup_steps, total_steps)
    raise unknown_name("LR schedule", name, LR_SCHEDULES)

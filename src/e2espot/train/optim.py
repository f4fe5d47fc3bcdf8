"""Optimisers (AdamW; SAM / ASAM wrapping it) and the warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from e2espot.errors import ConfigError, unknown_name

OPTIMIZERS = ("adamw", "sam", "asam")


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
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore the weights and take the base optimiser's step with the perturbed gradients."""
        for group in self.param_groups:
            for p in group["params"]:
                if "old_p" in self.state[p]:
                    p.copy_(self.state[p].pop("old_p"))
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


def build_optimizer(params: Iterable[Any] | nn.Module, name: str = "adamw", *, lr: float = 1e-3,
                    weight_decay: float = 0.01, rho: float = 0.05, **kwargs: Any) -> torch.optim.Optimizer:
    """AdamW, or SAM / ASAM around AdamW. ``params`` may be a module or an iterable of parameters."""
    if isinstance(params, nn.Module):
        params = params.parameters()
    params = [p for p in params if p.requires_grad]
    if lr <= 0:
        raise ConfigError(f"learning rate must be > 0, got {lr}")
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **kwargs)
    if name in ("sam", "asam"):
        return SAM(params, torch.optim.AdamW, rho=rho, adaptive=name == "asam", lr=lr,
                   weight_decay=weight_decay, **kwargs)
    raise unknown_name("optimizer", name, OPTIMIZERS)


def _set_bn_momentum(model: nn.Module, freeze: bool) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if freeze:
                m._sam_momentum = m.momentum
                m.momentum = 0.0
            elif hasattr(m, "_sam_momentum"):
                m.momentum = m._sam_momentum
                del m._sam_momentum


def sam_step(model: nn.Module, closure: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer
             ) -> torch.Tensor:
    """One optimiser step. ``closure()`` runs forward + backward and returns the loss.

    With SAM/ASAM: two passes; BatchNorm running statistics are frozen during the second (perturbed)
    pass so they are updated once per step. With a plain optimiser: one pass and ``step()``.
    Gradients are zeroed before and after. Returns the loss of the first pass.
    """
    optimizer.zero_grad(set_to_none=True)
    loss = closure()
    if torch.is_tensor(loss):
        loss = loss.detach()
    if not isinstance(optimizer, SAM):
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss
    optimizer.first_step(zero_grad=True)
    _set_bn_momentum(model, freeze=True)
    try:
        closure()
    finally:
        _set_bn_momentum(model, freeze=False)
    optimizer.second_step(zero_grad=True)
    return loss


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

"""Spotting losses: weighted cross-entropy (hard or soft targets), BCE, focal, SoftIC, displacement MSE,
and the Team-BAS team BCE.

Targets: ``labels`` is either hard class ids (B, T) int64 (0 = background) or soft targets (B, T, K+1)
(mixup). An optional ``valid`` mask (B, T) drops padded frames from every term.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from e2espot.errors import ConfigError
from e2espot.models.registry import Registry

CLASSIFICATION_LOSSES = Registry("loss")


def class_weights(num_outputs: int, fg_weight: float, like: torch.Tensor) -> torch.Tensor:
    """[1, w, w, ...]: background 1, every foreground class ``fg_weight``."""
    weights = torch.full((num_outputs,), float(fg_weight), dtype=torch.float32, device=like.device)
    weights[0] = 1.0
    return weights


def _soft(target: torch.Tensor, num_outputs: int) -> torch.Tensor:
    """Hard ids (B, T) → one-hot (B, T, K+1) float; soft targets pass through as float."""
    if target.is_floating_point():
        return target.float()
    return F.one_hot(target.long(), num_outputs).float()


def _mask(valid: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.ones(like.shape[:2], device=like.device) if valid is None else valid.to(like.device).float()


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.ndim != 3 or target.shape[:2] != logits.shape[:2] or (
            target.ndim == 3 and target.shape[2] != logits.shape[2]) or target.ndim not in (2, 3):
        raise ConfigError(
            f"loss: logits {tuple(logits.shape)} and labels {tuple(target.shape)} do not match; expected "
            "logits (B, T, K+1) with labels (B, T) class ids or (B, T, K+1) soft targets"
        )


@CLASSIFICATION_LOSSES.register("ce")
def cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, fg_weight: float = 5.0,
                  valid: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
    """Class-weighted cross-entropy with PyTorch's ``F.cross_entropy(weight=...)`` normalisation.

    Hard ids:  sum_i w[y_i]·(−log p_i[y_i]) / sum_i w[y_i].
    Soft:      sum_i sum_c w_c·y_ic·(−log p_ic) / N   (N = number of valid frames).
    """
    _check(logits, target)
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, T, K+1)
    weights = class_weights(logits.shape[-1], fg_weight, logits)
    mask = _mask(valid, logits)
    if target.is_floating_point():
        per_frame = -(weights * target.float() * logp).sum(-1)  # (B, T)
        return (per_frame * mask).sum() / mask.sum().clamp_min(1)
    ids = target.long()
    nll = -logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)  # (B, T)
    w = weights[ids] * mask
    return (w * nll).sum() / w.sum().clamp_min(1e-12)


@CLASSIFICATION_LOSSES.register("bce")
def binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, fg_weight: float = 5.0,
                         valid: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
    """One-vs-rest BCE on the K foreground logits (index 0 is not trained); positives weigh ``fg_weight``.

    Mean over valid frames and the K classes. Score frames with ``sigmoid(logits[..., 1:])``.
    """
    _check(logits, target)
    soft = _soft(target, logits.shape[-1])[..., 1:]  # (B, T, K)
    pos_weight = torch.full((soft.shape[-1],), float(fg_weight), device=logits.device)
    per = F.binary_cross_entropy_with_logits(logits[..., 1:].float(), soft, pos_weight=pos_weight,
                                             reduction="none").mean(-1)  # (B, T)
    mask = _mask(valid, logits)
    return (per * mask).sum() / mask.sum().clamp_min(1)


@CLASSIFICATION_LOSSES.register("focal")
def focal(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0, fg_weight: float = 5.0,
          valid: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
    """Softmax focal loss: mean over valid frames of sum_c w_c·y_c·(1 − p_c)^γ·(−log p_c)."""
    _check(logits, target)
    logp = F.log_softmax(logits.float(), dim=-1)
    soft = _soft(target, logits.shape[-1])
    weights = class_weights(logits.shape[-1], fg_weight, logits)
    per_frame = -(weights * soft * (1 - logp.exp()).pow(gamma) * logp).sum(-1)  # (B, T)
    mask = _mask(valid, logits)
    return (per_frame * mask).sum() / mask.sum().clamp_min(1)


def displacement_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over all (valid) frames, background included, of (pred − target)²; pred, target (B, T)."""
    if pred.shape != target.shape:
        raise ConfigError(f"displacement: prediction {tuple(pred.shape)} vs target {tuple(target.shape)}")
    mask = _mask(valid, pred)
    return ((pred.float() - target.float()).pow(2) * mask).sum() / mask.sum().clamp_min(1)


def team_bce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Team BCE of sn-teamspotting (``BCEWithLogitsLoss()(predT[labelT != -1], labelT[labelT != -1])``):
    ``logits`` (B, T) team logits (sigmoid = P(right)), ``target`` (B, T) float 0 left / 1 right / -1 no
    target (frames without an event, events without a team); the mean over target frames (and ``valid``
    ones), or a zero that keeps the graph when a batch has none (the baseline then adds no term)."""
    if logits.shape != target.shape or logits.ndim != 2:
        raise ConfigError(
            f"team loss: logits {tuple(logits.shape)} and team targets {tuple(target.shape)} must both "
            "be (B, T)"
        )
    mask = target >= 0
    if valid is not None:
        mask = mask & valid.to(mask.device).bool()
    if not bool(mask.any()):
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[mask].float(), target[mask].float())


def soft_ic(z: torch.Tensor, y: torch.Tensor, bank_z: torch.Tensor, bank_y: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """The SoftIC term on already projected, L2-normalised embeddings (before the loss weight).

    z (N, P) and soft labels y (N, K+1) of the anchors' batch; bank_z (M, P), bank_y (M, K+1).
    Candidates of anchor i are the other batch frames and the bank. With the foreground agreement
    a_ij = sum_{c ≥ 1} y_ic·y_jc and s_ij = z_i·z_j / τ::

        L_i = − sum_j (a_ij / sum_k a_ik) · log( exp(s_ij) / sum_{k ≠ i} exp(s_ik) )
        SoftIC = mean of L_i over anchors with sum_k a_ik > 0   (0 when there are none)

    Soft (mixup) labels give partial positives; background frames are only negatives.
    """
    cand_z = torch.cat([z, bank_z], dim=0)  # (N + M, P)
    cand_y = torch.cat([y, bank_y], dim=0)
    n = z.shape[0]
    logits = z @ cand_z.T / temperature  # (N, N + M)
    agree = y[:, 1:] @ cand_y[:, 1:].T  # (N, N + M)
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[torch.arange(n), torch.arange(n)] = True
    logits = logits.masked_fill(self_mask, float("-inf"))
    agree = agree.masked_fill(self_mask, 0.0)
    log_prob = torch.log_softmax(logits, dim=1).masked_fill(self_mask, 0.0)
    total = agree.sum(1)
    anchors = total > 0
    if not anchors.any():
        return z.sum() * 0.0
    per_anchor = -(agree * log_prob).sum(1)[anchors] / total[anchors]
    return per_anchor.mean()


class SoftICLoss(nn.Module):
    """Soft instance-contrastive loss with a FIFO memory bank (see :func:`soft_ic` for the formula).

    Features (B, T, D) go through a learned projection Linear(D, proj_dim) and L2 normalisation. At most
    ``max_anchors`` valid frames are used per step, foreground frames first. After each training step,
    up to ``enqueue`` of them (foreground first) are pushed, detached, into the bank of ``bank_size``.
    The projection's parameters must be optimised with the model (``SpottingLoss.parameters()``).
    """

    def __init__(self, feature_dim: int, num_outputs: int, *, proj_dim: int = 128, bank_size: int = 256,
                 temperature: float = 0.1, max_anchors: int = 512, enqueue: int = 32) -> None:
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"softic temperature must be > 0, got {temperature}")
        self.proj = nn.Linear(feature_dim, proj_dim)
        self.temperature = temperature
        self.max_anchors = max_anchors
        self.enqueue = enqueue
        self.register_buffer("bank_z", torch.zeros(bank_size, proj_dim))
        self.register_buffer("bank_y", torch.zeros(bank_size, num_outputs))
        self.register_buffer("bank_filled", torch.zeros(bank_size, dtype=torch.bool))
        self.register_buffer("bank_ptr", torch.zeros((), dtype=torch.long))

    def forward(self, features: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None = None
                ) -> torch.Tensor:
        num_outputs = self.bank_y.shape[1]
        y = _soft(labels, num_outputs).reshape(-1, num_outputs)  # (B·T, K+1)
        feats = features.reshape(-1, features.shape[-1])
        keep = torch.ones(y.shape[0], dtype=torch.bool, device=y.device) if valid is None else valid.reshape(-1) > 0
        idx = keep.nonzero().squeeze(1)
        fg = y[idx, 1:].sum(1) > 0
        order = torch.cat([idx[fg][torch.randperm(int(fg.sum()), device=idx.device)],
                           idx[~fg][torch.randperm(int((~fg).sum()), device=idx.device)]])
        order = order[: self.max_anchors]
        z = F.normalize(self.proj(feats[order].float()), dim=1)  # (N, P)
        ya = y[order]
        filled = self.bank_filled
        loss = soft_ic(z, ya, self.bank_z[filled], self.bank_y[filled], self.temperature)
        if self.training:
            self._push(z[: self.enqueue].detach(), ya[: self.enqueue].detach())
        return loss

    @torch.no_grad()
    def _push(self, z: torch.Tensor, y: torch.Tensor) -> None:
        size = self.bank_z.shape[0]
        n = min(z.shape[0], size)
        pos = (self.bank_ptr + torch.arange(n, device=z.device)) % size
        self.bank_z[pos] = z[:n].to(self.bank_z.dtype)
        self.bank_y[pos] = y[:n].to(self.bank_y.dtype)
        self.bank_filled[pos] = True
        self.bank_ptr.copy_((self.bank_ptr + n) % size)


class SpottingLoss(nn.Module):
    """Classification loss summed over head stages + SoftIC + displacement MSE.

    ``loss_fn(output, target)`` with ``output`` a SpotterOutput and ``target`` a dict with ``labels``
    ((B, T) ids or (B, T, K+1) soft), optional ``displacement`` (B, T), ``team`` (B, T) (see ``team_bce``;
    needs ``output.team`` (B, T) logits, weighted by ``team_weight``) and ``valid`` (B, T); a bare labels
    tensor and an ``AugmentedBatch`` (soft ``targets`` when mixed, else hard ``labels``) also work.
    Returns the scalar total; ``last_parts`` holds the detached terms for logging.
    """

    def __init__(self, num_classes: int, kind: str = "ce", *, fg_weight: float = 5.0, focal_gamma: float = 2.0,
                 softic_weight: float = 0.0, softic_temperature: float = 0.1, feature_dim: int | None = None,
                 displacement_weight: float = 1.0, softic_kwargs: Mapping[str, Any] | None = None,
                 team_weight: float = 1.0) -> None:
        super().__init__()
        self.classification = CLASSIFICATION_LOSSES.get(kind).factory
        self.kind = kind
        self.num_outputs = num_classes + 1
        self.fg_weight = fg_weight
        self.focal_gamma = focal_gamma
        self.softic_weight = softic_weight
        self.displacement_weight = displacement_weight
        self.team_weight = team_weight
        self.softic: SoftICLoss | None = None
        if softic_weight > 0:
            if feature_dim is None:
                raise ConfigError("SoftIC needs the backbone feature width: pass feature_dim=model.feature_dim")
            self.softic = SoftICLoss(feature_dim, self.num_outputs, temperature=softic_temperature,
                                     **dict(softic_kwargs or {}))
        self.last_parts: dict[str, float] = {}

    def forward(self, output: Any, target: Mapping[str, torch.Tensor] | torch.Tensor | Any) -> torch.Tensor:
        if torch.is_tensor(target):
            target = {"labels": target}
        elif not isinstance(target, Mapping):  # an AugmentedBatch (e2espot.data.transforms)
            mixed = getattr(target, "lam", None) is not None
            target = {"labels": target.targets if mixed else target.labels,
                      "displacement": target.displacement, "valid": target.valid,
                      "team": getattr(target, "team", None)}
        labels, valid = target["labels"], target.get("valid")
        parts: dict[str, torch.Tensor] = {}
        stages = list(output.stage_logits) or [output.logits]
        parts[self.kind] = sum(
            self.classification(lg, labels, fg_weight=self.fg_weight, gamma=self.focal_gamma, valid=valid)
            for lg in stages
        )
        if self.softic is not None:
            parts["softic"] = self.softic_weight * self.softic(output.features, labels, valid)
        disp_target = target.get("displacement")
        if self.displacement_weight > 0 and disp_target is not None and output.displacement is not None:
            parts["displacement"] = self.displacement_weight * displacement_mse(
                output.displacement, disp_target, valid)
        elif self.displacement_weight > 0 and disp_target is not None and output.displacement is None:
            raise ConfigError("displacement targets given but the model has no displacement head; "
                              "build it with ModelConfig(displacement=True)")
        team_target = target.get("team")
        if self.team_weight > 0 and team_target is not None:
            team_logits = getattr(output, "team", None)
            if team_logits is None:
                raise ConfigError("team targets given but the model has no team head; build it with a team "
                                  "head, or leave the team targets out (ClipDataset(team=False))")
            parts["team"] = self.team_weight * team_bce(team_logits, team_target, valid)
        total = sum(parts.values())
        self.last_parts = {k: float(v.detach()) for k, v in parts.items()}
        return total

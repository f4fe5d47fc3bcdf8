"""The Spotter: per-frame backbone (with temporal modules) → temporal head → per-frame logits."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from e2espot.config import ModelConfig
from e2espot.errors import ConfigError
from e2espot.models.backbones import create_backbone
from e2espot.models.heads import create_head

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SpotterOutput(NamedTuple):
    logits: torch.Tensor  # (B, T, K+1), last stage; index 0 = background
    stage_logits: list[torch.Tensor]  # every stage's (B, T, K+1); [logits] for single-stage heads
    displacement: torch.Tensor | None  # (B, T) per-frame offset in frames, or None
    features: torch.Tensor  # (B, T, D) backbone features (for SoftIC)


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


class Spotter(nn.Module):
    """x (B, T, 3, H, W) float in [0, 1] → :class:`SpotterOutput`. ImageNet normalisation happens inside."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if not isinstance(cfg.num_classes, int) or cfg.num_classes < 1:
            raise ConfigError(f"model config: num_classes must be an int >= 1, got {cfg.num_classes!r}")
        if not isinstance(cfg.clip_len, int) or cfg.clip_len < 1:
            raise ConfigError(f"model config: clip_len must be an int >= 1, got {cfg.clip_len!r}")
        self.config = cfg
        self.backbone = create_backbone(
            cfg.backbone, pretrained=cfg.pretrained, temporal_module=cfg.temporal_module,
            temporal_stages=cfg.temporal_stages, clip_len=cfg.clip_len,
            backbone_kwargs=cfg.backbone_kwargs,
        )
        self.head = create_head(cfg.head, self.backbone.num_features, cfg.num_classes + 1, cfg.clip_len,
                                **dict(cfg.head_kwargs))
        self.displacement_head = (
            nn.Sequential(nn.Dropout(0.5), nn.Linear(self.head.num_features, 1)) if cfg.displacement else None
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def feature_dim(self) -> int:
        """D, the width of ``SpotterOutput.features``."""
        return self.backbone.num_features

    @property
    def prefers_channels_last(self) -> bool:
        """Whether this backbone runs faster in channels_last layout (registry metadata, default True)."""
        from e2espot.models.registry import BACKBONES

        return bool(BACKBONES.get(self.config.backbone).meta.get("channels_last", True))

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def forward(self, x: torch.Tensor) -> SpotterOutput:
        if x.ndim != 5 or x.shape[2] != 3:
            raise ConfigError(f"Spotter expects clips (B, T, 3, H, W), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ConfigError(f"Spotter expects float frames in [0, 1], got dtype {x.dtype}; divide uint8 by 255")
        b, t, c, h, w = x.shape
        frames = (x.reshape(b * t, c, h, w) - self.mean) / self.std  # (B·T, 3, H, W)
        stem = next((p for p in self.backbone.parameters() if p.ndim == 4), None)  # None: 3D (X3D) backbone
        if stem is not None and stem.is_contiguous(memory_format=torch.channels_last) and not stem.is_contiguous():
            frames = frames.contiguous(memory_format=torch.channels_last)
        else:  # frames permuted from (..., H, W, 3) uint8 arrive channels_last-strided: match the weights
            frames = frames.contiguous()
        features = self.backbone(frames, num_frames=t).reshape(b, t, -1)  # (B, T, D)
        stages, hidden = self.head.forward_stages(features)
        displacement = None
        if self.displacement_head is not None:
            displacement = self.displacement_head(hidden).squeeze(-1)  # (B, T)
        return SpotterOutput(stages[-1], stages, displacement, features)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def summary(self) -> str:
        """A few lines with the parts and their parameter counts (the CLI prints it)."""
        cfg = self.config
        module = cfg.temporal_module or "none"
        stages = ",".join(map(str, self.backbone.temporal_stages)) or "-"
        temporal = sum(_count(m) for m in self.backbone.temporal_modules())
        rows = [
            (f"backbone {cfg.backbone} (D={self.feature_dim})", _count(self.backbone) - temporal),
            (f"temporal module {module} (stages {stages})", temporal),
            (f"head {cfg.head} ({self.head.num_stages} stage{'s' if self.head.num_stages > 1 else ''}, "
             f"K+1={cfg.num_classes + 1})", _count(self.head)),
        ]
        if self.displacement_head is not None:
            rows.append(("displacement head", _count(self.displacement_head)))
        rows.append(("total", self.num_parameters()))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {n / 1e6:8.3f} M  ({n:,})" for name, n in rows)


def create_spotter(cfg: ModelConfig) -> Spotter:
    """Build the Spotter described by ``cfg`` (registry keys for backbone, temporal module and head)."""
    return Spotter(cfg)

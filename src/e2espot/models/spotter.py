"""The Spotter: per-frame backbone (with temporal modules) → temporal head → per-frame logits."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from e2espot.config import ModelConfig
from e2espot.data.modality import IMAGENET_MEAN, IMAGENET_STD, MODALITIES, Modality, get_modality  # noqa: F401
from e2espot.errors import ConfigError
from e2espot.models.backbones import create_backbone
from e2espot.models.heads import create_head

# (the modalities live in e2espot.data.modality, where the data pipeline converts frames; re-exported here)

class SpotterOutput(NamedTuple):
    logits: torch.Tensor  # (B, T, K+1), last stage; index 0 = background
    stage_logits: list[torch.Tensor]  # every stage's (B, T, K+1); [logits] for single-stage heads
    displacement: torch.Tensor | None  # (B, T) per-frame offset in frames, or None
    features: torch.Tensor  # (B, T, D) backbone features (for SoftIC)
    team: torch.Tensor | None = None  # (B, T) team logits, sigmoid = P(right); None without a team head
    extra_logits: torch.Tensor | None = None  # (B, T, K2+1) second class head; None without one


def _frame_linear(in_dim: int, out_dim: int) -> nn.Sequential:
    """Dropout(0.5) → Linear(in_dim, out_dim), applied per frame (T-DEED ``FCLayers``)."""
    return nn.Sequential(nn.Dropout(0.5), nn.Linear(in_dim, out_dim))


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


class Spotter(nn.Module):
    """x (B, T, 3, H, W) float in [0, 1] → :class:`SpotterOutput`. ImageNet normalisation happens inside.

    Optional per-frame heads on the temporal head's hidden sequence, each Dropout(0.5) + Linear as T-DEED's
    ``FCLayers``: displacement (``cfg.displacement``), a second class head (``cfg.extra_num_classes``) and
    the Team-BAS team head (``cfg.team_head``; sn-teamspotting ``_pred_team``, sigmoid = P(right)).
    T-DEED takes 0..255 pixels and divides by 255 inside; feeding ``uint8.float() / 255`` here gives it
    bit for bit (float32 ``(x01 - mean) / std`` equals its ``Normalize``).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if not isinstance(cfg.num_classes, int) or cfg.num_classes < 1:
            raise ConfigError(f"model config: num_classes must be an int >= 1, got {cfg.num_classes!r}")
        if not isinstance(cfg.clip_len, int) or cfg.clip_len < 1:
            raise ConfigError(f"model config: clip_len must be an int >= 1, got {cfg.clip_len!r}")
        self.config = cfg
        self.modality = get_modality(cfg.modality)
        self.backbone = create_backbone(
            cfg.backbone, pretrained=cfg.pretrained, temporal_module=cfg.temporal_module,
            temporal_stages=cfg.temporal_stages, clip_len=cfg.clip_len, in_chans=self.modality.num_channels,
            backbone_kwargs=cfg.backbone_kwargs,
        )
        from e2espot.models.classifier import CLIP_POOL_HEAD, ClipPoolHead
        from e2espot.models.fusion import create_track_fusion  # object tracks (None without)

        self.track_fusion = create_track_fusion(cfg, self.backbone.num_features)
        head_in = self.track_fusion.out_dim if self.track_fusion is not None else self.backbone.num_features
        if cfg.head == CLIP_POOL_HEAD:  # a clip classifier (train --task classify): pooling + linear
            self.head = ClipPoolHead(head_in, cfg.num_classes + 1, **dict(cfg.head_kwargs))
        else:
            self.head = create_head(cfg.head, head_in, cfg.num_classes + 1, cfg.clip_len, **dict(cfg.head_kwargs))
        if not isinstance(cfg.extra_num_classes, int) or cfg.extra_num_classes < 0:
            raise ConfigError(
                f"model config: extra_num_classes must be an int >= 0 (0 = no second class head), "
                f"got {cfg.extra_num_classes!r}"
            )
        hidden_dim = self.head.num_features
        # Per-frame Dropout(0.5) + Linear heads on the head's hidden sequence (T-DEED's FCLayers).
        self.displacement_head = _frame_linear(hidden_dim, 1) if cfg.displacement else None
        self.extra_head = _frame_linear(hidden_dim, cfg.extra_num_classes + 1) if cfg.extra_num_classes else None
        self.team_head = _frame_linear(hidden_dim, 1) if cfg.team_head else None
        num_chans = self.modality.num_channels
        self.register_buffer("mean", torch.tensor(self.modality.mean).view(1, num_chans, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.modality.std).view(1, num_chans, 1, 1), persistent=False)

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

    def forward(self, x: torch.Tensor, tracks: torch.Tensor | None = None) -> SpotterOutput:
        """x (B, T, C, H, W) float in [0, 1], C = channels of the modality (3 rgb, 1 gray, 2 flow;
        ``e2espot.data.modality``); ``tracks`` (B, T, F) object-track features when the model fuses them
        (``models.fusion``).

        With ``pad_to_clip_len`` (E2E-Spot ``E2EModel.Impl.forward``), a clip with T < clip_len is
        zero-padded after normalisation to clip_len frames before the backbone (its temporal modules mix
        the padding into the last real frames) and the features are cut back to T.
        """
        num_chans = self.modality.num_channels
        if x.ndim != 5 or x.shape[2] != num_chans:
            raise ConfigError(f"Spotter expects clips (B, T, {num_chans}, H, W) for modality "
                              f"'{self.config.modality}', got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ConfigError(f"Spotter expects float frames in [0, 1], got dtype {x.dtype}; divide uint8 by 255")
        b, t, c, h, w = x.shape
        frames = (x.reshape(b * t, c, h, w) - self.mean) / self.std  # (B·T, C, H, W)
        t_model = t
        if self.config.pad_to_clip_len and t < self.config.clip_len:
            t_model = self.config.clip_len
            frames = F.pad(frames.reshape(b, t, c, h, w), (0, 0, 0, 0, 0, 0, 0, t_model - t))
            frames = frames.reshape(b * t_model, c, h, w)  # (B·clip_len, C, H, W)
        frames = self._match_stem_layout(frames)
        features = self.backbone(frames, num_frames=t_model).reshape(b, t_model, -1)[:, :t]  # (B, T, D)
        return self.forward_head(features, tracks)

    def _match_stem_layout(self, frames: torch.Tensor) -> torch.Tensor:
        stem = next((p for p in self.backbone.parameters() if p.ndim == 4), None)  # None: 3D (X3D) backbone
        if stem is not None and stem.is_contiguous(memory_format=torch.channels_last) and not stem.is_contiguous():
            return frames.contiguous(memory_format=torch.channels_last)
        return frames.contiguous()  # frames permuted from (..., H, W, 3) uint8 arrive channels_last-strided

    @property
    def has_frame_features(self) -> bool:
        """True when each frame's backbone features depend on that frame alone (a 2D backbone without a
        temporal module; not a clip backbone such as X3D), so ``frame_features`` may be computed once per
        frame and shared by windows."""
        return not self.backbone.temporal_modules() and not self.backbone.is_clip

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Backbone features of independent frames: (N, C, H, W) float in [0, 1] → (N, D).

        Only for backbones without temporal modules (``has_frame_features``); ``forward`` on a clip equals
        ``forward_head(frame_features(frames of the clip))``. Used by ``predict_scores`` to compute each
        frame once across overlapping windows.
        """
        if not self.has_frame_features:
            raise ConfigError(f"{self.config.backbone}+{self.config.temporal_module}: the backbone mixes "
                              "frames (temporal module), so per-frame features are not defined")
        frames = self._match_stem_layout((frames - self.mean) / self.std)
        return self.backbone(frames, num_frames=frames.shape[0]).reshape(frames.shape[0], -1)

    def forward_head(self, features: torch.Tensor, tracks: torch.Tensor | None = None) -> SpotterOutput:
        """The temporal head and the optional heads on backbone features (B, T, D) (fused with ``tracks``
        (B, T, F) first when the model fuses object tracks)."""
        from e2espot.models.fusion import fuse

        stages, hidden = self.head.forward_stages(fuse(self.track_fusion, features, tracks))
        displacement = team = extra = None
        if self.displacement_head is not None:
            displacement = self.displacement_head(hidden).squeeze(-1)  # (B, T)
        if self.team_head is not None:
            team = self.team_head(hidden).squeeze(-1)  # (B, T)
        if self.extra_head is not None:
            extra = self.extra_head(hidden)  # (B, T, K2+1)
        return SpotterOutput(stages[-1], stages, displacement, features, team, extra)

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
        if self.track_fusion is not None:
            rows.append((f"track fusion {cfg.track_fusion} (F={cfg.track_dim})", _count(self.track_fusion)))
        if self.displacement_head is not None:
            rows.append(("displacement head", _count(self.displacement_head)))
        if self.extra_head is not None:
            rows.append((f"second class head (K2+1={cfg.extra_num_classes + 1})", _count(self.extra_head)))
        if self.team_head is not None:
            rows.append(("team head", _count(self.team_head)))
        rows.append(("total", self.num_parameters()))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {n / 1e6:8.3f} M  ({n:,})" for name, n in rows)


def create_spotter(cfg: ModelConfig) -> Spotter:
    """Build the Spotter described by ``cfg`` (registry keys for backbone, temporal module and head).

    ``head="adaspot"`` builds the two-resolution AdaSpot model (``e2espot.models.adaspot``), which has the
    same interface (x (B, T, 3, H, W) in [0, 1] → SpotterOutput).
    """
    if cfg.head == "adaspot":
        from e2espot.models.adaspot import create_adaspot

        return create_adaspot(cfg)  # type: ignore[return-value]
    return Spotter(cfg)

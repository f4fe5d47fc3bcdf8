"""Fusion of per-frame object-track features (``e2espot.data.tracks``) with the backbone's frame features,
before the temporal head, as the Ball Action Spotting study fused YOLOv8 + ByteTrack tracks with CNN features.

``ModelConfig.track_fusion`` (``FUSIONS``):

* ``concat``: ``[f ; ReLU(W_p x + b_p)]`` -- the tracks ``x`` (B, T, F) projected to ``track_proj_dim`` and
  concatenated to the frame features ``f`` (B, T, D); the head gets D + track_proj_dim.
* ``gate``: ``f + sigmoid(W_g [f ; x] + b_g) * (W_p x + b_p)`` -- a learned per-channel sigmoid gate decides
  how much of the projected tracks (D channels) to add to each frame's features; the head gets D.
"""

from __future__ import annotations

import torch
from torch import nn

from e2espot.errors import ConfigError

FUSIONS = ("concat", "gate")


class ConcatFusion(nn.Module):
    def __init__(self, feature_dim: int, track_dim: int, proj_dim: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(track_dim, proj_dim), nn.ReLU())
        self.out_dim = feature_dim + proj_dim

    def forward(self, features: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:
        return torch.cat([features, self.proj(tracks.to(features.dtype))], dim=-1)  # (B, T, D + P)


class GateFusion(nn.Module):
    def __init__(self, feature_dim: int, track_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(track_dim, feature_dim)
        self.gate = nn.Linear(feature_dim + track_dim, feature_dim)
        self.out_dim = feature_dim

    def forward(self, features: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:
        tracks = tracks.to(features.dtype)
        gate = torch.sigmoid(self.gate(torch.cat([features, tracks], dim=-1)))  # (B, T, D)
        return features + gate * self.proj(tracks)  # (B, T, D)


def create_track_fusion(cfg, feature_dim: int) -> nn.Module | None:
    """The fusion module of ``cfg`` (a ModelConfig) for frame features of width ``feature_dim``, or None
    when ``cfg.track_fusion`` is None. ConfigError on an unknown kind or a bad dimension."""
    kind = getattr(cfg, "track_fusion", None)
    if kind is None:
        return None
    if kind not in FUSIONS:
        raise ConfigError(f"model config: unknown track_fusion '{kind}'; expected one of {', '.join(FUSIONS)}")
    if isinstance(cfg.track_dim, bool) or not isinstance(cfg.track_dim, int) or cfg.track_dim < 1:
        raise ConfigError(f"model config: track_dim {cfg.track_dim!r} must be a positive integer (features per frame)")
    if kind == "concat":
        return ConcatFusion(feature_dim, cfg.track_dim, int(cfg.track_proj_dim))
    return GateFusion(feature_dim, cfg.track_dim)


def fuse(fusion: nn.Module | None, features: torch.Tensor, tracks: torch.Tensor | None) -> torch.Tensor:
    """Frame features (B, T, D) fused with tracks (B, T, F) -> the head's input. ConfigError when a
    fusing model gets no tracks, or tracks reach a model without fusion, or the shapes disagree."""
    if fusion is None:
        if tracks is not None:
            raise ConfigError("tracks were given but the model has no track fusion (model.track_fusion is None)")
        return features
    if tracks is None:
        raise ConfigError("this model fuses object tracks (model.track_fusion); give tracks (B, T, F) with the frames")
    in_dim = fusion.proj[0].in_features if isinstance(fusion, ConcatFusion) else fusion.proj.in_features
    if tracks.shape[:2] != features.shape[:2] or tracks.shape[-1] != in_dim:
        raise ConfigError(f"tracks {tuple(tracks.shape)} do not match frame features {tuple(features.shape[:2])} "
                          f"x {in_dim} track features")
    return fusion(features, tracks)

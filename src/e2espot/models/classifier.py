"""The clip classifier's head: temporal pooling + a linear classifier (``train --task classify``).

A clip classifier is a :class:`~e2espot.models.spotter.Spotter` whose head is :class:`ClipPoolHead`
(``ModelConfig.head == CLIP_POOL_HEAD``): backbone (with its temporal modules, any modality) → per-frame
features (B, T, D) → mean over the T frames → Dropout → Linear(D, K+1). It keeps the heads' contract
(B, T, D) → (B, T, K+1) by giving every frame of a clip the clip's logits, so loading, precision and
export are the Spotter's; ``clip_logits(output)`` takes the (B, K+1) clip logits back.
"""

from __future__ import annotations

import torch
from torch import nn

from e2espot.errors import ConfigError

CLIP_POOL_HEAD = "clip_pool"  # ModelConfig.head of a clip classifier (not a spotting head: not in HEADS)
POOLINGS = ("mean", "max")


class ClipPoolHead(nn.Module):
    """(B, T, D) frame features → pooled over T (``pooling`` mean or max) → Dropout → Linear(D, K+1).

    ``forward_stages`` returns ``([logits (B, T, K+1)], hidden (B, T, D))``: the clip's logits and pooled
    features broadcast to every frame (a view, no copy).
    """

    num_stages = 1

    def __init__(self, feat_dim: int, num_outputs: int, *, pooling: str = "mean", dropout: float = 0.0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"clip classifier: pooling '{pooling}' must be one of {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.num_features = feat_dim
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(feat_dim, num_outputs)

    def forward_stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        pooled = x.mean(dim=1) if self.pooling == "mean" else x.amax(dim=1)  # (B, D)
        logits = self.fc(self.dropout(pooled))  # (B, K+1)
        t = x.shape[1]
        return [logits[:, None].expand(-1, t, -1)], pooled[:, None].expand(-1, t, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[0][-1]


def clip_logits(output) -> torch.Tensor:
    """(B, K+1) clip logits from a clip classifier's ``SpotterOutput`` (every frame holds the same row)."""
    return output.logits[:, 0]

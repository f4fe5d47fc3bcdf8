"""X3D clip backbones (X3D-XS/S/M/L) that keep the temporal resolution: clips → per-frame features.

Written from the paper (Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition",
CVPR 2020) and checked against PyTorchVideo 0.1.5 (``pytorchvideo.models.x3d.create_x3d``): same layers,
same parameter names (so PyTorchVideo's Kinetics-400 checkpoints load as they are) and the same parameter
counts. PyPI ``pytorchvideo`` 0.1.5 (2022) builds the model under torch 2.15 but pulls in fvcore/iopath,
and its ``transforms`` package no longer imports (``torchvision.transforms.functional_tensor`` is gone), so
e2espot carries its own copy of the network.

Architecture (X3D-S/M: width factor 2.0, depth factor 2.2, bottleneck factor 2.25; X3D-L: depth 5.0):

* stem: (1×3×3 conv, spatial stride 2) then a depthwise 5×1×1 temporal conv → 24 channels;
* 4 residual stages of 3, 5, 11, 7 bottlenecks (X3D-L: 5, 10, 25, 15) → 24, 48, 96, 192 channels,
  each: 1×1×1 conv → depthwise 3×3×3 conv (spatial stride 2 in the first block) → BN → SE (every other
  block, ratio 1/16) → swish → 1×1×1 conv, plus a shortcut;
* head: 1×1×1 conv to 432 channels, BN, ReLU, average pool, 1×1×1 conv to 2048, ReLU (, classifier).

Every temporal stride is 1 and every temporal kernel is padded, so T is kept for any T. For spotting the
head pools over space only: ``(B·T, C, H, W)`` frames → ``(B·T, 2048)`` features, one per frame.

XS, S and M share the network (3.79 M parameters with the 400-class Kinetics classifier, as PyTorchVideo's
model zoo lists; the paper's table rounds them to 3.8 M); they differ in the input they were trained on
(XS 4×160², S 13×160², M 16×224²) and so in their pretrained weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from e2espot.errors import CheckpointError, ConfigError
from e2espot.models.backbones import BackboneParts, Stage, adapt_stem
from e2espot.models.registry import register_backbone

#: PyTorchVideo's Kinetics-400 checkpoints (``{"model_state": state_dict}``), as its hub module lists them.
HUB_URLS = {
    "x3d_xs": "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_XS.pyth",
    "x3d_s": "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_S.pyth",
    "x3d_m": "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_M.pyth",
    "x3d_l": "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_L.pyth",
}


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """Channels after scaling by ``multiplier``, rounded to a multiple of ``divisor`` (X3D/PyTorchVideo rule)."""
    width *= multiplier
    out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if out < 0.9 * width:
        out += divisor
    return int(out)


def round_repeats(repeats: int, multiplier: float) -> int:
    """Blocks in a stage after scaling its depth by ``multiplier`` (rounded up)."""
    return math.ceil(multiplier * repeats)


class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class SqueezeExcitation(nn.Module):
    """Channel gate: global mean over (T, H, W) → 1×1×1 conv → ReLU → 1×1×1 conv → sigmoid → scale."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv3d(channels, reduced, 1), nn.ReLU(), nn.Conv3d(reduced, channels, 1),
                                   nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(x.mean(dim=(2, 3, 4), keepdim=True))


class Conv2plus1d(nn.Module):
    """The X3D stem conv. PyTorchVideo names the spatial conv ``conv_t`` and the temporal one ``conv_xy``;
    the names are kept so that its checkpoints load."""

    def __init__(self, cin: int, cout: int, temporal_kernel: int = 5) -> None:
        super().__init__()
        self.conv_t = nn.Conv3d(cin, cout, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False)
        self.conv_xy = nn.Conv3d(cout, cout, (temporal_kernel, 1, 1), 1, (temporal_kernel // 2, 0, 0),
                                 groups=cout, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_xy(self.conv_t(x))


class Stem(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = Conv2plus1d(cin, cout)
        self.norm = nn.BatchNorm3d(cout)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(x)))


class Bottleneck(nn.Module):
    """1×1×1 → depthwise 3×3×3 (stride) → BN (→ SE) → swish → 1×1×1 → BN."""

    def __init__(self, cin: int, inner: int, cout: int, stride: int, se_ratio: float) -> None:
        super().__init__()
        self.conv_a = nn.Conv3d(cin, inner, 1, bias=False)
        self.norm_a = nn.BatchNorm3d(inner)
        self.act_a = nn.ReLU()
        self.conv_b = nn.Conv3d(inner, inner, 3, (1, stride, stride), 1, groups=inner, bias=False)
        se = SqueezeExcitation(inner, round_width(inner, se_ratio)) if se_ratio > 0 else nn.Identity()
        self.norm_b = nn.Sequential(nn.BatchNorm3d(inner), se)
        self.act_b = Swish()
        self.conv_c = nn.Conv3d(inner, cout, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class ResBlock(nn.Module):
    def __init__(self, cin: int, inner: int, cout: int, stride: int, se_ratio: float) -> None:
        super().__init__()
        # PyTorchVideo's rule: a 1×1×1 shortcut conv when the shape changes, a BN after it only when the
        # width does (stage 1 keeps 24 channels: its strided shortcut has no BN).
        conv = cin != cout or stride != 1
        self.branch1_conv = nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False) if conv else None
        self.branch1_norm = nn.BatchNorm3d(cout) if cin != cout else None
        self.branch2 = Bottleneck(cin, inner, cout, stride, se_ratio)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.branch1_conv is None else self.branch1_conv(x)
        if self.branch1_norm is not None:
            shortcut = self.branch1_norm(shortcut)
        return self.activation(shortcut + self.branch2(x))


class ResStage(nn.Module):
    def __init__(self, depth: int, cin: int, inner: int, cout: int, se_ratio: float) -> None:
        super().__init__()
        # SE in every other block (the 1st, 3rd, ...), spatial stride 2 in the first block.
        self.res_blocks = nn.ModuleList(
            ResBlock(cin if i == 0 else cout, inner, cout, 2 if i == 0 else 1, se_ratio if i % 2 == 0 else 0.0)
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


class FramePool(nn.Module):
    """PyTorchVideo's ``ProjectedPool`` with the average over space only: (B, C, T, H, W) → (B, D, T)."""

    def __init__(self, cin: int, inner: int, cout: int) -> None:
        super().__init__()
        self.pre_conv = nn.Conv3d(cin, inner, 1, bias=False)
        self.pre_norm = nn.BatchNorm3d(inner)
        self.pre_act = nn.ReLU()
        self.post_conv = nn.Conv3d(inner, cout, 1, bias=False)
        self.post_act = nn.ReLU()

    def forward(self, x: torch.Tensor, over_time: bool = False) -> torch.Tensor:
        x = self.pre_act(self.pre_norm(self.pre_conv(x)))
        x = x.mean(dim=(2, 3, 4) if over_time else (3, 4), keepdim=True)  # (B, inner, T or 1, 1, 1)
        return self.post_act(self.post_conv(x)).flatten(2)  # (B, D, T or 1)


class FeatureHead(nn.Module):
    def __init__(self, cin: int, inner: int, cout: int, num_classes: int) -> None:
        super().__init__()
        self.pool = FramePool(cin, inner, cout)
        self.proj = nn.Linear(cout, num_classes) if num_classes > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


class X3D(nn.Module):
    """X3D with per-frame features.

    ``forward(x, num_frames)``: ``x`` (B·T, C, H, W) normalised frames, frame-major within each clip, →
    (B·T, ``num_features``). ``forward_clip(x)``: (B, C, T, H, W) → (B, ``num_features``, T).
    ``classify(x)``: (B, C, T, H, W) → (B, num_classes) Kinetics logits (only with ``num_classes > 0``).

    Args:
        depth_factor: 2.2 for XS/S/M, 5.0 for L.
        in_chans: input channels (3 RGB, 1 gray).
        num_classes: 0 (features only, the spotting case) or the classifier width (400 for Kinetics).
        trainable_stages: None trains everything; N in 0..4 freezes the stem and all residual stages but
            the last N (weights and BatchNorm statistics); the feature head always trains.
    """

    num_stages = 4

    def __init__(self, depth_factor: float = 2.2, width_factor: float = 2.0, in_chans: int = 3,
                 num_classes: int = 0, trainable_stages: int | None = None) -> None:
        super().__init__()
        if not isinstance(in_chans, int) or in_chans < 1:
            raise ConfigError(f"X3D: in_chans must be an int >= 1, got {in_chans!r}")
        stem_dim = round_width(12, width_factor)  # 24
        dims = [12, 24, 48, 96]  # X3D stage widths before the width expansion
        blocks: list[nn.Module] = [Stem(in_chans, stem_dim)]
        cin = stem_dim
        for base, depth in zip(dims, (1, 2, 5, 3), strict=True):
            cout = round_width(base, width_factor)
            inner = int(2.25 * cout)
            blocks.append(ResStage(round_repeats(depth, depth_factor), cin, inner, cout, se_ratio=0.0625))
            cin = cout
        self.num_features = 2048
        blocks.append(FeatureHead(cin, int(2.25 * cin), self.num_features, num_classes))
        self.blocks = nn.ModuleList(blocks)  # stem, 4 residual stages, head (PyTorchVideo's layout)
        self.trainable_stages = None
        self.set_trainable_stages(trainable_stages)

    # ---- freezing ------------------------------------------------------------------------------------------

    def frozen_blocks(self) -> list[nn.Module]:
        if self.trainable_stages is None:
            return []
        return list(self.blocks[: 1 + self.num_stages - self.trainable_stages])

    def set_trainable_stages(self, trainable_stages: int | None) -> None:
        """Freeze the stem and all residual stages but the last ``trainable_stages`` (None: train all)."""
        if trainable_stages is not None and (
            isinstance(trainable_stages, bool) or not isinstance(trainable_stages, int)
            or not 0 <= trainable_stages <= self.num_stages
        ):
            raise ConfigError(
                f"X3D: trainable_stages must be None (train all) or an int in 0..{self.num_stages} "
                f"(residual stages left trainable), got {trainable_stages!r}"
            )
        self.trainable_stages = trainable_stages
        frozen = {id(p) for block in self.frozen_blocks() for p in block.parameters()}
        for p in self.parameters():
            p.requires_grad_(id(p) not in frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> X3D:
        super().train(mode)
        for block in self.frozen_blocks():  # frozen BatchNorm keeps its pretrained statistics
            block.eval()
        return self

    # ---- forward -------------------------------------------------------------------------------------------

    def forward_clip(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, D, T)."""
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """(B·T, C, H, W) → (B·T, D)."""
        n, c, h, w = x.shape
        if n % num_frames:
            raise ConfigError(f"X3D: {n} frames do not split into clips of {num_frames} frames")
        clips = x.reshape(n // num_frames, num_frames, c, h, w).transpose(1, 2)  # (B, C, T, H, W)
        return self.forward_clip(clips).transpose(1, 2).reshape(n, -1)  # (B·T, D)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, num_classes) logits, PyTorchVideo's clip classifier (dropout aside)."""
        head = self.blocks[-1]
        if head.proj is None:
            raise ConfigError("X3D: built with num_classes=0 (features only); no classifier")
        for block in self.blocks[:-1]:
            x = block(x)
        return head.proj(head.pool(x, over_time=True).flatten(1))  # pooled over (T, H, W) as in the paper


# ---- weights and factories ---------------------------------------------------------------------------------


STEM_KEY = "blocks.0.conv.conv_t.weight"


def hub_state_dict(name: str) -> dict[str, torch.Tensor]:
    """Download (or read from torch's hub cache) PyTorchVideo's Kinetics-400 weights of ``name``.

    Raises CheckpointError when the file cannot be had (offline, no cache) with the URL to fetch by hand.
    """
    url = HUB_URLS[name]
    try:
        checkpoint = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False,
                                                        weights_only=True)
    except Exception as exc:  # URLError when offline, HTTPError, a corrupt download, ...
        raise CheckpointError(
            f"cannot get the Kinetics-400 weights of backbone '{name}' from {url} ({type(exc).__name__}: "
            f"{exc}). Go online once (torch caches the file), or download it by hand and pass "
            "--pretrained PATH"
        ) from exc
    state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(state, dict):
        raise CheckpointError(f"{url}: expected a dict with 'model_state', got {type(state).__name__}")
    return state


def _x3d(name: str, pretrained: bool, depth_factor: float, in_chans: int,
         trainable_stages: int | None) -> BackboneParts:
    net = X3D(depth_factor=depth_factor, in_chans=in_chans)
    if pretrained:
        state = {k: v for k, v in hub_state_dict(name).items() if not k.startswith("blocks.5.proj.")}
        if STEM_KEY in state:
            state[STEM_KEY] = adapt_stem(state[STEM_KEY], in_chans)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"{HUB_URLS[name]}: does not fit backbone '{name}' (missing {missing[:5]}, unexpected "
                f"{unexpected[:5]})"
            )
    net.set_trainable_stages(trainable_stages)
    stages: list[Stage] = []  # 3D convolutions already mix time: no temporal module goes in
    return BackboneParts(net, net.num_features, stages, classifier="blocks.5.proj", clip=True,
                         stem_key=STEM_KEY)


_META = {"channels_last": False, "clip": True}  # 5-D weights: no channels_last


@register_backbone("x3d_xs", input_frames=4, input_size=160, **_META)
def x3d_xs(pretrained: bool = False, in_chans: int = 3, trainable_stages: int | None = None) -> BackboneParts:
    return _x3d("x3d_xs", pretrained, 2.2, in_chans, trainable_stages)


@register_backbone("x3d_s", input_frames=13, input_size=160, **_META)
def x3d_s(pretrained: bool = False, in_chans: int = 3, trainable_stages: int | None = None) -> BackboneParts:
    return _x3d("x3d_s", pretrained, 2.2, in_chans, trainable_stages)


@register_backbone("x3d_m", input_frames=16, input_size=224, **_META)
def x3d_m(pretrained: bool = False, in_chans: int = 3, trainable_stages: int | None = None) -> BackboneParts:
    return _x3d("x3d_m", pretrained, 2.2, in_chans, trainable_stages)


@register_backbone("x3d_l", input_frames=16, input_size=312, **_META)
def x3d_l(pretrained: bool = False, in_chans: int = 3, trainable_stages: int | None = None) -> BackboneParts:
    return _x3d("x3d_l", pretrained, 5.0, in_chans, trainable_stages)

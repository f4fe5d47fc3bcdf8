"""Per-frame 2D CNN backbones (timm, ``num_classes=0``) with temporal modules inserted in their blocks.

Each registered factory returns :class:`BackboneParts`: the classifier-free network (whose forward maps
(N, 3, H, W) → (N, D)) and its stages as lists of ``(block, first_conv_attribute)``. ``create_backbone``
loads weights, wraps the first conv of every block of the chosen stages with a temporal module, and
returns a :class:`Backbone`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from e2espot.errors import CheckpointError, ConfigError, E2ESpotError
from e2espot.models.registry import BACKBONES, TEMPORAL_MODULES, register_backbone
from e2espot.models.temporal import TemporalModule, wrap_conv

Stage = list[tuple[nn.Module, str]]  # (block, name of its first conv)


@dataclass
class BackboneParts:
    """What a backbone factory returns."""

    net: nn.Module  # forward: (N, 3, H, W) -> (N, D)
    num_features: int
    stages: list[Stage]
    classifier: str | None = None  # prefix of classifier keys in full ImageNet state dicts (dropped on load)
    clip: bool = False  # True: net is a clip model, forward(x (B·T, C, H, W), num_frames) -> (B·T, D)
    stem_key: str | None = None  # first conv weight: adapted (timm-style) when in_chans differs from the file


class Backbone(nn.Module):
    """A per-frame CNN: (B·T, 3, H, W) → (B·T, D), with temporal modules that need T."""

    def __init__(self, name: str, parts: BackboneParts, temporal_module: str | None,
                 temporal_stages: tuple[int, ...], clip_len: int | None) -> None:
        super().__init__()
        self.name = name
        self.model = parts.net
        self.num_features = parts.num_features
        self.temporal_module = temporal_module
        self.temporal_stages = temporal_stages
        self.clip_len = clip_len
        self.is_clip = parts.clip

    def temporal_modules(self) -> list[TemporalModule]:
        return [m for m in self.modules() if isinstance(m, TemporalModule)]

    def set_num_frames(self, num_frames: int) -> None:
        for module in self.temporal_modules():
            module.num_frames = num_frames

    def forward_features(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(B·T, 3, H, W) normalised frames → (B·T, D) pooled features."""
        num_frames = num_frames or self.clip_len
        if num_frames is not None:
            self.set_num_frames(num_frames)
        if self.is_clip:
            if num_frames is None:
                raise ConfigError(f"backbone '{self.name}' is a clip model: give num_frames (or clip_len)")
            return self.model(x, num_frames)
        return self.model(x)

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        return self.forward_features(x, num_frames)


# ---- weights -------------------------------------------------------------------------------------------


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weight file: safetensors, or a torch file loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"pretrained weights '{path}': file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with non-tensor objects, ...
        raise CheckpointError(f"pretrained weights '{path}': cannot read ({exc})") from exc
    for key in ("state_dict", "model", "model_state"):  # model_state: PyTorchVideo checkpoints
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"pretrained weights '{path}': expected a state dict of tensors")
    return state


def adapt_stem(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB stem weights (out, 3, ...) for ``in_chans`` inputs, as timm's ``adapt_input_conv`` does
    (timm/models/_manipulate.py, what ``timm.create_model(..., pretrained=True, in_chans=N)`` applies):
    summed over the channels for 1 (gray), the RGB filters repeated to ``in_chans`` and scaled by
    3 / in_chans otherwise (flow: 2 channels = R, G filters x 1.5). Used for every local weight file
    (timm backbones, ``test_tiny``, X3D), so all backbone families adapt alike."""
    if in_chans == weight.shape[1]:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = math.ceil(in_chans / weight.shape[1])
    return weight.repeat(1, reps, *([1] * (weight.ndim - 2)))[:, :in_chans] * (weight.shape[1] / in_chans)


def load_weights(parts: BackboneParts, path: str | Path, name: str) -> None:
    """Load a local ImageNet state dict into ``parts.net`` (classifier keys are ignored)."""
    state = read_state_dict(path)
    if parts.classifier:
        state = {k: v for k, v in state.items() if not k.startswith(parts.classifier + ".")}
    own = parts.net.state_dict()
    if parts.stem_key and parts.stem_key in state and parts.stem_key in own:
        state[parts.stem_key] = adapt_stem(state[parts.stem_key], own[parts.stem_key].shape[1])
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

        problems = []
        if missing:
            problems.append(f"missing keys: {few(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {few(unexpected)}")
        if wrong:
            problems.append("shape mismatch: " + few(
                [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in wrong]))
        raise CheckpointError(
            f"pretrained weights '{path}' do not fit backbone '{name}': {'; '.join(problems)}. "
            "Use a state dict of the plain timm model of this backbone (X3D: a PyTorchVideo checkpoint)"
        )
    parts.net.load_state_dict(state)


# ---- factories -----------------------------------------------------------------------------------------


def _timm(model_name: str, pretrained: bool, stages_of, in_chans: int = 3) -> BackboneParts:
    import timm

    try:
        net = timm.create_model(model_name, pretrained=pretrained, num_classes=0, in_chans=in_chans)
    except Exception as exc:
        if not pretrained:
            raise
        raise CheckpointError(
            f"cannot get ImageNet weights for timm '{model_name}' ({type(exc).__name__}: {exc}). "
            "Go online once, or pass a local weight file (--pretrained PATH)"
        ) from exc
    first_conv = net.pretrained_cfg.get("first_conv")  # e.g. "stem.conv" (RegNet), "conv1" (ResNet)
    return BackboneParts(net, net.num_features, stages_of(net), net.pretrained_cfg.get("classifier"),
                         stem_key=f"{first_conv}.weight" if first_conv else None)


def _blocks(stage: nn.Module, conv: str) -> Stage:
    return [(block, conv) for block in stage.children()]


def _regnet_stages(net: nn.Module) -> list[Stage]:
    return [_blocks(getattr(net, f"s{i}"), "conv1") for i in range(1, 5)]


def _resnet_stages(net: nn.Module) -> list[Stage]:
    return [_blocks(getattr(net, f"layer{i}"), "conv1") for i in range(1, 5)]


def _convnext_stages(net: nn.Module) -> list[Stage]:
    return [_blocks(stage.blocks, "conv_dw") for stage in net.stages]


def _efficientnet_stages(net: nn.Module) -> list[Stage]:
    # The first conv: conv_pw of an inverted residual, conv_dw of the first depthwise-separable block.
    return [[(b, "conv_pw" if hasattr(b, "conv_pw") else "conv_dw") for b in stage] for stage in net.blocks]


@register_backbone("rny002")
def rny002(pretrained: bool = False, in_chans: int = 3) -> BackboneParts:
    return _timm("regnety_002", pretrained, in_chans=in_chans, stages_of=_regnet_stages)


@register_backbone("rny008")
def rny008(pretrained: bool = False, in_chans: int = 3) -> BackboneParts:
    return _timm("regnety_008", pretrained, in_chans=in_chans, stages_of=_regnet_stages)


@register_backbone("rn18")
def rn18(pretrained: bool = False, in_chans: int = 3) -> BackboneParts:
    return _timm("resnet18", pretrained, in_chans=in_chans, stages_of=_resnet_stages)


@register_backbone("rn50")
def rn50(pretrained: bool = False, in_chans: int = 3) -> BackboneParts:
    return _timm("resnet50", pretrained, in_chans=in_chans, stages_of=_resnet_stages)


@register_backbone("effb0")
def effb0(pretrained: bool = False, in_chans: int = 3) -> BackboneParts:
    return _timm("efficientnet_b0", pretrained, in_chans=in_chans, stages_of=_efficientnet_stages)


@register_backbone("convnextt")
def convnextt(pretrained: bool = False, in_chans: int = 3) -> BackboneParts:
    return _timm("convnext_tiny", pretrained, in_chans=in_chans, stages_of=_convnext_stages)


class _ConvBnAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, act: bool = True) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU() if act else nn.Identity(),
        )


class TinyBlock(nn.Module):
    """A RegNet-like bottleneck: conv1 (1×1) → conv2 (3×3, stride) → conv3 (1×1) + shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _ConvBnAct(cin, cout, 1)
        self.conv2 = _ConvBnAct(cout, cout, 3, stride)
        self.conv3 = _ConvBnAct(cout, cout, 1, act=False)
        self.downsample = _ConvBnAct(cin, cout, 1, stride, act=False) if stride != 1 or cin != cout else None
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act(self.conv3(self.conv2(self.conv1(x))) + shortcut)


class TinyNet(nn.Module):
    """The ``test_tiny`` backbone: stem + 2 stages × 2 bottlenecks, ~25k parameters.

    Features are the global average and the global max of the last 32 channels (64-d): the max keeps
    small, salient things (a ball, a kicking leg) that an average over the frame washes out.
    """

    num_features = 64

    def __init__(self, in_chans: int = 3) -> None:
        super().__init__()
        self.stem = _ConvBnAct(in_chans, 16, 3, stride=2)
        self.s1 = nn.Sequential(TinyBlock(16, 16, 2), TinyBlock(16, 16))
        self.s2 = nn.Sequential(TinyBlock(16, 32, 2), TinyBlock(32, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s2(self.s1(self.stem(x)))  # (N, 32, H/8, W/8)
        return torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1)  # (N, 64)


@register_backbone("test_tiny", channels_last=False)  # few channels: NCHW is faster on CPU, bf16 most
def test_tiny(pretrained: bool = False, in_chans: int = 3) -> BackboneParts:
    if pretrained:
        raise ConfigError("backbone 'test_tiny' has no ImageNet weights; use pretrained=False or a local file")
    net = TinyNet(in_chans)
    return BackboneParts(net, net.num_features, [_blocks(net.s1, "conv1"), _blocks(net.s2, "conv1")],
                         stem_key="stem.0.weight")


# ---- creation ------------------------------------------------------------------------------------------


def create_backbone(
    name: str,
    pretrained: bool | str = False,
    temporal_module: str | None = None,
    temporal_stages: Sequence[int] | None = None,
    clip_len: int | None = None,
    in_chans: int = 3,
    backbone_kwargs: Mapping[str, Any] | None = None,
) -> Backbone:
    """Build a registered backbone.

    Args:
        name: registry key (``list_backbones()``).
        pretrained: ``True`` for timm's ImageNet weights (needs network), a path for a local state dict
            (safetensors or torch) of the plain timm model, ``False`` for random init.
        temporal_module: registry key (``list_temporal_modules()``) or None.
        temporal_stages: 1-based stage numbers that get the module (None = all stages).
        clip_len: default T when ``forward`` is called without ``num_frames``.
        in_chans: input channels of the stem (3 rgb, 1 gray, 2 flow: ``e2espot.data.modality``). Pretrained
            RGB weights are adapted to it as timm does (``adapt_stem``): by timm for downloaded weights, by
            ``load_weights`` for a local file (``BackboneParts.stem_key``).
        backbone_kwargs: options of this backbone's factory (e.g. X3D ``trainable_stages``).

    Raises:
        ConfigError: an option this backbone does not take, a temporal module on a clip (3D) backbone,
            bad ``temporal_stages``.
    """
    entry = BACKBONES.get(name)
    if temporal_module is not None:
        TEMPORAL_MODULES.get(temporal_module)
        if entry.meta.get("clip"):
            raise ConfigError(
                f"backbone '{name}' is a 3D clip model; it takes no temporal module (got "
                f"'{temporal_module}'). Use the plain name, e.g. -m {name}"
            )
    kwargs = dict(backbone_kwargs or {})
    if "in_chans" in kwargs:
        raise ConfigError(
            f"backbone '{name}': in_chans comes from the modality (ModelConfig.modality), not backbone_kwargs"
        )
    kwargs["in_chans"] = in_chans
    accepted = set(inspect.signature(entry.factory).parameters) - {"pretrained"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"backbone '{name}' does not take option(s) {unknown}; it takes {sorted(accepted) or 'none'}"
        )
    if isinstance(pretrained, (str, Path)):
        parts = entry.factory(pretrained=False, **kwargs)
        load_weights(parts, pretrained, name)
    else:
        parts = entry.factory(pretrained=bool(pretrained), **kwargs)
    num_stages = len(parts.stages)
    stages = tuple(range(1, num_stages + 1)) if temporal_stages is None else tuple(temporal_stages)
    bad = [s for s in stages if not (isinstance(s, int) and 1 <= s <= num_stages)]
    if bad:
        raise ConfigError(
            f"temporal_stages {list(stages)}: backbone '{name}' has stages 1..{num_stages}; got {bad}"
        )
    if temporal_module is not None:
        for s in stages:
            for block, attr in parts.stages[s - 1]:
                try:
                    setattr(block, attr, wrap_conv(getattr(block, attr), temporal_module))
                except E2ESpotError as exc:
                    raise ConfigError(f"backbone '{name}', stage {s}: {exc}") from None
    return Backbone(name, parts, temporal_module, stages if temporal_module else (), clip_len)

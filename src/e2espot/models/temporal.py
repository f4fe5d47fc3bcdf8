"""Temporal modules inserted into the blocks of a 2D backbone (TSM, GSM, GSF, ASTRM).

Every module works on frames flattened to (N, C, H, W) with N = B·T and needs the number of frames T of
the clip. T is set per forward through the ``num_frames`` attribute (the Backbone sets it on all its
temporal modules before each call), so any T works. All modules are out of place and CPU-capable.

Insertion: a module registered with ``position="before"`` runs on the input of a block's first conv
(E2E-Spot's shift modules); ``position="after"`` runs on that conv's output (ASTRM).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from e2espot.errors import ConfigError
from e2espot.models.registry import TEMPORAL_MODULES, register_temporal_module


class TemporalModule(nn.Module):
    """Base class: knows the clip length T of the current forward (``num_frames``)."""

    num_frames: int | None = None

    def _batch(self, x: torch.Tensor) -> tuple[int, int]:
        """(B, T) for frames x of shape (B·T, C, H, W)."""
        num_frames = self.num_frames
        if num_frames is None or num_frames < 1:
            raise ConfigError(
                f"{type(self).__name__}: the clip length is unknown; call the backbone with num_frames=T "
                "(the Spotter does this for you)"
            )
        if x.shape[0] % num_frames:
            raise ConfigError(
                f"{type(self).__name__}: {x.shape[0]} frames is not a whole number of clips of "
                f"{num_frames} frames; feed (B·T, C, H, W) with T = num_frames"
            )
        return x.shape[0] // num_frames, num_frames


def shift_time(x: torch.Tensor, offset: int, dim: int) -> torch.Tensor:
    """Out-of-place shift along ``dim`` with zeros at the clip edges.

    ``offset=+1``: frame t takes frame t+1 (the last frame becomes 0);
    ``offset=-1``: frame t takes frame t-1 (the first frame becomes 0).
    """
    length = x.shape[dim]
    zeros_shape = list(x.shape)
    zeros_shape[dim] = 1
    zeros = x.new_zeros(zeros_shape)
    if offset == 1:
        return torch.cat([x.narrow(dim, 1, length - 1), zeros], dim=dim)
    if offset == -1:
        return torch.cat([zeros, x.narrow(dim, 0, length - 1)], dim=dim)
    raise ValueError(f"offset must be +1 or -1, got {offset}")


class TemporalShift(TemporalModule):
    """TSM: the first C/fold_div channels take frame t+1, the next C/fold_div take frame t-1."""

    def __init__(self, channels: int, fold_div: int = 8) -> None:
        super().__init__()
        self.channels = channels
        self.fold = channels // fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = self._batch(x)
        n, c, h, w = x.shape
        fold = self.fold
        if fold == 0:
            return x
        x5 = x.reshape(b, t, c, h, w)  # (B, T, C, H, W)
        out = torch.cat(
            [shift_time(x5[:, :, :fold], +1, dim=1), shift_time(x5[:, :, fold:2 * fold], -1, dim=1),
             x5[:, :, 2 * fold:]],
            dim=2,
        )
        return out.reshape(n, c, h, w)


def gsm_fold(channels: int, n_div: int = 4) -> int:
    """Number of channels GSM/GSF process: ceil((C // n_div) / 4) * 4 (E2E-Spot / T-DEED)."""
    return math.ceil((channels // n_div) / 4) * 4


def _interleave(y: torch.Tensor) -> torch.Tensor:
    """GSM's fixed channel permutation of one half: (B, h, T, H, W) viewed as (B, 2, h/2, ...) → (B, h/2, 2, ...)."""
    b, half, t, hh, ww = y.shape
    return y.reshape(b, 2, half // 2, t, hh, ww).transpose(1, 2).reshape(b, half, t, hh, ww)


class FlatConv3d(nn.Module):
    """A Conv3d whose weight is stored flattened to 3-D, (out, in/groups, kd·kh·kw).

    ``model.to(memory_format=torch.channels_last)`` converts every 4-D and 5-D parameter and fails on
    5-D ones; storing the kernel flat keeps whole Spotters convertible to channels_last.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> None:
        super().__init__()
        ref = nn.Conv3d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups)
        self.kernel_size = (kernel_size,) * 3
        self.groups = groups
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(ref.weight.detach().flatten(2).clone())  # PyTorch's default init
        self.bias = nn.Parameter(ref.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.reshape(*self.weight.shape[:2], *self.kernel_size)
        return F.conv3d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class GateShift(TemporalModule):
    """GSM (E2E-Spot ``_GSM``/``GatedShift``), and with ``fuse=True`` GSF (T-DEED ``_GSF``).

    Only the first ``fold = ceil((C//4)/4)*4`` channels are processed; the rest pass through.
    gate = tanh(Conv3d(fold→2, 3×3×3, groups 2)(ReLU(BN3d(x)))), one gate per half of the fold.
    For each half: y = gate·x, r = x − y; half 1 shifts y so frame t takes t+1, half 2 so t takes t−1
    (zeros at the clip edges). GSM: out = shift(y) + r. GSF: out = shift(y)·w + r·(1 − w) with
    w = sigmoid(Conv2d(2→1, 3×3)([pool_HW(shift(y)); pool_HW(r)])) per channel and frame.
    Then both halves get GSM's fixed channel re-interleave. GSM's Conv3d is zero-initialised (the module
    is then the identity up to that permutation); GSF keeps PyTorch's default init, like T-DEED.
    """

    def __init__(self, channels: int, n_div: int = 4, fuse: bool = False) -> None:
        super().__init__()
        fold = gsm_fold(channels, n_div)
        if fold < 4 or fold > channels:
            raise ConfigError(f"gate shift needs at least {n_div * 4} channels, got {channels}")
        self.channels = channels
        self.fold = fold
        self.fuse = fuse
        self.bn = nn.BatchNorm3d(fold)
        self.conv3d = FlatConv3d(fold, 2, kernel_size=3, groups=2)
        if fuse:
            self.fuse_conv1 = nn.Conv2d(2, 1, kernel_size=3, padding=1)
            self.fuse_conv2 = nn.Conv2d(2, 1, kernel_size=3, padding=1)
        else:
            nn.init.zeros_(self.conv3d.weight)
            nn.init.zeros_(self.conv3d.bias)

    @staticmethod
    def _fuse(conv: nn.Conv2d, y: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        pooled = torch.stack([y.mean((3, 4)), r.mean((3, 4))], dim=1)  # (B, 2, h, T)
        weight = torch.sigmoid(conv(pooled))[:, 0, :, :, None, None]  # (B, h, T, 1, 1)
        return y * weight + r * (1 - weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = self._batch(x)
        n, c, h, w = x.shape
        fold, half = self.fold, self.fold // 2
        xs = x[:, :fold].reshape(b, t, fold, h, w).transpose(1, 2)  # (B, fold, T, H, W)
        gate = torch.tanh(self.conv3d(F.relu(self.bn(xs))))  # (B, 2, T, H, W)
        x1, x2 = xs[:, :half], xs[:, half:]
        y1, y2 = gate[:, :1] * x1, gate[:, 1:] * x2
        r1, r2 = x1 - y1, x2 - y2
        y1, y2 = shift_time(y1, +1, dim=2), shift_time(y2, -1, dim=2)
        if self.fuse:
            out1, out2 = self._fuse(self.fuse_conv1, y1, r1), self._fuse(self.fuse_conv2, y2, r2)
        else:
            out1, out2 = y1 + r1, y2 + r2
        y = torch.cat([_interleave(out1), _interleave(out2)], dim=1)  # (B, fold, T, H, W)
        y = y.transpose(1, 2).reshape(n, fold, h, w)
        return torch.cat([y, x[:, fold:]], dim=1)


class ASTRM(TemporalModule):
    """Adaptive spatio-temporal refinement, applied to the output of a block's first conv.

    With x viewed as (B, C, T, H, W)::

        Fs(x) = sigmoid(Conv2d_7x7([mean_C x; max_C x]))              per frame, (B, 1, T, H, W)
        Ft(x) = sigmoid(Conv_1x1x1(BN(ReLU(Conv_3x1x1(GAP_HW x)))))   local temporal, (B, C, T, 1, 1);
                (on the pooled (B, C, T) these convs are Conv1d with kernels 3 and 1)
        Gt(x) = softmax_k(FC(ReLU(FC(GAP_THW x))))                    per-sample temporal kernel, (B, k)
        out   = Gt(x) ⊛_T [x · (1 + Fs(x)) · (1 + Ft(x))]             zero-padded temporal conv, same kernel
                                                                      for every channel of a sample

    The kernel logits start at (0, 4, 0) for k = 3 (centre weight ≈ 0.96) so a pretrained backbone is
    disturbed little at initialisation.
    """

    def __init__(self, channels: int, reduction: int = 4, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"astrm kernel_size must be odd and >= 1, got {kernel_size}")
        hidden = max(channels // reduction, 8)
        self.kernel_size = kernel_size
        self.spatial = nn.Conv2d(2, 1, kernel_size=7, padding=3)
        self.t_conv1 = nn.Conv1d(channels, hidden, kernel_size=3, padding=1)  # the 3×1×1 conv on pooled x
        self.t_bn = nn.BatchNorm1d(hidden)
        self.t_conv2 = nn.Conv1d(hidden, channels, kernel_size=1)
        self.g_fc1 = nn.Linear(channels, hidden)
        self.g_fc2 = nn.Linear(hidden, kernel_size)
        nn.init.zeros_(self.g_fc2.weight)
        with torch.no_grad():
            self.g_fc2.bias.zero_()
            self.g_fc2.bias[kernel_size // 2] = 4.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = self._batch(x)
        n, c, h, w = x.shape
        fs = torch.sigmoid(self.spatial(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
        fs = fs.reshape(b, t, 1, h, w).transpose(1, 2)  # (B, 1, T, H, W)
        x5 = x.reshape(b, t, c, h, w).transpose(1, 2)  # (B, C, T, H, W)
        pooled = x5.mean((3, 4))  # (B, C, T)
        ft = torch.sigmoid(self.t_conv2(self.t_bn(F.relu(self.t_conv1(pooled)))))[..., None, None]  # (B, C, T, 1, 1)
        kernel = torch.softmax(self.g_fc2(F.relu(self.g_fc1(pooled.mean(2)))), dim=-1)  # (B, k)
        y = x5 * (1 + fs) * (1 + ft)
        pad = self.kernel_size // 2
        y = F.pad(y, (0, 0, 0, 0, pad, pad))  # zero frames at both clip edges
        out = sum(kernel[:, j].reshape(b, 1, 1, 1, 1) * y[:, :, j:j + t] for j in range(self.kernel_size))
        return out.transpose(1, 2).reshape(n, c, h, w)


@register_temporal_module("tsm", position="before")
def tsm(channels: int) -> TemporalModule:
    return TemporalShift(channels, fold_div=8)


@register_temporal_module("gsm", position="before")
def gsm(channels: int) -> TemporalModule:
    return GateShift(channels, n_div=4, fuse=False)


@register_temporal_module("gsf", position="before")
def gsf(channels: int) -> TemporalModule:
    return GateShift(channels, n_div=4, fuse=True)


@register_temporal_module("astrm", position="after")
def astrm(channels: int) -> TemporalModule:
    return ASTRM(channels)


class TemporalWrapper(nn.Module):
    """A block's first conv with a temporal module before (shift modules) or after (ASTRM) it."""

    def __init__(self, conv: nn.Module, temporal: TemporalModule, position: str) -> None:
        super().__init__()
        self.conv = conv
        self.temporal = temporal
        self.position = position

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.position == "before":
            return self.conv(self.temporal(x))
        return self.temporal(self.conv(x))


def wrap_conv(conv: nn.Module, name: str) -> TemporalWrapper:
    """Wrap ``conv`` (a Conv2d or a conv-norm-act block) with the temporal module registered as ``name``."""
    entry = TEMPORAL_MODULES.get(name)
    convs = [m for m in conv.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ConfigError(f"cannot insert temporal module '{name}': {type(conv).__name__} has no Conv2d")
    position = entry.meta.get("position", "before")
    channels = convs[0].in_channels if position == "before" else convs[-1].out_channels
    return TemporalWrapper(conv, entry.factory(channels), position)


def create_temporal_module(name: str, channels: int) -> TemporalModule:
    """Build a standalone temporal module (set ``num_frames`` before calling it)."""
    return TEMPORAL_MODULES.get(name).factory(channels)

"""Batched, clip-consistent augmentation on the device (after the uint8 batch has been moved there).

``DeviceAugment.train_batch`` takes the collated dict of ``ClipDataset`` items:

1. mixup (when the batch has ``frames2``): λ ~ Beta(α, α) per sample; the raw 0-255 frames are mixed
   **before** any photometric augmentation (T-DEED), targets become
   ``λ·onehot(labels) + (1 − λ)·onehot(labels2)`` and displacement ``λ·d1 + (1 − λ)·d2``;
2. a random square crop per clip (the same box for every frame of a clip; one box per clip);
3. horizontal flip of whole clips with p = 0.5; a flip swaps the sides of the frame, so the Team-BAS
   ``team`` targets of a flipped clip are swapped (0 left <-> 1 right; -1 stays), and with
   ``flip_class_map`` (a joint action-team head: ``PASS-left`` <-> ``PASS-right``) its class targets too;
4. colour jitter, each op with p = 0.25 per clip, in T-DEED's order: hue (±0.2), saturation,
   brightness, contrast (factors in [0.7, 1.2]); then Gaussian blur (kernel 5, σ in [0.1, 2]) with p = 0.25.

Crop and flip only move pixels, so applying them to both clips before mixing equals applying them to
the mixed clip; doing it first keeps the float tensors small. ``eval_batch`` is a centre crop only.

All random parameters (a few numbers per clip) are drawn on the CPU from one ``torch.Generator``, so
a seed gives the same augmentation on any device; the pixel work runs on the frames' device,
vectorised over the batch (ops that apply to a random subset of clips run on that subset at once).
Output frames are (B, T, C, H', W') floats in [0, 1] in the model's channels (``modality``,
``e2espot.data.modality``: rgb 3, gray 1 = BT.601 luma of the augmented RGB, flow 2 = G, B of spot flow
JPEGs, where a flip also negates dx and colour jitter / blur are off); the model normalises them itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from e2espot.config import DataConfig
from e2espot.data.modality import flip_flow_dx
from e2espot.errors import ConfigError

Range = tuple[float, float]


@dataclass
class AugmentedBatch:
    """What the training loop feeds the model and the losses."""

    frames: torch.Tensor  # (B, T, C, H', W') float in [0, 1], C = channels of the modality (3 for rgb)
    targets: torch.Tensor  # (B, T, K+1) float, soft class targets; every row sums to 1
    labels: torch.Tensor  # (B, T) int64, hard labels of the first clip (before mixup)
    displacement: torch.Tensor  # (B, T) float, displacement targets (mixed with mixup)
    valid: torch.Tensor  # (B, T) bool, False where a source frame is edge padding
    lam: torch.Tensor | None = None  # (B,) mixup weight of the first clip; None without mixup
    team: torch.Tensor | None = None  # (B, T) float team targets (0 left, 1 right, -1 none), flip-swapped
    flip: torch.Tensor | None = None  # (B,) bool, clips mirrored left-right (training); None = none


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device | str) -> dict[str, torch.Tensor]:
    """Move a collated batch to ``device`` (non-blocking; frames stay uint8)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


# --- geometric ops on uint8 (B, T, H, W, 3) ------------------------------------------------------------


def crop_clips(frames: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """Square crop of ``size`` at (top[b], left[b]) for every frame of clip b.

    ``frames`` (B, T, H, W, C) any dtype; ``top``/``left`` (B,) int64 → (B, T, size, size, C).
    """
    device = frames.device
    rows = top.to(device)[:, None] + torch.arange(size, device=device)  # (B, size)
    cols = left.to(device)[:, None] + torch.arange(size, device=device)  # (B, size)
    b_idx = torch.arange(frames.shape[0], device=device)[:, None, None]  # (B, 1, 1)
    # advanced indices separated by a slice put the broadcast dims first: (B, size, size, T, C)
    out = frames[b_idx, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2, 4)  # (B, T, size, size, C)


def center_crop_offsets(height: int, width: int, size: int) -> tuple[int, int]:
    """Top-left of a centred ``size`` crop, rounded as torchvision's ``center_crop``."""
    return round((height - size) / 2.0), round((width - size) / 2.0)


def flip_clips(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Horizontally flip the clips where ``flip`` (B,) is True. ``x`` (B, T, C, H, W)."""
    mask = flip.to(x.device).view(-1, 1, 1, 1, 1)
    return torch.where(mask, x.flip(-1), x)


# --- photometric ops on float (N, T, 3, H, W) in [0, 1], one factor per clip (N,) -----------------------


def _per_clip(factor: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return factor.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1, 1)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(dim=-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)  # (..., 1, H, W), torchvision weights


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (x * _per_clip(factor, x)).clamp_(0.0, 1.0)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = _per_clip(factor, x)
    return (f * x + (1.0 - f) * _grayscale(x)).clamp_(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = _per_clip(factor, x)
    mean = _grayscale(x).mean(dim=(-3, -2, -1), keepdim=True)  # (N, T, 1, 1, 1): per frame, as torchvision
    return (f * x + (1.0 - f) * mean).clamp_(0.0, 1.0)


def adjust_hue(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``factor`` (N,) in [-0.5, 0.5] turns (RGB → HSV → RGB, as torchvision)."""
    r, g, b = x.unbind(dim=-3)  # (N, T, H, W) each
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    chroma = maxc - minc
    gray = chroma == 0
    sat = chroma / torch.where(gray, torch.ones_like(maxc), maxc)
    div = torch.where(gray, torch.ones_like(chroma), chroma)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    is_b = ~is_r & ~is_g
    hue = is_r * (bc - gc) + is_g * (2.0 + rc - bc) + is_b * (4.0 + gc - rc)
    hue = torch.fmod(hue / 6.0 + 1.0, 1.0)
    hue = torch.remainder(hue + factor.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1), 1.0)
    # HSV → RGB: channel n = v - v·s·clamp(min(k, 4 - k), 0, 1) with k = (n + 6h) mod 6, n = 5, 3, 1
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + hue * 6.0, 6.0)
        out.append(maxc - maxc * sat * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(out, dim=-3)


def gaussian_kernels(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels (N, kernel_size) for sigmas (N,) (torchvision's formula)."""
    half = (kernel_size - 1) * 0.5
    xs = torch.linspace(-half, half, kernel_size, dtype=sigma.dtype, device=sigma.device)
    pdf = torch.exp(-0.5 * (xs[None, :] / sigma[:, None]) ** 2)  # (N, k)
    return pdf / pdf.sum(dim=1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int = 5) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding, one sigma per clip. ``x`` (N, T, C, H, W)."""
    n, t, c, h, w = x.shape
    kernel = gaussian_kernels(sigma.to(torch.float64), kernel_size).to(
        device=x.device, dtype=x.dtype
    )  # (N, k)
    half = kernel_size // 2
    padded = F.pad(x.reshape(n * t, c, h, w), (half, half, half, half), mode="reflect")
    padded = padded.view(n, t, c, h + 2 * half, w + 2 * half)
    rows = sum(kernel[:, j].view(-1, 1, 1, 1, 1) * padded[..., j : j + h, :] for j in range(kernel_size))
    return sum(kernel[:, j].view(-1, 1, 1, 1, 1) * rows[..., j : j + w] for j in range(kernel_size))


def soft_targets(
    labels: torch.Tensor,
    num_classes: int,
    lam: torch.Tensor | None = None,
    labels2: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, T) class ids → (B, T, K+1) one-hot, or ``λ·onehot(labels) + (1 − λ)·onehot(labels2)``."""
    onehot = F.one_hot(labels, num_classes + 1).float()  # (B, T, K+1)
    if lam is None or labels2 is None:
        return onehot
    lam = lam.to(device=onehot.device, dtype=onehot.dtype).view(-1, 1, 1)
    return lam * onehot + (1.0 - lam) * F.one_hot(labels2, num_classes + 1).float()


class DeviceAugment:
    """Mixup + clip-consistent augmentation for training batches; centre crop for evaluation.

    ``crop``: side of the square crop (None = full frame). ``num_classes``: K (targets have K + 1).
    The defaults follow E2E-Spot / T-DEED. ``flip_class_map`` (K+1 class ids, a permutation with 0
    fixed): a flipped clip's class ``c`` becomes ``flip_class_map[c]`` (a joint action-team head:
    ``e2espot.train.team.flip_class_map``); batches with a ``team`` key get their team targets swapped on
    flipped clips. ``seed`` seeds the CPU generator used for every random draw unless a ``generator`` is
    passed per call; ``state_dict``/``load_state_dict`` resume it exactly. ``modality``
    (``e2espot.data.modality``) converts the augmented RGB frames to the model's channels.
    """

    def __init__(
        self,
        num_classes: int,
        crop: int | None = None,
        *,
        mixup_alpha: float = 0.2,
        flip_p: float = 0.5,
        jitter_p: float = 0.25,
        hue: float = 0.2,
        saturation: Range = (0.7, 1.2),
        brightness: Range = (0.7, 1.2),
        contrast: Range = (0.7, 1.2),
        blur_p: float = 0.25,
        blur_kernel: int = 5,
        blur_sigma: Range = (0.1, 2.0),
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        flip_class_map: Sequence[int] | None = None,
        modality: str = "rgb",
    ) -> None:
        from e2espot.data.modality import get_modality

        if num_classes < 1:
            raise ConfigError(f"augment: num_classes {num_classes} must be >= 1")
        if crop is not None and crop < 1:
            raise ConfigError(f"augment: crop {crop} must be a positive size or None (no crop)")
        if mixup_alpha <= 0:
            raise ConfigError(
                f"augment: mixup_alpha {mixup_alpha} must be > 0 (turn mixup off in the dataset)"
            )
        for name, p in (("flip_p", flip_p), ("jitter_p", jitter_p), ("blur_p", blur_p)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"augment: {name} {p} must be a probability in [0, 1]")
        if not 0.0 <= hue <= 0.5:
            raise ConfigError(f"augment: hue {hue} must be in [0, 0.5]")
        if blur_kernel < 1 or blur_kernel % 2 == 0:
            raise ConfigError(f"augment: blur_kernel {blur_kernel} must be odd and positive")
        self.num_classes = num_classes
        self.crop = crop
        self.mixup_alpha = float(mixup_alpha)
        self.flip_p = flip_p
        self.jitter_p = jitter_p
        self.hue = hue
        self.saturation = saturation
        self.brightness = brightness
        self.contrast = contrast
        self.blur_p = blur_p
        self.blur_kernel = blur_kernel
        self.blur_sigma = blur_sigma
        self.dtype = dtype
        self.generator = torch.Generator().manual_seed(seed)
        self.flip_class_map = _check_class_map(flip_class_map, num_classes)
        self.modality = get_modality(modality)

    @classmethod
    def from_config(cls, data_cfg: DataConfig, num_classes: int, **kwargs: Any) -> DeviceAugment:
        """Augmentation for frames fed as ``data_cfg`` says (its ``crop``); ``kwargs`` as ``__init__``."""
        return cls(num_classes, data_cfg.crop, **kwargs)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def __call__(
        self, batch: Mapping[str, torch.Tensor], *, train: bool, generator: torch.Generator | None = None
    ) -> AugmentedBatch:
        return self.train_batch(batch, generator=generator) if train else self.eval_batch(batch)

    # --- training -----------------------------------------------------------------------------------
    def train_batch(
        self, batch: Mapping[str, torch.Tensor], *, generator: torch.Generator | None = None
    ) -> AugmentedBatch:
        gen = self.generator if generator is None else generator
        if gen.device.type != "cpu":
            raise ConfigError(
                f"augment: the generator must be a CPU torch.Generator (got {gen.device}); random "
                "parameters are drawn on the CPU so a seed gives the same augmentation on every device"
            )
        frames = batch["frames"]  # (B, T, H, W, 3) uint8
        self._check_frames(frames, "frames")
        bsz, _, height, width, _ = frames.shape
        mix = "frames2" in batch
        if mix and batch["frames2"].shape != frames.shape:
            raise ConfigError(
                f"augment: frames2 {tuple(batch['frames2'].shape)} != frames {tuple(frames.shape)}"
            )
        crop_h, crop_w = self._crop_size(height, width)
        do_crop = (crop_h, crop_w) != (height, width)

        # every random number first, on the CPU, in a fixed order
        lam = None
        if mix:
            seed = int(torch.randint(0, 2**62, (1,), generator=gen))
            lam = torch.from_numpy(
                np.random.default_rng(seed).beta(self.mixup_alpha, self.mixup_alpha, bsz)
            )  # (B,)
            lam = lam.float()
        top = torch.randint(0, height - crop_h + 1, (bsz,), generator=gen)  # (B,)
        left = torch.randint(0, width - crop_w + 1, (bsz,), generator=gen)  # (B,)
        flip = torch.rand(bsz, generator=gen) < self.flip_p  # (B,)
        ops = []  # (name, mask (B,), factor (B,))
        for name, rng in (
            ("hue", (-self.hue, self.hue)),
            ("saturation", self.saturation),
            ("brightness", self.brightness),
            ("contrast", self.contrast),
        ):
            mask = torch.rand(bsz, generator=gen) < self.jitter_p
            ops.append((name, mask, _uniform(rng, bsz, gen)))
        blur_mask = torch.rand(bsz, generator=gen) < self.blur_p
        blur_sigma = _uniform(self.blur_sigma, bsz, gen)

        # pixels, on the frames' device
        device = frames.device
        x = self._to_float(crop_clips(frames, top, left, crop_h) if do_crop else frames, lam, 1.0)
        if mix:
            f2 = batch["frames2"]
            f2 = crop_clips(f2, top, left, crop_h) if do_crop else f2
            x = x + self._to_float(f2, lam, -1.0)
        x = flip_clips(x, flip)  # (B, T, 3, S, S) float, 0..1
        if self.modality.source == "flow":  # a mirrored flow field points the other way: dx -> -dx
            x = _apply_subset(x, flip, flip.double(), lambda v, _: flip_flow_dx(v))
        if self.modality.photometric:
            for name, mask, factor in ops:
                x = _apply_subset(x, mask, factor, _COLOUR_OPS[name])
            if blur_mask.any():
                kernel = self.blur_kernel
                x = _apply_subset(x, blur_mask, blur_sigma, lambda v, s: gaussian_blur(v, s, kernel))
        x = self.modality.from_rgb(x.clamp_(0.0, 1.0))  # (B, T, C, S, S): the model's channels

        labels = batch["labels"].to(device)  # (B, T) int64
        displacement = batch["displacement"].to(device=device, dtype=torch.float32)  # (B, T)
        valid = batch["valid"].to(device)  # (B, T) bool
        if mix:
            lam_dev = lam.to(device)  # type: ignore[union-attr]
            targets = soft_targets(labels, self.num_classes, lam_dev, batch["labels2"].to(device))
            d2 = batch["displacement2"].to(device=device, dtype=torch.float32)
            displacement = lam_dev[:, None] * displacement + (1.0 - lam_dev[:, None]) * d2
            valid = valid & batch["valid2"].to(device)
        else:
            targets = soft_targets(labels, self.num_classes)
            lam_dev = None
        team = _mixed_team(batch, lam_dev, device)
        if flip.any():
            labels, targets, team = self._flip_targets(flip.to(device), labels, targets, team)
        return AugmentedBatch(x, targets, labels, displacement, valid, lam_dev, team, flip=flip.to(device))

    def _flip_targets(self, flip: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor,
                      team: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Targets of the clips ``flip`` (B,) bool mirrored: team 0 <-> 1 (-1 kept), and the classes
        through ``flip_class_map`` when given (soft column ``perm[c]`` takes old column ``c``)."""
        rows = flip.view(-1, 1)  # (B, 1)
        if team is not None:
            team = torch.where(rows & (team >= 0), 1.0 - team, team)
        if self.flip_class_map is not None:
            perm = self.flip_class_map.to(labels.device)
            inverse = torch.argsort(perm)
            labels = torch.where(rows, perm[labels], labels)
            targets = torch.where(rows.unsqueeze(-1), targets[..., inverse], targets)
        return labels, targets, team

    # --- evaluation ---------------------------------------------------------------------------------
    def eval_batch(self, batch: Mapping[str, torch.Tensor]) -> AugmentedBatch:
        """Centre crop (if ``crop``) and scale to [0, 1]; one-hot targets. Deterministic."""
        if "frames2" in batch:
            raise ConfigError(
                "augment: evaluation batches must not carry a mixup clip; use mixup=False for val"
            )
        frames = batch["frames"]  # (B, T, H, W, 3) uint8
        self._check_frames(frames, "frames")
        _, _, height, width, _ = frames.shape
        size = self._crop_size(height, width)
        if size != (height, width):
            top, left = center_crop_offsets(height, width, size[0])
            frames = frames[:, :, top : top + size[0], left : left + size[1]]
        x = self.modality.from_rgb(self._to_float(frames, None, 1.0))  # (B, T, C, H', W')
        labels = batch["labels"].to(frames.device)
        displacement = batch["displacement"].to(device=frames.device, dtype=torch.float32)
        valid = batch["valid"].to(frames.device)
        team = batch["team"].to(device=frames.device, dtype=torch.float32) if "team" in batch else None
        return AugmentedBatch(x, soft_targets(labels, self.num_classes), labels, displacement, valid, None, team)

    # --- helpers --------------------------------------------------------------------------------------
    def _crop_size(self, height: int, width: int) -> tuple[int, int]:
        if self.crop is None:
            return height, width
        if self.crop > height or self.crop > width:
            raise ConfigError(
                f"augment: crop {self.crop} is larger than the {width}x{height} frames; "
                "lower the crop or raise DataConfig.height / width"
            )
        return self.crop, self.crop

    def _to_float(self, frames: torch.Tensor, lam: torch.Tensor | None, sign: float) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) → (B, T, 3, H, W) float /255, times λ (sign 1) or 1 − λ (sign −1)."""
        x = frames.permute(0, 1, 4, 2, 3).to(
            self.dtype, memory_format=torch.contiguous_format
        )  # (B, T, 3, H, W)
        if lam is None:
            return x.mul_(1.0 / 255.0)
        weight = lam if sign > 0 else 1.0 - lam
        return x.mul_(_per_clip(weight / 255.0, x))

    @staticmethod
    def _check_frames(frames: torch.Tensor, name: str) -> None:
        if frames.dtype != torch.uint8 or frames.ndim != 5 or frames.shape[-1] != 3:
            raise ConfigError(
                f"augment: {name} must be uint8 (B, T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}"
            )


def _check_class_map(class_map: Sequence[int] | None, num_classes: int) -> torch.Tensor | None:
    if class_map is None:
        return None
    perm = [int(c) for c in class_map]
    if sorted(perm) != list(range(num_classes + 1)) or perm[0] != 0:
        raise ConfigError(
            f"augment: flip_class_map {perm} must be a permutation of 0..{num_classes} (K+1 targets) that keeps "
            "0 (background) in place, e.g. e2espot.train.team.flip_class_map(num_actions)"
        )
    return torch.tensor(perm, dtype=torch.int64)


def _mixed_team(batch: Mapping[str, torch.Tensor], lam: torch.Tensor | None,
                device: torch.device) -> torch.Tensor | None:
    """(B, T) team targets of the batch, or None without a ``team`` key. With mixup, each frame takes the
    target of the clip with the larger weight (clip 1 when λ >= 0.5) where that clip has one, else the
    other clip's: the team of the event that dominates the frame's soft class target."""
    if "team" not in batch:
        return None
    team = batch["team"].to(device=device, dtype=torch.float32)  # (B, T)
    if lam is None or "team2" not in batch:
        return team
    team2 = batch["team2"].to(device=device, dtype=torch.float32)
    first = (lam >= 0.5).view(-1, 1)  # (B, 1)
    major = torch.where(first, team, team2)
    minor = torch.where(first, team2, team)
    return torch.where(major >= 0, major, minor)


def _uniform(bounds: Range, n: int, gen: torch.Generator) -> torch.Tensor:
    lo, hi = float(bounds[0]), float(bounds[1])
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)  # (n,)


def _apply_subset(x: torch.Tensor, mask: torch.Tensor, factor: torch.Tensor, op) -> torch.Tensor:
    """Apply ``op(x[idx], factor[idx])`` to the clips where ``mask`` is set, all of them at once."""
    if not mask.any():
        return x
    if mask.all():
        return op(x, factor)
    idx = mask.nonzero().squeeze(1)  # (n,) on the CPU, like factor
    idx_dev = idx.to(x.device)
    x[idx_dev] = op(x[idx_dev], factor[idx])
    return x


_COLOUR_OPS = {
    "hue": adjust_hue,
    "saturation": adjust_saturation,
    "brightness": adjust_brightness,
    "contrast": adjust_contrast,
}

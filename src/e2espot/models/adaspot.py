"""AdaSpot (arturxe2/AdaSpot, CVPR 2026): a low-res frame branch, a training-free saliency RoI, a high-res
branch on that RoI, max fusion and a BiGRU.

Reproduced from ``model/model.py`` (``AdaSpot.Impl``) and ``model/modules.py`` (``ROISelector``) @ 6a46bbc;
the fixture README (``shared/fixtures/published-models/adaspot_SoccerNetBall_small/README.md``) spells out
each step. Both resolutions come from one input tensor: the model normalises at input resolution, then
resizes (bilinear, antialiased, as torchvision ``T.Resize`` on tensors) and centre-crops to the high-res
(``hr_dim``/``hr_crop``) and low-res (``lr_dim``/``lr_crop``) images.

Built with ``ModelConfig(head="adaspot", backbone="rny002", temporal_module="gsf", temporal_stages=None,
head_kwargs={...})``; ``create_spotter`` dispatches here. ``head_kwargs`` (defaults = SoccerNetBall_small):

    hr_dim (448, 796), hr_crop (448, 796), lr_dim (224, 398), lr_crop (224, 398), roi_size (112, 112),
    threshold 0.0, padding "replicate" ("replicate", "reflect" or "zero"), aux_heads True.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from e2espot.config import ModelConfig
from e2espot.errors import ConfigError
from e2espot.models.backbones import create_backbone
from e2espot.models.spotter import IMAGENET_MEAN, IMAGENET_STD, SpotterOutput

DEFAULTS: dict[str, Any] = {
    "hr_dim": (448, 796),
    "hr_crop": (448, 796),
    "lr_dim": (224, 398),
    "lr_crop": (224, 398),
    "roi_size": (112, 112),
    "threshold": 0.0,
    "padding": "replicate",
    "aux_heads": True,
}

# Named configurations (arturxe2/AdaSpot config/<Dataset>/<Dataset>_{small,big}.json, model section).
PRESETS: dict[str, dict[str, Any]] = {
    "adaspot_small": {"backbone": "rny002"},
    "adaspot_big": {"backbone": "rny008"},
}


# --------------------------------------------------------------------------- RoI selector


def gaussian_kernel_3d(kernel_size: Sequence[int], sigma: Sequence[float]) -> torch.Tensor:
    """exp(-(t²/2σt² + y²/2σy² + x²/2σx²)) on offsets centred at (k-1)/2, normalised to sum 1 (ROISelector)."""
    kt, kh, kw = kernel_size
    st, sh, sw = sigma
    t = torch.arange(kt) - (kt - 1) / 2
    h = torch.arange(kh) - (kh - 1) / 2
    w = torch.arange(kw) - (kw - 1) / 2
    tt, hh, ww = torch.meshgrid(t, h, w, indexing="ij")
    kernel = torch.exp(-((tt**2) / (2 * st**2) + (hh**2) / (2 * sh**2) + (ww**2) / (2 * sw**2)))
    return kernel / kernel.sum()


def candidate_sizes(roi_size: Sequence[int], crop: Sequence[int]) -> list[tuple[int, int]]:
    """RoI sizes tried in order: ``zip(arange(roi_h, Hc, 28), arange(roi_w, Wc, 28))`` (zip truncates)."""
    return [
        (int(a), int(b))
        for a, b in zip(np.arange(roi_size[0], crop[0], 28), np.arange(roi_size[1], crop[1], 28))
    ]


def select_rois(
    maps: torch.Tensor, roi_size: Sequence[int], crop: Sequence[int], threshold: float, k: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """AdaSpot's training-free RoI choice (``ROISelector.forward``).

    Args:
        maps: (B, T, C, h, w) last-stage low-res feature maps (detached by the caller).
        roi_size: (rh, rw) the smallest RoI, also the high-res branch's input size.
        crop: (Hc, Wc) the high-res image the RoI is cut from.
        threshold: a candidate box is taken when its sum of the sum-normalised saliency exceeds this.
        k: upsampling factor of the saliency grid.
    Returns:
        centers (B, T, 2) float32 fractions (y, x) on the upsampled grid; sizes (B, T, 2) float32 pixels.

    Steps: channel mean; min-max per frame (+1e-5); nearest ×k; twice a 3-D Gaussian (7, k+1, k+1),
    σ = size/4, reflect padding; divide by the frame sum (+1e-5); for each candidate size a zero-padded box
    sum of odd size ``int(s / Hc * H_up)`` (+1 if even), the first (flat index) global max per frame, taken
    when > threshold and the frame has no size yet. Frames with no size get the largest candidate; a flat
    index 0 becomes ``h*w//2`` (computed on the low-res grid, used on the upsampled one, as the reference).
    """
    if maps.ndim != 5:
        raise ConfigError(f"select_rois expects maps (B, T, C, h, w), got shape {tuple(maps.shape)}")
    b, t, _, h, w = maps.shape
    sizes_list = candidate_sizes(roi_size, crop)
    if not sizes_list:
        raise ConfigError(
            f"AdaSpot: roi_size {tuple(roi_size)} is not smaller than the high-res crop {tuple(crop)}"
        )
    h_up, w_up = h * k, w * k
    x = maps.mean(dim=2, keepdim=True).reshape(b, t, -1)
    lo = x.min(dim=-1, keepdim=True)[0]
    hi = x.max(dim=-1, keepdim=True)[0]
    x = ((x - lo) / (hi - lo + 1e-5)).reshape(b, t, 1, h, w)
    x = (
        x.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1).permute(0, 2, 1, 3, 4)
    )  # (B, 1, T, Hu, Wu)
    ksize = (7, k + 1, k + 1)
    kernel = gaussian_kernel_3d(ksize, tuple(s / 4.0 for s in ksize)).to(x.device, x.dtype)[None, None]
    pad = tuple(s // 2 for s in ksize)
    # Reflection needs T > 3; only shorter clips (the trainer's memory probe; the reference always has
    # T = clip_len) are padded by replication instead.
    mode = "reflect" if t > pad[0] and h_up > pad[1] and w_up > pad[2] else "replicate"
    for _ in range(2):
        x = F.conv3d(F.pad(x, (pad[2], pad[2], pad[1], pad[1], pad[0], pad[0]), mode=mode), kernel)
    x = x / (x.sum(dim=(-1, -2), keepdim=True) + 1e-5)

    center = torch.zeros((b, 1, t), device=x.device)
    size_h = torch.zeros((b, 1, t), device=x.device)
    size_w = torch.zeros((b, 1, t), device=x.device)
    for sh, sw in sizes_list:
        if (size_h == 0).sum() == 0:
            break
        ksh = int(sh / crop[0] * h_up)
        ksw = int(sw / crop[1] * w_up)
        ksh += 1 - ksh % 2
        ksw += 1 - ksw % 2
        pooled = F.avg_pool3d(x, (1, ksh, ksw), stride=1, padding=(0, ksh // 2, ksw // 2)) * (ksh * ksw)
        flat = pooled.reshape(b, 1, t, -1)
        peak = flat == flat.max(dim=-1, keepdim=True)[0]
        vals, idxs = (flat * peak.float()).max(dim=-1)
        exists = (vals > threshold) & (size_h == 0)
        center[exists] = idxs[exists].float()
        size_h[exists] = sh
        size_w[exists] = sw
    center[center == 0] = h * w // 2
    size_h[size_h == 0] = sizes_list[-1][0]
    size_w[size_w == 0] = sizes_list[-1][1]
    center, size_h, size_w = center.squeeze(1), size_h.squeeze(1), size_w.squeeze(1)
    sizes = torch.stack((size_h, size_w), dim=-1)
    centers = torch.zeros((b, t, 2), device=x.device)
    centers[..., 0] = center // w_up
    centers[..., 1] = center % w_up
    centers[..., 0] /= h_up
    centers[..., 1] /= w_up
    return centers, sizes


def roi_boxes(centers: torch.Tensor, sizes: torch.Tensor, crop: Sequence[int]) -> torch.Tensor:
    """(B, T, 4) int64 ``[top, left, height, width]`` in high-res crop pixels (``get_rois``'s arithmetic).

    ``py = int(cy * Hc)`` clamped to ``[sh//2, Hc - sh//2 - 1]``; rows ``py - sh//2 .. py + sh//2 - 1``.
    """
    hc, wc = crop
    sh = sizes[..., 0].long()
    sw = sizes[..., 1].long()
    cy = (centers[..., 0] * hc).long()
    cx = (centers[..., 1] * wc).long()
    cy = torch.minimum(torch.maximum(cy, sh // 2), hc - sh // 2 - 1)
    cx = torch.minimum(torch.maximum(cx, sw // 2), wc - sw // 2 - 1)
    return torch.stack((cy - sh // 2, cx - sw // 2, sh, sw), dim=-1)


def crop_rois(x: torch.Tensor, boxes: torch.Tensor, roi_size: Sequence[int]) -> torch.Tensor:
    """Cut the boxes out of x (B, T, C, Hc, Wc) → (B, T, C, rh, rw); other sizes are resized bilinearly
    (``align_corners=False``, no antialias), as ``get_rois``."""
    b, t, c, _, _ = x.shape
    rh, rw = roi_size
    out = x.new_zeros((b, t, c, rh, rw))
    flat_x = x.reshape(b * t, c, x.shape[-2], x.shape[-1])
    flat_boxes = boxes.reshape(b * t, 4).tolist()
    flat_out = out.reshape(b * t, c, rh, rw)
    for i, (top, left, sh, sw) in enumerate(flat_boxes):
        patch = flat_x[i, :, top : top + sh, left : left + sw]
        if (sh, sw) != (rh, rw):
            patch = F.interpolate(patch[None], size=(rh, rw), mode="bilinear", align_corners=False)[0]
        flat_out[i] = patch
    return flat_out.reshape(b, t, c, rh, rw)


# --------------------------------------------------------------------------- resizing and padding


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """torchvision ``T.Resize(size)`` on (N, C, H, W) tensors: bilinear, antialiased; unchanged when equal."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)


def center_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """torchvision ``T.CenterCrop``: offsets ``int(round((H - h) / 2))``; a crop larger than the image is refused."""
    h, w = x.shape[-2:]
    ch, cw = size
    if ch > h or cw > w:
        raise ConfigError(
            f"AdaSpot: crop {tuple(size)} is larger than the resized image {(h, w)}; fix hr/lr_crop"
        )
    top = round((h - ch) / 2.0)
    left = round((w - cw) / 2.0)
    return x[..., top : top + ch, left : left + cw]


def swap_padding(module: nn.Module, pad_type: str = "replicate") -> None:
    """Replace every padded ``nn.Conv2d`` by ``Sequential(Pad2d(p), Conv2d(padding=0))`` (AdaSpot
    ``Impl.swap_padding``): the weight moves from ``X.weight`` to ``X.1.weight``. ``zero`` keeps the conv's
    own padding behind an Identity (same key layout)."""
    if pad_type not in ("replicate", "reflect", "zero"):
        raise ConfigError(f"AdaSpot: padding '{pad_type}' unknown; expected replicate, reflect or zero")
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            if child.padding == (0, 0):
                continue
            ph, pw = child.padding
            if ph != pw:
                raise ConfigError(f"AdaSpot: asymmetric padding {child.padding} in '{name}' is not supported")
            if pad_type == "replicate":
                pad, padding = nn.ReplicationPad2d(ph), 0
            elif pad_type == "reflect":
                pad, padding = nn.ReflectionPad2d(ph), 0
            else:
                pad, padding = nn.Identity(), ph
            conv = nn.Conv2d(
                child.in_channels,
                child.out_channels,
                child.kernel_size,
                child.stride,
                padding,
                child.dilation,
                child.groups,
                bias=child.bias is not None,
            )
            with torch.no_grad():
                conv.weight.copy_(child.weight)
                if child.bias is not None:
                    conv.bias.copy_(child.bias)
            setattr(module, name, nn.Sequential(pad, conv))
        else:
            swap_padding(child, pad_type)


# --------------------------------------------------------------------------- the model


def _pair(value: Any, name: str) -> tuple[int, int]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ConfigError(
            f"AdaSpot head_kwargs: '{name}' must be [height, width] positive ints, got {value!r}"
        )
    return int(value[0]), int(value[1])


class _Head(nn.Module):
    """BiGRU(D, D) → Dropout(0.5) → Linear(2D, K+1) (``_temp_fine`` + ``FCLayers``)."""

    def __init__(self, dim: int, num_outputs: int) -> None:
        super().__init__()
        self.gru = nn.GRU(dim, dim, num_layers=1, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(2 * dim, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.gru(x)[0]))


class AdaSpot(nn.Module):
    """x (B, T, 3, H, W) float in [0, 1] → :class:`SpotterOutput`; any H, W (the model resizes).

    The reference takes exactly T = ``clip_len`` (its GSF ``n_segment`` and ``temp_enc`` are fixed); our
    predict path always feeds clip_len-frame windows. A shorter clip (the trainer's memory probe) uses the
    first T rows of ``temp_enc``; a longer one is refused.
    ``logits`` are the fused head's; in training with ``aux_heads`` ``stage_logits`` is
    ``[low-res aux, high-res aux, fused]`` (our loss sums the stages; the reference averages the three, so
    ours is 3× theirs). ``features`` is the fused (B, T, D) sequence before ``temp_enc``.
    Feeding ``uint8.float() / 255`` equals the reference's ``Impl.forward(x_u8.float())``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if not isinstance(cfg.num_classes, int) or cfg.num_classes < 1:
            raise ConfigError(f"model config: num_classes must be an int >= 1, got {cfg.num_classes!r}")
        if not isinstance(cfg.clip_len, int) or cfg.clip_len < 1:
            raise ConfigError(f"model config: clip_len must be an int >= 1, got {cfg.clip_len!r}")
        unknown = sorted(set(cfg.head_kwargs) - set(DEFAULTS))
        if unknown:
            raise ConfigError(
                f"AdaSpot head_kwargs: unknown keys {unknown}; expected some of {sorted(DEFAULTS)}"
            )
        if cfg.displacement or cfg.extra_num_classes or cfg.team_head:
            raise ConfigError("AdaSpot has no displacement, second class or team head; turn them off")
        opts = {**DEFAULTS, **cfg.head_kwargs}
        self.config = cfg
        self.hr_dim = _pair(opts["hr_dim"], "hr_dim")
        self.hr_crop = _pair(opts["hr_crop"], "hr_crop")
        self.lr_dim = _pair(opts["lr_dim"], "lr_dim")
        self.lr_crop = _pair(opts["lr_crop"], "lr_crop")
        self.roi_size = _pair(opts["roi_size"], "roi_size")
        self.threshold = float(opts["threshold"])
        if not candidate_sizes(self.roi_size, self.hr_crop):
            raise ConfigError(
                f"AdaSpot head_kwargs: roi_size {self.roi_size} must be smaller than hr_crop {self.hr_crop}"
            )
        backbone = create_backbone(
            cfg.backbone,
            pretrained=cfg.pretrained,
            temporal_module=cfg.temporal_module,
            temporal_stages=cfg.temporal_stages,
            clip_len=cfg.clip_len,
        )
        if not hasattr(backbone.model, "forward_features") or not hasattr(backbone.model, "forward_head"):
            raise ConfigError(
                f"AdaSpot needs a timm backbone (forward_features/forward_head), got '{cfg.backbone}'"
            )
        swap_padding(backbone.model, str(opts["padding"]))
        self.lowres_backbone = backbone
        self.highres_backbone = copy.deepcopy(backbone)
        d = backbone.num_features
        self.lowres_linear = nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, d))
        self.highres_linear = nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, d))
        self.temp_enc = nn.Parameter(torch.normal(0.0, 1 / cfg.clip_len, size=(cfg.clip_len, d)))
        self.head = _Head(d, cfg.num_classes + 1)
        self.aux_heads = bool(opts["aux_heads"])
        self.aux_highres = _Head(d, cfg.num_classes + 1) if self.aux_heads else None
        self.aux_lowres = _Head(d, cfg.num_classes + 1) if self.aux_heads else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # Spotter interface -------------------------------------------------------------------------------
    @property
    def feature_dim(self) -> int:
        return self.lowres_backbone.num_features

    @property
    def prefers_channels_last(self) -> bool:
        return False

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def drop_auxiliary_heads(self) -> None:
        """Delete the auxiliary heads (the reference's ``clean_modules()``; inference does not use them)."""
        self.aux_highres = self.aux_lowres = None
        self.aux_heads = False

    def summary(self) -> str:
        def count(m: nn.Module | None) -> int:
            return 0 if m is None else sum(p.numel() for p in m.parameters())

        rows = [
            (
                (
                    f"AdaSpot low-res backbone {self.config.backbone}_{self.config.temporal_module or 'none'} "
                    f"{self.lr_crop}"
                ),
                count(self.lowres_backbone),
            ),
            (f"high-res backbone on RoI {self.roi_size} of {self.hr_crop}", count(self.highres_backbone)),
            (
                "projections + temp_enc",
                count(self.lowres_linear) + count(self.highres_linear) + self.temp_enc.numel(),
            ),
            (f"BiGRU head (K+1={self.num_classes + 1})", count(self.head)),
        ]
        if self.aux_heads:
            rows.append(
                (
                    "auxiliary low-/high-res heads (training only)",
                    count(self.aux_lowres) + count(self.aux_highres),
                )
            )
        rows.append(("total", self.num_parameters()))
        width = max(len(n) for n, _ in rows)
        return "\n".join(f"{n:<{width}}  {v / 1e6:8.3f} M  ({v:,})" for n, v in rows)

    # forward -----------------------------------------------------------------------------------------
    def _pooled(self, backbone: nn.Module, x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        backbone.set_num_frames(t)
        maps = backbone.model.forward_features(x)
        return backbone.model.forward_head(maps), maps

    def forward_stages(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        """Every intermediate of one forward (for tests and for drawing the RoI): ``x_lr`` (B·T, 3, h, w),
        ``x_hr`` (B, T, 3, Hc, Wc), ``lowres_maps`` (B, T, C, h', w'), ``lowres_feat``/``highres_feat``
        (B, T, D), ``roi_centers``/``roi_sizes`` (B, T, 2), ``roi_box`` (B, T, 4) [top, left, h, w] in
        high-res crop pixels, ``rois`` (B, T, 3, rh, rw), ``fused`` (B, T, D) + temp_enc, ``logits`` and,
        with auxiliary heads and ``aux``, ``logits_aux_highres``/``logits_aux_lowres`` (B, T, K+1)."""
        if x.ndim != 5 or x.shape[2] != 3:
            raise ConfigError(f"AdaSpot expects clips (B, T, 3, H, W), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ConfigError(
                f"AdaSpot expects float frames in [0, 1], got dtype {x.dtype}; divide uint8 by 255"
            )
        b, t, c, _, _ = x.shape
        if t > self.config.clip_len:
            raise ConfigError(
                f"AdaSpot: clips of {t} frames, but the model is built for clip_len={self.config.clip_len} "
                "(temp_enc has clip_len rows); feed windows of at most clip_len frames"
            )
        x_lr, x_hr = self.inputs(x)
        lowres_feat, maps = self._pooled(self.lowres_backbone, x_lr, t)
        maps = maps.reshape(b, t, *maps.shape[1:])
        centers, sizes = select_rois(maps.detach(), self.roi_size, self.hr_crop, self.threshold)
        boxes = roi_boxes(centers, sizes, self.hr_crop)
        rois = crop_rois(x_hr, boxes, self.roi_size)
        highres_feat, _ = self._pooled(
            self.highres_backbone, rois.reshape(b * t, c, *self.roi_size).contiguous(), t
        )
        out = {
            "x_lr": x_lr,
            "x_hr": x_hr,
            "lowres_maps": maps,
            "roi_centers": centers,
            "roi_sizes": sizes,
            "roi_box": boxes,
            "rois": rois,
        }
        out.update(self.fuse(lowres_feat.reshape(b, t, -1), highres_feat.reshape(b, t, -1), aux))
        return out

    def inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, 3, H, W) in [0, 1] → (low-res (B·T, 3, lh, lw), high-res (B, T, 3, Hc, Wc)), both
        ImageNet-normalised at input resolution first, then resized (antialiased) and centre-cropped."""
        b, t, c, h, w = x.shape
        frames = ((x.reshape(b * t, c, h, w) - self.mean) / self.std).contiguous()
        x_hr = center_crop(resize(frames, self.hr_dim), self.hr_crop)
        x_lr = center_crop(resize(frames, self.lr_dim), self.lr_crop).contiguous()
        return x_lr, x_hr.reshape(b, t, c, *x_hr.shape[-2:])

    def fuse(
        self, lowres_feat: torch.Tensor, highres_feat: torch.Tensor, aux: bool = True
    ) -> dict[str, torch.Tensor]:
        """Pooled features (B, T, D) of both branches → projections, max fusion + ``temp_enc``, BiGRU heads."""
        b = lowres_feat.shape[0]
        lr_proj = self.lowres_linear(lowres_feat)
        hr_proj = self.highres_linear(highres_feat)
        enc = self.temp_enc[: lowres_feat.shape[1]].expand(b, -1, -1)
        fused = torch.maximum(lr_proj, hr_proj)
        out = {
            "lowres_feat": lowres_feat,
            "highres_feat": highres_feat,
            "features": fused,
            "fused": fused + enc,
        }
        out["logits"] = self.head(out["fused"])
        if aux and self.aux_highres is not None and self.aux_lowres is not None:
            out["logits_aux_highres"] = self.aux_highres(hr_proj + enc)
            out["logits_aux_lowres"] = self.aux_lowres(lr_proj + enc)
        return out

    def forward(self, x: torch.Tensor) -> SpotterOutput:
        out = self.forward_stages(x, aux=self.training)  # the auxiliary heads only serve the training loss
        stages = [out["logits"]]
        if self.training and "logits_aux_lowres" in out:
            stages = [out["logits_aux_lowres"], out["logits_aux_highres"], out["logits"]]
        return SpotterOutput(out["logits"], stages, None, out["features"])


def create_adaspot(cfg: ModelConfig) -> AdaSpot:
    """Build AdaSpot from ``cfg`` (``head == "adaspot"``)."""
    return AdaSpot(cfg)


def preset_config(name: str, num_classes: int, clip_len: int = 100, **head_kwargs: Any) -> ModelConfig:
    """ModelConfig for ``adaspot_small`` (RegNetY-200MF) / ``adaspot_big`` (RegNetY-800MF), GSF in all stages."""
    if name not in PRESETS:
        from e2espot.errors import unknown_name

        raise unknown_name("AdaSpot preset", name, PRESETS)
    return ModelConfig(
        num_classes=num_classes,
        backbone=PRESETS[name]["backbone"],
        temporal_module="gsf",
        temporal_stages=None,
        head="adaspot",
        clip_len=clip_len,
        head_kwargs=dict(head_kwargs),
    )


def training_config(
    name: str, num_classes: int, clip_len: int, height: int, width: int | None, pretrained: bool | str = False
) -> ModelConfig:
    """``train -m adaspot_small``: frames arrive at ``height`` × ``width`` (width None: 16:9, even); the
    high-res image is that size, the low-res one half of it (as 448×796 → 224×398 in the reference), the
    smallest RoI a quarter of the height (112 at 448, capped at 112), threshold 0, replicate padding."""
    if width is None:
        width = 2 * round(height * 16 / 9 / 2)
    if height < 64 or width < 64:
        raise ConfigError(f"AdaSpot needs frames of at least 64x64 (--height/--width), got {height}x{width}")
    hr = (height, width)
    lr = (height // 2, width // 2)
    roi = min(112, height // 4)
    cfg = preset_config(
        name,
        num_classes,
        clip_len,
        hr_dim=hr,
        hr_crop=hr,
        lr_dim=lr,
        lr_crop=lr,
        roi_size=(roi, roi),
        threshold=0.0,
        padding="replicate",
        aux_heads=True,
    )
    return dataclasses.replace(cfg, pretrained=pretrained)


__all__ = [
    "DEFAULTS",
    "PRESETS",
    "AdaSpot",
    "candidate_sizes",
    "center_crop",
    "create_adaspot",
    "crop_rois",
    "gaussian_kernel_3d",
    "preset_config",
    "resize",
    "roi_boxes",
    "select_rois",
    "swap_padding",
    "training_config",
]

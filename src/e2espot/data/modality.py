"""Input modalities: what a model reads from the decoded (H, W, 3) RGB frames, and how it normalises them.

Every reader (``e2espot.data.video``) returns RGB uint8 frames; augmentation (``data.transforms``) runs on
them; the last step before the model is ``Modality.from_rgb`` (float frames in [0, 1], (..., 3, H, W) ->
(..., C, H, W)). The model (``models.spotter.Spotter``) then applies ``(x - mean) / std`` per channel.

* ``rgb`` (3 channels): the frames as they are; ImageNet mean / std.
* ``gray`` (1 channel): luma ``Y = 0.2989 R + 0.587 G + 0.114 B`` (ITU-R BT.601 weights, exactly the ones
  of torchvision's ``rgb_to_grayscale``, computed on floats in [0, 1], never rounded to uint8), from any
  video; normalised with mean 0.5, std 0.5, as jhong93/spot's ``bw`` modality (``transforms.Grayscale``
  then ``Normalize([0.5], [0.5])``, dataset/frame.py ``_get_img_transforms``).
* ``flow`` (2 channels): E2E-Spot optical-flow JPEG folders (``<root>/<video id>/%06d.jpg``, written by
  jhong93/spot ``external/extract_raft_frames.py``: RAFT flow clipped to ±20 px, ``(f + 20) * 255 / 41``,
  stored by OpenCV as BGR = (dx, dy, 128), so the decoded RGB frame is (128, dy, dx)). The model reads
  channels G, B: model channel 0 = vertical flow dy, 1 = horizontal flow dx (spot ``FrameReader.read_frame``
  keeps ``img[1:]``); mean 0.5, std 0.5. A horizontal flip negates dx (spot ``RandomHorizontalFlipFLow``):
  in [0, 1] that is ``v -> 1 - v`` on the dx channel (``flip_flow_dx``).

Colour augmentation is for ``rgb`` and ``gray`` (applied to the RGB frames before the luma is taken);
``flow`` gets crop and flip only (``photometric`` False).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from e2espot.errors import ConfigError, VideoError, unknown_name

if TYPE_CHECKING:
    import torch

    from e2espot.data.labels import LabelSet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R BT.601, torchvision.transforms.functional.rgb_to_grayscale
FLOW_DX_CHANNEL = 2  # the RGB channel of a spot flow JPEG that holds horizontal flow (B of BGR = dx)


@dataclass(frozen=True)
class Modality:
    """What a model reads from a decoded RGB frame, and how it normalises it.

    ``channels``: the RGB channels the model takes, in model order, or None for the BT.601 luma (one
    channel); ``mean`` / ``std``: per model channel, applied to values in [0, 1] as ``(x - mean) / std``
    in float32; ``source``: ``"video"`` (any readable video or frame folder) or ``"flow"`` (E2E-Spot
    optical-flow JPEG folders only); ``photometric``: colour jitter and blur apply.
    """

    name: str
    channels: tuple[int, ...] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = "video"
    photometric: bool = True

    @property
    def num_channels(self) -> int:
        return len(self.mean)

    def from_rgb(self, x: torch.Tensor) -> torch.Tensor:
        """Float RGB frames (..., 3, H, W) in [0, 1] -> the model's channels (..., C, H, W), still in [0, 1]."""
        if x.shape[-3] != 3:
            raise ConfigError(f"modality '{self.name}': expected RGB frames (..., 3, H, W), got {tuple(x.shape)}")
        if self.channels is None:
            return luma(x)
        if self.channels == (0, 1, 2):
            return x
        return x[..., list(self.channels), :, :]


MODALITIES: dict[str, Modality] = {
    "rgb": Modality("rgb", (0, 1, 2), IMAGENET_MEAN, IMAGENET_STD),
    "gray": Modality("gray", None, (0.5,), (0.5,)),
    "flow": Modality("flow", (1, 2), (0.5, 0.5), (0.5, 0.5), source="flow", photometric=False),
}
# jhong93/spot's name for gray (train_e2e.py --modality {rgb,bw,flow}), accepted when importing its configs
SPOT_MODALITY_NAMES = {"rgb": "rgb", "bw": "gray", "flow": "flow"}


def get_modality(name: str) -> Modality:
    """The :class:`Modality` registered as ``name``; UnknownNameError otherwise."""
    try:
        return MODALITIES[name]
    except (KeyError, TypeError):
        raise unknown_name("modality", str(name), MODALITIES) from None


def list_modalities() -> list[str]:
    return list(MODALITIES)


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of float RGB frames (..., 3, H, W) -> (..., 1, H, W) (torchvision's weights)."""
    r, g, b = x.unbind(dim=-3)
    return (LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b).unsqueeze(-3)


def flip_flow_dx(x: torch.Tensor) -> torch.Tensor:
    """Negate the horizontal flow of horizontally flipped spot flow frames (..., 3, H, W) in [0, 1]:
    ``v -> 1 - v`` on ``FLOW_DX_CHANNEL``, i.e. ``-x`` after the (0.5, 0.5) normalisation (spot
    ``RandomHorizontalFlipFLow``). Returns a new tensor."""
    out = x.clone()
    out[..., FLOW_DX_CHANNEL, :, :] = 1.0 - out[..., FLOW_DX_CHANNEL, :, :]
    return out


def flow_folder(videos_root: str | Path, video_id: str) -> Path:
    """The E2E-Spot flow frame folder ``<videos_root>/<video_id>`` (``%06d.jpg`` files).

    Raises:
        VideoError: naming the folder expected, when it is missing, is a file, or holds no spot frames.
    """
    from e2espot.data.video.folder import SpotFolderReader

    folder = Path(videos_root) / video_id
    if not folder.is_dir():
        from e2espot.data.video.base import VIDEO_EXTENSIONS

        root = Path(videos_root)
        found = [p.name for p in sorted(root.glob(f"{video_id}.*")) if p.suffix.lower() in VIDEO_EXTENSIONS] \
            if root.is_dir() else []  # video files only (not detections or other side files)
        extra = f" (found {', '.join(found)}: an RGB video, not flow)" if found else ""
        raise VideoError(
            f"video '{video_id}': modality 'flow' reads optical-flow JPEG folders, and there is no folder "
            f"'{folder}'{extra}. Pass as VIDEOS the root of the flow folders (<root>/<video id>/000000.jpg, ... "
            "as jhong93/spot external/extract_raft_frames.py writes them), or train with --modality rgb|gray"
        )
    if not SpotFolderReader.accepts(folder):
        raise VideoError(
            f"video '{video_id}': flow folder '{folder}' holds no E2E-Spot frames (000000.jpg, 000001.jpg, ...); "
            "write them with jhong93/spot external/extract_raft_frames.py"
        )
    return folder


def check_sources(labels: LabelSet, videos_root: str | Path, modality: str) -> None:
    """Check that every video of ``labels`` has what ``modality`` reads (flow: its flow folder).

    Raises:
        VideoError: for the first video without a flow folder (``flow_folder``).
    """
    if get_modality(modality).source != "flow":
        return
    for video in labels.videos:
        flow_folder(videos_root, video.video)

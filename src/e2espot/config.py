"""Frozen dataclass configs. ``RunConfig`` is what ``config.json`` in a run directory holds:
enough to rebuild the model, its class list and its input pipeline."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2espot.errors import ConfigError

ENGINES = ("torch", "onnxruntime")  # what runs the network at inference (e2espot.infer.engines)


def _from_dict(cls, data: dict[str, Any], where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; expected some of {sorted(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            if isinstance(value, list):
                value = tuple(value)
            kwargs[f.name] = value
    return cls(**kwargs)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a Spotter (registry keys are frozen once released)."""

    num_classes: int  # K foreground classes; the model predicts K + 1 (index 0 = background)
    backbone: str = "rny002"
    temporal_module: str | None = "gsm"  # None, "tsm", "gsm", "gsf", "astrm"
    temporal_stages: tuple[int, ...] | None = None  # backbone stages that get the module; None = all
    head: str = "gru"
    clip_len: int = 100
    displacement: bool = False  # T-DEED displacement head
    # A second class head over the same hidden sequence (T-DEED's joint-training / pretrain head, e.g. the
    # 17 SoccerNet-v2 classes beside the 12 ball classes): K2 foreground classes, 0 = no second head.
    extra_num_classes: int = 0
    team_head: bool = False  # Team-BAS baseline team head: one logit per frame, sigmoid = P(right)
    head_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: bool | str = False  # True: timm/torchvision ImageNet weights; str: local weight file
    modality: str = "rgb"  # input channels + normalisation (models.spotter.MODALITIES): "rgb", "flow"
    pad_to_clip_len: bool = False  # E2E-Spot: clips shorter than clip_len are zero-padded (after
    #                                normalisation) to clip_len inside the model, features cut back to T
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # factory options, e.g. X3D trainable_stages

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, data, "model config")


@dataclass(frozen=True)
class DataConfig:
    """How frames are fed to the model."""

    fps: float | None = None  # resample videos to this fps; None = native
    height: int = 224  # resize frames to this height (keep aspect) before cropping
    width: int | None = None  # fixed width; None = keep aspect
    crop: int | None = None  # square random crop (train) / centre crop (eval); None = full frame
    clip_len: int = 100
    # inference windows (infer.predict.WINDOWINGS): "aligned" (ours), "spot" (jhong93/spot test), "tdeed"
    windowing: str = "aligned"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        return _from_dict(cls, data, "data config")


@dataclass(frozen=True)
class RunConfig:
    """The resolved configuration of a training run, saved as ``config.json``."""

    model: ModelConfig
    data: DataConfig
    classes: tuple[str, ...]
    train: dict[str, Any] = field(default_factory=dict)  # training hyper-parameters, for the record
    dataset: dict[str, Any] = field(default_factory=dict)  # label format, paths, SoccerNet info

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "data": self.data.to_dict(),
            "classes": list(self.classes),
            "train": dict(self.train),
            "dataset": dict(self.dataset),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        try:
            return cls(
                model=ModelConfig.from_dict(data["model"]),
                data=DataConfig.from_dict(data["data"]),
                classes=tuple(data["classes"]),
                train=dict(data.get("train", {})),
                dataset=dict(data.get("dataset", {})),
            )
        except KeyError as exc:
            raise ConfigError(f"run config: missing key {exc}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: not found; is this a run directory written by 'e2espot train'?") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        return cls.from_dict(data)

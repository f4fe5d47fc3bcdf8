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
    modality: str = "rgb"  # input channels + normalisation (data.modality.MODALITIES): "rgb", "gray", "flow"
    pad_to_clip_len: bool = False  # E2E-Spot: clips shorter than clip_len are zero-padded (after
    #                                normalisation) to clip_len inside the model, features cut back to T
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # factory options, e.g. X3D trainable_stages
    # object tracks fused before the head (models.fusion.FUSIONS: "concat" | "gate"; None = no tracks),
    # track_dim F features per frame (data.tracks.TrackConfig.dim), track_proj_dim for concat
    track_fusion: str | None = None
    track_dim: int = 0
    track_proj_dim: int = 64

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.track_fusion is None:  # omitted without tracks, so older config.json files compare equal
            for key in ("track_fusion", "track_dim", "track_proj_dim"):
                out.pop(key)
        return out

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
    tracks: dict[str, Any] | None = None  # object tracks (data.tracks.TrackConfig.to_dict()); None = none

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.tracks is None:  # omitted without tracks, so older config.json files compare equal
            out.pop("tracks")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        return _from_dict(cls, data, "data config")


NMS_KINDS = ("hard", "soft", "none")
TEAM_MODES = ("head", "joint")  # RunConfig.team_mode()
TASKS = ("spot", "classify")  # RunConfig.task: per-frame event spotting, or one label per clip (train.classify)
SCORE_ACTIVATIONS = ("softmax", "sigmoid")


def _check_fraction(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}: {what} {value!r} must be a number in [0, 1]")
    return float(value)


@dataclass(frozen=True)
class PostprocessConfig:
    """The post-processing ``predict`` / ``test`` apply unless flags override it; None = not recorded
    (``infer.predict.resolve_postprocess`` then uses the documented default).

    ``RunConfig.postprocess``, stored in ``config.json`` as its own ``postprocess`` section (training
    chooses it on validation, model imports set it): ``nms`` (hard | soft | none), ``nms_window``
    (frames), ``threshold`` (one for every class), ``thresholds`` (per class), ``chosen_on`` (the split
    they were chosen on, e.g. "val"), ``f1_tolerance_frames`` (the F1 tolerance used to choose them).
    Runs written before it had a section keep it in ``train["postprocess"]``; those files still load
    (see ``RunConfig``).
    """

    nms: str | None = None
    nms_window: int | None = None
    threshold: float | None = None
    thresholds: dict[str, float] | None = None
    chosen_on: str | None = None
    f1_tolerance_frames: int | None = None

    def __post_init__(self) -> None:
        where = "config.json postprocess"
        if self.nms is not None and self.nms not in NMS_KINDS:
            raise ConfigError(f"{where}: unknown NMS '{self.nms}'; expected one of {', '.join(NMS_KINDS)}")
        for name in ("nms_window", "f1_tolerance_frames"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{where}: {name} {value!r} must be a non-negative integer (frames)")
        if self.threshold is not None:
            _check_fraction(self.threshold, "threshold", where)
        if self.thresholds is not None:
            if not isinstance(self.thresholds, dict):
                raise ConfigError(f"{where}: thresholds must map class names to numbers, got {self.thresholds!r}")
            for c, t in self.thresholds.items():
                _check_fraction(t, f"threshold of class '{c}'", where)

    def to_dict(self) -> dict[str, Any]:
        """The recorded keys only (the layout ``postprocess``, and older runs' ``train["postprocess"]``, have)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PostprocessConfig:
        data = dict(data or {})
        if isinstance(data.get("thresholds"), dict):
            data["thresholds"] = dict(data["thresholds"])
        return _from_dict(cls, data, "config.json postprocess")

    def recorded(self) -> bool:
        """True when any setting is recorded (a default-constructed config records none)."""
        return bool(self.to_dict())


@dataclass(frozen=True)
class RunConfig:
    """The resolved configuration of a training run, saved as ``config.json``.

    ``clip_len``: ``data.clip_len`` wins (training clips and inference windows); ``model.clip_len`` is the
    length the model was built for. They must agree when the model pads clips to its length
    (``model.pad_to_clip_len``, E2E-Spot); ConfigError otherwise.

    ``score_activation``: how logits become scores, ``softmax`` (over background + classes) or ``sigmoid``
    (one-vs-rest); None (older runs) = derived from the loss (``train["loss"] == "bce"`` -> sigmoid), see
    ``activation()``.

    ``postprocess``: the post-processing ``predict`` / ``test`` apply (``PostprocessConfig``), written as the
    ``postprocess`` section of ``config.json``. Older runs recorded it in ``train["postprocess"]``: a config
    built with that key (older files, older code: ``replace(cfg, train={**cfg.train, "postprocess": {...}})``)
    takes its ``postprocess`` from it, and the key is moved out of ``train`` (one place per setting); set the
    field (``dataclasses.replace(cfg, postprocess=...)``). A file holding both, different, is refused
    (``from_dict``).
    """

    model: ModelConfig
    data: DataConfig
    classes: tuple[str, ...]
    train: dict[str, Any] = field(default_factory=dict)  # training hyper-parameters, for the record
    dataset: dict[str, Any] = field(default_factory=dict)  # label format, paths, SoccerNet info
    score_activation: str | None = None
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    task: str = "spot"  # "classify": a clip classifier (e2espot.train.classify); test reports clip metrics

    def __post_init__(self) -> None:
        post = self.postprocess
        if isinstance(post, dict) or post is None:
            post = PostprocessConfig.from_dict(post)
        if self.train.get("postprocess") is not None:  # set in train: older runs and older code
            post = PostprocessConfig.from_dict(self.train["postprocess"])
        object.__setattr__(self, "postprocess", post)
        object.__setattr__(self, "train", {k: v for k, v in self.train.items() if k != "postprocess"})
        if self.task not in TASKS:
            raise ConfigError(f"run config: task '{self.task}' must be one of {', '.join(TASKS)}")
        if self.score_activation is not None and self.score_activation not in SCORE_ACTIVATIONS:
            raise ConfigError(f"run config: score_activation '{self.score_activation}' must be one of "
                              f"{', '.join(SCORE_ACTIVATIONS)}")
        if self.model.pad_to_clip_len and self.model.clip_len != self.data.clip_len:
            raise ConfigError(
                f"run config: model.clip_len {self.model.clip_len} and data.clip_len {self.data.clip_len} differ, "
                "and the model pads clips to its own length (pad_to_clip_len); set both to the same value"
            )

    def team_mode(self) -> str | None:
        """``"head"`` (``model.team_head``), ``"joint"`` (``train["team_joint"]``, one class head over 2K
        action-team classes) or None: how the run's model predicts teams (``TEAM_MODES``;
        ``e2espot.train.team`` explains both)."""
        if getattr(self.model, "team_head", False):
            return "head"
        if (self.train or {}).get("team_joint"):
            return "joint"
        return None

    def activation(self) -> str:
        """``score_activation``, or for older runs the one their loss implies (bce: sigmoid, else softmax)."""
        if self.score_activation is not None:
            return self.score_activation
        return "sigmoid" if self.train.get("loss") == "bce" else "softmax"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "model": self.model.to_dict(),
            "data": self.data.to_dict(),
            "classes": list(self.classes),
            "train": dict(self.train),
            "dataset": dict(self.dataset),
        }
        if self.score_activation is not None:  # omitted when derived, so older config.json files compare equal
            out["score_activation"] = self.score_activation
        if self.postprocess.recorded():  # omitted when not recorded, for the same reason
            out["postprocess"] = self.postprocess.to_dict()
        if self.task != "spot":  # likewise omitted for spotting runs
            out["task"] = self.task
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Read a ``config.json`` dict: the ``postprocess`` section, or in older files ``train["postprocess"]``;
        a file with both that differ raises ConfigError (which one was meant is unknown)."""
        train = dict(data.get("train", {}))
        post = PostprocessConfig.from_dict(data.get("postprocess"))
        if post.recorded() and train.get("postprocess") is not None:
            copy = PostprocessConfig.from_dict(train["postprocess"])
            if copy != post:
                raise ConfigError(
                    f"run config: postprocess {post.to_dict()} and train.postprocess {copy.to_dict()} differ; "
                    "train.postprocess is where older e2espot versions recorded it: keep the postprocess "
                    "section and delete train.postprocess"
                )
        try:
            return cls(
                model=ModelConfig.from_dict(data["model"]),
                data=DataConfig.from_dict(data["data"]),
                classes=tuple(data["classes"]),
                train=train,
                dataset=dict(data.get("dataset", {})),
                score_activation=data.get("score_activation"),
                postprocess=post,
                task=data.get("task", "spot"),
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

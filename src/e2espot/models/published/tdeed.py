"""T-DEED (arturxe2/T-DEED) and the SoccerNet Team-BAS baseline (SoccerNet/sn-teamspotting) checkpoints.

A model folder as the projects distribute it holds their config JSON (``config.json`` or the repository's
``config/<Dataset>/<Name>.json``) and ``checkpoint_best.pt``: ``torch.save(TDEEDModel.state_dict())``, the
state_dict of ``TDEEDModel.Impl`` with no key prefix. ``convert`` maps it onto our Spotter:

=====================================  ======================================================================
reference (T-DEED @ ec1ad55)           ours
=====================================  ======================================================================
``temp_enc`` (clip_len, D)             ``head.temp_enc`` (the ``edsgp`` head's positional table)
``_features.*`` (timm RegNetY)         ``backbone.model.*``; GSF (stages 3 and 4 only) on every ``conv1``:
  ``.conv1.net.*``                       ``.conv1.conv.*``
  ``.conv1.gs.bn.*``                     ``.conv1.temporal.bn.*``
  ``.conv1.gs.conv3D.*``                 ``.conv1.temporal.conv3d.*`` (weight stored flat, (2, C/2, 27))
  ``.conv1.gs.channel_conv{1,2}.*``      ``.conv1.temporal.fuse_conv{1,2}.*``
``_temp_fine._sgp.i.*``                ``head.sgp.i.*``
``_temp_fine._sgpMixer.i.*``           ``head.mixers.i.*``
``_pred_fine._fc_out.*`` (one head)    ``head.fc.*``
``_pred_fine._fc1._fc_out.*``          ``head.fc.*`` (head 1: background + the dataset's classes)
``_pred_fine._fc2._fc_out.*``          ``extra_head.1.*`` (head 2: background + the joint / pretrain classes)
``_pred_displ._fc_out.*``              ``displacement_head.1.*``
``_pred_team._fc_out.*``               ``team_head.1.*`` (sn-teamspotting only; sigmoid = P(right))
=====================================  ======================================================================

Input: T-DEED's ``Impl.forward`` takes 0..255 floats and computes ``Normalize(x / 255)``; our Spotter takes
``x_u8.float() / 255`` and normalises inside, which is the same float32 computation bit for bit.

Inference: ``predict_scores`` with ``DataConfig.windowing == "tdeed"`` reproduces ``evaluate_tdeed_challenge.py``
/ ``util/eval.py:evaluate`` (windows from -5 rows, overlap 3/4 of clip_len, black padding, displacement
max-combine over the whole window, support counted on non-zero rows only); see
``e2espot.infer.predict.predict_scores_tdeed``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2espot.config import DataConfig, ModelConfig, PostprocessConfig, RunConfig
from e2espot.errors import CheckpointError, ConfigError
from e2espot.models.published import ImportedModel
from e2espot.models.published._common import (
    check_strict_fit,
    load_torch_file,
    map_key_first_match,
    rename_first_match,
    tensors_only,
)

KIND = "tdeed"
CHECKPOINT_NAME = "checkpoint_best.pt"

# Class lists shipped with T-DEED (data/<dataset>/class.txt @ ec1ad55); index = line + 1, 0 = background.
SOCCERNETBALL_CLASSES = (
    "PASS", "DRIVE", "HEADER", "HIGH PASS", "OUT", "CROSS", "THROW IN", "SHOT", "BALL PLAYER BLOCK",
    "PLAYER SUCCESSFUL TACKLE", "FREE KICK", "GOAL",
)
SOCCERNET_CLASSES = (
    "Penalty", "Kick-off", "Goal", "Substitution", "Offside", "Shots on target", "Shots off target", "Clearance",
    "Ball out of play", "Throw-in", "Foul", "Indirect free-kick", "Direct free-kick", "Corner", "Yellow card",
    "Red card", "Yellow->red card",
)


@dataclass(frozen=True)
class DatasetInfo:
    """How T-DEED feeds one of its datasets: frame rate the model sees, frame size, and where that is written."""

    fps: float | None  # rows per second the model sees; None = the video's own rate (stride 1)
    width: int | None
    height: int
    classes: tuple[str, ...] | None  # None: not shipped here, pass --classes
    source: str
    snms_window: int = 3  # util/eval.py WINDOWS[1] (soft-NMS window, rows); SoccerNet-Ball 12, SoccerNet 6


# The frame rate, size and stride each T-DEED dataset was trained with (arturxe2/T-DEED @ ec1ad55).
DATASETS: dict[str, DatasetInfo] = {
    "soccernetball": DatasetInfo(
        12.5, 796, 448, SOCCERNETBALL_CLASSES,
        "data/soccernetball/README.md: frames extracted at 796x448 (extract_frames_snb.py TARGET_HEIGHT=448, "
        "TARGET_WIDTH=796) from the 25 fps videos; evaluate_tdeed_challenge.py STRIDE_SNB = 2 -> 12.5 fps",
        snms_window=12,
    ),
    "soccernet": DatasetInfo(
        25 / 12, 398, 224, SOCCERNET_CLASSES,
        "data/soccernet/README.md; util/io.py FPS_SN = 25 with STRIDE_SN = 12 -> 25/12 fps rows",
        snms_window=6,
    ),
    "tennis": DatasetInfo(None, 398, 224, None, "data/tennis/README.md: 398x224, native fps, STRIDE = 1"),
    "fs_comp": DatasetInfo(None, 398, 224, None, "data/fs_comp/README.md: 398x224, native fps, STRIDE = 1"),
    "fs_perf": DatasetInfo(None, 398, 224, None, "data/fs_perf/README.md: 398x224, native fps, STRIDE = 1"),
    "finediving": DatasetInfo(None, 224, 224, None, "data/finediving/README.md: 224x224, native fps, STRIDE = 1"),
    "finegym": DatasetInfo(None, 224, 224, None, "data/finegym/README.md: 224x224, native fps, STRIDE = 1"),
}

PAD_LEN = 5  # dataset/frame.py DEFAULT_PAD_LEN: windows start 5 rows before the video


# --------------------------------------------------------------------------- detection


def find_config(path: Path) -> Path | None:
    """The T-DEED / Team-BAS config JSON in a model folder, or None."""
    path = Path(path)
    if path.is_file():
        return path if path.suffix == ".json" and _is_tdeed_config(path) else None
    if not path.is_dir():
        return None
    candidates = [path / "config.json"] + sorted(p for p in path.glob("*.json") if p.name != "config.json")
    return next((p for p in candidates if p.is_file() and _is_tdeed_config(p)), None)


def _is_tdeed_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("temporal_arch") == "ed_sgp_mixer"
        and isinstance(data.get("feature_arch"), str)
    )


def detect(path: Path) -> bool:
    """True for a T-DEED or sn-teamspotting model folder (config JSON with ``temporal_arch: ed_sgp_mixer``)."""
    return find_config(Path(path)) is not None


# --------------------------------------------------------------------------- config


def _need(config: dict[str, Any], key: str, types: type | tuple[type, ...], where: Path) -> Any:
    if key not in config:
        raise ConfigError(f"{where}: missing key '{key}' (a T-DEED config has it; see config/<Dataset>/*.json)")
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, types):
        raise ConfigError(f"{where}: '{key}' is {value!r}; expected {types}")
    return value


def model_config(config: dict[str, Any], where: Path = Path("config.json")) -> ModelConfig:
    """Our ModelConfig for a T-DEED / Team-BAS config dict (as ``TDEEDModel.Impl.__init__`` builds it).

    ``feature_arch`` ``rny002_gsf`` / ``rny008_gsf`` (GSF in stages 3 and 4, as ``make_temporal_shift``),
    ``_gsm`` likewise, plain ``rny002``/``rny008`` without; ``temporal_arch`` must be ``ed_sgp_mixer``.
    A ``pretrain`` or ``joint_train`` entry adds the second class head (``update_pred_head``);
    ``event_team`` adds the team head.
    """
    arch = _need(config, "feature_arch", str, where)
    backbone, _, module = arch.partition("_")
    if backbone not in ("rny002", "rny008") or module not in ("", "gsf", "gsm"):
        raise ConfigError(
            f"{where}: feature_arch '{arch}' is not one T-DEED builds; expected rny002/rny008 with _gsf, _gsm or none"
        )
    temporal_arch = _need(config, "temporal_arch", str, where)
    if temporal_arch != "ed_sgp_mixer":
        raise ConfigError(f"{where}: temporal_arch '{temporal_arch}' unsupported; T-DEED has only 'ed_sgp_mixer'")
    modality = config.get("modality", "rgb")
    if modality != "rgb":
        raise ConfigError(f"{where}: modality '{modality}' unsupported; T-DEED supports only 'rgb'")
    second = config.get("pretrain") or config.get("joint_train")
    extra = 0
    if second:
        extra = _need(second, "num_classes", int, where)
    return ModelConfig(
        num_classes=_need(config, "num_classes", int, where),
        backbone=backbone,
        temporal_module=module or None,
        temporal_stages=(3, 4) if module else None,
        head="edsgp",
        clip_len=_need(config, "clip_len", int, where),
        displacement=_need(config, "radi_displacement", int, where) > 0,
        head_kwargs={
            "num_layers": _need(config, "n_layers", int, where),
            "kernel_size": _need(config, "sgp_ks", int, where),
            "r": _need(config, "sgp_r", (int, float), where),
        },
        extra_num_classes=extra,
        team_head=bool(config.get("event_team", False)),
        pretrained=False,
    )


def run_config(
    config: dict[str, Any], classes: list[str] | None = None, where: Path = Path("config.json")
) -> RunConfig:
    """Our RunConfig: the model, the dataset's fps and frame size (``DATASETS``), T-DEED windowing."""
    model = model_config(config, where)
    dataset = config.get("dataset")
    info = DATASETS.get(dataset) if isinstance(dataset, str) else None
    if classes is None:
        if info is None or info.classes is None:
            raise ConfigError(
                f"{where}: no class list is known for dataset {dataset!r}; pass --classes (a class.txt, "
                "one class per line, in the order of T-DEED's data/<dataset>/class.txt)"
            )
        classes = list(info.classes)
    if len(classes) != model.num_classes:
        raise ConfigError(
            f"{where}: num_classes is {model.num_classes} but {len(classes)} class names were given; "
            "pass the dataset's class.txt"
        )
    crop = config.get("crop_dim", -1)
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int)):
        raise ConfigError(f"{where}: crop_dim is {crop!r}; expected an integer (<= 0 for no crop)")
    # T-DEED centre-crops inside forward (CenterCrop after x / 255); cropping the uint8 frames before is the
    # same. torchvision rounds the offset with round(), we floor: equal unless (size - crop) % 4 == 3.
    data = DataConfig(
        fps=info.fps if info else None,
        height=info.height if info else 224,
        width=info.width if info else None,
        crop=crop if crop is not None and crop > 0 else None,
        clip_len=model.clip_len,
        windowing="tdeed",
    )
    second = config.get("pretrain") or config.get("joint_train") or {}
    extra_dataset = second.get("dataset") if isinstance(second, dict) else None
    extra_info = DATASETS.get(extra_dataset) if isinstance(extra_dataset, str) else None
    dataset_record = {
        "format": "tdeed",
        "name": dataset,
        "source": info.source if info else None,
        "extra_head": {"dataset": extra_dataset, "classes": list(extra_info.classes)}
        if extra_info and extra_info.classes and model.extra_num_classes == len(extra_info.classes)
        else None,
    }
    # Post-processing as the reference: soft-NMS with util/eval.py's window for the dataset (Team-BAS:
    # SNMS window 12, threshold 0.01); the threshold for events shown to people stays ours.
    post = PostprocessConfig(nms="soft", nms_window=info.snms_window if info else 3)
    return RunConfig(model=model, data=data, classes=tuple(classes), postprocess=post, dataset=dataset_record)


# --------------------------------------------------------------------------- weights

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^temp_enc$"), "head.temp_enc"),
    (re.compile(r"^_features\.(.*)\.conv1\.net\.(.*)$"), r"backbone.model.\1.conv1.conv.\2"),
    (re.compile(r"^_features\.(.*)\.conv1\.gs\.conv3D\.(.*)$"), r"backbone.model.\1.conv1.temporal.conv3d.\2"),
    (re.compile(r"^_features\.(.*)\.conv1\.gs\.bn\.(.*)$"), r"backbone.model.\1.conv1.temporal.bn.\2"),
    (re.compile(r"^_features\.(.*)\.conv1\.gs\.channel_conv([12])\.(.*)$"),
     r"backbone.model.\1.conv1.temporal.fuse_conv\2.\3"),
    (re.compile(r"^_features\.(.*)\.conv1\.gsm\.conv3D\.(.*)$"), r"backbone.model.\1.conv1.temporal.conv3d.\2"),
    (re.compile(r"^_features\.(.*)\.conv1\.gsm\.bn\.(.*)$"), r"backbone.model.\1.conv1.temporal.bn.\2"),
    (re.compile(r"^_features\.(.*)$"), r"backbone.model.\1"),
    (re.compile(r"^_temp_fine\._sgp\.(.*)$"), r"head.sgp.\1"),
    (re.compile(r"^_temp_fine\._sgpMixer\.(.*)$"), r"head.mixers.\1"),
    (re.compile(r"^_pred_fine\._fc1\._fc_out\.(.*)$"), r"head.fc.\1"),
    (re.compile(r"^_pred_fine\._fc2\._fc_out\.(.*)$"), r"extra_head.1.\1"),
    (re.compile(r"^_pred_fine\._fc_out\.(.*)$"), r"head.fc.\1"),
    (re.compile(r"^_pred_displ\._fc_out\.(.*)$"), r"displacement_head.1.\1"),
    (re.compile(r"^_pred_team\._fc_out\.(.*)$"), r"team_head.1.\1"),
]


def map_key(key: str) -> str | None:
    """Our name for a T-DEED / sn-teamspotting state_dict key, or None when no rule matches."""
    return map_key_first_match(key, _RULES)


def convert_state_dict(state: dict[str, Any], where: Path = Path(CHECKPOINT_NAME)) -> dict[str, Any]:
    """Rename (and reshape the Conv3d gate kernels of) a reference state_dict to our key names."""
    return rename_first_match(state, _RULES, where, "T-DEED / sn-teamspotting keys",
                              "is this a T-DEED checkpoint_best.pt (TDEEDModel.state_dict(), no prefix)?")


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """The reference's state_dict, loaded with ``weights_only=True`` (``_common.load_torch_file``)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; a T-DEED model folder holds {CHECKPOINT_NAME}")
    return tensors_only(load_torch_file(path), path, "a state_dict (torch.save(model.state_dict()))")


def convert(path: Path, *, checkpoint: str | None = None, classes: list[str] | None = None) -> ImportedModel:
    """Convert a T-DEED / Team-BAS model folder (config JSON + ``checkpoint_best.pt``) to our RunConfig + weights.

    ``checkpoint`` names another ``.pt`` file in the folder (or a path); ``classes`` overrides the class list
    of the dataset table. The state_dict is checked to load strictly into our Spotter.
    Raises ConfigError (config) or CheckpointError (weights) with the file and the fix.
    """
    from e2espot.models import create_spotter

    path = Path(path)
    config_path = find_config(path)
    if config_path is None:
        raise ConfigError(f"{path}: no T-DEED config JSON (with temporal_arch 'ed_sgp_mixer') found")
    folder = config_path.parent
    config = json.loads(config_path.read_text())
    cfg = run_config(config, classes, config_path)
    ckpt = folder / CHECKPOINT_NAME if checkpoint is None else Path(checkpoint)
    if not ckpt.is_absolute() and not ckpt.exists():
        ckpt = folder / ckpt
    state = convert_state_dict(_read_checkpoint(ckpt), ckpt)

    model = create_spotter(cfg.model)
    check_strict_fit(model.state_dict(), state, ckpt, config_path.name,
                     "Check that the config (clip_len, n_layers, sgp_ks, pretrain/joint_train, event_team) is "
                     "the one the checkpoint was trained with")
    model.load_state_dict(state, strict=True)
    num_parameters = sum(p.numel() for p in model.parameters())
    provenance = {
        "kind": KIND,
        "source": str(path),
        "config": str(config_path),
        "checkpoint": str(ckpt),
        "checkpoint_choice": "given with --checkpoint" if checkpoint is not None else f"the folder's {CHECKPOINT_NAME}",
        "dataset": config.get("dataset"),
        "reference": "SoccerNet/sn-teamspotting" if cfg.model.team_head else "arturxe2/T-DEED",
        "team_columns": "2i+1 = class_i-left = (1-sigmoid(team)) * p, 2i+2 = class_i-right" if cfg.model.team_head
        else None,
    }
    return ImportedModel(cfg, {k: v.contiguous() for k, v in state.items()}, provenance, num_parameters)


__all__ = [
    "DATASETS",
    "ImportedModel",
    "convert",
    "convert_state_dict",
    "detect",
    "map_key",
    "model_config",
    "run_config",
]

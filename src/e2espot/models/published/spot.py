"""E2E-Spot (jhong93/spot) model folders, as jhong93/e2e-spot-models distributes them.

A folder holds ``config.json`` (``feature_arch``, ``temporal_arch``, ``num_classes`` without background,
``modality``, ``clip_len``, ``crop_dim``, ``dataset``, ...) and ``checkpoint_NNN.pt`` files, each a
plain state_dict of ``E2EModel.Impl`` (no ``module.`` prefix). ``test_e2e.py`` loads the best epoch of
``loss.json`` (max ``val_mAP``) when that file exists, else the highest NNN, strictly.

What the reference computes, and where ours does the same (jhong93/spot @ edec420):

* ``_features``: timm ``regnety_002`` / ``regnety_008`` with ``head.fc = Identity`` (ours: timm with
  ``num_classes=0``, same keys under ``backbone.model.``). Flow: the stem conv takes 2 channels.
* GSM (``model/shift.py`` ``GatedShift`` + ``model/impl/gsm.py`` ``_GSM``) on ``conv1`` of every block of
  s1..s4: ours is ``models.temporal.GateShift`` (its Conv3d kernel stored flattened, reshaped here).
* ``_pred_fine``: ``GRUPrediction`` (BiGRU, hidden min(D, 768), dropout, Linear) = our ``gru`` head;
  ``''`` = ``FCPrediction`` = our ``fc`` head; ``deeper_gru`` = 3 GRU layers.
* ``Impl.forward`` zero-pads clips shorter than clip_len (after normalisation) to clip_len for the
  shift modules and cuts the features back: ``ModelConfig.pad_to_clip_len``.
* Normalisation in the dataset (``dataset/frame.py``): ``/255``, centre crop ``crop_dim``, ImageNet
  mean/std (RGB) or 0.5/0.5 (flow); frames outside the video are zero *after* normalisation, windows of
  ``clip_len`` start at -5 every ``clip_len // 2`` frames (``ActionSpotVideoDataset``), scores are the
  mean softmax over covering windows (``train_e2e.evaluate``): ``DataConfig.windowing = "spot"``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.modality import SPOT_MODALITY_NAMES
from e2espot.errors import CheckpointError, ConfigError
from e2espot.models.published import ImportedModel, count_parameters
from e2espot.models.published._common import (
    fit_state_dict,
    load_torch_file,
    read_class_file,
    sha256_file,
    strip_module_prefix,
    tensors_only,
)
from e2espot.models.published.datasets import DATASETS

log = logging.getLogger(__name__)

REFERENCE = "jhong93/spot@edec4201471beed631bed374bd0b95fcdc8a2f4f"
CHECKPOINT_RE = re.compile(r"^checkpoint_(\d+)\.pt$")
REQUIRED = ("feature_arch", "temporal_arch", "num_classes", "clip_len")
BACKBONES = {"rny002": "rny002", "rny008": "rny008"}  # E2E-Spot name -> ours (proven by fixtures)
TEMPORAL = {"gsm": "gsm"}  # shift modules proven against the reference
HEADS: dict[str, tuple[str, dict[str, Any]]] = {
    "gru": ("gru", {}),
    "deeper_gru": ("gru", {"num_layers": 3}),
    "": ("fc", {}),
}
MODALITIES = tuple(SPOT_MODALITY_NAMES)  # spot train_e2e.py --modality choices: rgb, bw, flow

# reference key -> our key (applied in order; jhong93/spot E2EModel.Impl -> e2espot Spotter)
RULES = (
    (r"^_features\.", "backbone.model."),
    (r"\.conv1\.gsm\.conv3D\.", ".conv1.temporal.conv3d."),
    (r"\.conv1\.gsm\.bn\.", ".conv1.temporal.bn."),
    (r"\.conv1\.net\.", ".conv1.conv."),
    (r"^_pred_fine\._gru\.", "head.rnn."),
    (r"^_pred_fine\._fc_out\._fc_out\.", "head.fc."),
    (r"^_pred_fine\._fc_out\.", "head.fc."),
)


def read_config(path: Path) -> dict[str, Any] | None:
    """``path/config.json`` when it is an E2E-Spot config (has feature_arch and temporal_arch), else None."""
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        return None
    try:
        data = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or "model" in data:  # ours has a "model" section
        return None
    return data if "feature_arch" in data and "temporal_arch" in data else None


def detect(path: Path) -> bool:
    """True for a folder with an E2E-Spot ``config.json``."""
    return Path(path).is_dir() and read_config(Path(path)) is not None


def list_checkpoints(path: Path) -> dict[int, Path]:
    """{epoch: file} of the ``checkpoint_NNN.pt`` files in ``path``."""
    found = {}
    for p in path.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m and p.is_file():
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def choose_checkpoint(path: Path, checkpoint: str | None) -> tuple[Path, int | None, str]:
    """(file, epoch, how it was chosen), as ``test_e2e.py`` chooses unless ``checkpoint`` says otherwise.

    ``checkpoint``: None/"best" (loss.json's best ``val_mAP`` epoch, else the highest NNN), "last"
    (highest NNN), an epoch number ("40"), or a file name / path.
    """
    found = list_checkpoints(path)
    available = ", ".join(p.name for p in found.values()) or "none"
    if checkpoint not in (None, "best", "last"):
        text = str(checkpoint)
        if text.isdigit():
            epoch = int(text)
            if epoch not in found:
                raise CheckpointError(f"{path}: no checkpoint for epoch {epoch}; available: {available}")
            return found[epoch], epoch, f"--checkpoint {text}"
        file = Path(text)
        file = file if file.is_file() else path / text
        if not file.is_file():
            raise CheckpointError(f"{path}: checkpoint '{text}' not found; available: {available}")
        m = CHECKPOINT_RE.match(file.name)
        return file, int(m.group(1)) if m else None, f"--checkpoint {text}"
    if not found:
        raise CheckpointError(
            f"{path}: no checkpoint_NNN.pt beside config.json. Download the checkpoint file of this model "
            "too (e.g. with git lfs pull), or pass --checkpoint FILE"
        )
    loss_path = path / "loss.json"
    if checkpoint in (None, "best") and loss_path.is_file():
        try:
            rows = json.loads(loss_path.read_text())
            epoch = int(max(rows, key=lambda row: row["val_mAP"])["epoch"])
        except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
            raise CheckpointError(
                f"{loss_path}: cannot find the best epoch (test_e2e.py takes the row with the highest "
                f"'val_mAP'; {type(exc).__name__}: {exc}). Pick one with --checkpoint NNN"
            ) from None
        if epoch not in found:
            raise CheckpointError(
                f"{loss_path}: best epoch {epoch} has no checkpoint_{epoch:03d}.pt; available: {available}. "
                "Pick one with --checkpoint"
            )
        return found[epoch], epoch, "best val_mAP epoch in loss.json"
    epoch = max(found)
    return found[epoch], epoch, "highest-numbered checkpoint (no loss.json)"


def _architecture(cfg: dict[str, Any], cfg_path: Path) -> ModelConfig:
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise CheckpointError(f"{cfg_path}: missing {missing}; is this an E2E-Spot model config?")
    arch = str(cfg["feature_arch"])
    name, _, module = arch.partition("_")
    if name not in BACKBONES or (module and module not in TEMPORAL):
        raise CheckpointError(
            f"{cfg_path}: feature_arch '{arch}' is not supported for import; supported: rny002, rny008, "
            "rny002_gsm, rny008_gsm (the published E2E-Spot models). Other architectures are not proven "
            "exact against the reference, so they are refused rather than approximated"
        )
    temporal = str(cfg["temporal_arch"])
    if temporal not in HEADS:
        raise CheckpointError(
            f"{cfg_path}: temporal_arch '{temporal}' is not supported for import; supported: "
            f"{', '.join(repr(h) for h in HEADS)}"
        )
    spot_modality = str(cfg.get("modality", "rgb"))
    if spot_modality not in MODALITIES:
        raise CheckpointError(f"{cfg_path}: modality '{spot_modality}' is not supported; supported: {MODALITIES}")
    modality = SPOT_MODALITY_NAMES[spot_modality]  # spot's 'bw' is our 'gray' (Grayscale + Normalize(0.5, 0.5))
    num_classes, clip_len = cfg["num_classes"], cfg["clip_len"]
    if not isinstance(num_classes, int) or num_classes < 1 or not isinstance(clip_len, int) or clip_len < 1:
        raise CheckpointError(f"{cfg_path}: num_classes {num_classes!r} and clip_len {clip_len!r} must be "
                              "positive integers")
    head, head_kwargs = HEADS[temporal]
    return ModelConfig(
        num_classes=num_classes, backbone=BACKBONES[name], temporal_module=TEMPORAL.get(module) if module else None,
        head=head, clip_len=clip_len, head_kwargs=dict(head_kwargs), pretrained=False, modality=modality,
        pad_to_clip_len=bool(module),  # E2E-Spot sets _require_clip_len for _tsm/_gsm models only
    )


def _classes(path: Path, cfg: dict[str, Any], classes: list[str] | None, num_classes: int) -> tuple[list[str], str]:
    dataset = DATASETS.get(str(cfg.get("dataset")))
    if classes:
        names, source = list(classes), "--classes"
    elif (path / "class.txt").is_file():
        names, source = read_class_file(path / "class.txt"), str(path / "class.txt")
    elif dataset is not None and dataset.classes is not None:
        names, source = list(dataset.classes), f"dataset table '{dataset.name}': {dataset.source}"
    else:
        raise CheckpointError(
            f"{path}: no class names: no class.txt beside config.json and dataset "
            f"'{cfg.get('dataset')}' has no published class list. Write class.txt (one name per line, in "
            "the training order) or pass --classes"
        )
    if len(names) != num_classes:
        raise CheckpointError(
            f"{path}: {len(names)} class names from {source} but config.json says num_classes "
            f"{num_classes} (background excluded); give exactly {num_classes} names"
        )
    if len(set(names)) != len(names):
        raise CheckpointError(f"{path}: class names from {source} repeat a name: {names}")
    return names, source


def _data_config(cfg: dict[str, Any], cfg_path: Path, clip_len: int) -> tuple[DataConfig, dict[str, Any]]:
    name = str(cfg.get("dataset"))
    dataset = DATASETS.get(name)
    crop = cfg.get("crop_dim")
    crop = None if crop is None or (isinstance(crop, int) and crop <= 0) else crop
    if crop is not None and not isinstance(crop, int):
        raise CheckpointError(f"{cfg_path}: crop_dim {crop!r} must be an integer or null")
    if dataset is None:
        log.warning("%s: dataset '%s' is not in the reference table; frames will be read at the video's own "
                    "rate, 224 px high (E2E-Spot's frame convention). Override with --fps/--height", cfg_path, name)
        fps, height, width, source = None, 224, None, "not in the table: video's own fps, 224 px high"
    else:
        fps, height, width, source = dataset.fps, dataset.height, dataset.width, dataset.source
    data = DataConfig(fps=fps, height=height, width=width, crop=crop, clip_len=clip_len, windowing="spot")
    return data, {"dataset": name, "dataset_source": source}


def convert(path: Path, *, checkpoint: str | None = None, classes: list[str] | None = None) -> ImportedModel:
    """Convert an E2E-Spot model folder (see the module docstring). Raises CheckpointError."""
    path = Path(path)
    cfg = read_config(path)
    cfg_path = path / "config.json"
    if cfg is None:
        raise CheckpointError(f"{cfg_path}: not an E2E-Spot config.json (needs feature_arch and temporal_arch)")
    model_cfg = _architecture(cfg, cfg_path)
    names, classes_source = _classes(path, cfg, classes, model_cfg.num_classes)
    data_cfg, data_info = _data_config(cfg, cfg_path, model_cfg.clip_len)
    ckpt_path, epoch, how = choose_checkpoint(path, checkpoint)

    state = tensors_only(load_torch_file(ckpt_path), ckpt_path, "an E2E-Spot state_dict")
    state = strip_module_prefix(state, ckpt_path)
    try:
        ours = fit_state_dict(state, RULES, model_cfg, ckpt_path)
    except ConfigError as exc:  # our model refused the architecture
        raise CheckpointError(f"{cfg_path}: {exc}") from None
    provenance = {
        "kind": "spot",
        "reference": REFERENCE,
        "source": str(path.resolve()),
        "files": [cfg_path.name, ckpt_path.name] + (["class.txt"] if (path / "class.txt").is_file() else []),
        "checkpoint": ckpt_path.name,
        "checkpoint_sha256": sha256_file(ckpt_path),
        "checkpoint_choice": how,
        "epoch": epoch,
        "classes_source": classes_source,
        "reference_config": cfg,
        **data_info,
    }
    run_cfg = RunConfig(
        model=model_cfg, data=data_cfg, classes=tuple(names),
        train={"imported_from": "spot"},
        dataset={"name": data_info["dataset"]},
    )
    return ImportedModel(run_cfg, ours, provenance, count_parameters(ours))

"""OpenSportsLib (OpenSportsLab/opensportslib @ c5286dd) E2E localization checkpoints.

The model is jhong93/spot's ``E2EModel.Impl`` with two key prefixes renamed (``backbone._features.*`` and
``head._pred_fine.*``), numerically identical (fixture ``opensportslib_localization_e2e_rny008gsm_gru``).
``LocalizationTrainer.save_checkpoint`` writes ``best_checkpoint.pt`` / ``latest_checkpoint.pt``: a dict
``{"epoch", "model_state_dict", "optimizer_state_dict", ...}``. The library loads it with
``strict=False`` (a wrong file loads silently, missing keys only printed); here it is loaded strictly:
every one of the model's keys, every shape, or a CheckpointError.

Architecture and classes come from an OpenSportsLib ``config.yaml`` beside the checkpoint
(``MODEL.backbone.type``, ``MODEL.head.type``, ``DATA.classes``, ``DATA.clip_len``, ``target_height``,
``target_width``, ``input_fps``/``extract_fps``); without one, the architecture is read off the tensors
(GRU input width 368 = RegNetY-200MF, 768 = 800MF; ``.gsm.`` keys = GSM; fc rows = K + 1) and the
classes are the library's default ``config/localization.yaml`` list when K matches it, else --classes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.errors import CheckpointError, ConfigError
from e2espot.models.published import ImportedModel, count_parameters
from e2espot.models.published import spot as spot_kind
from e2espot.models.published._common import (
    fit_state_dict,
    load_torch_file,
    rename,
    sha256_file,
    strip_module_prefix,
    tensors_only,
)

log = logging.getLogger(__name__)

REFERENCE = "OpenSportsLab/opensportslib@c5286ddae18d730f5801b7f75bb42787c1680a34"
SUFFIXES = (".pt", ".pth", ".pth.tar", ".bin")  # core/utils/checkpoint.py: what it takes from a Hub repo
PREFERRED = ("best_checkpoint.pt", "latest_checkpoint.pt")  # LocalizationTrainer.save_checkpoint
# opensportslib config/localization.yaml DATA.classes (SoccerNet ball action spotting 2025, 12 classes)
DEFAULT_CLASSES = (
    "PASS", "DRIVE", "HEADER", "HIGH PASS", "OUT", "CROSS", "THROW IN", "SHOT", "BALL PLAYER BLOCK",
    "PLAYER SUCCESSFUL TACKLE", "FREE KICK", "GOAL",
)
# OSL key -> jhong93/spot key (models/base/e2e.py localization_remap, inverted), then spot -> ours
PREFIX_RULES = ((r"^backbone\._features\.", "_features."), (r"^head\._pred_fine\.", "_pred_fine."))
RULES = (*PREFIX_RULES, *spot_kind.RULES)
FEATURE_DIMS = {368: "rny002", 768: "rny008"}  # regnety_002 / regnety_008 pooled width = GRU input


def _is_model_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(SUFFIXES)


def _state_of(obj: Any) -> dict[str, Any] | None:
    """The model state_dict inside a loaded OSL checkpoint, or None when it holds none."""
    if not isinstance(obj, dict):
        return None
    for key in ("model_state_dict", "state_dict"):
        if isinstance(obj.get(key), dict):
            return obj[key]
    return None


def _peek(path: Path) -> bool:
    """Whether ``path`` looks like an OpenSportsLib checkpoint (memory-mapped, cheap)."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip-format torch file, or not loadable safely: not ours to claim
        return False
    state = _state_of(obj)
    if state is None:
        return False
    return any(str(k).startswith(("backbone._features.", "module.backbone._features.")) for k in state)


def model_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _is_model_file(p))


def detect(path: Path) -> bool:
    """An OSL checkpoint file, or a folder (without an e2espot/E2E-Spot config.json) holding one."""
    path = Path(path)
    if path.is_file():
        return _is_model_file(path) and _peek(path)
    if path.is_dir() and not (path / "config.json").is_file():
        files = model_files(path)
        preferred = [path / n for n in PREFERRED if (path / n).is_file()]
        return any(_peek(p) for p in (preferred or files)[:1])
    return False


def _choose_file(path: Path, checkpoint: str | None) -> tuple[Path, str]:
    if path.is_file():
        if checkpoint not in (None, "best"):
            raise CheckpointError(f"{path}: a checkpoint file was given; --checkpoint {checkpoint} picks nothing")
        return path, "the file given"
    files = model_files(path)
    if checkpoint not in (None, "best", "last"):
        file = Path(checkpoint)
        file = file if file.is_file() else path / checkpoint
        if not file.is_file():
            raise CheckpointError(f"{path}: checkpoint '{checkpoint}' not found; available: "
                                  f"{', '.join(p.name for p in files) or 'none'}")
        return file, f"--checkpoint {checkpoint}"
    name = "latest_checkpoint.pt" if checkpoint == "last" else "best_checkpoint.pt"
    if (path / name).is_file():
        return path / name, name
    if not files:
        raise CheckpointError(f"{path}: no {', '.join(SUFFIXES)} checkpoint file in this folder")
    return files[0], "first model file in name order (OpenSportsLib takes the first of a Hub listing)"


def _read_yaml(folder: Path) -> tuple[dict[str, Any] | None, Path | None]:
    import yaml

    for cand in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
        try:
            data = yaml.safe_load(cand.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and isinstance(data.get("MODEL"), dict) and isinstance(data.get("DATA"), dict):
            return data, cand
    return None, None


def _arch_from_tensors(state: dict[str, Any], path: Path) -> tuple[str, str | None, int]:
    """(backbone, temporal module, K) read off the tensors of a spot-keyed state."""
    gru = state.get("_pred_fine._gru.weight_ih_l0")
    fc = state.get("_pred_fine._fc_out._fc_out.weight")
    if gru is None or fc is None or gru.ndim != 2 or fc.ndim != 2:
        raise CheckpointError(
            f"{path}: no E2E GRU head (head._pred_fine._gru.weight_ih_l0 / _fc_out weights); only the E2E "
            "model with a GRU head (rny002/rny008, GSM) is supported without a config.yaml"
        )
    backbone = FEATURE_DIMS.get(int(gru.shape[1]))
    if backbone is None:
        raise CheckpointError(f"{path}: GRU input width {gru.shape[1]} is neither RegNetY-200MF (368) nor 800MF (768)")
    module = "gsm" if any(".gsm." in k for k in state) else None
    return backbone, module, int(fc.shape[0]) - 1


def convert(path: Path, *, checkpoint: str | None = None, classes: list[str] | None = None) -> ImportedModel:
    """Convert an OpenSportsLib E2E checkpoint (file or folder; see the module docstring)."""
    path = Path(path)
    file, how = _choose_file(path, checkpoint)
    obj = load_torch_file(file)
    state = _state_of(obj)
    if state is None:
        if isinstance(obj, dict) and obj and all(hasattr(v, "shape") for v in obj.values()):
            state = obj  # a bare state_dict, which the library also accepts
        else:
            keys = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
            raise CheckpointError(f"{file}: not an OpenSportsLib checkpoint (no 'model_state_dict'; found {keys})")
    state = strip_module_prefix(tensors_only(state, file, "an OpenSportsLib model_state_dict"), file)
    as_spot = {rename(k, PREFIX_RULES): v for k, v in state.items()}  # jhong93/spot key names

    cfg, cfg_path = _read_yaml(file.parent)
    data_cfg_src: dict[str, Any] = (cfg or {}).get("DATA", {})
    if cfg is not None:
        arch = str(cfg["MODEL"].get("backbone", {}).get("type", ""))
        head = str(cfg["MODEL"].get("head", {}).get("type", ""))
        name, _, module = arch.partition("_")
        if name not in spot_kind.BACKBONES or (module and module not in spot_kind.TEMPORAL) or head != "gru":
            raise CheckpointError(f"{cfg_path}: MODEL backbone '{arch}' / head '{head}' is not supported for "
                                  "import; supported: rny002/rny008 (+ _gsm) with a gru head")
        backbone, module = spot_kind.BACKBONES[name], (module or None)
        yaml_classes = data_cfg_src.get("classes")
        num_classes = len(yaml_classes) if isinstance(yaml_classes, list) else _arch_from_tensors(as_spot, file)[2]
    else:
        backbone, module, num_classes = _arch_from_tensors(as_spot, file)
        yaml_classes = None
    clip_len = int(data_cfg_src.get("clip_len", 100))
    modality = str(data_cfg_src.get("modality", "rgb"))
    if modality != "rgb":
        raise CheckpointError(f"{cfg_path}: modality '{modality}' is not supported for OpenSportsLib import (rgb only)")
    model_cfg = ModelConfig(num_classes=num_classes, backbone=backbone, temporal_module=module, head="gru",
                            clip_len=clip_len, pretrained=False, modality="rgb", pad_to_clip_len=module is not None)

    if classes:
        names, classes_source = list(classes), "--classes"
    elif isinstance(yaml_classes, list):
        names, classes_source = [str(c) for c in yaml_classes], str(cfg_path)
    elif num_classes == len(DEFAULT_CLASSES):
        names, classes_source = list(DEFAULT_CLASSES), "opensportslib config/localization.yaml (library default)"
        log.warning("%s: no config.yaml beside it; using OpenSportsLib's default 12 SoccerNet ball classes", file)
    else:
        raise CheckpointError(f"{file}: {num_classes} classes and no config.yaml beside it; pass --classes "
                              f"with {num_classes} names in the training order")
    if len(names) != num_classes:
        raise CheckpointError(f"{file}: {len(names)} class names from {classes_source}, the model has "
                              f"{num_classes} (background excluded)")

    try:
        ours = fit_state_dict(state, RULES, model_cfg, file)
    except ConfigError as exc:
        raise CheckpointError(f"{file}: {exc}") from None

    input_fps = float(data_cfg_src.get("input_fps", 25))
    extract_fps = float(data_cfg_src.get("extract_fps", 2))
    stride = max(1, int(input_fps / extract_fps))  # datasets read every int(input_fps / extract_fps)-th frame
    crop = data_cfg_src.get("crop_dim", -1)
    data_cfg = DataConfig(
        fps=input_fps / stride, height=int(data_cfg_src.get("target_height", 224)),
        width=int(data_cfg_src.get("target_width", 398)),
        crop=crop if isinstance(crop, int) and crop > 0 else None, clip_len=clip_len, windowing="spot",
    )
    provenance = {
        "kind": "osl",
        "reference": REFERENCE,
        "source": str(path.resolve()),
        "files": [file.name] + ([cfg_path.name] if cfg_path else []),
        "checkpoint": file.name,
        "checkpoint_sha256": sha256_file(file),
        "checkpoint_choice": how,
        "epoch": obj.get("epoch") if isinstance(obj, dict) and isinstance(obj.get("epoch"), int) else None,
        "classes_source": classes_source,
        "dataset": "osl_localization",
        "dataset_source": (f"{cfg_path.name}: " if cfg_path else "defaults of ")
        + f"opensportslib localization.yaml: every int({input_fps:g}/{extract_fps:g}) = {stride}-th frame of a "
        f"{input_fps:g} fps video ({data_cfg.fps:.4g} fps), {data_cfg.width}x{data_cfg.height}",
    }
    run_cfg = RunConfig(model=model_cfg, data=data_cfg, classes=tuple(names),
                        train={"imported_from": "osl"}, dataset={"name": "osl_localization"})
    return ImportedModel(run_cfg, ours, provenance, count_parameters(ours))

"""AdaSpot (arturxe2/AdaSpot @ 6a46bbc, CVPR 2026) checkpoints.

A model folder holds the project's config JSON (``config.json`` or ``config/<Dataset>/<Name>.json``, with
``data``/``training``/``model`` sections) and ``checkpoint_best.pt``: ``torch.save(AdaSpot.state_dict())``,
the plain state_dict of ``AdaSpot.Impl`` **with** the auxiliary heads (the reference loads it strictly, then
``clean_modules()`` drops them). Its drivers (``main.py``, ``inference.py``) read
``<save_dir>/<model_name>-<seed>/checkpoint_best.pt``; that sub-folder is found too.

=========================================  ====================================================================
reference                                  ours (``e2espot.models.adaspot.AdaSpot``)
=========================================  ====================================================================
``temp_enc``                               ``temp_enc``
``{low,high}res_backbone.X`` (timm)        ``{low,high}res_backbone.model.X``; GSF on every ``conv1``:
  ``.conv1.net.*``                           ``.conv1.conv.*``
  ``.conv1.gs.conv3D.*``                     ``.conv1.temporal.conv3d.*`` (weight stored flat, (2, C/2, 27))
  ``.conv1.gs.bn.*``                         ``.conv1.temporal.bn.*``
  ``.conv1.gs.channel_conv{1,2}.1.*``        ``.conv1.temporal.fuse_conv{1,2}.1.*`` (replicate-padded convs
                                             keep the ``.1.`` of ``Sequential(pad, conv)`` as the reference)
``{low,high}res_linear.*``                 same
``_temp_fine.*`` / ``_pred_fine._fc_out.*``  ``head.gru.*`` / ``head.fc.*``
``_temp_fine_{highres,lowres}.*``          ``aux_{highres,lowres}.gru.*``
``_pred_fine_{highres,lowres}._fc_out.*``  ``aux_{highres,lowres}.fc.*``
=========================================  ====================================================================

``convert`` checks the whole checkpoint (auxiliary heads included) loads strictly, then drops the auxiliary
heads as the reference's inference does: SoccerNetBall_small has 10,853,769 parameters in the file and
7,578,547 in the converted model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from e2espot.config import DataConfig, ModelConfig, PostprocessConfig, RunConfig
from e2espot.data.formats.soccernet import BALL_CLASSES
from e2espot.errors import CheckpointError, ConfigError
from e2espot.models.published import ImportedModel
from e2espot.models.published._common import check_strict_fit, map_key_first_match, rename_first_match
from e2espot.models.published.tdeed import _read_checkpoint

KIND = "adaspot"
CHECKPOINT_NAME = "checkpoint_best.pt"
REFERENCE = "arturxe2/AdaSpot @ 6a46bbc"

# data/<dataset>/class.txt @ 6a46bbc (index = line + 1, 0 = background)
SOCCERNETBALL_CLASSES = BALL_CLASSES[:10]  # the 12 SoccerNet-Ball classes without FREE KICK and GOAL
TENNIS_CLASSES = (
    "far_court_bounce",
    "far_court_swing",
    "far_court_serve",
    "near_court_bounce",
    "near_court_swing",
    "near_court_serve",
)

# dataset -> (rows per second the model sees or None = native, classes or None, soft-NMS window in rows)
# (util/eval.py WINDOWS / STRIDE constants, data/<dataset>/README.md: frames at 796x448 on disk)
DATASETS: dict[str, tuple[float | None, tuple[str, ...] | None, int]] = {
    "soccernetball": (12.5, SOCCERNETBALL_CLASSES, 12),
    "tennis": (None, TENNIS_CLASSES, 2),
}
OVERLAP = 50  # ActionSpotVideoDataset(overlap_len=50): windows every clip_len - 50 rows from -5


def _is_adaspot_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    model = data.get("model") if isinstance(data, dict) else None
    return isinstance(model, dict) and "roi_size" in model and "hr_dim" in model and "feature_arch" in model


def find_config(path: Path) -> Path | None:
    """The AdaSpot config JSON (a ``model`` section with ``roi_size`` and ``hr_dim``) of a folder, or None."""
    path = Path(path)
    if path.is_file():
        return path if path.suffix == ".json" and _is_adaspot_config(path) else None
    if not path.is_dir():
        return None
    candidates = [path / "config.json"] + sorted(p for p in path.glob("*.json") if p.name != "config.json")
    return next((p for p in candidates if p.is_file() and _is_adaspot_config(p)), None)


def detect(path: Path) -> bool:
    """True for an AdaSpot model folder (or its config JSON)."""
    return find_config(Path(path)) is not None


def _need(section: dict[str, Any], key: str, where: str) -> Any:
    if key not in section:
        raise ConfigError(f"{where}: missing key '{key}' (an AdaSpot config/<Dataset>/<Name>.json has it)")
    return section[key]


def model_config(
    config: dict[str, Any], where: Path = Path("config.json"), aux_heads: bool = False
) -> ModelConfig:
    """Our ModelConfig for an AdaSpot config (``Impl.__init__``): feature_arch rny002/rny008 with _gsf, _gsm
    or nothing, ``temporal_arch gru``, ``aggregation max``, GSF in the stages ``blocks_temporal`` marks."""
    model = config.get("model")
    data = config.get("data")
    if not isinstance(model, dict) or not isinstance(data, dict):
        raise ConfigError(f"{where}: expected 'model' and 'data' sections (an AdaSpot config JSON)")
    arch = _need(model, "feature_arch", f"{where} model")
    backbone, _, module = str(arch).partition("_")
    if backbone not in ("rny002", "rny008") or module not in ("", "gsf", "gsm"):
        raise ConfigError(
            f"{where}: feature_arch '{arch}' unsupported; expected rny002/rny008 with _gsf, _gsm or none"
        )
    for key, allowed in (("temporal_arch", "gru"), ("aggregation", "max")):
        if model.get(key, allowed) != allowed:
            raise ConfigError(
                f"{where}: model.{key} '{model.get(key)}' unsupported; AdaSpot has only '{allowed}'"
            )
    if data.get("dataset") == "f3set":
        raise ConfigError(f"{where}: F3Set's multi-head output (MultFCLayers) is not supported")
    blocks = model.get("blocks_temporal", [True] * 4)
    stages = tuple(i + 1 for i, on in enumerate(blocks) if on)
    kwargs = {
        k: tuple(_need(model, k, f"{where} model"))
        for k in ("hr_dim", "hr_crop", "lr_dim", "lr_crop", "roi_size")
    }
    kwargs.update(
        threshold=float(model.get("threshold", 0.0)),
        padding=str(model.get("padding", "zero")),
        aux_heads=aux_heads,
    )
    num_classes = _need(data, "num_classes", f"{where} data")
    clip_len = _need(data, "clip_len", f"{where} data")
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int)
        or isinstance(clip_len, bool)
        or not isinstance(clip_len, int)
    ):
        raise ConfigError(
            f"{where}: data.num_classes {num_classes!r} and data.clip_len {clip_len!r} must be ints"
        )
    return ModelConfig(
        num_classes=num_classes,
        backbone=backbone,
        temporal_module=module or None,
        temporal_stages=stages if module else None,
        head="adaspot",
        clip_len=clip_len,
        head_kwargs=kwargs,
        pretrained=False,
    )


def run_config(
    config: dict[str, Any],
    classes: list[str] | None = None,
    where: Path = Path("config.json"),
    aux_heads: bool = False,
) -> RunConfig:
    """Our RunConfig: the model, the dataset's row rate, frames read at ``hr_dim`` (the dataset's native
    796x448; the model resizes), T-DEED-style windows from -5 rows with overlap 50 (AdaSpot's
    ``ActionSpotVideoDataset``) and the dataset's soft-NMS window."""
    model = model_config(config, where, aux_heads)
    dataset = config["data"].get("dataset")
    fps, known, nms_window = DATASETS.get(dataset, (None, None, 3))
    if classes is None:
        if known is None:
            raise ConfigError(
                f"{where}: no class list is known for dataset {dataset!r}; pass --classes "
                "(AdaSpot's data/<dataset>/class.txt, one class per line)"
            )
        classes = list(known)
    if len(classes) != model.num_classes:
        raise ConfigError(
            f"{where}: num_classes is {model.num_classes} but {len(classes)} class names were given"
        )
    hr_h, hr_w = model.head_kwargs["hr_dim"]
    data = DataConfig(fps=fps, height=hr_h, width=hr_w, crop=None, clip_len=model.clip_len, windowing="tdeed")
    return RunConfig(
        model=model,
        data=data,
        classes=tuple(classes),
        postprocess=PostprocessConfig(nms="soft", nms_window=nms_window),
        dataset={"format": "adaspot", "name": dataset, "overlap": min(OVERLAP, model.clip_len - 1)},
    )


_RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"^(lowres|highres)_backbone\.(.*)\.conv1\.net\.(.*)$"),
        r"\1_backbone.model.\2.conv1.conv.\3",
    ),
    (
        re.compile(r"^(lowres|highres)_backbone\.(.*)\.conv1\.(?:gs|gsm)\.conv3D\.(.*)$"),
        r"\1_backbone.model.\2.conv1.temporal.conv3d.\3",
    ),
    (
        re.compile(r"^(lowres|highres)_backbone\.(.*)\.conv1\.(?:gs|gsm)\.bn\.(.*)$"),
        r"\1_backbone.model.\2.conv1.temporal.bn.\3",
    ),
    (
        re.compile(r"^(lowres|highres)_backbone\.(.*)\.conv1\.gs\.channel_conv([12])\.(.*)$"),
        r"\1_backbone.model.\2.conv1.temporal.fuse_conv\3.\4",
    ),
    (re.compile(r"^(lowres|highres)_backbone\.head\..*$"), ""),  # never present (head.fc = Identity)
    (re.compile(r"^(lowres|highres)_backbone\.(.*)$"), r"\1_backbone.model.\2"),
    (re.compile(r"^(temp_enc|lowres_linear\..*|highres_linear\..*)$"), r"\1"),
    (re.compile(r"^_temp_fine\.(.*)$"), r"head.gru.\1"),
    (re.compile(r"^_pred_fine\._fc_out\.(.*)$"), r"head.fc.\1"),
    (re.compile(r"^_temp_fine_(highres|lowres)\.(.*)$"), r"aux_\1.gru.\2"),
    (re.compile(r"^_pred_fine_(highres|lowres)\._fc_out\.(.*)$"), r"aux_\1.fc.\2"),
]


def map_key(key: str) -> str | None:
    """Our name for an AdaSpot state_dict key, or None when no rule matches."""
    return map_key_first_match(key, _RULES)


def convert_state_dict(state: dict[str, Any], where: Path = Path(CHECKPOINT_NAME)) -> dict[str, Any]:
    """Rename (and flatten the Conv3d gate kernels of) an AdaSpot state_dict to our key names."""
    return rename_first_match(state, _RULES, where, "AdaSpot keys",
                              "is this AdaSpot's checkpoint_best.pt (AdaSpot.state_dict(), no prefix)?")


def find_checkpoint(folder: Path, config_path: Path, checkpoint: str | None) -> Path:
    """``checkpoint`` (a path, or a name in the folder), else ``checkpoint_best.pt`` in the folder, else in its
    only ``<model_name>-<seed>/`` sub-folder (the reference's save layout)."""
    if checkpoint is not None:
        ckpt = Path(checkpoint)
        return ckpt if ckpt.is_absolute() or ckpt.exists() else folder / ckpt
    direct = folder / CHECKPOINT_NAME
    if direct.is_file():
        return direct
    nested = sorted(folder.glob(f"*/{CHECKPOINT_NAME}"))
    if len(nested) == 1:
        return nested[0]
    if len(nested) > 1:
        raise CheckpointError(
            f"{folder}: several {CHECKPOINT_NAME} ({', '.join(str(p.parent.name) for p in nested)}); "
            "pick one with --checkpoint"
        )
    raise CheckpointError(
        f"{direct}: not found; an AdaSpot model folder holds {CHECKPOINT_NAME} next to "
        f"{config_path.name} or in <model_name>-<seed>/"
    )


def convert(path: Path, *, checkpoint: str | None = None, classes: list[str] | None = None) -> ImportedModel:
    """Convert an AdaSpot model folder (config JSON + ``checkpoint_best.pt``) to our RunConfig + weights.

    The checkpoint must load strictly into the model with its auxiliary heads (as the reference's
    ``load(strict=True)``); the converted model then drops them (``clean_modules()``).
    Raises ConfigError (config) or CheckpointError (weights) naming the file and the fix.
    """
    from e2espot.models import create_spotter

    path = Path(path)
    config_path = find_config(path)
    if config_path is None:
        raise ConfigError(
            f"{path}: no AdaSpot config JSON (a 'model' section with roi_size and hr_dim) found"
        )
    folder = config_path.parent if path.is_file() else path
    config = json.loads(config_path.read_text())
    full_cfg = run_config(config, classes, config_path, aux_heads=True)
    ckpt = find_checkpoint(folder, config_path, checkpoint)
    state = convert_state_dict(_read_checkpoint(ckpt), ckpt)
    model = create_spotter(full_cfg.model)
    check_strict_fit(model.state_dict(), state, ckpt, config_path.name,
                     "The reference loads strictly with the auxiliary heads; check num_classes, feature_arch "
                     "and blocks_temporal")
    model.load_state_dict(state, strict=True)
    checkpoint_parameters = model.num_parameters()
    model.drop_auxiliary_heads()
    inference = {k: v.contiguous() for k, v in state.items() if not k.startswith("aux_")}
    cfg = run_config(config, classes, config_path, aux_heads=False)
    provenance = {
        "kind": KIND,
        "source": str(path),
        "config": str(config_path),
        "checkpoint": str(ckpt),
        "reference": REFERENCE,
        "checkpoint_parameters": checkpoint_parameters,
        "auxiliary_heads": "dropped (clean_modules)",
    }
    return ImportedModel(cfg, inference, provenance, model.num_parameters())


__all__ = [
    "DATASETS",
    "ImportedModel",
    "convert",
    "convert_state_dict",
    "detect",
    "find_checkpoint",
    "map_key",
    "model_config",
    "run_config",
]

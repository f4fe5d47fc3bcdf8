"""Helpers shared by the reference converters: safe loading, key renaming, strict fitting."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from e2espot.config import ModelConfig
from e2espot.errors import CheckpointError

log = logging.getLogger(__name__)

Rule = tuple[str, str]  # (regex on the reference key, replacement)


def load_torch_file(path: Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``: a checkpoint can never run code."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt, foreign or unsafe files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint with weights_only=True "
            f"({type(exc).__name__}: {first[:200]}). Is it the right file, and complete?"
        ) from None


def tensors_only(state: Any, path: Path, what: str) -> dict[str, Any]:
    """``state`` when it is a non-empty {str: tensor} dict, else CheckpointError naming ``what``."""
    import torch

    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path}: expected {what} (a dict of tensors), found {type(state).__name__}")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"{path}: expected {what}, but entry {bad[0]!r} is not a named tensor")
    return state


def strip_module_prefix(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """Drop a DataParallel ``module.`` prefix present on every key (with a warning: the references
    save unwrapped state_dicts, so a prefix means the file was saved by other code)."""
    if state and all(k.startswith("module.") for k in state):
        log.warning("%s: every key starts with 'module.' (saved from nn.DataParallel); stripping it", path)
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def rename(key: str, rules: Sequence[Rule]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def map_key_first_match(key: str, rules: Sequence[tuple[re.Pattern, str]]) -> str | None:
    """Our name for a reference key: the first (compiled regex, replacement) rule that matches it; None
    when none matches or the replacement is empty (a key our model never holds)."""
    for pattern, repl in rules:
        if pattern.match(key):
            return pattern.sub(repl, key) or None
    return None


def rename_first_match(state: dict[str, Any], rules: Sequence[tuple[re.Pattern, str]], where: Path,
                       not_ours: str, hint: str) -> dict[str, Any]:
    """Rename a reference state_dict key by key (``map_key_first_match``) and flatten 5-D temporal gate
    kernels (GSM / GSF ``conv3D``) to our ``FlatConv3d`` layout (out, in/groups, kd·kh·kw). Keys no rule
    maps raise ``CheckpointError``: "{where}: N keys are not {not_ours}, e.g. [...]; {hint}"."""
    out: dict[str, Any] = {}
    unknown = []
    for key, value in state.items():
        ours = map_key_first_match(key, rules)
        if ours is None:
            unknown.append(key)
            continue
        if ours.endswith("temporal.conv3d.weight") and value.ndim == 5:
            value = value.flatten(2)  # (2, C/2, 3, 3, 3) -> (2, C/2, 27)
        out[ours] = value
    if unknown:
        raise CheckpointError(f"{where}: {len(unknown)} keys are not {not_ours}, e.g. {unknown[:3]}; {hint}")
    return out


def check_strict_fit(own: dict[str, Any], state: dict[str, Any], where: Path, describes: str, fix: str) -> None:
    """Raise ``CheckpointError`` unless ``state`` has exactly the keys and shapes of our model's ``own``
    state_dict: "{where}: does not fit the model {describes} describes (missing [...]; unexpected [...];
    shape k (ref) != (ours)). {fix}"."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if not (missing or unexpected or wrong):
        return
    problems = []
    if missing:
        problems.append(f"missing {missing[:3]} ({len(missing)} in all)")
    if unexpected:
        problems.append(f"unexpected {unexpected[:3]}")
    if wrong:
        problems.append("shape " + ", ".join(f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
                                             for k in wrong[:3]))
    raise CheckpointError(f"{where}: does not fit the model {describes} describes ({'; '.join(problems)}). {fix}")


def expected_state(model_cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Our Spotter's state_dict keys and shapes for ``model_cfg`` (built without weights)."""
    import torch

    from e2espot.models import create_spotter

    with torch.device("meta"):
        model = create_spotter(dataclasses.replace(model_cfg, pretrained=False))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def fit_state_dict(
    reference: dict[str, Any],
    rules: Sequence[Rule],
    model_cfg: ModelConfig,
    path: Path,
    *,
    reshape_suffixes: tuple[str, ...] = (".conv3d.weight",),
) -> dict[str, Any]:
    """Rename ``reference`` keys with ``rules`` and check them against our model, strictly.

    Every key of ours must come from exactly one reference key with the same shape (tensors whose
    key ends with one of ``reshape_suffixes`` may differ in shape with the same number of values: our
    ``FlatConv3d`` stores the 5-D kernel flattened). Anything missing, left over or mis-shaped raises
    CheckpointError listing the first offenders, so a wrong file is refused, never loaded in part.
    """
    expected = expected_state(model_cfg)
    mapped: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in reference.items():
        ours = rename(key, rules)
        if ours in mapped:
            raise CheckpointError(f"{path}: keys {origin[ours]!r} and {key!r} both map to {ours!r}")
        mapped[ours], origin[ours] = value, key
    missing = [k for k in expected if k not in mapped]
    unexpected = [origin[k] for k in mapped if k not in expected]
    wrong = []
    for key, shape in expected.items():
        if key not in mapped:
            continue
        value = mapped[key]
        if tuple(value.shape) == shape:
            continue
        if key.endswith(reshape_suffixes) and value.numel() == _prod(shape):
            mapped[key] = value.reshape(shape)
            continue
        wrong.append(f"{origin[key]} {tuple(value.shape)} (expected {shape})")
    if missing or unexpected or wrong:
        def few(items: list[str]) -> str:
            return ", ".join(items[:4]) + (f" (+{len(items) - 4} more)" if len(items) > 4 else "")

        problems = []
        if missing:
            problems.append(f"{len(missing)} missing (ours: {few(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected: {few(unexpected)}")
        if wrong:
            problems.append(f"{len(wrong)} with another shape: {few(wrong)}")
        raise CheckpointError(
            f"{path}: the weights do not fit {model_cfg.backbone}"
            f"{'+' + model_cfg.temporal_module if model_cfg.temporal_module else ''}+{model_cfg.head} with "
            f"K={model_cfg.num_classes} ({'; '.join(problems)}). Is this the checkpoint of that model? "
            "Check the config beside it and --classes"
        )
    return {k: mapped[k] for k in expected}


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_class_file(path: Path) -> list[str]:
    """Class names from a class.txt (one per line, blank lines ignored; index = line + 1)."""
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise CheckpointError(f"{path}: no class names (one per line expected)")
    return names

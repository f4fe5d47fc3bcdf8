"""Atomic checkpoint files and safe loading: the one place run-directory checkpoints are read and written.

A checkpoint is a plain dict of tensors and Python primitives so that it loads with
``torch.load(..., weights_only=True)``: untrusted files can never run code. This module depends on
nothing but ``e2espot.errors`` (and torch), so training (``train.loop``), inference (``infer.predict``)
and model imports (``models.published``) all use it without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from e2espot.errors import CheckpointError

BEST = "best.pt"
LAST = "last.pt"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temp file + rename), so a kill never leaves half a file."""
    import torch

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; raise CheckpointError with the fix on failure."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint '{path}' not found; train a model first (e2espot train ... -s {path.parent})"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(
            f"cannot load checkpoint '{path}': {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
            "The file is corrupt or not an e2espot checkpoint; retrain or restore it"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"'{path}' is not an e2espot checkpoint (no 'model' entry)")
    return state

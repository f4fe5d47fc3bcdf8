"""Published models of the field, imported exactly into our Spotter.

A *reference* is a model as its project distributes it (a folder or a checkpoint file). Each kind of
reference has a module here with two functions::

    detect(path: Path) -> bool
    convert(path: Path, *, checkpoint: str | None, classes: list[str] | None) -> ImportedModel

``convert`` maps the reference's state_dict to our key names (the result loads with ``strict=True``
into ``create_spotter(run_config.model)``) and builds the ``RunConfig`` (architecture, classes, fps,
frame size, crop, windowing) the reference's own test code would use. Kinds are tried in ``KINDS``
order by ``detect_reference``; ``import_reference`` converts; ``write_run`` turns the result into one of
our run directories (``config.json`` + ``best.pt`` + ``provenance.json``), so every command works on it.

Exactness against the references' own outputs is proven by tests/models/test_published_spot.py on the
golden fixtures in ``shared/fixtures/published-models``.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from e2espot.config import RunConfig
from e2espot.errors import CheckpointError, unknown_name

# kind -> module under e2espot.models.published (each has detect() and convert())
KINDS: dict[str, str] = {
    "tdeed": "tdeed",  # arturxe2/T-DEED and SoccerNet/sn-teamspotting folders: config JSON + checkpoint_best.pt
    "spot": "spot",  # jhong93/spot (E2E-Spot) model folders: config.json + checkpoint_NNN.pt
    "osl": "osl",  # OpenSportsLib E2E localization checkpoints: {"model_state_dict": ...}
    "adaspot": "adaspot",  # arturxe2/AdaSpot folders: config JSON (model.roi_size) + checkpoint_best.pt
}

PROVENANCE_FILE = "provenance.json"


@dataclass
class ImportedModel:
    """A reference model converted to ours.

    ``state_dict`` uses our key names and loads strictly into ``create_spotter(run_config.model)``;
    ``provenance`` records the kind, the files read, the reference repository@commit whose code defines
    the model, and the checkpoint chosen; ``num_parameters`` counts the tensors that are parameters
    (buffers such as BN statistics excluded), as the reference READMEs do.
    """

    run_config: RunConfig
    state_dict: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    num_parameters: int = 0


def kind_module(kind: str) -> ModuleType:
    """The module implementing reference ``kind`` (UnknownNameError with the known kinds otherwise)."""
    if kind not in KINDS:
        raise unknown_name("reference kind", str(kind), KINDS)
    return importlib.import_module(f"{__name__}.{KINDS[kind]}")


def list_kinds() -> list[str]:
    return list(KINDS)


def detect_reference(path: str | Path) -> str | None:
    """The kind of reference model at ``path`` (a folder or a file), or None when it is none we know.

    Our own run directories (``config.json`` with a ``model`` section) are never detected as references.
    """
    path = Path(path)
    if not path.exists():
        return None
    for kind in KINDS:
        if kind_module(kind).detect(path):
            return kind
    return None


def import_reference(
    path: str | Path,
    *,
    kind: str | None = None,
    checkpoint: str | None = None,
    classes: list[str] | tuple[str, ...] | None = None,
) -> ImportedModel:
    """Convert the reference model at ``path`` (kind detected when None).

    Raises CheckpointError when ``path`` is no reference model we know, or when its weights do not
    fit the architecture its config names (strictly: every key, every shape).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: not found; pass a published model folder or checkpoint file")
    if kind is None:
        kind = detect_reference(path)
        if kind is None:
            raise CheckpointError(
                f"{path}: not a published model we know. Expected an E2E-Spot folder (config.json with "
                "feature_arch/temporal_arch + checkpoint_NNN.pt) or an OpenSportsLib checkpoint "
                "(a .pt holding model_state_dict)"
            )
    return kind_module(kind).convert(path, checkpoint=checkpoint, classes=list(classes) if classes else None)


def count_parameters(state_dict: dict[str, Any]) -> int:
    """Number of parameter values in a state_dict (BN running stats and counters excluded)."""
    skip = ("running_mean", "running_var", "num_batches_tracked")
    return sum(int(v.numel()) for k, v in state_dict.items() if not k.endswith(skip))


def build_model(imported: ImportedModel):
    """Our Spotter with the imported weights loaded strictly, in eval mode."""
    import dataclasses

    from e2espot.models import create_spotter

    model = create_spotter(dataclasses.replace(imported.run_config.model, pretrained=False))
    try:
        model.load_state_dict(imported.state_dict, strict=True)
    except RuntimeError as exc:  # a converter bug, not user input: say what did not fit
        first = " ".join(line.strip() for line in str(exc).splitlines()[:3])[:400]
        raise CheckpointError(f"imported weights do not fit our model: {first}") from None
    return model.eval()


def write_run(imported: ImportedModel, run_dir: str | Path) -> Path:
    """Write ``imported`` as one of our run directories: config.json, best.pt, provenance.json.

    ``best.pt`` holds ``{"model", "config", "epoch", "score", "provenance"}`` (loads with
    ``weights_only=True`` like every checkpoint of ours). The model is built and loaded strictly first,
    so a run directory that would not load is never written.
    """
    from e2espot.checkpoint import BEST, save_checkpoint

    build_model(imported)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_dict = json.loads(json.dumps(imported.run_config.to_dict()))
    provenance = json.loads(json.dumps(imported.provenance))
    imported.run_config.save(run_dir / "config.json")
    save_checkpoint(
        {"model": imported.state_dict, "config": cfg_dict, "epoch": provenance.get("epoch"), "score": None,
         "provenance": provenance},
        run_dir / BEST,
    )
    (run_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    return run_dir


__all__ = [
    "KINDS",
    "ImportedModel",
    "build_model",
    "count_parameters",
    "detect_reference",
    "import_reference",
    "kind_module",
    "list_kinds",
    "write_run",
]

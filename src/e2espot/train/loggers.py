"""Experiment loggers beside TensorBoard: Weights & Biases (optional extra ``e2espot[wandb]``).

The training loop writes scalars through one object with TensorBoard's ``SummaryWriter`` methods
(``add_scalar``, ``flush``, ``close``). :func:`with_wandb` returns that writer unchanged when W&B is off,
else a :class:`FanOut` that sends every scalar to both. W&B modes: ``online`` (needs ``wandb login`` or
``WANDB_API_KEY``), ``offline`` (files under ``RUN/wandb/``; upload later with ``wandb sync``) and
``disabled``/``off``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2espot.config import RunConfig
from e2espot.errors import ConfigError

WANDB_MODES = ("off", "online", "offline")


class WandbWriter:
    """A ``SummaryWriter``-like front for one W&B run (scalars logged with ``step`` = epoch)."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.run.log({tag: value}, step=int(step))

    def flush(self) -> None:  # W&B streams by itself
        pass

    def close(self) -> None:
        self.run.finish()


class FanOut:
    """Send every call to each writer (TensorBoard, W&B)."""

    def __init__(self, writers: list[Any]) -> None:
        self.writers = writers

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        for w in self.writers:
            w.add_scalar(tag, value, step)

    def flush(self) -> None:
        for w in self.writers:
            w.flush()

    def close(self) -> None:
        for w in self.writers:
            w.close()


def open_wandb(save_dir: Path, run_cfg: RunConfig, mode: str, project: str = "e2espot") -> WandbWriter:
    """Start a W&B run for ``save_dir`` (name = folder name, config = the resolved RunConfig).

    Raises ConfigError for an unknown mode or when the ``wandb`` package is missing.
    """
    if mode not in ("online", "offline"):
        raise ConfigError(f"--wandb {mode!r}: expected one of {', '.join(WANDB_MODES)}")
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            f"--wandb {mode} needs the wandb package: pip install 'e2espot[wandb]' (or train without --wandb)"
        ) from None
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project, name=save_dir.name, dir=str(save_dir), mode=mode,
                     config=run_cfg.to_dict())
    return WandbWriter(run)


def with_wandb(writer: Any, save_dir: Path, run_cfg: RunConfig, mode: str, project: str = "e2espot") -> Any:
    """``writer`` (TensorBoard or None) alone when ``mode == "off"``, else a FanOut with a W&B run."""
    if mode == "off":
        return writer
    wb = open_wandb(save_dir, run_cfg, mode, project)
    return FanOut([w for w in (writer, wb) if w is not None])

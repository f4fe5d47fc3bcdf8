"""The training loop. ``train()`` reads top to bottom as an outline: where it runs (``_setup_runtime``),
data (``_build_loaders``), model and optimiser (``_build_model_and_optimiser``), resume or start
(``_resume`` / ``_start``), then epochs of train (``_train_epoch``) → validate (``_validate``) → keep the
best (``_keep_best``) → log and checkpoint (``_end_epoch``), and at the end the post-processing chosen on
validation (``_choose_and_save_postprocess``). The helpers follow ``train()`` in that order.

Validation mAP and the post-processing run full-video inference through ``infer.split.predict_videos``,
the loop ``e2espot test`` uses; checkpoints are read and written by ``e2espot.checkpoint``.

Exact resume: every source of randomness is a pure function of (seed, epoch, step):
clips are drawn from an index-seeded generator, and the global torch RNG (dropout,
augmentation, mixup) is re-seeded at every step. So resuming from ``last.pt`` at
(epoch, step) continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from e2espot.checkpoint import BEST, LAST, load_checkpoint, save_checkpoint
from e2espot.config import PostprocessConfig, RunConfig
from e2espot.data.datasets import ClipDataset, ValidationClips, make_loader
from e2espot.data.labels import LabelSet, VideoLabels
from e2espot.data.tracks import TrackInputs
from e2espot.data.transforms import DeviceAugment, to_device
from e2espot.device import autocast, resolve_device, resolve_precision, tune_cpu_allocator
from e2espot.errors import CheckpointError, ConfigError
from e2espot.eval.metrics import e2e_map
from e2espot.infer.postprocess import (
    action_scores,
    choose_thresholds,
    scores_to_events,
    team_scores_to_events,
)
from e2espot.infer.split import predict_videos
from e2espot.models import create_spotter
from e2espot.models.losses import SpottingLoss
from e2espot.train import joint as joint_training
from e2espot.train.distributed import all_reduce_mean, barrier, init_distributed, shutdown
from e2espot.train.history import MAP_UNIT_KEY, PERCENT, map_percent, resumed_in_percent
from e2espot.train.loggers import with_wandb
from e2espot.train.optim import LR_SCHEDULES, build_lr_schedule, build_optimizer, sam_step
from e2espot.train.team import flip_class_map, join_team_labels

log = logging.getLogger(__name__)

CRITERIA = ("map", "loss")
# DeviceAugment overrides per --augment level
AUGMENT_LEVELS: dict[str, dict[str, float]] = {
    "full": {},
    "flip": {"jitter_p": 0.0, "blur_p": 0.0},
    "none": {"flip_p": 0.0, "jitter_p": 0.0, "blur_p": 0.0},
}


@dataclass(frozen=True)
class TrainOptions:
    """Training hyper-parameters (E2E-Spot defaults unless noted)."""

    num_epochs: int = 50
    epoch_clips: int | None = None  # clips per epoch; None: 500000 frames / clip_len (E2E-Spot)
    val_clips: int | None = None  # None: epoch_clips // 4
    batch_size: int = 8
    acc_grad: int = 1  # gradient accumulation: loader batch = batch_size / acc_grad
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_epochs: int = 3
    lr_schedule: str = "cosine"  # cosine: warm-up then cosine (ours); spot: jhong93/spot's, exactly
    loss: str = "ce"  # ce | bce | focal
    fg_weight: float = 5.0
    focal_gamma: float = 2.0
    softic_weight: float = 0.0  # 0 disables SoftIC; 0.001 is the published weight
    softic_temperature: float = 0.1
    optimizer: str = "adamw"  # adamw | sam | asam
    rho: float = 0.05
    mixup: bool = True
    mixup_alpha: float = 0.2
    dilate_len: int = 0
    fg_upsample: float = 0.0  # probability of a clip centred on an event
    displacement_radius: int = 0  # T-DEED: > 0 trains the displacement head
    start_val_epoch: int | None = None  # None: num_epochs - 20 (E2E-Spot)
    criterion: str = "map"  # map | loss
    val_tolerances: tuple[int, ...] = (1, 2, 4)
    val_overlap: int = 0
    num_workers: int | None = None  # None: per machine (cpu_loader_plan), 2 on GPUs
    num_threads: int | None = None  # CPU compute threads; None: per machine (cpu_loader_plan)
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    checkpoint_every: int = 0  # also save last.pt every N optimiser steps (0: end of epoch only)
    max_steps: int | None = None  # stop after this many optimiser steps in total (tests, debugging)
    channels_last: bool | None = None  # None: the backbone's preference (registry metadata)
    augment: str = "full"  # full: crop/flip/colour jitter/blur; flip: crop/flip only; none: crop only
    wandb: str = "off"  # off | online | offline: Weights & Biases beside TensorBoard (e2espot.train.loggers)
    wandb_project: str = "e2espot"
    team_weight: float = 1.0  # weight of the team BCE (models with a team head, ModelConfig.team_head)
    team_joint: bool = False  # one class head over 2K action-team classes (e2espot.train.team)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resolved(self, clip_len: int) -> TrainOptions:
        if self.batch_size % self.acc_grad:
            raise ConfigError(f"--batch-size {self.batch_size} must be divisible by -ag {self.acc_grad}")
        if self.augment not in AUGMENT_LEVELS:
            raise ConfigError(f"--augment {self.augment}: expected one of {', '.join(AUGMENT_LEVELS)}")
        if self.criterion not in CRITERIA:
            raise ConfigError(f"--criterion {self.criterion}: expected one of {', '.join(CRITERIA)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"--lr-schedule {self.lr_schedule}: expected one of {', '.join(LR_SCHEDULES)}")
        if self.lr_schedule == "spot" and self.num_epochs <= self.warmup_epochs:
            raise ConfigError(
                f"--lr-schedule spot: its cosine spans --num-epochs - --warmup-epochs = "
                f"{self.num_epochs} - {self.warmup_epochs} epochs and needs at least one; raise --num-epochs "
                "above --warmup-epochs (or use --lr-schedule cosine)"
            )
        epoch_clips = self.epoch_clips or max(1, 500_000 // clip_len)
        return replace(
            self,
            epoch_clips=epoch_clips,
            val_clips=self.val_clips if self.val_clips is not None else max(1, epoch_clips // 4),
            start_val_epoch=(
                self.start_val_epoch if self.start_val_epoch is not None else max(0, self.num_epochs - 20)
            ),
        )


@dataclass
class TrainResult:
    """``best_score``: val mAP (criterion map) or minus the val loss (criterion loss); None when no epoch
    was scored, and then ``best_epoch`` is the last epoch (best.pt holds its weights) and
    ``unvalidated_reason`` says why nothing was scored."""

    save_dir: Path
    best_epoch: int | None
    best_score: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    criterion: str = "map"
    unvalidated_reason: str | None = None


@dataclass(frozen=True)
class LoaderPlan:
    """CPU compute threads and DataLoader worker processes for a training run, and why."""

    threads: int
    workers: int
    reason: str


# Measured with `python benchmarks/bench_train.py --compare-threads` (README "CPU threads") on the 2-core
# project machine, shared (load average 10-11): on prepared short-GOP video 1 compute thread + 1 loader
# worker trained at 0.21 clips/s, 2 threads + the loader in process at 0.03 (rny002_gsm+gru, 112 px,
# clip 16, batch 2); on raw video 0.19 vs 0.03. A second OpenMP thread on a busy core stalls at every
# barrier; the gain it can bring on an idle machine is at most 2x, the loss on a shared one was 7x.
SMALL_MACHINE_CORES = 2  # at or below: 1 worker (the loader is cheap), 1 compute thread per other core


def cpu_loader_plan(num_workers: int | None, num_threads: int | None, *, device_type: str,
                    cores: int | None = None) -> LoaderPlan:
    """Threads and workers for ``device_type`` on a machine with ``cores`` usable cores (default: this
    process's affinity). Explicit values win; on a GPU the default is 2 workers (threads untouched).

    On the CPU, OpenMP threads that outnumber the free cores stall at every barrier (10x slower steps),
    so each worker process gets a core and compute gets the rest (at least one thread): 1 worker on
    machines of up to 2 cores, 2 above. ``-j 0`` loads in the training process and computes on every core.
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if device_type != "cpu":
        workers = 2 if num_workers is None else num_workers
        return LoaderPlan(threads=num_threads or 0, workers=workers, reason="accelerator: workers decode")
    if num_workers is None:
        workers = 1 if cores <= SMALL_MACHINE_CORES else 2
        why = f"{cores} cores: {workers} loader worker{'s' if workers > 1 else ''}, one core each, the rest compute"
    else:
        workers, why = num_workers, "-j given"
    threads = num_threads if num_threads is not None else max(1, cores - workers)
    if num_threads is not None:
        why += "; --threads given"
    return LoaderPlan(threads=threads, workers=workers, reason=why)


def _step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch * 100_003 + step) % (2**63 - 1)


def train(
    run_cfg: RunConfig,
    train_labels: LabelSet,
    val_labels: LabelSet | None,
    save_dir: str | Path,
    opts: TrainOptions,
    *,
    resume: bool = False,
    reader_factory: Callable | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[str, int, int, dict[str, float]], None] | None = None,
    joint: Any = None,  # e2espot.train.joint.JointData: a second label set with its own class head
) -> TrainResult:
    """Train a spotter and write the run directory. Returns the best epoch and the history.

    The outline: where it runs → data → model and optimiser → resume or start → epochs of (train →
    validate → keep the best → log and checkpoint) → post-processing chosen on validation. Every step is
    a helper below, in this order. The order is part of the results: the model is initialised right after
    ``torch.manual_seed(opts.seed)`` (in ``_build_model_and_optimiser``), every optimiser step re-seeds the
    global RNG (``_step_seed``) and clips come from index-seeded generators; a hook that draws random numbers
    belongs after the model is built and before the epochs, or inside a step after its re-seed.
    """
    save_dir = Path(save_dir)
    opts = opts.resolved(run_cfg.data.clip_len)
    rt = _setup_runtime(opts)
    run_cfg, team, train_labels, clip_val_labels = _team_setup(run_cfg, opts, train_labels, val_labels)
    if joint is not None:  # a second label set with its own class head (e2espot.train.joint)
        run_cfg = joint_training.configure(run_cfg, joint, team_joint=team == "joint")
    has_val = val_labels is not None and len(val_labels) > 0

    # ---- data: uint8 clips from worker processes; augmentation happens on the device ---------------
    train_loader, val_loader = _build_loaders(run_cfg, opts, rt, team, train_labels, clip_val_labels, has_val,
                                              reader_factory, joint)
    track_inputs = TrackInputs.for_run(run_cfg, train_labels, clip_val_labels)  # object tracks (None without)
    steps_per_epoch = len(train_loader) // opts.acc_grad
    _check_epoch_plan(opts, rt, steps_per_epoch, has_val)

    # ---- model, loss, optimiser; then resume or start the run directory ---------------
    parts = _build_model_and_optimiser(run_cfg, opts, rt, team, steps_per_epoch, joint)
    parts.tracks = track_inputs
    st = _resume(save_dir, run_cfg, opts, rt, parts) if resume else _start(save_dir, run_cfg, rt)
    writer = with_wandb(_tensorboard(save_dir), save_dir, run_cfg, opts.wandb, opts.wandb_project) \
        if rt.dist.is_main else None

    # ---- epochs: train → validate → keep the best → log and checkpoint ------------------
    for epoch in range(st.epoch, opts.num_epochs):
        row = _train_epoch(epoch, parts, train_loader, steps_per_epoch, opts, rt, st, run_cfg, save_dir, progress)
        if row is None:  # stopped mid-epoch by max_steps; the resume point is saved
            break
        _validate(epoch, row, parts, val_loader, run_cfg, val_labels, opts, rt, reader_factory, joint)
        st.history.append(row)
        improved, score = _keep_best(st, row, opts, epoch)
        if rt.dist.is_main:
            _end_epoch(save_dir, st, row, parts, run_cfg, opts, writer, epoch, improved, score, on_epoch_end)
        barrier(rt.dist)
        if st.stopped:
            break

    # ---- the end: best.pt when nothing was scored, post-processing for predict ----------
    unvalidated = None
    if rt.dist.is_main and not st.stopped:
        if st.best_epoch is None:
            unvalidated = _save_unvalidated_best(save_dir, st, parts, run_cfg, opts, val_labels, val_loader)
        if has_val:
            _choose_and_save_postprocess(save_dir, parts, run_cfg, val_labels, opts, rt, reader_factory)
    if writer is not None:
        writer.close()
    shutdown(rt.dist)
    return TrainResult(save_dir=save_dir, best_epoch=st.best_epoch, best_score=st.best_score, history=st.history,
                       criterion=opts.criterion, unvalidated_reason=unvalidated)


# --------------------------------------------------------------------------- train()'s steps


@dataclass(frozen=True)
class _Runtime:
    """Where and how a run computes: the device, its precision and autocast context, the process group."""

    device: torch.device
    precision: str
    amp: Any  # e2espot.device.autocast context
    dist: Any  # train.distributed.DistInfo
    num_workers: int  # DataLoader workers (cpu_loader_plan)


@dataclass
class _Parts:
    """What training updates and checkpoints (``train_model`` is ``model`` or its DDP wrapper)."""

    model: torch.nn.Module
    loss_fn: SpottingLoss
    optimizer: Any
    scheduler: Any
    scaler: Any  # torch.amp.GradScaler (enabled for fp16 only)
    augment: DeviceAugment
    train_model: torch.nn.Module
    tracks: Any = None  # e2espot.data.tracks.TrackInputs: per-clip object-track features (None without fusion)


@dataclass
class _RunState:
    """Where the run is: the next (epoch, step), and what ``last.pt`` records besides the weights."""

    epoch: int = 0  # the epoch to start at
    step: int = 0  # the step of ``epoch`` to start at (resume mid-epoch); 0 for every later epoch
    global_step: int = 0  # optimiser steps so far
    epoch_loss: tuple[float, int] = (0.0, 0)  # (sum, count) of the train loss of a partly done epoch
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float | None = None
    best_epoch: int | None = None
    stopped: bool = False  # max_steps reached


def _setup_runtime(opts: TrainOptions) -> _Runtime:
    """Device (the local rank's GPU under torchrun), precision, and on the CPU the thread / worker plan."""
    device = resolve_device(opts.device)
    dist_info = init_distributed(device.type)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    precision = resolve_precision(opts.precision, device)
    amp = autocast(device, precision)
    plan = cpu_loader_plan(opts.num_workers, opts.num_threads, device_type=device.type)
    if device.type == "cpu":
        tune_cpu_allocator()  # no mmap/munmap page-fault storm for large activations
        torch.set_num_threads(plan.threads)
        threads = f"{plan.threads} compute thread{'s' if plan.threads != 1 else ''}"
        workers = f"{plan.workers} loader worker{'s' if plan.workers != 1 else ''}"
        log.info(f"CPU: {threads}, {workers} ({plan.reason})")
    return _Runtime(device, precision, amp, dist_info, plan.workers)


def _build_loaders(run_cfg: RunConfig, opts: TrainOptions, rt: _Runtime, team: str | None, train_labels: LabelSet,
                   clip_val_labels: LabelSet | None, has_val: bool, reader_factory: Callable | None, joint=None):
    """The training loader (index-seeded clips, sharded over ranks) and the validation-loss loader (None
    without validation labels or ``val_clips``), both of micro-batches (``batch_size / acc_grad``)."""
    data_cfg, video_root = run_cfg.data, run_cfg.dataset.get("videos")
    micro_batch = opts.batch_size // opts.acc_grad
    train_set = ClipDataset(
        train_labels, data_cfg, epoch_clips=opts.epoch_clips, fg_upsample=opts.fg_upsample,
        dilate_len=opts.dilate_len, displacement_radius=opts.displacement_radius, mixup=opts.mixup,
        seed=opts.seed, reader_factory=reader_factory, train=True, video_root=video_root, team=team == "head",
    )
    if joint is not None:
        train_set = joint_training.wrap_dataset(train_set, joint, run_cfg, opts)
    train_loader = make_loader(train_set, micro_batch, rt.num_workers, rank=rt.dist.rank,
                               world_size=rt.dist.world_size, device=rt.device)
    val_loader = None
    if has_val and opts.val_clips:
        val_set = ValidationClips(
            clip_val_labels, data_cfg, num_clips=opts.val_clips, dilate_len=opts.dilate_len,
            displacement_radius=opts.displacement_radius, seed=opts.seed + 1, reader_factory=reader_factory,
            video_root=video_root, team=team == "head",
        )
        if joint is not None:
            val_set = joint_training.wrap_dataset(val_set, joint, run_cfg, opts, validation=True)
        val_loader = make_loader(val_set, micro_batch, min(rt.num_workers, 1), device=rt.device,
                                 persistent_workers=False)
    return train_loader, val_loader


def _check_epoch_plan(opts: TrainOptions, rt: _Runtime, steps_per_epoch: int, has_val: bool) -> None:
    """Warn when no epoch will be validated; ConfigError when an epoch is shorter than one batch."""
    if rt.dist.is_main and has_val and opts.criterion == "map" and opts.start_val_epoch >= opts.num_epochs:
        log.warning(f"--start-val-epoch {opts.start_val_epoch} >= --num-epochs {opts.num_epochs}: no epoch will be "
                    "validated, so best.pt will hold the last epoch")
    if steps_per_epoch < 1:
        raise ConfigError(
            f"an epoch of {opts.epoch_clips} clips is less than one batch of {opts.batch_size} "
            f"x {rt.dist.world_size} processes; raise --epoch-clips or lower --batch-size"
        )


def _build_model_and_optimiser(run_cfg: RunConfig, opts: TrainOptions, rt: _Runtime, team: str | None,
                               steps_per_epoch: int, joint=None) -> _Parts:
    """The model (seeded with ``opts.seed``), loss, optimiser, LR schedule, fp16 scaler, device augmentation
    and, under torchrun, the DDP wrapper."""
    device = rt.device
    num_classes = len(run_cfg.classes) * (2 if team == "joint" else 1)  # class-head outputs (+ background)
    torch.manual_seed(opts.seed)
    model = create_spotter(run_cfg.model).to(device)
    if opts.channels_last if opts.channels_last is not None else model.prefers_channels_last:
        model = model.to(memory_format=torch.channels_last)
    if rt.dist.is_main:
        log.info(model.summary())
    loss_fn = SpottingLoss(
        num_classes, opts.loss, fg_weight=opts.fg_weight, focal_gamma=opts.focal_gamma,
        softic_weight=opts.softic_weight, softic_temperature=opts.softic_temperature,
        feature_dim=model.feature_dim, displacement_weight=1.0 if opts.displacement_radius > 0 else 0.0,
        team_weight=opts.team_weight,
    ).to(device)
    target_classes = num_classes  # soft-target columns - 1 (DeviceAugment)
    if joint is not None:
        loss_fn = joint_training.wrap_loss(loss_fn, run_cfg, opts).to(device)
        target_classes = joint_training.num_target_classes(run_cfg, num_classes)
    optimizer = build_optimizer(list(model.parameters()) + list(loss_fn.parameters()), opts.optimizer,
                                lr=opts.lr, weight_decay=opts.weight_decay, rho=opts.rho)
    warmup_steps = min(opts.warmup_epochs, opts.num_epochs) * steps_per_epoch
    scheduler = build_lr_schedule(  # on the base optimiser: SAM's second_step calls its step()
        opts.lr_schedule, getattr(optimizer, "base_optimizer", optimizer), warmup_steps,
        opts.num_epochs * steps_per_epoch,
    )
    if opts.lr_schedule == "spot" and warmup_steps > (opts.num_epochs * steps_per_epoch - warmup_steps):
        log.warning("--lr-schedule spot with a warm-up longer than the cosine: as in spot, torch's cosine "
                    "restart adds the full LR during the warm-up, so the LR can exceed --learning-rate")
    scaler = torch.amp.GradScaler(device.type, enabled=(rt.precision == "fp16"))
    augment = DeviceAugment(  # a flip swaps the sides: team targets (head) or X-left/X-right classes (joint)
        target_classes, run_cfg.data.crop, mixup_alpha=opts.mixup_alpha, seed=opts.seed,
        flip_class_map=flip_class_map(len(run_cfg.classes)) if team == "joint" else None,
        modality=run_cfg.model.modality,  # RGB frames -> the model's channels (e2espot.data.modality)
        **AUGMENT_LEVELS[opts.augment],
    )
    train_model = model
    if rt.dist.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
        )
    return _Parts(model, loss_fn, optimizer, scheduler, scaler, augment, train_model)


def _config_record(run_cfg: RunConfig) -> dict[str, Any]:
    """``run_cfg`` as plain JSON types, as checkpoints store it."""
    return json.loads(json.dumps(run_cfg.to_dict()))


def _start(save_dir: Path, run_cfg: RunConfig, rt: _Runtime) -> _RunState:
    """A new run: create the directory and write ``config.json`` (rank 0)."""
    if rt.dist.is_main:
        save_dir.mkdir(parents=True, exist_ok=True)
        run_cfg.save(save_dir / "config.json")
    return _RunState()


def _resume(save_dir: Path, run_cfg: RunConfig, opts: TrainOptions, rt: _Runtime, parts: _Parts
                     ) -> _RunState:
    """Load ``last.pt`` into ``parts`` and return where it stopped; CheckpointError when its config differs."""
    state = load_checkpoint(save_dir / LAST)
    recorded = state.get("config") or {}
    try:  # in today's layout (older runs kept postprocess under train)
        recorded = _config_record(RunConfig.from_dict(recorded))
    except ConfigError:
        pass  # compared as written: the differences name what is off
    differences = config_differences(recorded, _config_record(run_cfg))
    if differences:
        raise CheckpointError(
            f"{save_dir / LAST}: its config differs from this run's in {len(differences)} "
            f"option{'s' if len(differences) != 1 else ''}: {'; '.join(differences)}. Resume with the "
            "checkpoint's values (see config.json), or train into a new -s directory"
        )
    parts.model.load_state_dict(state["model"])
    parts.loss_fn.load_state_dict(state["loss"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    parts.scaler.load_state_dict(state["scaler"])
    st = _RunState(
        epoch=state["epoch"], step=state["step"], global_step=state["global_step"],
        epoch_loss=(state["epoch_loss_sum"], state["epoch_loss_count"]), history=json.loads(state["history"]),
        best_score=state.get("best_score"), best_epoch=state.get("best_epoch"),
    )
    st.history, st.best_score = resumed_in_percent(st.history, st.best_score, opts.criterion)  # old runs: fractions
    if rt.dist.is_main:
        log.info(f"resuming from {save_dir / LAST}: epoch {st.epoch}, step {st.step}")
    return st


def _last_state(parts: _Parts, run_cfg: RunConfig, opts: TrainOptions, st: _RunState, epoch: int, step: int,
                epoch_loss: tuple[float, int] = (0.0, 0)) -> dict[str, Any]:
    """``last.pt``: everything an exact resume at (``epoch``, ``step``) needs."""
    return {
        "epoch_loss_sum": epoch_loss[0], "epoch_loss_count": epoch_loss[1],
        "model": parts.model.state_dict(), "loss": parts.loss_fn.state_dict(),
        "optimizer": parts.optimizer.state_dict(), "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(), "config": _config_record(run_cfg),
        "epoch": epoch, "step": step, "global_step": st.global_step, "history": json.dumps(st.history),
        "best_score": st.best_score, "best_epoch": st.best_epoch, "options": json.dumps(opts.to_dict()),
    }


def _forward_loss(parts: _Parts, rt: _Runtime, batch: dict[str, Any], train_mode: bool, generator=None):
    """Augment on the device, forward under the precision context, return the loss."""
    aug = parts.augment(batch, train=train_mode, generator=generator)
    x = aug.frames  # (B, T, C, H, W) float in [0, 1], C = the modality's channels
    net = parts.train_model if train_mode else parts.model
    tracks = parts.tracks.batch_tracks(batch, aug, train_mode) if parts.tracks is not None else None
    with rt.amp:
        out = net(x) if tracks is None else net(x, tracks=tracks)  # tracks (B, T, F) object-track features
        return parts.loss_fn(out, {"labels": aug.targets, "displacement": aug.displacement, "valid": aug.valid,
                                   "team": aug.team, "dataset": batch.get("dataset")})


def _train_epoch(epoch: int, parts: _Parts, loader, steps_per_epoch: int, opts: TrainOptions, rt: _Runtime,
                 st: _RunState, run_cfg: RunConfig, save_dir: Path, progress) -> dict[str, Any] | None:
    """The optimiser steps of one epoch (from ``st.step`` when resuming into it). Returns the epoch's row
    (``epoch``, ``train_loss``, ``lr``, ``clips_per_s``), or None when ``max_steps`` stopped it mid-epoch
    (``last.pt`` then holds the exact resume point). Each step re-seeds the global RNG from (seed, epoch,
    step, rank), so an interrupted and resumed run draws what an uninterrupted one does."""
    parts.model.train()
    first_step = st.step
    loader.sampler.set_epoch(epoch, skip=first_step * opts.batch_size)
    batches = iter(loader)
    t0, clips_seen = time.perf_counter(), 0
    loss_sum, loss_count = st.epoch_loss
    step = first_step
    for step in range(first_step, steps_per_epoch):
        seed = _step_seed(opts.seed, epoch, step) + rt.dist.rank
        torch.manual_seed(seed)  # dropout and any other global-RNG use: a function of the step
        micro = [to_device(next(batches), rt.device) for _ in range(opts.acc_grad)]

        def closure(seed: int = seed, micro: list = micro) -> torch.Tensor:  # sam_step calls it (twice for SAM)
            gen = torch.Generator().manual_seed(seed)  # same augmentation in both SAM passes
            total = torch.zeros((), device=rt.device)
            for batch in micro:
                loss = _forward_loss(parts, rt, batch, True, gen) / opts.acc_grad
                parts.scaler.scale(loss).backward()
                total += loss.detach()
            return total

        step_loss = sam_step(parts.train_model, closure, parts.optimizer, parts.scaler)  # fp16: scaled, SAM-aware
        parts.scheduler.step()
        st.global_step += 1
        clips_seen += opts.batch_size
        loss_sum += float(step_loss)
        loss_count += 1
        if progress and rt.dist.is_main:
            progress("train", step + 1, steps_per_epoch, {
                "epoch": epoch, "loss": loss_sum / loss_count,
                "clips_per_s": clips_seen / max(1e-9, time.perf_counter() - t0)})
        if opts.checkpoint_every and st.global_step % opts.checkpoint_every == 0 and rt.dist.is_main:
            save_checkpoint(_last_state(parts, run_cfg, opts, st, epoch, step + 1, (loss_sum, loss_count)),
                            save_dir / LAST)
        if opts.max_steps is not None and st.global_step >= opts.max_steps:
            st.stopped = True
            break
    if st.stopped and step + 1 < steps_per_epoch:  # stopped mid-epoch: keep an exact resume point
        if rt.dist.is_main:
            save_checkpoint(_last_state(parts, run_cfg, opts, st, epoch, step + 1, (loss_sum, loss_count)),
                            save_dir / LAST)
        return None
    st.step, st.epoch_loss = 0, (0.0, 0)  # later epochs start at their first step
    train_time = time.perf_counter() - t0
    train_loss = all_reduce_mean(loss_sum / max(1, loss_count), rt.dist)
    return {
        "epoch": epoch, "train_loss": train_loss, "lr": parts.scheduler.get_last_lr()[0],
        "clips_per_s": clips_seen / max(1e-9, train_time) * rt.dist.world_size,
        MAP_UNIT_KEY: PERCENT,  # val_map in percent (e2espot.train.history)
    }


def _validate(epoch: int, row: dict[str, Any], parts: _Parts, val_loader, run_cfg: RunConfig,
              val_labels: LabelSet | None, opts: TrainOptions, rt: _Runtime, reader_factory, joint=None) -> None:
    """Add ``val_loss`` (the validation clips) and, from ``start_val_epoch`` with criterion map, ``val_map``
    (full-video inference on rank 0, ``validation_map``) to ``row``."""
    parts.model.eval()
    if val_loader is not None:
        total, n = 0.0, 0
        with torch.inference_mode():
            for batch in val_loader:
                batch = to_device(batch, rt.device)
                total += float(_forward_loss(parts, rt, batch, False)) * len(batch["frames"])
                n += len(batch["frames"])
        row["val_loss"] = total / max(1, n)
    scored = val_labels is not None and len(val_labels) and opts.criterion == "map" and epoch >= opts.start_val_epoch
    if scored and rt.dist.is_main:
        row["val_map"] = map_percent(validation_map(
            parts.model, run_cfg, val_labels, opts, device=rt.device, precision=rt.precision,
            reader_factory=reader_factory,
        ))
        if joint is not None:
            joint_training.validate(row, parts.model, run_cfg, joint, opts, device=rt.device, precision=rt.precision)


def _keep_best(st: _RunState, row: dict[str, Any], opts: TrainOptions, epoch: int) -> tuple[bool, float | None]:
    """The epoch's score (val mAP, or minus the val loss) and whether it beats the best so far (recorded)."""
    score = row.get("val_map") if opts.criterion == "map" else (
        -row["val_loss"] if "val_loss" in row else None)
    improved = score is not None and (st.best_score is None or score > st.best_score)
    if improved:
        st.best_score, st.best_epoch = score, epoch
    return improved, score


def _end_epoch(save_dir: Path, st: _RunState, row: dict[str, Any], parts: _Parts, run_cfg: RunConfig,
               opts: TrainOptions, writer, epoch: int, improved: bool, score: float | None,
               on_epoch_end: Callable[[dict[str, Any]], None] | None) -> None:
    """Rank 0 after each epoch: metrics files and TensorBoard, ``best.pt`` when improved, ``last.pt``, the log
    line, ``on_epoch_end(row)``."""
    _log_epoch(save_dir, st.history, writer)
    if improved:
        save_checkpoint({"model": parts.model.state_dict(), "config": _config_record(run_cfg),
                         "epoch": epoch, "score": score}, save_dir / BEST)
    save_checkpoint(_last_state(parts, run_cfg, opts, st, epoch + 1, 0), save_dir / LAST)
    log.info(_format_row(row))
    if on_epoch_end:
        on_epoch_end(row)


def _save_unvalidated_best(save_dir: Path, st: _RunState, parts: _Parts, run_cfg: RunConfig, opts: TrainOptions,
                           val_labels: LabelSet | None, val_loader) -> str:
    """No epoch was scored: ``best.pt`` holds the last epoch. Returns why nothing was scored."""
    unvalidated = _unvalidated_reason(opts, val_labels, val_loader is not None)
    st.best_epoch = st.history[-1]["epoch"] if st.history else None
    save_checkpoint({"model": parts.model.state_dict(), "config": _config_record(run_cfg),
                     "epoch": st.best_epoch, "score": None}, save_dir / BEST)
    return unvalidated


def _choose_and_save_postprocess(save_dir: Path, parts: _Parts, run_cfg: RunConfig, val_labels: LabelSet,
                                 opts: TrainOptions, rt: _Runtime, reader_factory) -> RunConfig:
    """Post-processing for ``predict``, chosen on validation with the best weights (never on test), saved as
    the ``postprocess`` section of ``config.json``. Returns the updated config."""
    parts.model.load_state_dict(load_checkpoint(save_dir / BEST)["model"])
    post = choose_postprocess(parts.model, run_cfg, val_labels, opts, device=rt.device, precision=rt.precision,
                              reader_factory=reader_factory)
    run_cfg = replace(run_cfg, postprocess=PostprocessConfig.from_dict(post))
    run_cfg.save(save_dir / "config.json")
    return run_cfg


def _team_setup(run_cfg: RunConfig, opts: TrainOptions, train_labels: LabelSet, val_labels: LabelSet | None
                ) -> tuple[RunConfig, str | None, LabelSet, LabelSet | None]:
    """The run's team mode (``train.team.team_mode``) and the label sets its clips are drawn from.

    Team head: labels as they are (the clip datasets add team targets). Joint head (``opts.team_joint``,
    recorded as ``train["team_joint"]`` so ``predict`` maps the 2K columns back to action + team): clips
    get the 2K classes ``<action>-left/right`` (``join_team_labels``), the model needs ``num_classes`` 2K;
    validation mAP and thresholds stay on the K actions (``run_cfg.classes``)."""
    if opts.team_joint and run_cfg.model.team_head:
        raise ConfigError("--team-head and --team-joint are two ways to predict the team; pass one of them")
    if bool(run_cfg.train.get("team_joint")) != opts.team_joint:
        run_cfg = replace(run_cfg, train={**run_cfg.train, "team_joint": opts.team_joint})
    if not opts.team_joint:
        return run_cfg, ("head" if run_cfg.model.team_head else None), train_labels, val_labels
    k = len(run_cfg.classes)
    if run_cfg.model.num_classes != 2 * k:
        raise ConfigError(
            f"--team-joint: the model has {run_cfg.model.num_classes} classes but a joint head over {k} actions "
            f"x left/right needs {2 * k}; build it with ModelConfig(num_classes={2 * k})"
        )
    joint_val = join_team_labels(val_labels) if val_labels is not None and len(val_labels) else val_labels
    return run_cfg, "joint", join_team_labels(train_labels), joint_val


def _unvalidated_reason(opts: TrainOptions, val_labels: LabelSet | None, has_val_loader: bool) -> str:
    if val_labels is None or not len(val_labels):
        return "no validation split"
    if opts.criterion == "loss":
        return "no validation clips" if not has_val_loader else "no validation loss"
    return (f"--start-val-epoch {opts.start_val_epoch} is at or past the last epoch "
            f"({opts.num_epochs - 1}; epochs count from 0)")


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``"train.num_epochs: 5 in the checkpoint, 10 now"`` for every leaf that differs (dotted keys)."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, prefix=f"{name}.")
        elif a != b:
            out.append(f"{name}: {a!r} in the checkpoint, {b!r} now")
    return out


def _predict_split(model, run_cfg: RunConfig, labels: LabelSet, opts: TrainOptions, *, device, precision,
                   reader_factory=None, **postprocess) -> LabelSet:
    """Events of every video of ``labels`` from full-video inference (``infer.split.predict_videos``, the loop
    ``e2espot test`` uses; threshold 0.01). Team models: with NMS the team events ``predict`` makes (left and
    right suppressed together), without NMS the events of the action scores (left + right, so a frame is not
    counted twice by the no-team mAP)."""
    team = run_cfg.team_mode() is not None
    preds = []
    for done in predict_videos(model, run_cfg, labels, reader_factory=reader_factory, overlap=opts.val_overlap,
                               batch_size=4, device=device, precision=precision):
        video, scores = done.video, done.scores
        if team and postprocess.get("nms", "none") != "none":  # the team events predict will threshold
            events = team_scores_to_events(scores, list(run_cfg.classes), threshold=0.01, nms=postprocess["nms"],
                                           window=postprocess.get("window", 0))
        else:  # (N, 1+2K) team columns summed per action: the action scores, for the (no-team) mAP
            events = scores_to_events(action_scores(scores) if team else scores, list(run_cfg.classes),
                                      threshold=0.01, **postprocess)
        preds.append(VideoLabels(video.video, video.fps, video.num_frames, events))
    return LabelSet(list(run_cfg.classes), preds)


def validation_map(model, run_cfg: RunConfig, val_labels: LabelSet, opts: TrainOptions, *, device, precision,
                   reader_factory=None) -> float:
    """Full-video inference on the validation split → E2E-Spot mAP averaged over ``opts.val_tolerances``
    (the high-recall list, no NMS, as E2E-Spot selects its best epoch)."""
    pred = _predict_split(model, run_cfg, val_labels, opts, device=device, precision=precision,
                          reader_factory=reader_factory, nms="none")
    result = e2e_map(val_labels, pred, tolerances=opts.val_tolerances)
    values = [result.map_by_tolerance[t] for t in opts.val_tolerances]
    return float(sum(values) / len(values))


def choose_postprocess(model, run_cfg: RunConfig, val_labels: LabelSet, opts: TrainOptions, *, device, precision,
                       reader_factory=None, nms_window: int = 1) -> dict[str, Any]:
    """Hard NMS plus per-class score thresholds maximising F1 on the validation split, for ``predict``.

    F1 is matched at the middle validation tolerance. Chosen on validation only, never on test. Returns
    the ``config.PostprocessConfig`` fields as a dict (``train()`` records it as ``RunConfig.postprocess``).
    """
    tolerance = sorted(opts.val_tolerances)[len(opts.val_tolerances) // 2]
    pred = _predict_split(model, run_cfg, val_labels, opts, device=device, precision=precision,
                          reader_factory=reader_factory, nms="hard", window=nms_window)
    chosen = choose_thresholds(val_labels, pred, tolerance)  # classes with validation ground truth
    thresholds = {c: chosen.get(c, 0.5) for c in run_cfg.classes}  # others: the documented default
    return {"nms": "hard", "nms_window": nms_window, "thresholds": thresholds, "chosen_on": "val",
            "f1_tolerance_frames": tolerance}


def _tensorboard(save_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but keep training usable without it
        log.warning("tensorboard is not installed; skipping TensorBoard events")
        return None
    return SummaryWriter(str(save_dir / "tensorboard"))


def _log_epoch(save_dir: Path, history: list[dict[str, Any]], writer) -> None:
    keys = ["epoch", "train_loss", "val_loss", "val_map", "lr", "clips_per_s", MAP_UNIT_KEY]
    if any("val_map_joint" in row for row in history):  # joint training (e2espot.train.joint)
        keys.insert(4, "val_map_joint")
    with open(save_dir / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for row in history:
            w.writerow({k: row.get(k, "") for k in keys})
    (save_dir / "metrics.json").write_text(json.dumps(history, indent=2) + "\n")
    if writer is not None:
        row = history[-1]
        for k in keys[1:]:
            if k in row and isinstance(row[k], float) and math.isfinite(row[k]):
                writer.add_scalar(k, row[k], row["epoch"])
        writer.flush()


def _format_row(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']}", f"train_loss {row['train_loss']:.4f}"]
    if "val_loss" in row:
        parts.append(f"val_loss {row['val_loss']:.4f}")
    if "val_map" in row:
        parts.append(f"val_mAP {row['val_map']:.2f} %")
    if "val_map_joint" in row:
        parts.append(f"joint val_mAP {row['val_map_joint']:.2f} %")
    parts.append(f"{row['clips_per_s']:.2f} clips/s")
    return " | ".join(parts)

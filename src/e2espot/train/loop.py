"""The training loop. It reads top to bottom: data, model, optimiser, then epochs of
train → validate → log → checkpoint.

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

from e2espot.config import RunConfig
from e2espot.data.labels import LabelSet
from e2espot.errors import CheckpointError, ConfigError
from e2espot.train.checkpoint import BEST, LAST, load_checkpoint, save_checkpoint
from e2espot.train.loggers import with_wandb

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
        from e2espot.train.optim import LR_SCHEDULES

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
) -> TrainResult:
    """Train a spotter and write the run directory. Returns the best epoch and the history."""
    import torch

    from e2espot.data.datasets import ClipDataset, ValidationClips, make_loader
    from e2espot.data.transforms import DeviceAugment, to_device
    from e2espot.device import autocast, resolve_device, resolve_precision, tune_cpu_allocator
    from e2espot.models import create_spotter
    from e2espot.models.losses import SpottingLoss
    from e2espot.train.distributed import all_reduce_mean, barrier, init_distributed, shutdown
    from e2espot.train.optim import build_lr_schedule, build_optimizer, sam_step

    save_dir = Path(save_dir)
    data_cfg = run_cfg.data
    opts = opts.resolved(data_cfg.clip_len)
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
        log.info(f"CPU: {plan.threads} compute threads, {plan.workers} loader workers ({plan.reason})")
    num_workers = plan.workers
    run_cfg, team, train_labels, clip_val_labels = _team_setup(run_cfg, opts, train_labels, val_labels)
    num_classes = len(run_cfg.classes) * (2 if team == "joint" else 1)  # class-head outputs (+ background)
    video_root = run_cfg.dataset.get("videos")

    # ---- data: uint8 clips from worker processes; augmentation happens on the device ---------------
    micro_batch = opts.batch_size // opts.acc_grad
    train_set = ClipDataset(
        train_labels, data_cfg, epoch_clips=opts.epoch_clips, fg_upsample=opts.fg_upsample,
        dilate_len=opts.dilate_len, displacement_radius=opts.displacement_radius, mixup=opts.mixup,
        seed=opts.seed, reader_factory=reader_factory, train=True, video_root=video_root, team=team == "head",
    )
    train_loader = make_loader(train_set, micro_batch, num_workers, rank=dist_info.rank,
                               world_size=dist_info.world_size, device=device)
    val_loader = None
    if val_labels is not None and len(val_labels) and opts.val_clips:
        val_set = ValidationClips(
            clip_val_labels, data_cfg, num_clips=opts.val_clips, dilate_len=opts.dilate_len,
            displacement_radius=opts.displacement_radius, seed=opts.seed + 1, reader_factory=reader_factory,
            video_root=video_root, team=team == "head",
        )
        val_loader = make_loader(val_set, micro_batch, min(num_workers, 1), device=device,
                                 persistent_workers=False)
    from e2espot.data.tracks import TrackInputs  # object tracks: per-clip features (None without fusion)

    track_inputs = TrackInputs.for_run(run_cfg, train_labels, clip_val_labels)
    steps_per_epoch = len(train_loader) // opts.acc_grad
    has_val = val_labels is not None and len(val_labels) > 0
    if dist_info.is_main and has_val and opts.criterion == "map" and opts.start_val_epoch >= opts.num_epochs:
        log.warning(f"--start-val-epoch {opts.start_val_epoch} >= --num-epochs {opts.num_epochs}: no epoch will be "
                    "validated, so best.pt will hold the last epoch")
    if steps_per_epoch < 1:
        raise ConfigError(
            f"an epoch of {opts.epoch_clips} clips is less than one batch of {opts.batch_size} "
            f"x {dist_info.world_size} processes; raise --epoch-clips or lower --batch-size"
        )

    # ---- model, loss, optimiser ------------------------------------------------------
    torch.manual_seed(opts.seed)
    model = create_spotter(run_cfg.model).to(device)
    if opts.channels_last if opts.channels_last is not None else model.prefers_channels_last:
        model = model.to(memory_format=torch.channels_last)
    if dist_info.is_main:
        log.info(model.summary())
    loss_fn = SpottingLoss(
        num_classes, opts.loss, fg_weight=opts.fg_weight, focal_gamma=opts.focal_gamma,
        softic_weight=opts.softic_weight, softic_temperature=opts.softic_temperature,
        feature_dim=model.feature_dim, displacement_weight=1.0 if opts.displacement_radius > 0 else 0.0,
        team_weight=opts.team_weight,
    ).to(device)
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
    scaler = torch.amp.GradScaler(device.type, enabled=(precision == "fp16"))
    no_aug = AUGMENT_LEVELS[opts.augment]
    from e2espot.train.team import flip_class_map

    augment = DeviceAugment(  # a flip swaps the sides: team targets (head) or X-left/X-right classes (joint)
        num_classes, data_cfg.crop, mixup_alpha=opts.mixup_alpha, seed=opts.seed,
        flip_class_map=flip_class_map(len(run_cfg.classes)) if team == "joint" else None, **no_aug,
    )
    train_model = model
    if dist_info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
        )

    # ---- resume ----------------------------------------------------------------------
    start_epoch, start_step, global_step = 0, 0, 0
    resumed_loss = (0.0, 0)  # (sum, count) of the train loss of a partly done epoch
    history: list[dict[str, Any]] = []
    best_score: float | None = None
    best_epoch: int | None = None
    if resume:
        state = load_checkpoint(save_dir / LAST)
        differences = config_differences(state.get("config") or {}, json.loads(json.dumps(run_cfg.to_dict())))
        if differences:
            raise CheckpointError(
                f"{save_dir / LAST}: its config differs from this run's in {len(differences)} "
                f"option{'s' if len(differences) != 1 else ''}: {'; '.join(differences)}. Resume with the "
                "checkpoint's values (see config.json), or train into a new -s directory"
            )
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, start_step, global_step = state["epoch"], state["step"], state["global_step"]
        resumed_loss = (state["epoch_loss_sum"], state["epoch_loss_count"])
        history = json.loads(state["history"])
        best_score, best_epoch = state.get("best_score"), state.get("best_epoch")
        if dist_info.is_main:
            log.info(f"resuming from {save_dir / LAST}: epoch {start_epoch}, step {start_step}")
    elif dist_info.is_main:
        save_dir.mkdir(parents=True, exist_ok=True)
        run_cfg.save(save_dir / "config.json")

    def checkpoint_state(epoch: int, step: int, epoch_loss: tuple[float, int] = (0.0, 0)) -> dict[str, Any]:
        return {
            "epoch_loss_sum": epoch_loss[0], "epoch_loss_count": epoch_loss[1],
            "model": model.state_dict(), "loss": loss_fn.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "config": json.loads(json.dumps(run_cfg.to_dict())),
            "epoch": epoch, "step": step, "global_step": global_step, "history": json.dumps(history),
            "best_score": best_score, "best_epoch": best_epoch, "options": json.dumps(opts.to_dict()),
        }

    writer = with_wandb(_tensorboard(save_dir), save_dir, run_cfg, opts.wandb, opts.wandb_project) \
        if dist_info.is_main else None

    def forward_loss(batch: dict[str, Any], train_mode: bool, generator=None):
        """Augment on the device, forward under the precision context, return the loss."""
        aug = augment(batch, train=train_mode, generator=generator)
        x = aug.frames  # (B, T, 3, H, W) float in [0, 1]
        net = train_model if train_mode else model
        tracks = track_inputs.batch_tracks(batch, aug, train_mode) if track_inputs is not None else None
        with amp:
            out = net(x) if tracks is None else net(x, tracks=tracks)  # (B, T, F) object-track features
            return loss_fn(out, {"labels": aug.targets, "displacement": aug.displacement, "valid": aug.valid,
                                 "team": aug.team})

    # ---- epochs ----------------------------------------------------------------------
    stop = False
    for epoch in range(start_epoch, opts.num_epochs):
        model.train()
        first_step = start_step if epoch == start_epoch else 0
        train_loader.sampler.set_epoch(epoch, skip=first_step * opts.batch_size)
        batches = iter(train_loader)
        t0, clips_seen = time.perf_counter(), 0
        loss_sum, loss_count = resumed_loss if epoch == start_epoch else (0.0, 0)
        step = first_step
        for step in range(first_step, steps_per_epoch):
            seed = _step_seed(opts.seed, epoch, step) + dist_info.rank
            torch.manual_seed(seed)  # dropout and any other global-RNG use: a function of the step
            micro = [to_device(next(batches), device) for _ in range(opts.acc_grad)]

            def closure() -> torch.Tensor:
                gen = torch.Generator().manual_seed(seed)  # same augmentation in both SAM passes
                total = torch.zeros((), device=device)
                for batch in micro:
                    loss = forward_loss(batch, True, gen) / opts.acc_grad
                    scaler.scale(loss).backward()
                    total += loss.detach()
                return total

            step_loss = sam_step(train_model, closure, optimizer, scaler)  # fp16: scaled, SAM-aware
            scheduler.step()
            global_step += 1
            clips_seen += opts.batch_size
            loss_sum += float(step_loss)
            loss_count += 1
            if progress and dist_info.is_main:
                progress("train", step + 1, steps_per_epoch, {
                    "epoch": epoch, "loss": loss_sum / loss_count,
                    "clips_per_s": clips_seen / max(1e-9, time.perf_counter() - t0)})
            if opts.checkpoint_every and global_step % opts.checkpoint_every == 0 and dist_info.is_main:
                save_checkpoint(checkpoint_state(epoch, step + 1, (loss_sum, loss_count)), save_dir / LAST)
            if opts.max_steps is not None and global_step >= opts.max_steps:
                stop = True
                break
        if stop and step + 1 < steps_per_epoch:  # stopped mid-epoch: keep an exact resume point
            if dist_info.is_main:
                save_checkpoint(checkpoint_state(epoch, step + 1, (loss_sum, loss_count)), save_dir / LAST)
            break
        train_time = time.perf_counter() - t0
        train_loss = all_reduce_mean(loss_sum / max(1, loss_count), dist_info)

        # ---- validation ----
        row: dict[str, Any] = {
            "epoch": epoch, "train_loss": train_loss, "lr": scheduler.get_last_lr()[0],
            "clips_per_s": clips_seen / max(1e-9, train_time) * dist_info.world_size,
        }
        model.eval()
        if val_loader is not None:
            total, n = 0.0, 0
            with torch.inference_mode():
                for batch in val_loader:
                    batch = to_device(batch, device)
                    total += float(forward_loss(batch, False)) * len(batch["frames"])
                    n += len(batch["frames"])
            row["val_loss"] = total / max(1, n)
        if val_labels is not None and len(val_labels) and opts.criterion == "map" and epoch >= opts.start_val_epoch:
            if dist_info.is_main:
                row["val_map"] = validation_map(
                    model, run_cfg, val_labels, opts, device=device, precision=precision,
                    reader_factory=reader_factory,
                )
        history.append(row)

        score = row.get("val_map") if opts.criterion == "map" else (
            -row["val_loss"] if "val_loss" in row else None)
        improved = score is not None and (best_score is None or score > best_score)
        if improved:
            best_score, best_epoch = score, epoch
        if dist_info.is_main:
            _log_epoch(save_dir, history, writer)
            if improved:
                save_checkpoint({"model": model.state_dict(), "config": json.loads(json.dumps(run_cfg.to_dict())),
                                 "epoch": epoch, "score": score}, save_dir / BEST)
            save_checkpoint(checkpoint_state(epoch + 1, 0), save_dir / LAST)
            log.info(_format_row(row))
            if on_epoch_end:
                on_epoch_end(row)
        barrier(dist_info)
        if stop:
            break

    unvalidated = None
    if dist_info.is_main and not stop and best_epoch is None:
        # no validation score was available: the last epoch is the best we know
        unvalidated = _unvalidated_reason(opts, val_labels, val_loader is not None)
        best_epoch = history[-1]["epoch"] if history else None
        save_checkpoint({"model": model.state_dict(), "config": json.loads(json.dumps(run_cfg.to_dict())),
                         "epoch": best_epoch, "score": None}, save_dir / BEST)
    if dist_info.is_main and not stop and val_labels is not None and len(val_labels):
        # post-processing for `predict`, chosen on validation with the best weights (never on test)
        model.load_state_dict(load_checkpoint(save_dir / BEST)["model"])
        post = choose_postprocess(model, run_cfg, val_labels, opts, device=device, precision=precision,
                                  reader_factory=reader_factory)
        run_cfg = replace(run_cfg, train={**run_cfg.train, "postprocess": post})
        run_cfg.save(save_dir / "config.json")
    if writer is not None:
        writer.close()
    shutdown(dist_info)
    return TrainResult(save_dir=save_dir, best_epoch=best_epoch, best_score=best_score, history=history,
                       criterion=opts.criterion, unvalidated_reason=unvalidated)


def _team_setup(run_cfg: RunConfig, opts: TrainOptions, train_labels: LabelSet, val_labels: LabelSet | None
                ) -> tuple[RunConfig, str | None, LabelSet, LabelSet | None]:
    """The run's team mode (``train.team.team_mode``) and the label sets its clips are drawn from.

    Team head: labels as they are (the clip datasets add team targets). Joint head (``opts.team_joint``,
    recorded as ``train["team_joint"]`` so ``predict`` maps the 2K columns back to action + team): clips
    get the 2K classes ``<action>-left/right`` (``join_team_labels``), the model needs ``num_classes`` 2K;
    validation mAP and thresholds stay on the K actions (``run_cfg.classes``)."""
    from e2espot.train.team import join_team_labels

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
    """Events of every video of ``labels`` from full-video inference (threshold 0.01). Team models: with
    NMS the team events ``predict`` makes (left and right suppressed together), without NMS the events of
    the action scores (left + right, so a frame is not counted twice by the no-team mAP)."""
    from e2espot.data.labels import VideoLabels
    from e2espot.data.tracks import features_for_video  # object tracks (None without fusion)
    from e2espot.infer.postprocess import scores_to_events, team_scores_to_events
    from e2espot.infer.predict import predict_scores
    from e2espot.train.team import action_scores, team_mode

    team = team_mode(run_cfg) is not None
    preds = []
    for video in labels:
        reader = reader_factory(video) if reader_factory else _default_reader(video, run_cfg)
        try:
            scores = predict_scores(model, reader, run_cfg, overlap=opts.val_overlap, batch_size=4,
                                    device=device, precision=precision, tracks=features_for_video(run_cfg, video))
        finally:
            reader.close()
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
    from e2espot.eval.metrics import e2e_map

    pred = _predict_split(model, run_cfg, val_labels, opts, device=device, precision=precision,
                          reader_factory=reader_factory, nms="none")
    result = e2e_map(val_labels, pred, tolerances=opts.val_tolerances)
    values = [result.map_by_tolerance[t] for t in opts.val_tolerances]
    return float(sum(values) / len(values))


def choose_postprocess(model, run_cfg: RunConfig, val_labels: LabelSet, opts: TrainOptions, *, device, precision,
                       reader_factory=None, nms_window: int = 1) -> dict[str, Any]:
    """Hard NMS plus per-class score thresholds maximising F1 on the validation split, for ``predict``.

    F1 is matched at the middle validation tolerance. Chosen on validation only, never on test.
    """
    from e2espot.infer.postprocess import choose_thresholds

    tolerance = sorted(opts.val_tolerances)[len(opts.val_tolerances) // 2]
    pred = _predict_split(model, run_cfg, val_labels, opts, device=device, precision=precision,
                          reader_factory=reader_factory, nms="hard", window=nms_window)
    chosen = choose_thresholds(val_labels, pred, tolerance)  # classes with validation ground truth
    thresholds = {c: chosen.get(c, 0.5) for c in run_cfg.classes}  # others: the documented default
    return {"nms": "hard", "nms_window": nms_window, "thresholds": thresholds, "chosen_on": "val",
            "f1_tolerance_frames": tolerance}


def _default_reader(video, run_cfg: RunConfig):
    from e2espot.data.video import find_video, open_video

    root = run_cfg.dataset.get("videos")
    if not root:
        raise ConfigError("run config has no dataset.videos folder; pass reader_factory")
    d = run_cfg.data
    return open_video(find_video(root, video.video), fps=d.fps, height=d.height, width=d.width)


def _tensorboard(save_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but keep training usable without it
        log.warning("tensorboard is not installed; skipping TensorBoard events")
        return None
    return SummaryWriter(str(save_dir / "tensorboard"))


def _log_epoch(save_dir: Path, history: list[dict[str, Any]], writer) -> None:
    keys = ["epoch", "train_loss", "val_loss", "val_map", "lr", "clips_per_s"]
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
        parts.append(f"val_mAP {100 * row['val_map']:.2f}")
    parts.append(f"{row['clips_per_s']:.2f} clips/s")
    return " | ".join(parts)

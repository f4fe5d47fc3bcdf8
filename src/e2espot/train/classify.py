"""Clip classification (``e2espot train --task classify``): one label per clip, the Ball Action Spotting
study's warm-up task and a quick check of a backbone.

**The clip label.** A clip of T frames is labelled with the class of the event inside it; with no event
inside it, background (0); with several, **the event nearest the clip centre** (frame position
(T - 1) / 2; at equal distance the earlier one; two events on the same frame: the later in the label file,
as ``sampling.clip_targets`` keeps it). Events on edge-padding frames do not exist (``clip_targets``
zeroes them). ``clip_labels`` applies the rule to the per-frame targets of the clip datasets, so training
clips come from the same ``ClipDataset`` / ``ClipSampler`` as spotting (``--fg-upsample p``: a clip built
around a random event with probability p; it then holds that event, and is labelled by the rule).

**The model.** A :class:`~e2espot.models.spotter.Spotter` whose head is
:class:`~e2espot.models.classifier.ClipPoolHead`: the backbone (temporal modules, any modality) → mean over
the clip's frames → Linear(D, K+1); cross-entropy on the clip label (no class weights).

**Evaluation.** Validation (every epoch) and ``test`` (``evaluate_classifier``) score the tiled clips of
each video (``tiled_clips``: starts 0, T, 2T, ...; the last clip aligned to the video's end; a video shorter
than T is one clip padded past its end), with ``eval.classify.clip_metrics``: accuracy, per-class AP and
the confusion matrix. The best epoch is the one with the highest validation mean AP (``--criterion map``)
or the lowest validation loss (``--criterion loss``). The run directory holds config.json (``task:
"classify"``), best.pt / last.pt (model weights), metrics.csv / .json, curves.png and
classify-val.json (the best epoch's validation metrics).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from e2espot.config import RunConfig
from e2espot.data.datasets import ClipDataset
from e2espot.data.labels import LabelSet
from e2espot.data.sampling import ClipRef
from e2espot.errors import ConfigError
from e2espot.train.history import MAP_UNIT_KEY, PERCENT, map_percent

log = logging.getLogger(__name__)

METRICS_FILE = "classify-{split}.json"


def check_classify_options(opts: Any, run_cfg: RunConfig) -> None:
    """Refuse training options that have no meaning for one label per clip, naming the fix.

    Raises:
        ConfigError: displacement, team heads, mixup, label dilation, a loss other than cross-entropy,
            SoftIC, object-track fusion, or a model whose head is not the clip pooling head.
    """
    from e2espot.models.classifier import CLIP_POOL_HEAD

    fix = "drop it (the classifier predicts one class per clip)"
    problems = [
        (opts.displacement_radius > 0 or run_cfg.model.displacement, f"--displacement: {fix}"),
        (run_cfg.model.team_head or opts.team_joint, f"--team-head / --team-joint: {fix}"),
        (run_cfg.model.extra_num_classes > 0, "a second class head (extra_num_classes): drop it"),
        (opts.mixup, "--mixup: clip labels are hard; pass --no-mixup (the classify default)"),
        (opts.dilate_len > 0, f"--dilate-len: {fix}"),
        (opts.loss != "ce", f"--loss {opts.loss}: the classifier trains with cross-entropy; drop --loss"),
        (opts.softic_weight > 0, f"--softic-weight: {fix}"),
        (run_cfg.model.track_fusion is not None,
         f"--track-fusion {run_cfg.model.track_fusion}: the clip classifier takes frames only; drop --track-fusion "
         "(object tracks are for spotting)"),
    ]
    bad = [msg for cond, msg in problems if cond]
    if bad:
        raise ConfigError("--task classify does not take " + "; ".join(bad))
    if run_cfg.model.head != CLIP_POOL_HEAD:
        raise ConfigError(f"--task classify: the model head is '{run_cfg.model.head}'; a clip classifier has "
                          f"head '{CLIP_POOL_HEAD}' (temporal pooling + linear): build it with classify_model_config")


def classify_model_config(model_cfg: Any, pooling: str = "mean") -> Any:
    """``model_cfg`` with the clip pooling head (``head_kwargs`` = ``{"pooling": pooling}``)."""
    from e2espot.models.classifier import CLIP_POOL_HEAD, POOLINGS

    if pooling not in POOLINGS:
        raise ConfigError(f"--pooling {pooling}: expected one of {', '.join(POOLINGS)}")
    return replace(model_cfg, head=CLIP_POOL_HEAD, head_kwargs={"pooling": pooling})


# ---- clip labels and clips -------------------------------------------------------------------------------


def clip_labels(frame_labels):
    """(B, T) int64 per-frame class ids (0 = background, no label dilation) → (B,) clip labels: the class
    of the labelled frame nearest the clip centre (T - 1) / 2, the earlier at equal distance; 0 when no
    frame is labelled."""
    import torch

    t = frame_labels.shape[1]
    pos = torch.arange(t, device=frame_labels.device)
    key = (2 * pos - (t - 1)).abs() * (t + 1) + pos  # (T,) distinct: by distance, then position
    big = key.max() + 1
    key = torch.where(frame_labels > 0, key, big)  # (B, T)
    nearest = key.argmin(dim=1, keepdim=True)  # (B, 1); all-background rows point at an unlabelled frame
    return frame_labels.gather(1, nearest).squeeze(1)


def tiled_clips(num_frames: list[int] | np.ndarray, clip_len: int) -> list[ClipRef]:
    """Every video cut into clips of ``clip_len``: starts 0, T, 2T, ... and a last clip aligned to the end
    (it overlaps the one before when T does not divide the length); a video shorter than T is one clip at 0."""
    clips = []
    for video_idx, n in enumerate(int(v) for v in num_frames):
        starts = list(range(0, max(n - clip_len, 0) + 1, clip_len))
        if n > clip_len and starts[-1] + clip_len < n:
            starts.append(n - clip_len)
        clips += [ClipRef(video_idx, s) for s in starts]
    return clips


class TiledClips(ClipDataset):
    """A ``ClipDataset`` over the fixed ``tiled_clips`` of ``labels`` (``make_loader`` reads every clip once)."""

    def __init__(self, labels: LabelSet, data_cfg: Any, *, reader_factory=None, video_root=None) -> None:
        super().__init__(labels, data_cfg, epoch_clips=1, train=False, reader_factory=reader_factory,
                         video_root=video_root)
        self.clips = tiled_clips(self.sampler.num_frames, self.clip_len)
        self.epoch_clips = len(self.clips)

    def clips_at(self, index: int) -> tuple[ClipRef, ...]:
        if not 0 <= index < len(self.clips):
            raise IndexError(f"clip {index} out of range [0, {len(self.clips)})")
        return (self.clips[index],)


# ---- evaluation ------------------------------------------------------------------------------------------


def predict_clips(model, loader, augment, device, amp) -> tuple[np.ndarray, np.ndarray, float]:
    """Run ``model`` on every clip of ``loader``: (truth (N,), probs (N, K+1), mean cross-entropy)."""
    import torch
    import torch.nn.functional as F

    from e2espot.data.transforms import to_device
    from e2espot.models.classifier import clip_logits

    truth, probs, loss_sum = [], [], 0.0
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            aug = augment(to_device(batch, device), train=False)
            y = clip_labels(aug.labels)  # (B,)
            with amp:
                logits = clip_logits(model(aug.frames)).float()  # (B, K+1)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            truth.append(y.cpu().numpy())
            probs.append(logits.softmax(-1).cpu().numpy())
    n = sum(len(t) for t in truth)
    return np.concatenate(truth), np.concatenate(probs), loss_sum / max(1, n)


@dataclass
class ClassifyResult:
    save_dir: Path
    best_epoch: int | None
    best_score: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    criterion: str = "map"
    val_metrics: Any = None  # eval.classify.ClipMetrics of the best epoch on val, or None
    unvalidated_reason: str | None = None


def train_classifier(
    run_cfg: RunConfig,
    train_labels: LabelSet,
    val_labels: LabelSet | None,
    save_dir: str | Path,
    opts: Any,
    *,
    reader_factory: Callable | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[str, int, int, dict[str, float]], None] | None = None,
) -> ClassifyResult:
    """Train a clip classifier (``run_cfg.task == "classify"``) and write its run directory.

    ``opts`` is a ``train.loop.TrainOptions``; see the module doc for the labels, the model and the files.
    """
    import torch
    import torch.nn.functional as F

    from e2espot.checkpoint import BEST, LAST, save_checkpoint
    from e2espot.data.datasets import make_loader
    from e2espot.data.transforms import DeviceAugment, to_device
    from e2espot.device import autocast, resolve_device, resolve_precision, tune_cpu_allocator
    from e2espot.eval.classify import clip_metrics
    from e2espot.models import create_spotter
    from e2espot.models.classifier import clip_logits
    from e2espot.train.loop import AUGMENT_LEVELS, cpu_loader_plan
    from e2espot.train.optim import build_lr_schedule, build_optimizer, sam_step

    if run_cfg.task != "classify":
        raise ConfigError(f"train_classifier: run config task is '{run_cfg.task}'; expected 'classify'")
    save_dir = Path(save_dir)
    data_cfg = run_cfg.data
    opts = opts.resolved(data_cfg.clip_len)
    check_classify_options(opts, run_cfg)
    device = resolve_device(opts.device)
    precision = resolve_precision(opts.precision, device)
    amp = autocast(device, precision)
    plan = cpu_loader_plan(opts.num_workers, opts.num_threads, device_type=device.type)
    if device.type == "cpu":
        tune_cpu_allocator()
        torch.set_num_threads(plan.threads)
    video_root = run_cfg.dataset.get("videos")
    num_classes = len(run_cfg.classes)

    # ---- data: the spotting clip datasets; the clip label comes from their per-frame targets ----------
    micro_batch = opts.batch_size // opts.acc_grad
    train_set = ClipDataset(train_labels, data_cfg, epoch_clips=opts.epoch_clips, fg_upsample=opts.fg_upsample,
                            mixup=False, seed=opts.seed, reader_factory=reader_factory, train=True,
                            video_root=video_root)
    train_loader = make_loader(train_set, micro_batch, plan.workers, device=device)
    val_loader = None
    if val_labels is not None and len(val_labels):
        val_set = TiledClips(val_labels, data_cfg, reader_factory=reader_factory, video_root=video_root)
        val_loader = make_loader(val_set, micro_batch, min(plan.workers, 1), device=device,
                                 persistent_workers=False)
    steps_per_epoch = len(train_loader) // opts.acc_grad
    if steps_per_epoch < 1:
        raise ConfigError(f"an epoch of {opts.epoch_clips} clips is less than one batch of {opts.batch_size}; "
                          "raise --epoch-clips or lower --batch-size")

    # ---- model, optimiser -----------------------------------------------------------------------------
    torch.manual_seed(opts.seed)
    model = create_spotter(run_cfg.model).to(device)
    if opts.channels_last if opts.channels_last is not None else model.prefers_channels_last:
        model = model.to(memory_format=torch.channels_last)
    log.info(model.summary())
    optimizer = build_optimizer(model.parameters(), opts.optimizer, lr=opts.lr, weight_decay=opts.weight_decay,
                                rho=opts.rho)
    warmup_steps = min(opts.warmup_epochs, opts.num_epochs) * steps_per_epoch
    scheduler = build_lr_schedule(opts.lr_schedule, getattr(optimizer, "base_optimizer", optimizer),
                                  warmup_steps, opts.num_epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=(precision == "fp16"))
    augment = DeviceAugment(num_classes, data_cfg.crop, seed=opts.seed, modality=run_cfg.model.modality,
                            **AUGMENT_LEVELS[opts.augment])
    save_dir.mkdir(parents=True, exist_ok=True)
    run_cfg.save(save_dir / "config.json")
    config_json = json.loads(json.dumps(run_cfg.to_dict()))

    # ---- epochs ---------------------------------------------------------------------------------------
    history: list[dict[str, Any]] = []
    best_score: float | None = None
    best_epoch: int | None = None
    best_metrics = None
    global_step = 0
    for epoch in range(opts.num_epochs):
        model.train()
        train_loader.sampler.set_epoch(epoch)
        batches = iter(train_loader)
        t0, loss_sum = time.perf_counter(), 0.0
        for step in range(steps_per_epoch):
            seed = (opts.seed * 1_000_003 + epoch * 100_003 + step) % (2**63 - 1)
            torch.manual_seed(seed)
            micro = [to_device(next(batches), device) for _ in range(opts.acc_grad)]

            def closure(micro=micro, seed=seed) -> torch.Tensor:
                gen = torch.Generator().manual_seed(seed)  # the same augmentation in both SAM passes
                total = torch.zeros((), device=device)
                for batch in micro:
                    aug = augment(batch, train=True, generator=gen)
                    with amp:
                        logits = clip_logits(model(aug.frames))  # (B, K+1)
                        loss = F.cross_entropy(logits.float(), clip_labels(aug.labels)) / opts.acc_grad
                    scaler.scale(loss).backward()
                    total += loss.detach()
                return total

            loss_sum += float(sam_step(model, closure, optimizer, scaler))
            scheduler.step()
            global_step += 1
            if progress:
                progress("train", step + 1, steps_per_epoch, {
                    "epoch": epoch, "loss": loss_sum / (step + 1),
                    "clips_per_s": (step + 1) * opts.batch_size / max(1e-9, time.perf_counter() - t0)})
        row: dict[str, Any] = {"epoch": epoch, "train_loss": loss_sum / steps_per_epoch,
                               "lr": scheduler.get_last_lr()[0],
                               "clips_per_s": steps_per_epoch * opts.batch_size / max(1e-9, time.perf_counter() - t0)}
        metrics = None
        if val_loader is not None:
            truth, probs, val_loss = predict_clips(model, val_loader, augment, device, amp)
            metrics = clip_metrics(truth, probs, run_cfg.classes)
            row.update(val_loss=val_loss, val_accuracy=map_percent(metrics.accuracy),  # percent, as every run
                       val_map=None if metrics.mean_ap is None else map_percent(metrics.mean_ap))
            row[MAP_UNIT_KEY] = PERCENT
        history.append(row)
        score = (row.get("val_map") if opts.criterion == "map" else
                 (-row["val_loss"] if "val_loss" in row else None))
        if score is not None and (best_score is None or score > best_score):
            best_score, best_epoch, best_metrics = score, epoch, metrics
            save_checkpoint({"model": model.state_dict(), "config": config_json, "epoch": epoch, "score": score},
                            save_dir / BEST)
        save_checkpoint({"model": model.state_dict(), "config": config_json, "epoch": epoch}, save_dir / LAST)
        write_history(save_dir, history)
        log.info(format_row(row))
        if on_epoch_end:
            on_epoch_end(row)

    unvalidated = None
    if best_epoch is None:
        unvalidated = "no validation split" if val_loader is None else "no validation score"
        best_epoch = history[-1]["epoch"] if history else None
        save_checkpoint({"model": model.state_dict(), "config": config_json, "epoch": best_epoch, "score": None},
                        save_dir / BEST)
    if best_metrics is not None:
        write_metrics(best_metrics, save_dir / METRICS_FILE.format(split="val"), split="val",
                      epoch=best_epoch, checkpoint="best.pt")
    return ClassifyResult(save_dir, best_epoch, best_score, history, opts.criterion, best_metrics, unvalidated)


def evaluate_classifier(run_dir: str | Path, split: str, *, videos_root: str | Path | None = None,
                        labels: str | Path | None = None, fmt: str | None = None, splits: str | Path | None = None,
                        label_file: str | None = None, device: str = "auto", precision: str = "auto",
                        checkpoint: str = "best", batch_size: int = 4) -> tuple[Any, Path]:
    """``test`` on a classify run: the tiled clips of ``split`` → ``ClipMetrics``, also written to
    ``RUN/classify-SPLIT.json``. Returns (metrics, path of that file)."""
    from e2espot.data.align import align_labels
    from e2espot.data.datasets import VideoFileReaderFactory, make_loader
    from e2espot.data.modality import check_sources
    from e2espot.data.transforms import DeviceAugment
    from e2espot.device import autocast, resolve_precision
    from e2espot.eval.classify import clip_metrics
    from e2espot.infer.predict import load_run, resolve_device
    from e2espot.infer.split import read_split_labels

    run_dir = Path(run_dir)
    device = resolve_device(device)
    model, cfg = load_run(run_dir, device, checkpoint=checkpoint)
    if cfg.task != "classify":
        raise ConfigError(f"{run_dir}: not a clip classifier (config.json task '{cfg.task}'); use e2espot test")
    truth_labels, _, _ = read_split_labels(cfg, split, labels=labels, fmt=fmt, splits=splits, label_file=label_file)
    root = Path(videos_root or cfg.dataset.get("videos") or "")
    if not str(root) or not root.is_dir():
        raise ConfigError(f"videos folder '{root}' not found; pass VIDEOS (the folder of the split's videos)")
    check_sources(truth_labels, root, cfg.model.modality)
    truth_labels = align_labels(truth_labels, root, cfg.data, source=f"{split} split")
    dataset = TiledClips(truth_labels, cfg.data, reader_factory=VideoFileReaderFactory(root, cfg.data))
    loader = make_loader(dataset, batch_size, 0, device=device)
    augment = DeviceAugment(len(cfg.classes), cfg.data.crop, modality=cfg.model.modality)
    amp = autocast(device, resolve_precision(precision, device))
    truth, probs, _ = predict_clips(model, loader, augment, device, amp)
    metrics = clip_metrics(truth, probs, cfg.classes)
    path = write_metrics(metrics, run_dir / METRICS_FILE.format(split=split), split=split, checkpoint=str(checkpoint))
    return metrics, path


# ---- files -----------------------------------------------------------------------------------------------


def write_metrics(metrics: Any, path: Path, **context: Any) -> Path:
    """``metrics.to_json()`` with ``context`` (split, epoch, checkpoint) as JSON at ``path``."""
    path.write_text(json.dumps({**context, **metrics.to_json()}, indent=2) + "\n")
    return path


HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "val_accuracy", "val_map", "lr", "clips_per_s", MAP_UNIT_KEY)


def write_history(save_dir: Path, history: list[dict[str, Any]]) -> None:
    """metrics.csv and metrics.json (``val_map`` = the validation clips' mean AP and
    ``val_accuracy``, both in percent as every run logs them, ``map_unit`` = "percent")."""
    with open(save_dir / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(HISTORY_KEYS), extrasaction="ignore")
        w.writeheader()
        for row in history:
            w.writerow({k: row.get(k, "") for k in HISTORY_KEYS})
    (save_dir / "metrics.json").write_text(json.dumps(history, indent=2) + "\n")


def format_row(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']}", f"train_loss {row['train_loss']:.4f}"]
    if "val_loss" in row:
        parts.append(f"val_loss {row['val_loss']:.4f}")
    if "val_accuracy" in row:
        parts.append(f"val_acc {row['val_accuracy']:.2f} %")
    if row.get("val_map") is not None:
        parts.append(f"val_clip_mAP {row['val_map']:.2f} %")
    return " | ".join(parts)

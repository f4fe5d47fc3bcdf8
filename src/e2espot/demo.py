"""The embedded demo: synth → train (CPU, a time budget) → predict the test split → evaluate → render.

People-facing glue over the library (it may import plotting); the core never imports it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.constants import DEFAULT_TOLERANCES
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.train.loop import TrainOptions


@dataclass(frozen=True)
class DemoOptions:
    out_dir: Path = Path("demo_out")
    minutes: float = 5.0  # training time budget
    num_videos: int = 36
    seconds: float = 30.0
    seed: int = 2
    width: int = 128
    height: int = 72
    zoom: float = 2.5  # broadcast-style camera following the ball: players and ball a few pixels wide
    arch: str = "test_tiny_tsm"
    head: str = "gru"
    clip_len: int = 32
    batch_size: int = 8
    epoch_clips: int = 160
    lr: float = 3e-3
    device: str = "auto"
    num_workers: int = 1
    max_epochs: int = 60


def random_baseline_map(truth: LabelSet, tolerances=DEFAULT_TOLERANCES, *, seed: int = 0) -> dict[int, float]:
    """mAP of uniformly random scores for every (frame, class): what "not learned" looks like."""
    from e2espot.eval.metrics import e2e_map

    rng = np.random.default_rng(seed)
    videos = []
    for v in truth:
        scores = rng.random((v.num_frames, len(truth.classes)))
        events = [Event(int(f), truth.classes[c], float(scores[f, c]))
                  for f in range(v.num_frames) for c in range(len(truth.classes))]
        videos.append(VideoLabels(v.video, v.fps, v.num_frames, events))
    return e2e_map(truth, LabelSet(list(truth.classes), videos), tolerances=tolerances).map_by_tolerance


def _train_options(opts: DemoOptions, num_epochs: int, **kw: Any) -> TrainOptions:
    return TrainOptions(
        num_epochs=num_epochs, epoch_clips=opts.epoch_clips, batch_size=opts.batch_size, lr=opts.lr,
        warmup_epochs=1, fg_upsample=0.5, mixup=False, augment="flip", dilate_len=1,
        start_val_epoch=num_epochs // 3,
        num_workers=opts.num_workers, device=opts.device, seed=opts.seed, **kw,
    )


def _calibrate(run_cfg: RunConfig, train_labels: LabelSet, opts: DemoOptions, scratch: Path) -> float:
    """Seconds per optimiser step of this exact setup on this machine (two timed steps)."""
    from e2espot.train.loop import train

    import logging

    stamps: list[float] = []
    probe = replace(_train_options(opts, 1, max_steps=3), epoch_clips=opts.batch_size * 4, criterion="loss")
    quiet = logging.getLogger("e2espot.train.loop")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the model summary is printed once, by the real run
    try:
        train(run_cfg, train_labels, None, scratch, probe, progress=lambda *a: stamps.append(time.perf_counter()))
    finally:
        quiet.setLevel(level)
    return (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)


def run_demo(opts: DemoOptions, log: Callable[[str], None] = lambda msg: None) -> dict[str, Any]:
    """Run the whole demo into ``opts.out_dir``; return a summary (also written as summary.json)."""
    import shutil

    from e2espot.data.align import align_labels
    from e2espot.data.sources import read_split
    from e2espot.data.synthetic import generate_dataset
    from e2espot.eval.report import format_map
    from e2espot.export.plots import plot_class_ap, plot_timeline, plot_training_curves
    from e2espot.export.render import render_annotated
    from e2espot.infer.split import predict_split
    from e2espot.models import parse_arch
    from e2espot.train.loop import train

    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_dir, run_dir = out / "data", out / "run"

    # 1. data
    t0 = time.perf_counter()
    dataset = generate_dataset(data_dir, num_videos=opts.num_videos, seconds=opts.seconds, seed=opts.seed,
                               width=opts.width, height=opts.height, zoom=opts.zoom, soccernet=False)
    counts = dataset.event_counts()
    log(f"[1/5] synthetic data: {opts.num_videos} videos x {opts.seconds:g} s at {opts.width}x{opts.height} "
        f"in {time.perf_counter() - t0:.0f} s; events {counts}")

    # 2. train
    backbone, module = parse_arch(opts.arch)
    classes = tuple(dataset.classes)
    data_cfg = DataConfig(height=opts.height, clip_len=opts.clip_len)
    run_cfg = RunConfig(
        model=ModelConfig(num_classes=len(classes), backbone=backbone, temporal_module=module, head=opts.head,
                          clip_len=opts.clip_len),
        data=data_cfg, classes=classes,
        dataset={"labels": str(data_dir.resolve()), "videos": str((data_dir / "videos").resolve()),
                 "format": "spot", "label_file": None, "splits": None},
    )
    videos_root = data_dir / "videos"
    train_labels = align_labels(read_split(data_dir, "train"), videos_root, data_cfg, source="train split")
    val_labels = align_labels(read_split(data_dir, "val"), videos_root, data_cfg, source="val split")
    scratch = out / ".calibration"
    shutil.rmtree(scratch, ignore_errors=True)
    step_s = _calibrate(run_cfg, train_labels, opts, scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    steps_per_epoch = opts.epoch_clips // opts.batch_size
    # validation costs about one pass over the val videos per epoch; budget 20 % for it
    num_epochs = int(max(2, min(opts.max_epochs, 0.8 * opts.minutes * 60 / (step_s * steps_per_epoch))))
    train_opts = _train_options(opts, num_epochs)
    run_cfg = replace(run_cfg, train=train_opts.to_dict())
    log(f"[2/5] training {opts.arch} + {opts.head} for {num_epochs} epochs x {steps_per_epoch} steps "
        f"(measured {step_s:.2f} s/step; budget {opts.minutes:g} min)")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    result = train(run_cfg, train_labels, val_labels, run_dir, train_opts)  # logs one line per epoch
    train_s = time.perf_counter() - t0
    plot_training_curves(run_dir / "metrics.json", run_dir / "curves.png")
    log(f"      trained in {train_s:.0f} s; best epoch {result.best_epoch} "
        f"(val mAP {100 * (result.best_score or 0):.1f})")

    # 3. predict + 4. evaluate the held-out test videos
    t0 = time.perf_counter()
    split = predict_split(run_dir, "test", videos_root=videos_root, device=opts.device)
    log(f"[3/5] predicted {len(split.videos)} test videos in {time.perf_counter() - t0:.0f} s")
    recall = split.recall_result
    random_map = random_baseline_map(split.truth)
    log("[4/5] test split, E2E-Spot AP (%) by tolerance in frames (high-recall list, no NMS):")
    log(format_map(recall))
    log(f"      random scores on the same labels: mAP@2 = {100 * random_map[2]:.1f}")

    # 5. pictures and the annotated video of the first test video
    first = split.truth.videos[0]
    pred_first = next(v for v in split.pred if v.video == first.video)
    annotated = out / f"{first.video}_annotated.mp4"
    render_annotated(videos_root / f"{first.video}.mp4", pred_first, annotated, truth=first)
    timeline = plot_timeline(pred_first, out / f"{first.video}_timeline.png", truth=first,
                             classes=list(classes), min_score=0.3)
    ap_chart = plot_class_ap(recall.ap[2], out / "class_ap.png", title="test AP @ 2 frames")
    log(f"[5/5] wrote {annotated}, {timeline}, {ap_chart}, run dir {run_dir}")
    summary = {
        "mAP@2": recall.map_by_tolerance[2],
        "mAP": {str(k): v for k, v in recall.map_by_tolerance.items()},
        "random_mAP@2": random_map[2],
        "per_class_ap@2": recall.ap[2],
        "epochs": num_epochs, "train_seconds": train_s, "best_epoch": result.best_epoch,
        "files": {"annotated": str(annotated), "timeline": str(timeline), "class_ap": str(ap_chart),
                  "run_dir": str(run_dir), "predictions": {k: str(v) for k, v in split.files.items()}},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary

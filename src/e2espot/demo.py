"""The embedded demo: synth → train (a fixed number of steps) → predict the test split → evaluate → render.

The work is fixed (videos, epochs, steps per epoch, seed), never fitted to a time budget, so the same
options give the same model and the same table on a busy machine as on a quiet one (same hardware and
thread count: floating-point sums follow the CPU's kernels). The time it takes is estimated before
training from reference figures, scaled by how fast this machine rendered the synthetic videos.

People-facing glue over the library (it may import plotting); the core never imports it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.constants import DEFAULT_TOLERANCES
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.train.loop import TrainOptions

# Reference pace on a quiet 2-core x86 CPU (the project machine, an AMD EPYC without AVX512-BF16, fp32, one
# torch thread + one decoding process), for the time estimate printed before training. Anchor: .ci/run on
# 2026-11-30, quiet (load about 2), the previous default (96x54 frames, 1200 steps): synthetic data 31 s,
# training 625 s, whole demo 11.3 min. The machine has been shared since, so the new defaults were timed
# against that anchor in the same moment (interleaved on the busy machine, the load cancels out):
# rendering 64x36 takes 0.82x the time of 96x54 (3 rounds of 3 videos: 0.80-0.86), a training step of
# 8 x 32 frames at 64x36 0.40x (median of 8 rounds, 0.26-0.48; 0.35 in 6 earlier rounds), about the
# pixel ratio (0.44). Rendering has a per-frame part (simulation, encoding) and a per-pixel part:
REF_SYNTH_S_PER_FRAME = 0.775e-3  # simulation + encoding of one frame, whatever its size
REF_SYNTH_S_PER_PIXEL = 7.19e-8  # + drawing, per pixel of the frame (31 s for 36 x 750 frames at 96x54)
REF_STEP_S_PER_FRAME = 0.40 * 0.512 / (8 * 32) / (64 * 36 / (128 * 72))  # one training step (forward +
# backward) per clip frame at 128x72 (scaled by pixels): 0.205 s per step of 8 x 32 frames at 64x36
REF_INFER_S_PER_FRAME = 0.0008  # decode + forward of one frame at 128x72 (validation, test, thresholds)
# the default demo's floor for the test mAP@2 without NMS (issue 12), which the slow test asserts with the same
# floor after NMS: measured 55.9 % without NMS, 59.7 % after the run's NMS (seed 2, 700 steps at 64x36;
# PASS 80.4, RECEIVE 94.9, SHOT 46.2, OUT 37.9, GOAL 19.9 without NMS), so a result below it is not what the
# demo does
TARGET_MAP2 = 0.50
FPS = 25.0  # the synthetic videos' frame rate (generate_dataset's default)
DISPLAY_HEIGHT = 324  # the annotated video is re-rendered at this height (9x the 36-px training frames)


@dataclass(frozen=True)
class DemoOptions:
    """Everything that decides the demo's outcome; the same options and seed give the same model."""

    out_dir: Path = Path("demo_out")
    num_videos: int = 36
    seconds: float = 30.0
    seed: int = 2
    width: int = 64
    height: int = 36
    zoom: float = 3.75  # broadcast-style camera following the ball: 5.6 px per metre, the ball 3.7 px wide
    arch: str = "test_tiny_tsm"
    head: str = "gru"
    clip_len: int = 32
    batch_size: int = 8
    epochs: int = 35
    epoch_clips: int = 160  # clips per epoch: epoch_clips / batch_size optimiser steps
    val_epochs: int = 2  # validation mAP (best-epoch selection) on the last val_epochs epochs only
    lr: float = 3e-3
    dilate_len: int = 0  # one target frame per event: sharp peaks, so the list without NMS has few duplicates
    fg_upsample: float = 0.5
    device: str = "cpu"
    num_workers: int = 1
    display_height: int = DISPLAY_HEIGHT  # the annotated video's height (0: the training videos as they are)
    display_zoom: float = 2.5  # the annotated video's camera: wider than training's (same match, same events)

    @property
    def steps(self) -> int:
        """Optimiser steps of the whole training run."""
        return self.epochs * (self.epoch_clips // self.batch_size)


def random_baseline_map(truth: LabelSet, tolerances=DEFAULT_TOLERANCES, *, seed: int = 0) -> dict[int, float]:
    """mAP (0..1) of uniformly random scores for every (frame, class): what "not learned" looks like."""
    from e2espot.eval.metrics import e2e_map

    rng = np.random.default_rng(seed)
    videos = []
    for v in truth:
        scores = rng.random((v.num_frames, len(truth.classes)))
        events = [Event(int(f), truth.classes[c], float(scores[f, c]))
                  for f in range(v.num_frames) for c in range(len(truth.classes))]
        videos.append(VideoLabels(v.video, v.fps, v.num_frames, events))
    return e2e_map(truth, LabelSet(list(truth.classes), videos), tolerances=tolerances).map_by_tolerance


def train_options(opts: DemoOptions) -> TrainOptions:
    """The demo's training recipe (fixed work: ``opts.epochs`` x ``epoch_clips / batch_size`` steps)."""
    return TrainOptions(
        num_epochs=opts.epochs, epoch_clips=opts.epoch_clips, batch_size=opts.batch_size, lr=opts.lr,
        warmup_epochs=1, fg_upsample=opts.fg_upsample, mixup=False, augment="flip", dilate_len=opts.dilate_len,
        start_val_epoch=max(0, opts.epochs - opts.val_epochs),
        val_clips=0,  # no validation loss pass per epoch: the last epochs' validation mAP picks the best one
        num_workers=opts.num_workers, device=opts.device, seed=opts.seed,
    )


def expected_seconds(opts: DemoOptions, *, num_val_frames: int, num_test_frames: int,
                     speed: float = 1.0) -> dict[str, float]:
    """Seconds each stage should take: reference pace (quiet 2-core CPU) divided by ``speed`` (1 = reference).

    Returns ``{"train", "predict", "total_after_synth"}``; validation and threshold choice are counted
    in ``train``.
    """
    pixels = (opts.width * opts.height) / (128 * 72)
    frames_per_step = opts.batch_size * opts.clip_len
    train_s = opts.steps * frames_per_step * REF_STEP_S_PER_FRAME * pixels
    infer = REF_INFER_S_PER_FRAME * pixels
    train_s += (min(opts.val_epochs, opts.epochs) + 1) * num_val_frames * infer  # val mAP + thresholds
    predict_s = num_test_frames * infer + 15.0  # + rendering the annotated video and the charts
    return {"train": train_s / speed, "predict": predict_s / speed,
            "total_after_synth": (train_s + predict_s) / speed}


def expected_synth_seconds(opts: DemoOptions) -> float:
    """Seconds to simulate, render and encode the demo's videos on the reference CPU (see REF_SYNTH_*)."""
    frames = opts.num_videos * round(opts.seconds * FPS)
    return frames * (REF_SYNTH_S_PER_FRAME + REF_SYNTH_S_PER_PIXEL * opts.width * opts.height)


def verdict(map2: float, random_map2: float, *, target: float = TARGET_MAP2,
            what: str = "mAP@2") -> tuple[bool, str]:
    """(learned, one plain sentence) for a test mAP@2 against random scores on the same labels (0..1);
    ``what`` names the list it was computed on (the demo passes "mAP@2 without NMS")."""
    ratio = map2 / random_map2 if random_map2 > 0 else float("inf")
    above = f"{100 * map2:.1f} % vs {100 * random_map2:.1f} % for random scores ({ratio:.1f}x)"
    if map2 < max(2.0 * random_map2, random_map2 + 0.05):
        return False, (f"WARNING: the model did not learn: {what} = {above}. Its events are close to "
                       "guesses; train longer (--epochs) or check the data.")
    if map2 < target:
        return True, (f"the model learned something but less than this demo normally does: {what} = {above}; "
                      f"the default settings reach {100 * target:.0f} % or more.")
    return True, f"the model learned to spot the events: {what} = {above}."


def _thresholds(run_dir: Path, classes: list[str]) -> dict[str, float]:
    """Per-class score thresholds that ``train`` chose on validation (``RunConfig.postprocess``), 0.5 where none."""
    chosen = RunConfig.load(run_dir / "config.json").postprocess.thresholds or {}
    return {c: float(chosen.get(c, 0.5)) for c in classes}


def above_thresholds(video: VideoLabels, thresholds: Mapping[str, float]) -> VideoLabels:
    """The events of ``video`` whose score reaches their class's threshold (what ``predict`` keeps)."""
    keep = [e for e in video.events if e.score is None or e.score >= thresholds.get(e.label, 0.5)]
    return replace(video, events=keep)


def _display_video(opts: DemoOptions, data_dir: Path, video: VideoLabels, index: int, out: Path) -> Path:
    """The test video to annotate: re-rendered at ``display_height`` (same match, same events), or as is."""
    from e2espot.data.synthetic import render_video

    source = data_dir / "videos" / f"{video.video}.mp4"
    if opts.display_height <= opts.height:
        return source
    scale = opts.display_height / opts.height
    width = round(opts.width * scale / 2) * 2
    render_video(out, seed=opts.seed, index=index, num_frames=video.num_frames, fps=video.fps, width=width,
                 height=opts.display_height, zoom=opts.display_zoom)
    return out


def run_demo(opts: DemoOptions, log: Callable[[str], None] = lambda msg: None) -> dict[str, Any]:
    """Run the whole demo into ``opts.out_dir``; return a summary (also written as summary.json).

    mAP values in the summary are percent (as in the printed tables and the charts).
    """
    import shutil

    from e2espot.data.align import align_labels
    from e2espot.data.sources import read_split
    from e2espot.data.synthetic import generate_dataset, split_counts
    from e2espot.eval.report import format_map
    from e2espot.export.plots import count_noun, plot_class_ap, plot_timeline, plot_training_curves
    from e2espot.export.render import render_annotated
    from e2espot.infer.split import predict_split
    from e2espot.models import parse_arch
    from e2espot.train.loop import train

    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_dir, run_dir = out / "data", out / "run"
    _, num_val, num_test = split_counts(opts.num_videos, (0.5, 0.25, 0.25))  # generate_dataset's default
    frames_per_video = round(opts.seconds * FPS)
    frames = {"val": num_val * frames_per_video, "test": num_test * frames_per_video}
    ref_synth_s = expected_synth_seconds(opts)
    ref = expected_seconds(opts, num_val_frames=frames["val"], num_test_frames=frames["test"])
    log(f"demo: fixed work ({count_noun(opts.num_videos, 'video')}, {opts.steps} training steps, seed {opts.seed}); "
        f"expected: about {(ref_synth_s + ref['total_after_synth']) / 60:.1f} min on a quiet 2-core CPU")

    # 1. data
    t0 = time.perf_counter()
    dataset = generate_dataset(data_dir, num_videos=opts.num_videos, seconds=opts.seconds, seed=opts.seed,
                               width=opts.width, height=opts.height, zoom=opts.zoom, fps=FPS, soccernet=False)
    synth_s = time.perf_counter() - t0
    counts = dataset.event_counts()
    log(f"[1/5] synthetic data: {count_noun(opts.num_videos, 'video')} x {opts.seconds:g} s at "
        f"{opts.width}x{opts.height} in {synth_s:.0f} s; events {counts}")

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
    train_opts = train_options(opts)
    run_cfg = replace(run_cfg, train=train_opts.to_dict())
    speed = min(1.0, ref_synth_s / max(synth_s, 1e-6))  # < 1: this machine is slower (or busier) now
    here = expected_seconds(opts, num_val_frames=frames["val"], num_test_frames=frames["test"], speed=speed)
    steps_per_epoch = opts.epoch_clips // opts.batch_size
    log(f"[2/5] training {opts.arch} + {opts.head}: {count_noun(opts.epochs, 'epoch')} x "
        f"{count_noun(steps_per_epoch, 'step')} of {opts.batch_size} clips x {opts.clip_len} frames "
        f"({opts.steps} steps, seed {opts.seed})")
    log(f"      expected: about {ref['total_after_synth'] / 60:.1f} min to the end on a quiet 2-core CPU; "
        f"about {here['total_after_synth'] / 60:.1f} min here at the speed the rendering ran")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()

    def on_epoch_end(row: dict[str, Any]) -> None:
        done = row["epoch"] + 1
        if done in (1, opts.epochs // 2):
            left = (time.perf_counter() - t0) / done * (opts.epochs - done)
            log(f"      epoch {done}/{opts.epochs}: about {left / 60:.1f} min of training left at this pace")

    result = train(run_cfg, train_labels, val_labels, run_dir, train_opts, on_epoch_end=on_epoch_end)
    train_s = time.perf_counter() - t0
    plot_training_curves(run_dir / "metrics.json", run_dir / "curves.png")
    log(f"      trained in {train_s:.0f} s; best epoch {result.best_epoch} "
        f"(val mAP {result.best_score or 0:.1f} %)")

    # 3. predict + 4. evaluate the held-out test videos
    t0 = time.perf_counter()
    split = predict_split(run_dir, "test", videos_root=videos_root, device=opts.device)
    log(f"[3/5] predicted {count_noun(len(split.videos), 'test video')} in {time.perf_counter() - t0:.0f} s")
    recall, ranked = split.recall_result, split.result
    random_map = random_baseline_map(split.truth)
    post = split.postprocess
    nms = "no NMS" if post is None or post.nms == "none" else f"{post.nms} NMS over {post.nms_window} frame" + (
        "s" if post.nms_window != 1 else "")
    log(f"[4/5] test split ({count_noun(len(split.truth.videos), 'held-out video')}), E2E-Spot AP (%) by tolerance "
        "in frames, on two lists:")
    log("      A. without NMS: every (frame, class) scoring >= 0.01 (E2E-Spot's test protocol)")
    log(format_map(recall))
    log(f"      B. after the run's NMS ({nms}, chosen on validation): the ranked list predict's events come from")
    log(format_map(ranked))
    raw2, nms2 = recall.map_by_tolerance[2], ranked.map_by_tolerance[2]
    log(f"      mAP@2: {100 * raw2:.1f} % without NMS (A), {100 * nms2:.1f} % after NMS (B); random scores on "
        f"the same labels: {100 * random_map[2]:.1f} %")
    learned, sentence = verdict(raw2, random_map[2], what="mAP@2 without NMS")
    log(f"      verdict: {sentence}")

    # 5. pictures and the annotated video of the first test video, events above the run's thresholds
    first = split.truth.videos[0]
    thresholds = _thresholds(run_dir, list(classes))
    shown = above_thresholds(next(v for v in split.pred if v.video == first.video), thresholds)
    index = sorted(dataset.videos).index(first.video)
    display = _display_video(opts, data_dir, first, index, out / f".{first.video}_display.mp4")
    annotated = out / f"{first.video}_annotated.mp4"
    render_annotated(display, shown, annotated, truth=first, hold_s=0.6)
    if display.name.startswith("."):
        display.unlink()
    timeline = plot_timeline(shown, out / f"{first.video}_timeline.png", truth=first, classes=list(classes))
    ap_chart = plot_class_ap(recall.ap[2], out / "class_ap.png", title="test AP @ 2 frames")
    log(f"[5/5] wrote {annotated} ({count_noun(len(shown.events), 'event')} at or above the run's thresholds "
        f"{', '.join(f'{c} {t:.2f}' for c, t in thresholds.items())}), {timeline}, {ap_chart}, run dir {run_dir}")
    summary = {
        "units": "mAP and AP in percent",
        "lists": {"mAP, per_class_ap@2": "without NMS: every (frame, class) scoring >= 0.01",
                  "mAP_after_nms, per_class_ap@2_after_nms": f"after the run's NMS ({nms}, chosen on validation)"},
        "mAP@2": 100 * raw2,
        "mAP": {str(k): 100 * v for k, v in recall.map_by_tolerance.items()},
        "mAP_after_nms": {str(k): 100 * v for k, v in ranked.map_by_tolerance.items()},
        "random_mAP@2": 100 * random_map[2],
        "per_class_ap@2": {c: 100 * v for c, v in recall.ap[2].items()},
        "per_class_ap@2_after_nms": {c: 100 * v for c, v in ranked.ap[2].items()},
        "learned": learned, "verdict": sentence,
        "epochs": opts.epochs, "steps": opts.steps, "seed": opts.seed,
        "train_seconds": train_s, "best_epoch": result.best_epoch,
        "thresholds": thresholds,
        "files": {"annotated": str(annotated), "timeline": str(timeline), "class_ap": str(ap_chart),
                  "run_dir": str(run_dir), "predictions": {k: str(v) for k, v in split.files.items()}},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary

"""Spot events in raw video files with a trained run directory (no labels needed).

Writes, per video, OUT_DIR/<name>.json (events after NMS and the score thresholds: by default the
per-class ones the run chose on its validation split, printed before the first video), <name>.recall.json (every
frame/class scoring >= 0.01, no NMS: use it for mAP), <name>.csv and <name>.npz (the per-frame score
matrix). Frame indices are at the model's fps. Several processes can share a list of videos with
--shard i/n, or under torchrun (RANK / WORLD_SIZE).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from e2espot.config import ENGINES


def add_inference_arguments(parser: argparse.ArgumentParser, *, default_threshold: str) -> None:
    """Options shared by ``predict`` and ``test``."""
    parser.add_argument("--checkpoint", default="best",
                        help="best, last, or a .pt file inside the run directory (default best)")
    parser.add_argument("--threshold", type=float, default=None,
                        help=f"minimum event score after NMS, for every class (default: {default_threshold})")
    from e2espot.config import NMS_KINDS

    parser.add_argument("--nms", choices=NMS_KINDS, default=None,
                        help="per-class suppression: greedy hard NMS, soft-NMS or none (default: the run's, "
                             "else hard)")
    parser.add_argument("--nms-window", type=int, default=None, metavar="FRAMES",
                        help="NMS window in frames at the model's fps (default: the run's, else 1 for hard, "
                             "3 for soft)")
    parser.add_argument("--overlap", type=int, default=None, metavar="FRAMES",
                        help="frames shared by consecutive windows (default clip_len // 2; 0 = no overlap)")
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass (default 4)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default auto)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                        help="autocast precision; auto = bf16 where the device runs it natively, else fp32")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="process only shard I of N of the videos (0-based); default from torchrun's "
                             "RANK/WORLD_SIZE, else all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="video files or frame folders")
    parser.add_argument("--model", "-m", type=Path, required=True, metavar="SAVE_DIR",
                        help="run directory written by 'e2espot train' (config.json + best.pt), a published "
                             "model folder (E2E-Spot, OpenSportsLib, T-DEED), hf://OWNER/REPO[/SUBDIR][@REV], "
                             "or a .onnx file written by 'e2espot export-model'")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT_DIR", help="where to write")
    parser.add_argument("--engine", choices=ENGINES, default="torch",
                        help="what runs the network: torch (PyTorch), or onnxruntime (CPU; uses "
                             "SAVE_DIR/model.onnx, see 'e2espot export-model'; implied by a .onnx --model)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the PyTorch model (faster after a slower first batch)")
    add_inference_arguments(parser, default_threshold="the run's per-class thresholds chosen on val "
                            "(printed), else 0.5; OUT_DIR/<name>.recall.json keeps every score >= 0.01")
    from e2espot.commands._tracks import add_predict_arguments as add_track_arguments

    add_track_arguments(parser)  # --track-weights, --track-cache (models with object-track fusion)


def frame_bar(desc: str, total: int | None):
    """A tqdm bar in frames (shows frames/s) driven by ``progress(stage, fraction)`` callbacks."""
    import sys

    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, leave=False, dynamic_ncols=True)

    def progress(stage: str, fraction: float) -> None:
        if stage == "predict" and bar.total:
            bar.update(max(0, int(round(fraction * bar.total)) - bar.n))

    return bar, progress


def estimated_frames(path: Path, fps: float | None) -> int | None:
    """Frame count at the model's fps from container metadata (for the progress bar only)."""
    from e2espot.data.timebase import num_frames_at
    from e2espot.data.video import probe_video
    from e2espot.errors import VideoError

    try:
        info = probe_video(path)
    except (VideoError, OSError):
        return None
    if fps and info.fps:
        return num_frames_at(info.num_frames, info.fps, fps)
    return info.num_frames


def summary_line(name: str, labels, classes, seconds: float, path: Path | None) -> str:
    """``name: 12 events (pass 5, shot 7); 1500 frames in 6.1 s (246 frames/s) -> path``."""
    from e2espot.infer.predict import count_by_class

    counts = count_by_class(labels.events, classes)
    per_class = ", ".join(f"{c} {n}" for c, n in counts.items() if n) or "none"
    fps = (labels.num_frames or 0) / seconds if seconds > 0 else float("nan")
    text = (f"{name}: {len(labels.events)} events ({per_class}); {labels.num_frames} frames in "
            f"{seconds:.1f} s ({fps:.0f} frames/s)")
    return text if path is None else f"{text} -> {path}"


def run(args: argparse.Namespace) -> int:
    import time

    from e2espot.errors import ConfigError
    from e2espot.infer.engines import load_engine
    from e2espot.infer.predict import applied_postprocess, check_spotting_run, predict_file, resolve_device
    from e2espot.infer.sharding import resolve_shard

    shard = resolve_shard(args.shard)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size} must be >= 1")
    device = resolve_device(args.device)
    if shard.from_launcher and device.type == "cuda" and ":" not in args.device:
        import os

        device = resolve_device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    stems = [v.stem if v.suffix else v.name for v in args.videos]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise ConfigError(f"several videos are named {clashes}: their outputs in {args.out} would overwrite "
                          "each other; predict them into separate --out folders")
    model, cfg = load_engine(args.model, engine=args.engine, device=device, checkpoint=args.checkpoint,
                             compile=args.compile)
    check_spotting_run(cfg)  # before any output: a clip classifier has no events to write
    for line in applied_postprocess(cfg, args.nms, args.nms_window, args.threshold,
                                    run_label=f"{args.model}/config.json").describe():
        print(line)
    videos = shard.select(list(args.videos))
    for video in videos:
        started = time.perf_counter()
        bar, progress = frame_bar(video.name, estimated_frames(video, cfg.data.fps))
        try:
            files = predict_file(
                video, (model, cfg), args.out, device=device, threshold=args.threshold, nms=args.nms,
                nms_window=args.nms_window, overlap=args.overlap, batch_size=args.batch_size,
                precision=args.precision, progress=progress,
                track_weights=args.track_weights, track_cache=args.track_cache,
            )
        finally:
            bar.close()
        print(summary_line(video.name, files.video_labels, cfg.classes, time.perf_counter() - started,
                           files.events_json))
    if shard.enabled:
        print(f"shard {shard}: {len(videos)} of {len(args.videos)} videos")
    return 0

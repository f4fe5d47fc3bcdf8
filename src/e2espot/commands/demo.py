"""The one-command demo: no data and no network needed.

Renders a small synthetic sports dataset (pitch, two teams, a ball, frame-exact PASS / RECEIVE /
SHOT / OUT / GOAL events), trains a small spotting model on the CPU for a fixed number of steps (the
same seed gives the same model and the same table on any machine of the same kind; a busy machine
only takes longer), spots the events of the held-out test videos, prints the per-class AP table,
mAP against random scores and a verdict, and writes an annotated video, a timeline picture and a
per-class AP chart. It prints the time it expects before training starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from e2espot.demo import DemoOptions

    d = DemoOptions()
    p.add_argument("--out", type=Path, default=d.out_dir, help="output folder")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help=f"training epochs of {d.epoch_clips // d.batch_size} steps each (fixed work, not a time budget)")
    p.add_argument("--videos", type=int, default=d.num_videos, help="synthetic videos to render (half for training)")
    p.add_argument("--seconds", type=float, default=d.seconds, help="length of each video in seconds")
    p.add_argument("--seed", type=int, default=d.seed, help="dataset and training seed")
    p.add_argument("-m", "--arch", default=d.arch, help="backbone[_module]")
    p.add_argument("-t", "--head", default=d.head, help="temporal head")
    p.add_argument("--device", default=d.device, help="cpu, cuda or auto (the quoted figures are for cpu)")
    p.add_argument("-j", "--num-workers", type=int, default=d.num_workers, help="data-loading processes")


def run(args: argparse.Namespace) -> int:
    from e2espot.demo import DemoOptions, run_demo
    from e2espot.errors import ConfigError

    for name in ("epochs", "videos"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} {getattr(args, name)}: must be at least 1")
    if args.videos < 3:
        raise ConfigError(f"--videos {args.videos}: the demo needs at least 3 (train, val and test)")
    opts = DemoOptions(out_dir=args.out, epochs=args.epochs, num_videos=args.videos, seconds=args.seconds,
                       seed=args.seed, arch=args.arch, head=args.head, device=args.device,
                       num_workers=args.num_workers)
    t0 = time.perf_counter()
    summary = run_demo(opts, log=lambda msg: print(msg, flush=True))
    print(f"\ndemo finished in {(time.perf_counter() - t0) / 60:.1f} min: test mAP@2 {summary['mAP@2']:.1f} % "
          f"without NMS, {summary['mAP_after_nms']['2']:.1f} % after the run's NMS, random scores "
          f"{summary['random_mAP@2']:.1f} %")
    print(json.dumps({"mAP@2_without_nms": round(summary["mAP@2"], 2),
                      "mAP@2_after_nms": round(summary["mAP_after_nms"]["2"], 2),
                      "random_mAP@2": round(summary["random_mAP@2"], 2), "units": "percent"}), file=sys.stderr)
    return 0

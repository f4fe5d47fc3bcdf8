"""Render an annotated video: event labels drawn from their exact frame, a timeline bar with a
playhead, optional slow motion around events, ground truth beside predictions; optionally a
timeline PNG and an HTML error review (needs --labels)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="input video file")
    parser.add_argument("--events", type=Path, required=True,
                        help="prediction JSON ([{video, fps, num_frames, events: [{frame, label, score}]}])")
    parser.add_argument("-o", "--out", type=Path, required=True, help="annotated .mp4 to write")
    parser.add_argument("--labels", type=Path, help="ground-truth labels (any supported format) to show beside")
    parser.add_argument("--slowmo", type=float, default=0.0, metavar="SECONDS",
                        help="slow motion within SECONDS of each predicted event (drops audio; default off)")
    parser.add_argument("--slowmo-factor", type=int, default=4, help="frame repeats in slow motion (default 4)")
    parser.add_argument("--hold", type=float, default=1.0, metavar="SECONDS",
                        help="how long a label stays on screen (default 1.0)")
    parser.add_argument("--min-score", type=float, default=0.0, help="hide predictions below this score")
    parser.add_argument("--tolerance", type=int, default=2, metavar="FRAMES",
                        help="matching tolerance against --labels, in frames (default 2)")
    parser.add_argument("--timeline", type=Path, metavar="OUT.png", help="also write an event timeline picture")
    parser.add_argument("--review", type=Path, metavar="OUT.html",
                        help="also write an HTML review of missed/duplicate/spurious detections (needs --labels)")


def load_truth(path: Path, video: Path):
    """Ground truth for ``video`` from a label file in any supported format."""
    from e2espot.data.formats import read_labels
    from e2espot.export.writers import pick_video

    return pick_video(read_labels(path), video, str(path))


def run(args: argparse.Namespace) -> int:
    import logging

    from tqdm import tqdm

    from e2espot.errors import ConfigError
    from e2espot.export.render import render_annotated
    from e2espot.export.writers import pick_video, read_predictions

    log = logging.getLogger("e2espot")
    if args.review and not args.labels:
        raise ConfigError("--review needs --labels (the ground truth to compare with)")
    preds = pick_video(read_predictions(args.events), args.video, str(args.events))
    preds.events = [e for e in preds.events if e.score is None or e.score >= args.min_score]
    truth = load_truth(args.labels, args.video) if args.labels else None
    with tqdm(total=100, desc="render", unit="%") as bar:
        def progress(stage: str, fraction: float) -> None:
            bar.update(int(fraction * 100) - bar.n)

        res = render_annotated(args.video, preds, args.out, truth=truth, slowmo_s=args.slowmo,
                               slowmo_factor=args.slowmo_factor, hold_s=args.hold,
                               tolerance_frames=args.tolerance, progress=progress)
    log.info("wrote %s (%d frames%s)", res.path, res.num_frames_out, ", audio kept" if res.audio else "")
    if args.timeline:
        from e2espot.export.plots import plot_timeline

        preds.fps = preds.fps or res.fps
        log.info("wrote %s", plot_timeline(preds, args.timeline, truth=truth))
    if args.review:
        from e2espot.export.review import write_review

        s = write_review(args.video, preds, truth, args.review, tolerance_frames=args.tolerance)
        log.info("wrote %s (detected %d, missed %d, duplicate %d, spurious %d)", s.path, s.detected, s.missed,
                 s.duplicate, s.spurious)
    return 0

"""Render a synthetic futsal-like dataset with frame-exact events (PASS, RECEIVE, SHOT, OUT, GOAL).

Writes OUT/videos/<id>.mp4, OUT/class.txt and OUT/{train,val,test}.json (E2E-Spot layout),
OUT/ground_truth/<id>.json (per-frame ball trajectory) and OUT/soccernet/ (SoccerNet-Ball layout:
synthetic/2026-2027/<id>/Labels-ball.json + 224p.mp4, splits.json). Same --seed, same dataset.
"""

from __future__ import annotations

import argparse
import re
import time

from e2espot.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output folder (created; existing files are overwritten)")
    parser.add_argument("--videos", type=int, default=6, help="number of videos (default: 6)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="length of each video in seconds (default: 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--size", default="398x224", metavar="WxH",
                        help="frame size, even width and height (default: 398x224)")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate (default: 25)")
    parser.add_argument("--zoom", type=float, default=1.0,
                        help="magnify the pitch; > 1 makes the camera follow the ball (default: 1, whole pitch)")
    from e2espot.data.synthetic.render import TEAM_CUES

    parser.add_argument("--team-cue", choices=list(TEAM_CUES), default="none",
                        help="what tells the teams apart in a frame: "
                             + "; ".join(f"'{k}': {v}" for k, v in TEAM_CUES.items()) + " (default: none)")
    parser.add_argument("--splits", type=float, nargs=3, default=(0.5, 0.25, 0.25),
                        metavar=("TRAIN", "VAL", "TEST"),
                        help="shares of videos per split (default: 0.5 0.25 0.25)")
    parser.add_argument("--tiny", action=argparse.BooleanOptionalAction, default=False,
                        help="64x48 videos of 48 frames, for tests (ignores --size and --seconds)")
    parser.add_argument("--soccernet", action=argparse.BooleanOptionalAction, default=True,
                        help="also write the SoccerNet-Ball layout under OUT/soccernet (default: on)")
    parser.add_argument("--tracks", action=argparse.BooleanOptionalAction, default=True,
                        help="also write videos/<id>.tracks.json, the ground-truth ball and player boxes of every "
                             "frame (object tracks for train --track-fusion; default: on)")


def parse_size(text: str) -> tuple[int, int]:
    """``"398x224"`` -> (398, 224); raise ConfigError on anything else."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise ConfigError(f"--size '{text}' is not WIDTHxHEIGHT; expected e.g. 398x224")
    width, height = int(m.group(1)), int(m.group(2))
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ConfigError(f"--size '{text}': width and height must be even and >= 16 (H.264 yuv420p); "
                          "e.g. 398x224")
    return width, height


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from e2espot.data.synthetic import generate_dataset

    width, height = parse_size(args.size)
    bar = tqdm(total=1000, desc="synth", unit="", bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}",
               disable=None)

    def progress(stage: str, fraction: float) -> None:
        bar.update(int(fraction * 1000) - bar.n)

    start_s = time.perf_counter()
    try:
        ds = generate_dataset(args.out, num_videos=args.videos, seconds=args.seconds, seed=args.seed, zoom=args.zoom,
                              width=width, height=height, fps=args.fps, splits=tuple(args.splits),
                              tiny=args.tiny, soccernet=args.soccernet, team_cue=args.team_cue,
                              progress=progress, tracks=args.tracks)
    finally:
        bar.close()
    elapsed_s = time.perf_counter() - start_s

    num_frames = next(v.num_frames for ls in ds.labels.values() for v in ls)
    n = len(ds.videos)
    print(f"wrote {n} {'video' if n == 1 else 'videos'} ({ds.width}x{ds.height}, {ds.fps:g} fps, "
          f"{num_frames} {'frame' if num_frames == 1 else 'frames'} each) "
          f"to {ds.root} in {elapsed_s:.1f} s")
    header = f"{'split':<6} {'videos':>6} " + " ".join(f"{c:>8}" for c in ds.classes)
    print(header)
    for split, ls in list(ds.labels.items()) + [("total", None)]:
        counts = ds.event_counts(None if ls is None else split)
        n = len(ds.videos) if ls is None else len(ls)
        print(f"{split:<6} {n:>6} " + " ".join(f"{counts[c]:>8}" for c in ds.classes))
    print("files:")
    print(f"  {ds.class_file}")
    for path in ds.split_files.values():
        print(f"  {path}")
    print(f"  {ds.root / 'videos'}/ ({len(ds.videos)} .mp4)")
    print(f"  {ds.root / 'ground_truth'}/ ({len(ds.ground_truth)} .json, per-frame ball trajectory)")
    if ds.tracks:
        print(f"  {ds.root / 'videos'}/ ({len(ds.tracks)} .tracks.json, ball and player boxes per frame)")
    if ds.soccernet_root is not None:
        print(f"  {ds.soccernet_root}/ (Labels-ball.json + 224p.mp4 per game), {ds.soccernet_splits}")
    return 0

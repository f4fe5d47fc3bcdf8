"""The object-track flags of ``train`` and ``predict`` (``e2espot.data.tracks``, ``e2espot.models.fusion``)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from e2espot.data.tracks import TRACKERS
    from e2espot.models.fusion import FUSIONS

    g = p.add_argument_group("object tracks (a second input stream, fused before the temporal head)")
    g.add_argument("--track-fusion", choices=FUSIONS, default=None,
                   help="fuse per-frame object-track features with the frame features: concat (project + "
                        "concatenate) or gate (learned sigmoid gate); default: no tracks. Detections come from "
                        "<video stem>.tracks.json / .mot.txt beside each video, or YOLO --track-weights")
    g.add_argument("--track-grid", type=int, nargs=2, default=(3, 4), metavar=("ROWS", "COLS"),
                   help="player occupancy grid (default: 3 4; features per frame = 8 + ROWS*COLS)")
    g.add_argument("--track-tracker", choices=TRACKERS, default="bytetrack",
                   help="bytetrack (supervision / trackers) or given (the ids in the detections file)")
    g.add_argument("--track-weights", type=Path, default=None, metavar="YOLO.pt",
                   help="YOLO weights (ultralytics, optional extra tracks-yolo) for videos without a detections file")
    g.add_argument("--track-proj-dim", type=int, default=64, help="concat: projected track features (default 64)")
    g.add_argument("--track-cache", type=Path, default=None, metavar="DIR",
                   help="cache of per-video track features (default: $E2ESPOT_TRACK_CACHE or ~/.cache/e2espot/tracks)")


def apply_train_arguments(run_cfg: Any, args: argparse.Namespace) -> Any:
    """``run_cfg`` with the track settings of ``args`` (unchanged without --track-fusion)."""
    from e2espot.data.tracks import TrackConfig

    if getattr(args, "track_fusion", None) is None:
        return run_cfg
    weights = str(Path(args.track_weights).resolve()) if args.track_weights else None
    track_cfg = TrackConfig(grid=tuple(args.track_grid), tracker=args.track_tracker, weights=weights)
    model = dataclasses.replace(run_cfg.model, track_fusion=args.track_fusion, track_dim=track_cfg.dim,
                                track_proj_dim=args.track_proj_dim)
    data = dataclasses.replace(run_cfg.data, tracks=track_cfg.to_dict())
    dataset = dict(run_cfg.dataset)
    if args.track_cache is not None:
        dataset["track_cache"] = str(Path(args.track_cache).resolve())
    return dataclasses.replace(run_cfg, model=model, data=data, dataset=dataset)


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--track-weights", type=Path, default=None, metavar="YOLO.pt",
                   help="models with object-track fusion: YOLO weights to detect with (ultralytics) instead of the "
                        "<video stem>.tracks.json / .mot.txt beside each video")
    p.add_argument("--track-cache", type=Path, default=None, metavar="DIR",
                   help="cache of per-video track features (default: $E2ESPOT_TRACK_CACHE or ~/.cache/e2espot/tracks)")

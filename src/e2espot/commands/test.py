"""Predict every video of a labelled split with a trained run, write the predictions into the run
directory and print the per-class AP table (E2E-Spot mAP at frame tolerances).

Labels and videos default to the dataset the run was trained on (config.json "dataset"). Writes
SAVE_DIR/pred-SPLIT.json (the events a person looks at: the run's NMS and per-class thresholds, chosen
on val at the end of training, as predict applies them; both printed with their source),
pred-SPLIT.recall.json.gz (every frame/class >= 0.01, no NMS: the list for mAP), pred-SPLIT.scores.npz
and, for SoccerNet datasets, SAVE_DIR/results-SPLIT/<game>/results_spotting.json (the run's NMS, every
score >= 0.01). The AP table scores the ranked list (the run's NMS over the high-recall list, every
score >= 0.01); the line after it the high-recall list without NMS (E2E-Spot's own test number); then
precision / recall / F1 of pred-SPLIT.json at its thresholds. Shard over processes with --shard i/n or
torchrun; the last shard to finish (rank 0 under torchrun) merges and evaluates. When the labels carry
teams (left / right) and the model predicts them, Team-mAP@1 and the no-team mAP@1 are printed too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from e2espot.commands.predict import add_inference_arguments
from e2espot.constants import DEFAULT_SOCCERNET_LABEL_FILE, DEFAULT_TOLERANCES


def _tolerances(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}': expected comma-separated frame counts, e.g. 0,1,2,4"
        ) from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"'{text}': expected non-negative frame counts, e.g. 0,1,2,4")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("save_dir", type=Path, metavar="SAVE_DIR",
                        help="run directory written by 'e2espot train'")
    parser.add_argument("videos", type=Path, nargs="?", default=None, metavar="VIDEOS",
                        help="folder holding the split's videos (default: the run's dataset.videos)")
    parser.add_argument("-s", "--split", required=True,
                        help="split to predict: train, val, test, challenge, ...")
    parser.add_argument("--labels", type=Path, default=None, metavar="LABELS",
                        help="E2E-Spot label dir or SoccerNet root (default: the run's dataset.labels)")
    parser.add_argument("--format", choices=("spot", "soccernet"), default=None,
                        help="label format (default: the run's dataset.format)")
    parser.add_argument("--splits", type=Path, default=None,
                        help="SoccerNet only: JSON mapping split names to game folders (default: the run's)")
    parser.add_argument("--label-file", default=None,
                        help="SoccerNet only: Labels-v2.json or Labels-ball.json (default: the run's)")
    parser.add_argument("--tolerances", type=_tolerances, default=DEFAULT_TOLERANCES, metavar="D,D,...",
                        help=f"mAP tolerances in frames (default {','.join(map(str, DEFAULT_TOLERANCES))})")
    parser.add_argument("--classes-drop-rarest", type=int, default=None, metavar="N",
                        help="also report the mAP without the N classes with the fewest ground-truth events")
    add_inference_arguments(
        parser, default_threshold="the run's per-class thresholds chosen on val (printed), else 0.5; "
        "pred-SPLIT.recall.json.gz keeps every score >= 0.01 whatever this is")


def run(args: argparse.Namespace) -> int:
    import os

    from e2espot.commands.predict import frame_bar, summary_line
    from e2espot.errors import ConfigError
    from e2espot.eval.report import format_map, format_prf
    from e2espot.infer.predict import resolve_device
    from e2espot.infer.sharding import resolve_shard
    from e2espot.infer.split import predict_split

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size} must be >= 1")
    shard = resolve_shard(args.shard)
    device = resolve_device(args.device)
    if shard.from_launcher and device.type == "cuda" and ":" not in args.device:
        device = resolve_device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")

    if _is_classifier(args.save_dir):  # train --task classify: clip metrics (e2espot.train.classify)
        return _test_classifier(args, device)

    bars = []

    def progress_for(video_id: str, num_frames: int | None):
        bar, progress = frame_bar(video_id, num_frames)
        bars.append(bar)
        return progress

    def on_video(labels) -> None:
        bar = bars.pop()
        seconds = bar.format_dict.get("elapsed", 0.0)
        bar.close()
        print(summary_line(labels.video, labels, sorted({e.label for e in labels.events}), seconds, None))

    try:
        out = predict_split(
            args.save_dir, args.split, videos_root=args.videos, labels=args.labels, fmt=args.format,
            splits=args.splits, label_file=args.label_file, device=device, precision=args.precision,
            checkpoint=args.checkpoint, overlap=args.overlap, batch_size=args.batch_size, nms=args.nms,
            nms_window=args.nms_window, threshold=args.threshold, tolerances=args.tolerances, shard=shard,
            progress_for=progress_for, on_video=on_video,
        )
    finally:
        for bar in bars:
            bar.close()
    if not out.merged:
        print(f"shard {shard}: predicted {len(out.videos)} videos; {out.parts_done}/{out.parts_total} "
              "shards done, the last one merges and evaluates")
        return 0
    post = out.postprocess
    for line in post.describe():
        print(line)
    for name, path in out.files.items():
        print(f"wrote {name}: {path}")
    if out.result is None:
        print(f"split '{args.split}' has no ground-truth events: nothing to score")
        return 0
    nms = "no NMS" if post.nms == "none" else f"{post.nms} NMS window {post.nms_window}"
    print(f"\n{args.split}: AP (%) of the ranked list ({nms}, every score >= 0.01)")
    if post.nms in ("hard", "none"):
        window = f" --nms-window {post.nms_window}" if post.nms == "hard" else ""
        print(f"  (= e2espot evaluate LABELS {out.files['recall']} --split {args.split}{window})")
    print(format_map(out.result))
    if args.classes_drop_rarest is not None:
        from e2espot.eval.report import format_subset
        from e2espot.eval.subsets import drop_rarest

        print(format_subset(drop_rarest(out.result, out.truth, args.classes_drop_rarest), out.result.mean))
    rr = out.recall_result
    print("high-recall list, no NMS: " + ", ".join(f"mAP@{d} {100 * rr.map_by_tolerance[d]:.2f}"
                                                   for d in rr.tolerances))
    print(f"\n{out.files['events'].name}, at the thresholds above (%):")
    print(format_prf(out.prf, threshold=post.threshold if not post.thresholds else 0.0,
                     tolerance=out.prf_tolerance).split("\n", 1)[1])
    print(f"(matched within {out.prf_tolerance} frame{'' if out.prf_tolerance == 1 else 's'}"
          + (", the tolerance the thresholds were chosen at)" if post.thresholds else ")"))
    if "soccernet" in out.files:
        _print_soccernet(out, args)
    if out.team_result is not None:
        from e2espot.eval.team import format_team_map

        print("\nTeam-mAP@1 of the ranked list (the run's NMS, every score >= 0.01; the official Team-BAS "
              "arithmetic, as e2espot evaluate ... --metric team):")
        print(format_team_map(out.team_result))
        acc = out.team_accuracy
        print(f"team accuracy on spotted events (±{acc.tolerance} frames): {100 * acc.accuracy:.1f}% "
              f"({acc.correct}/{acc.total} matched events with a left/right team)")
    elif out.team_note:
        print(f"\nTeam-mAP@1: {out.team_note}")
    return 0


def _is_classifier(save_dir: Path) -> bool:
    from e2espot.config import RunConfig

    path = Path(save_dir) / "config.json"
    return path.is_file() and RunConfig.load(path).task == "classify"


def _test_classifier(args: argparse.Namespace, device) -> int:
    """``test`` on a clip classifier: accuracy, per-class AP and the confusion matrix of the split's tiled
    clips, printed and written to SAVE_DIR/classify-SPLIT.json."""
    from e2espot.eval.classify import format_clip_metrics
    from e2espot.train.classify import evaluate_classifier

    metrics, path = evaluate_classifier(
        args.save_dir, args.split, videos_root=args.videos, labels=args.labels, fmt=args.format,
        splits=args.splits, label_file=args.label_file, device=str(device), precision=args.precision,
        checkpoint=args.checkpoint, batch_size=args.batch_size,
    )
    print(f"{args.split}: clip classification (tiled clips of the run's clip length)")
    print(format_clip_metrics(metrics))
    print(f"wrote {path}")
    return 0


def _print_soccernet(out, args: argparse.Namespace) -> None:
    """The official SoccerNet average-mAP of results-SPLIT (the ranked list): ball files → at1 at 25 fps,
    v2 → tight at 2 fps."""
    from e2espot.config import RunConfig
    from e2espot.eval.report import format_soccernet
    from e2espot.eval.soccernet import default_metric, soccernet_map

    cfg = RunConfig.load(Path(args.save_dir) / "config.json")
    label_file = args.label_file or cfg.dataset.get("label_file") or DEFAULT_SOCCERNET_LABEL_FILE
    framerate, metric = default_metric(label_file)
    result = soccernet_map(out.truth, out.ranked, list(cfg.classes), framerate=framerate, metric=metric)
    print(f"\nofficial SoccerNet average-mAP, {metric} at {framerate} fps (same as "
          f"e2espot evaluate ... --metric soccernet --framerate {framerate} --soccernet-metric {metric}):")
    print(format_soccernet(result))
    if args.classes_drop_rarest is not None:
        from e2espot.eval.report import format_subset
        from e2espot.eval.subsets import drop_rarest

        print(format_subset(drop_rarest(result, out.truth, args.classes_drop_rarest), result["a_mAP"]))

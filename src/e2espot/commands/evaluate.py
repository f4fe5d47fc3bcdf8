"""Score predictions against ground truth with the E2E-Spot mAP@δ (frames), the official SoccerNet
average-mAP, or Team-mAP@1 (SoccerNet Team Ball Action Spotting, as the official sn-teamspotting evaluator).

LABELS: an E2E-Spot label folder (class.txt + <split>.json), a split JSON, a SoccerNet label tree, or any
format `e2espot convert` reads. PREDS: our prediction JSON, spot's pred-*.recall.json.gz, or a folder or zip
of SoccerNet results_spotting.json files.

Examples:
  e2espot evaluate data/tennis runs/t1/pred-test.recall.json.gz --split test --nms-window 1
  e2espot evaluate SoccerNet/ preds.zip --metric soccernet --soccernet-metric tight
  e2espot evaluate SoccerNet/ preds/ --metric soccernet --framerate 25 --soccernet-metric at1 \\
      --classes PASS DRIVE HEADER "HIGH PASS" OUT CROSS "THROW IN" SHOT "BALL PLAYER BLOCK" \\
      "PLAYER SUCCESSFUL TACKLE" "FREE KICK" GOAL
  e2espot evaluate SN-BAS-2025/ results/ --metric team --split test        # Team-mAP@1 + no-team mAP@1
  e2espot evaluate data/synth runs/s1/pred-test.json --metric team --classes PASS RECEIVE SHOT OUT GOAL

--metric team reads Labels-ball.json / results_spotting.json trees (folders or zips) with the official
field rules (every listed game needs a results file; every event needs team left/right); other label
formats are scored the same way after reading (events need a team and the videos an fps).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("labels", metavar="LABELS", help="ground-truth labels (file or folder)")
    parser.add_argument("preds", metavar="PREDS", help="predictions (file, folder or zip)")
    parser.add_argument("--metric", choices=["e2e", "soccernet", "team"], default=None,
                        help="e2e: E2E-Spot mAP at frame tolerances; soccernet: official average-mAP; "
                             "team: Team-mAP@1 and the no-team mAP@1 of Team-BAS "
                             "(default: soccernet for SoccerNet labels, else e2e)")
    parser.add_argument("--missing-team", choices=["raise", "ignore"], default="raise",
                        help="team: events without a left/right team stop the evaluation, as in the official "
                             "code (raise, default), or are left out of the team metric and kept in the "
                             "no-team mAP (ignore)")
    parser.add_argument("--tolerances", type=int, nargs="+", default=[0, 1, 2, 4], metavar="FRAMES",
                        help="e2e tolerances in frames (default: 0 1 2 4)")
    parser.add_argument("--nms-window", type=int, default=None, metavar="W",
                        help="apply greedy hard NMS with a window of ±W frames to the predictions first")
    parser.add_argument("--split", default=None,
                        help="split of an E2E-Spot label folder (default: test); for SoccerNet labels, "
                             "evaluate only the games of this split (see --splits)")
    parser.add_argument("--splits", type=Path, default=None,
                        help="SoccerNet: JSON mapping split names to game folders (default LABELS/splits.json)")
    parser.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                        help="evaluate only these classes (soccernet: the class list, in this order; "
                             "other labels are dropped from both sides)")
    parser.add_argument("--framerate", type=float, default=2,
                        help="soccernet grid framerate (2 for SoccerNet-v2, 25 for ball; default 2)")
    parser.add_argument("--soccernet-metric", default="tight", metavar="tight|loose|atN",
                        help="soccernet δ set: tight (1..5 s), loose (5..60 s) or atN (default tight)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="keep only predictions with score >= T; e2e also prints precision / recall / "
                             "F1 and a confusion summary at T (at the largest tolerance)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the results as JSON")


def _filter(labels: Any, classes: list[str] | None, min_score: float | None) -> Any:
    from e2espot.data.labels import LabelSet, VideoLabels

    if classes is None and min_score is None:
        return labels
    keep = None if classes is None else set(classes)
    videos = []
    for v in labels.videos:
        events = [e for e in v.events
                  if (keep is None or e.label in keep)
                  and (min_score is None or (e.score is not None and e.score >= min_score))]
        videos.append(VideoLabels(v.video, v.fps, v.num_frames, events, v.width, v.height, dict(v.extra)))
    return LabelSet(list(labels.classes if classes is None else classes), videos)


def _soccernet_classes(truth: Any, pred: Any) -> list[str]:
    """The official class list when every label fits one (so classes without GT still count as 0)."""
    from e2espot.eval.soccernet import BALL_CLASSES, SOCCERNET_V2_CLASSES

    used = set(truth.classes) | {e.label for v in truth for e in v.events} | {e.label for v in pred for e in v.events}
    for official in (SOCCERNET_V2_CLASSES, BALL_CLASSES):
        if used <= set(official):
            return list(official)
    return list(truth.classes)


def run(args: argparse.Namespace) -> int:
    from e2espot.data.formats import detect_format, read_labels
    from e2espot.errors import ConfigError
    from e2espot.eval import report
    from e2espot.eval.metrics import confusion_summary, e2e_map, precision_recall_f1
    from e2espot.eval.soccernet import soccernet_map
    from e2espot.infer.postprocess import nms_events

    labels_fmt = detect_format(args.labels)
    if args.metric == "team" and args.threshold is None and args.nms_window is None:
        files = _run_team_files(args, labels_fmt)
        if files is not None:
            return files
    opts: dict[str, Any] = {}
    if labels_fmt == "spot" and Path(args.labels).is_dir():
        opts["split"] = args.split or "test"
    elif args.split is not None and labels_fmt != "soccernet":
        raise ConfigError(f"--split applies to an E2E-Spot label folder or a SoccerNet tree; {args.labels} is "
                          f"'{labels_fmt}'")
    if labels_fmt == "soccernet":
        opts["probe_videos"] = False
    truth = read_labels(args.labels, labels_fmt, **opts)
    if labels_fmt == "soccernet" and args.split is not None:
        from e2espot.data.labels import LabelSet
        from e2espot.data.sources import soccernet_games

        games = set(soccernet_games(Path(args.labels), args.split, args.splits))
        truth = LabelSet(truth.classes, [v for v in truth if v.extra.get("game", v.video) in games])
    pred = read_labels(args.preds)
    metric = args.metric or ("soccernet" if labels_fmt == "soccernet" else "e2e")

    if args.classes:
        unknown = sorted(set(args.classes) - set(truth.classes) - {e.label for v in truth for e in v.events})
        if unknown:
            raise ConfigError(f"--classes {unknown} are not in the labels; classes: {', '.join(truth.classes)}")
    truth = _filter(truth, args.classes, None)
    pred = _filter(pred, args.classes, args.threshold)
    if args.nms_window is not None:
        pred = nms_events(pred, window=args.nms_window, nms="hard")

    out: dict[str, Any]
    if metric == "e2e":
        result = e2e_map(truth, pred, tolerances=args.tolerances, classes=args.classes)
        print(report.format_map(result))
        out = report.to_json(result)
        if args.threshold is not None:
            tol = max(result.tolerances)
            prf = precision_recall_f1(truth, pred, threshold=args.threshold, tolerance=tol, classes=result.classes)
            conf = confusion_summary(truth, pred, threshold=args.threshold, tolerance=tol, classes=result.classes)
            print()
            print(report.format_prf(prf, threshold=args.threshold, tolerance=tol))
            print()
            print(report.format_confusion(conf))
            out["at_threshold"] = {
                "threshold": args.threshold,
                "tolerance": tol,
                "per_class": {c: {"precision": r.precision, "recall": r.recall, "f1": r.f1, "tp": r.tp,
                                  "num_pred": r.num_pred, "num_gt": r.num_gt} for c, r in prf.items()},
                "confusion": {c: vars(r) for c, r in conf.items()},
            }
    elif metric == "team":
        from e2espot.eval.team import format_team_map, team_map

        result_team = team_map(truth, pred, actions=args.classes or _soccernet_classes(truth, pred),
                               missing_team=args.missing_team)
        print(format_team_map(result_team))
        out = result_team.to_json()
    else:
        classes = args.classes or _soccernet_classes(truth, pred)
        result_sn = soccernet_map(truth, pred, classes, framerate=args.framerate, metric=args.soccernet_metric)
        print(report.format_soccernet(result_sn))
        out = report.to_json(result_sn)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return 0


def _run_team_files(args: argparse.Namespace, labels_fmt: str) -> int | None:
    """Team-mAP@1 straight from Labels-ball.json / results_spotting.json trees (the official reader's
    rules); None when the inputs are other formats (scored after reading them instead)."""
    from e2espot.data.formats import detect_format
    from e2espot.eval.soccernet import BALL_CLASSES
    from e2espot.eval.team import LABEL_FILE, evaluate_team_files, format_team_map

    labels = Path(args.labels)
    is_tree = labels.is_dir() or labels.suffix == ".zip"
    if labels_fmt != "soccernet" or not is_tree or detect_format(args.preds) != "soccernet-results":
        return None
    games = None
    if args.split is not None:
        from e2espot.data.sources import soccernet_games

        games = soccernet_games(labels, args.split, args.splits)
    result = evaluate_team_files(labels, args.preds, games, actions=args.classes or BALL_CLASSES,
                                 label_file=LABEL_FILE, missing_team=args.missing_team)
    print(format_team_map(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_json(), indent=2))
    return 0

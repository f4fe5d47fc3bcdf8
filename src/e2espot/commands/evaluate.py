"""Score predictions against ground truth with the E2E-Spot mAP@δ (frames), the official SoccerNet
average-mAP, or Team-mAP@1 (SoccerNet Team Ball Action Spotting, as the official sn-teamspotting evaluator).

LABELS: an E2E-Spot label folder (class.txt + <split>.json, e.g. the folder `e2espot synth` writes), a split
JSON, a SoccerNet label tree, or any format `e2espot convert` reads. PREDS: our prediction JSON, spot's
pred-*.recall.json.gz, a folder of per-video `e2espot predict` outputs (<video>.recall.json, else <video>.json),
or a folder or zip of SoccerNet results_spotting.json files.

SoccerNet defaults come from the label files, as in `e2espot test`: Labels-ball.json -> at1 at 25 fps,
Labels-v2.json -> tight at 2 fps. Predictions at another fps than the labels are re-timed to the labels' fps.

Examples:
  e2espot evaluate data/tennis runs/t1/pred-test.recall.json.gz --split test --nms-window 1
  e2espot evaluate SoccerNet/ preds.zip --metric soccernet --soccernet-metric tight
  e2espot evaluate SoccerNet/ preds/ --metric soccernet --framerate 25 --soccernet-metric at1 \\
      --classes PASS DRIVE HEADER "HIGH PASS" OUT CROSS "THROW IN" SHOT "BALL PLAYER BLOCK" \\
      "PLAYER SUCCESSFUL TACKLE" "FREE KICK" GOAL
  e2espot evaluate SN-BAS-2025/ results/ --metric team --split test        # Team-mAP@1 + no-team mAP@1
  e2espot evaluate data/synth runs/s1/pred-test.json --labels-format spot --metric team \\
      --classes PASS RECEIVE SHOT OUT GOAL

--metric team reads Labels-ball.json / results_spotting.json trees (folders or zips) with the official
field rules (every listed game needs a results file; every event needs team left/right); other label
formats are scored the same way after reading (events need a team and the videos an fps).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from e2espot.constants import DEFAULT_TOLERANCES

# evaluate --json keeps the official evaluators' numbers as they return them (SoccerNet devkit, Team-BAS,
# E2E-Spot: fractions); the printed tables, run metrics and charts are in percent
UNITS_NOTE = "fraction (0..1), as the official evaluators return it; printed tables show percent"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from e2espot.data.formats import list_formats

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("labels", metavar="LABELS", help="ground-truth labels (file or folder)")
    parser.add_argument("preds", metavar="PREDS", help="predictions (file, folder or zip)")
    parser.add_argument("--labels-format", choices=list_formats(), default=None,
                        help="format of LABELS (default: detected)")
    parser.add_argument("--preds-format", choices=list_formats(), default=None,
                        help="format of PREDS (default: detected; a folder of per-video prediction files is "
                             "read as such)")
    from e2espot.eval.registry import METRICS, metric_help

    parser.add_argument("--metric", choices=METRICS.names(), default=None,
                        help=f"{metric_help()} (default: soccernet for SoccerNet labels, else e2e)")
    parser.add_argument("--missing-team", choices=["raise", "ignore"], default="raise",
                        help="team: events without a left/right team stop the evaluation, as in the official "
                             "code (raise, default), or are left out of the team metric and kept in the "
                             "no-team mAP (ignore)")
    parser.add_argument("--tolerances", type=int, nargs="+", default=list(DEFAULT_TOLERANCES),
                        metavar="FRAMES",
                        help=f"e2e tolerances in frames (default: {' '.join(map(str, DEFAULT_TOLERANCES))})")
    parser.add_argument("--nms-window", type=int, default=None, metavar="W",
                        help="jhong93/spot's eval NMS first: drop an event only when another event of its class "
                             "within ±W frames scores strictly higher (ties survive). Default: no NMS")
    parser.add_argument("--greedy-nms-window", type=int, default=None, metavar="W",
                        help="greedy hard NMS first (T-DEED's; what predict applies): keep the best, drop ±W frames "
                             "around it, repeat. Default: no NMS")
    parser.add_argument("--split", default=None,
                        help="split of an E2E-Spot label folder (default: test; 'valid' = 'val'); for SoccerNet "
                             "labels, evaluate only the games of this split (see --splits). Predictions of "
                             "other videos/games are left out")
    parser.add_argument("--splits", type=Path, default=None,
                        help="SoccerNet: JSON mapping split names to game folders, or a folder of T-DEED split "
                             "lists <split>.json (default LABELS/splits.json)")
    parser.add_argument("--label-file", default=None, metavar="NAME",
                        help="SoccerNet label file name when LABELS holds several kinds, e.g. Labels-ball.json")
    parser.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                        help="evaluate only these classes (soccernet: the class list, in this order; a class "
                             "without ground truth counts with AP 0 as in the official mean; e2e: it is skipped)")
    parser.add_argument("--framerate", type=float, default=None,
                        help="soccernet grid framerate (default from the label files: 25 for Labels-ball.json, "
                             "else 2)")
    parser.add_argument("--soccernet-metric", default=None, metavar="tight|loose|atN",
                        help="soccernet δ set: tight (1..5 s), loose (5..60 s) or atN (default from the label "
                             "files: at1 for Labels-ball.json, else tight)")
    parser.add_argument("--fps", type=float, default=None,
                        help="e2e: frame rate of the side (labels or predictions) whose files carry none, so "
                             "frames can be compared (default: an error when only one side has an fps)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="keep only predictions with score >= T; e2e also prints precision / recall / "
                             "F1 and a confusion summary at T (at the largest tolerance)")
    parser.add_argument("--strict", action=argparse.BooleanOptionalAction, default=False,
                        help="events at or after a video's last frame are an error instead of being moved "
                             "to the last frame with a warning (default: off)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the results as JSON")
    parser.add_argument("--classes-drop-rarest", type=int, default=None, metavar="N",
                        help="also report the mAP without the N classes with the fewest ground-truth events "
                             "(the ball-action studies' mAP_10 is N=2)")


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


def read_predictions(path: Path, fmt: str | None, *, strict: bool = False,
                     fps: float | None = None) -> tuple[Any, str]:
    """Predictions from a file, a zip, a folder in a known format, or a folder of per-video prediction files.

    Per-video files are what ``e2espot predict`` writes: ``<video>.recall.json`` (every (frame, class)
    >= 0.01, what mAP is computed on, as ``test``) when present, else ``<video>.json``. ``fps`` fills an
    unknown fps of spot/futsal/CSV files (CSV: turns ``time_s`` into frames). Returns the predictions
    and a line saying what was read.
    """

    def read(p: Path, name: str) -> Any:
        extra = {"fps": fps} if fps is not None and name in ("spot", "futsal", "csv") else {}
        return read_labels(p, name, strict=strict, **extra)

    from e2espot.data.formats import detect_format, read_labels
    from e2espot.data.labels import LabelSet
    from e2espot.errors import LabelFormatError

    if fmt is not None:
        return read(path, fmt), f"{path} ({fmt})"
    try:
        fmt = detect_format(path, option="--preds-format")
    except LabelFormatError as exc:
        if not path.is_dir() or "ambiguous" in str(exc):
            raise
    if fmt is not None:
        return read(path, fmt), f"{path} ({fmt})"
    files = sorted(path.glob("*.recall.json")) + sorted(path.glob("*.recall.json.gz"))
    kind = "high-recall lists, no NMS"
    if not files:
        files = sorted(f for f in path.glob("*.json") if not f.name.endswith(".recall.json"))
        kind = "event files"
    if not files:
        raise LabelFormatError(
            f"{path}: no prediction files: expected <video>.recall.json or <video>.json (as `e2espot predict` "
            "writes), SoccerNet results_spotting.json files, or an E2E-Spot pred-<split>.json; or name the "
            "format with --preds-format"
        )
    classes: list[str] = []
    videos = []
    seen: dict[str, Path] = {}
    for file in files:
        part = read(file, "spot")
        classes += [c for c in part.classes if c not in classes]
        for v in part.videos:
            if v.video in seen:
                raise LabelFormatError(f"{path}: video '{v.video}' is in two prediction files "
                                       f"({seen[v.video].name}, {file.name}); keep one")
            seen[v.video] = file
        videos += part.videos
    return LabelSet(classes, videos), f"{len(files)} per-video prediction files in {path} ({kind})"


def _retime(truth: Any, pred: Any, fps: float | None) -> tuple[Any, list[str]]:
    """Bring prediction frames to the labels' fps (by time); error when only one side knows its fps."""
    from e2espot.data import timebase
    from e2espot.data.labels import LabelSet
    from e2espot.errors import ConfigError

    truth_fps = {v.video: v.fps for v in truth.videos}
    notes: list[str] = []
    videos = []
    for v in pred.videos:
        if v.video not in truth_fps:
            videos.append(v)
            continue
        t_fps, p_fps = truth_fps[v.video] or fps, v.fps or fps
        if (t_fps is None) != (p_fps is None):
            side = "labels" if t_fps is None else "predictions"
            raise ConfigError(
                f"video '{v.video}': the predictions are at {p_fps} fps and the labels at {t_fps} fps; the {side} "
                "carry no fps, so frame numbers cannot be compared safely. Pass --fps F (the frame rate of the side "
                "without one)"
            )
        if t_fps is None or p_fps is None or t_fps == p_fps:
            videos.append(v)
            continue
        out = v.copy()
        for e in out.events:
            pos = e.extra.get("position_ms")
            e.frame = (timebase.position_ms_to_frame(pos, t_fps) if isinstance(pos, int)
                       else timebase.resample_frame(e.frame, p_fps, t_fps))
        out.fps = t_fps
        videos.append(out)
        notes.append(f"{v.video}: {p_fps:g} -> {t_fps:g} fps")
    return LabelSet(list(pred.classes), videos), notes


def _keep_split(pred: Any, truth: Any, soccernet: bool) -> tuple[Any, int]:
    """Predictions of the videos (SoccerNet: games) of the evaluated split only; returns (kept, dropped)."""
    from e2espot.data.labels import LabelSet
    from e2espot.data.splits import group_key

    if soccernet:
        wanted = {group_key(v) for v in truth.videos}
        keep = [v for v in pred.videos if group_key(v) in wanted]
    else:
        wanted = {v.video for v in truth.videos}
        keep = [v for v in pred.videos if v.video in wanted]
    return LabelSet(list(pred.classes), keep), len(pred.videos) - len(keep)


def run(args: argparse.Namespace) -> int:
    from e2espot.data.formats import detect_format, read_labels
    from e2espot.errors import ConfigError
    from e2espot.eval import report
    from e2espot.eval.metrics import confusion_summary, e2e_map, greedy_nms, precision_recall_f1, spot_nms
    from e2espot.eval.soccernet import default_metric, soccernet_map

    labels_fmt = args.labels_format or detect_format(args.labels, option="--labels-format")
    if args.metric == "team" and args.classes_drop_rarest is not None:
        raise ConfigError("--classes-drop-rarest applies to --metric e2e and soccernet, not to the Team-mAP")
    if args.metric == "team" and args.threshold is None and args.nms_window is None:
        files = _run_team_files(args, labels_fmt)
        if files is not None:
            return files
    opts: dict[str, Any] = {"strict": args.strict}
    if labels_fmt == "spot" and Path(args.labels).is_dir():
        opts["split"] = args.split or "test"
    elif args.split is not None and labels_fmt != "soccernet":
        raise ConfigError(f"--split applies to an E2E-Spot label folder or a SoccerNet tree; {args.labels} is "
                          f"'{labels_fmt}'")
    if labels_fmt == "soccernet":
        opts["probe_videos"] = False
        if args.label_file:
            opts["label_file"] = args.label_file
    elif args.fps is not None:
        opts["fps"] = args.fps  # fills an unknown fps (spot, futsal) or turns CSV time_s into frames
    truth = read_labels(args.labels, labels_fmt, **opts)
    if labels_fmt == "soccernet" and args.split is not None:
        from e2espot.data.labels import LabelSet
        from e2espot.data.sources import soccernet_games

        games = set(soccernet_games(Path(args.labels), args.split, args.splits))
        truth = LabelSet(truth.classes, [v for v in truth if v.extra.get("game", v.video) in games])
    pred, pred_note = read_predictions(Path(args.preds), args.preds_format, strict=args.strict, fps=args.fps)
    print(f"predictions: {pred_note}")
    split = args.split or opts.get("split")  # a label folder is read one split at a time (default test)
    if split is not None:
        pred, dropped = _keep_split(pred, truth, labels_fmt == "soccernet")
        if dropped:
            unit = "game halves/videos" if labels_fmt == "soccernet" else "videos"
            print(f"--split {split}: left out predictions of {dropped} {unit} outside the split")
    metric = args.metric or ("soccernet" if labels_fmt == "soccernet" else "e2e")

    if args.nms_window is not None and args.greedy_nms_window is not None:
        raise ConfigError("pass --nms-window (spot's rule) or --greedy-nms-window, not both")
    truth_labels = set(truth.classes) | {e.label for v in truth for e in v.events}
    e2e_classes = args.classes
    if args.classes:
        absent = [c for c in args.classes if c not in {e.label for v in truth for e in v.events}]
        if absent:
            what = ("count with AP 0 in the mean, as the official evaluator" if metric == "soccernet"
                    else "are skipped, as jhong93/spot scores only classes with ground truth")
            unknown = [c for c in absent if c not in truth_labels]
            print(f"--classes: {', '.join(absent)} have no ground-truth events here and {what}"
                  + (f" (not in the label class list: {', '.join(unknown)})" if unknown else ""))
            if metric == "e2e":
                e2e_classes = [c for c in args.classes if c not in absent]
                if not e2e_classes:
                    raise ConfigError(f"--classes {args.classes}: none has ground-truth events; classes with "
                                      f"events: {', '.join(sorted(truth_labels))}")
    truth = _filter(truth, args.classes, None)
    pred = _filter(pred, args.classes, args.threshold)
    if args.nms_window is not None:
        pred = spot_nms(pred, args.nms_window)
    elif args.greedy_nms_window is not None:
        pred = greedy_nms(pred, args.greedy_nms_window)

    out: dict[str, Any]
    if metric == "e2e":
        pred, retimed = _retime(truth, pred, args.fps)
        if retimed:
            print(f"re-timed the predictions of {len(retimed)} video(s) to the labels' fps by time: "
                  + "; ".join(retimed[:3]) + (" ..." if len(retimed) > 3 else ""))
        result = e2e_map(truth, pred, tolerances=args.tolerances, classes=e2e_classes)
        print(report.format_map(result))
        out = report.to_json(result)
        _print_subset(result, truth, args, out, result.mean)
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
        label_file = next((v.extra["label_file"] for v in truth.videos if "label_file" in v.extra), None)
        framerate, sn_metric = default_metric(label_file)
        if args.framerate is None or args.soccernet_metric is None:
            print(f"SoccerNet metric: {args.soccernet_metric or sn_metric} at {args.framerate or framerate:g} fps "
                  f"(defaults from {label_file or 'the labels'}; --soccernet-metric / --framerate change them)")
        framerate = args.framerate if args.framerate is not None else framerate
        sn_metric = args.soccernet_metric or sn_metric
        classes = args.classes or _soccernet_classes(truth, pred)
        result_sn = soccernet_map(truth, pred, classes, framerate=framerate, metric=sn_metric)
        print(report.format_soccernet(result_sn))
        out = report.to_json(result_sn)
        _print_subset(result_sn, truth, args, out, result_sn["a_mAP"])
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out.setdefault("units", UNITS_NOTE)
        args.json.write_text(json.dumps(out, indent=2))
    return 0


def _run_team_files(args: argparse.Namespace, labels_fmt: str) -> int | None:
    """Team-mAP@1 straight from Labels-ball.json / results_spotting.json trees (the official reader's
    rules); None when the inputs are other formats (scored after reading them instead)."""
    from e2espot.data.formats import detect_format
    from e2espot.errors import LabelFormatError
    from e2espot.eval.soccernet import BALL_CLASSES
    from e2espot.eval.team import LABEL_FILE, evaluate_team_files, format_team_map

    labels = Path(args.labels)
    is_tree = labels.is_dir() or labels.suffix == ".zip"
    if labels_fmt != "soccernet" or not is_tree:
        return None
    try:
        preds_fmt = args.preds_format or detect_format(args.preds, option="--preds-format")
    except LabelFormatError:  # e.g. a folder of per-video prediction files: read below instead
        return None
    if preds_fmt != "soccernet-results":
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
        args.json.write_text(json.dumps({**result.to_json(), "units": UNITS_NOTE}, indent=2))
    return 0


def _print_subset(result: Any, truth: Any, args: argparse.Namespace, out: dict[str, Any], full_map: float) -> None:
    """--classes-drop-rarest N: print the subset mAP under the table and add it to the JSON."""
    if args.classes_drop_rarest is None:
        return
    from e2espot.eval.report import format_subset
    from e2espot.eval.subsets import drop_rarest

    score = drop_rarest(result, truth, args.classes_drop_rarest)
    print(format_subset(score, full_map))
    out["drop_rarest"] = score.to_json()

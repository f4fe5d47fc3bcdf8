"""Export predicted events: a CSV table, a SoccerNet results_spotting.json, chapters (WebVTT for
<track kind=chapters>, or an ffmetadata file for `ffmpeg -map_chapters`), or a highlight reel .mp4
(cuts around chosen events, overlapping cuts merged, a title card before each).

Chapters and highlights are for people: they keep the events at or above the per-class thresholds of the
run that predicted them (``--run``, or the run directory the events file lies in), as ``predict`` does,
and print the thresholds applied and where they come from; ``--min-score`` sets one floor instead."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("events", type=Path, help="prediction JSON ([{video, fps, num_frames, events}])")
    from e2espot.export.targets import EXPORT_TARGETS, target_help

    parser.add_argument("--to", required=True, choices=EXPORT_TARGETS.names(), help=f"what to write: {target_help()}")
    parser.add_argument("-o", "--out", type=Path, required=True,
                        help="output file (chapters: .vtt gives WebVTT, anything else ffmetadata)")
    parser.add_argument("--classes", nargs="+", metavar="CLASS", help="only these classes (default all)")
    parser.add_argument("--min-score", type=float, default=None,
                        help="drop events scored below this, for every class (default: csv and soccernet keep "
                             "every event; chapters and highlights apply the run's per-class thresholds, from "
                             "--run or the run directory the events file lies in, else keep every event; the "
                             "thresholds applied and their source are printed)")
    parser.add_argument("--run", type=Path, metavar="RUN_DIR",
                        help="chapters, highlights: the run that predicted the events; its per-class thresholds "
                             "(chosen on validation, as predict applies them) are the default floor")
    parser.add_argument("--pad-s", type=float, default=3.0,
                        help="highlights: seconds kept before and after each event (default 3)")
    parser.add_argument("--title-s", type=float, default=1.0,
                        help="highlights: seconds of title card before each cut (default 1)")
    parser.add_argument("--audio", action=argparse.BooleanOptionalAction, default=True,
                        help="highlights: keep the audio (default on)")
    parser.add_argument("--video", type=Path, help="highlights: the source video (required)")
    parser.add_argument("--half", type=int, choices=[1, 2],
                        help="soccernet: half of the video when the file does not say (default 1)")
    parser.add_argument("--game", help="soccernet: UrlLocal game id (default: from the file)")


def run(args: argparse.Namespace) -> int:
    import logging

    from e2espot.errors import ConfigError
    from e2espot.export import writers
    from e2espot.export.highlights import ExportThresholds, export_thresholds, select_events

    log = logging.getLogger("e2espot")
    labels = writers.read_predictions(args.events)
    if args.to in ("chapters", "highlights"):  # events for people: the run's thresholds by default
        floor = export_thresholds(args.events, run=args.run, min_score=args.min_score)
        print(floor.describe())
    else:
        if args.run is not None:
            raise ConfigError(f"--run applies to --to chapters and highlights; --to {args.to} keeps every event "
                              "(pass --min-score S for a floor)")
        floor = ExportThresholds(None, args.min_score or 0.0, "--min-score")
    for v in labels.videos:
        v.events = select_events(v.events, classes=args.classes, min_score=floor.min_score,
                                 thresholds=floor.thresholds)
    if args.to == "csv":
        path = writers.write_csv(labels.videos, args.out)
    elif args.to == "soccernet":
        path = writers.write_soccernet_results(labels.videos, args.out, game=args.game, half=args.half)
    elif args.to == "chapters":
        video = writers.pick_video(labels, args.video, str(args.events))
        if args.out.suffix.lower() == ".vtt":
            path = writers.write_webvtt_chapters(video, args.out)
        else:
            path = writers.write_ffmetadata_chapters(video, args.out)
    else:
        if args.video is None:
            raise ConfigError("--to highlights needs --video (the source video to cut)")
        from tqdm import tqdm

        from e2espot.export.highlights import write_highlight_reel

        video = writers.pick_video(labels, args.video, str(args.events))
        with tqdm(total=100, desc="highlights", unit="%") as bar:
            reel = write_highlight_reel(args.video, video, args.out, pad_s=args.pad_s, title_s=args.title_s,
                                        audio=args.audio,
                                        progress=lambda stage, fr: bar.update(int(fr * 100) - bar.n))
        log.info("%d cuts, %d frames%s", len(reel.cuts), reel.num_frames, ", with audio" if reel.audio else "")
        path = reel.path
    log.info("wrote %s", path)
    return 0

"""Convert labels between formats (spot, futsal, soccernet, soccernet-results, csv), or split one label set.

Examples:
  e2espot convert data/tennis/val.json val.csv --to csv
  e2espot convert SoccerNet/ spot_labels/ --from soccernet --to spot --fps 25 --split 70/15/15 --seed 0
  e2espot convert SoccerNetBall/ preds.zip --to soccernet-results --label-file Labels-ball.json
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("src", metavar="SRC", help="label file or folder to read")
    parser.add_argument("dst", metavar="DST", help="file or folder to write (a folder with --split)")
    parser.add_argument("--from", dest="src_format", metavar="FMT", help="source format (default: detected)")
    parser.add_argument(
        "--to",
        dest="dst_format",
        metavar="FMT",
        required=True,
        help="target format: spot, futsal, soccernet, soccernet-results, csv",
    )
    parser.add_argument(
        "--fps",
        type=float,
        help="frame rate for formats that store ms or seconds "
        "(SoccerNet default 25; CSV time_s; fills unknown fps)",
    )
    parser.add_argument(
        "--classes",
        metavar="CLASS_TXT",
        help="class list (class.txt: one class per line); labels outside it are an error",
    )
    parser.add_argument(
        "--label-file", metavar="NAME", help="SoccerNet label file name, e.g. Labels-ball.json"
    )
    parser.add_argument(
        "--src-split",
        metavar="NAME",
        help="split to read from an E2E-Spot label folder (default: every split present)",
    )
    parser.add_argument(
        "--split",
        metavar="FRACTIONS",
        help="split the videos into train/val/test, e.g. 70/15/15 "
        "(SoccerNet halves of a game stay together); DST is then a folder",
    )
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed for --split (default 0)")


def _read_options(args: argparse.Namespace, fmt: str) -> dict:
    opts: dict = {}
    if args.classes:
        opts["classes"] = Path(args.classes)
    if args.fps is not None:
        opts["fps"] = args.fps
    if args.label_file and fmt == "soccernet":
        opts["label_file"] = args.label_file
    if args.src_split:
        opts["split"] = args.src_split
    return opts


def _write_options(args: argparse.Namespace, fmt: str) -> dict:
    opts: dict = {}
    if args.fps is not None and fmt in ("soccernet", "soccernet-results", "csv"):
        opts["fps"] = args.fps
    if args.label_file and fmt == "soccernet":
        opts["label_file"] = args.label_file
    return opts


def _split_target(dst: Path, fmt: str, name: str) -> tuple[Path, dict]:
    if fmt == "spot":
        return dst, {"split": name}
    if fmt == "csv":
        return dst / f"{name}.csv", {}
    return dst / name, {}


def run(args: argparse.Namespace) -> int:
    from e2espot.data.formats import detect_format, get_format, read_labels, write_labels
    from e2espot.data.splits import SPLIT_NAMES, parse_fractions, split_labels
    from e2espot.errors import ConfigError

    src_format = args.src_format or detect_format(args.src)
    get_format(src_format)
    get_format(args.dst_format)
    if args.label_file and "soccernet" not in (src_format, args.dst_format):
        raise ConfigError(
            f"--label-file applies to the soccernet format, not {src_format} -> {args.dst_format}"
        )
    labels = read_labels(args.src, src_format, **_read_options(args, src_format))
    dst = Path(args.dst)
    write_opts = _write_options(args, args.dst_format)
    written: list[Path] = []
    if args.split:
        fractions = parse_fractions(args.split)
        parts = split_labels(labels, fractions, seed=args.seed, names=SPLIT_NAMES[: len(fractions)])
        for name, part in parts.items():
            target, extra = _split_target(dst, args.dst_format, name)
            written += write_labels(part, target, args.dst_format, **write_opts, **extra)
        sizes = ", ".join(f"{name} {len(part)}" for name, part in parts.items())
        split_note = f" split {sizes};"
    else:
        written = write_labels(labels, dst, args.dst_format, **write_opts)
        split_note = ""
    written = list(dict.fromkeys(written))  # class.txt is shared by the splits
    num_events = sum(len(v.events) for v in labels.videos)
    print(
        f"{src_format} -> {args.dst_format}: {len(labels)} videos, {num_events} events, "
        f"{labels.num_classes} classes;{split_note} wrote {len(written)} files to {dst}"
    )
    return 0

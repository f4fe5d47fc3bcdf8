"""Convert labels between formats (spot, futsal, soccernet, soccernet-results, csv), or split one label set.

Examples:
  e2espot convert data/tennis/val.json val.csv --to csv
  e2espot convert SoccerNet/ spot_labels/ --from soccernet --to spot --fps 25 --split 70/15/15 --seed 0
  e2espot convert SoccerNetBall/ preds.zip --to soccernet-results --label-file Labels-ball.json
  e2espot convert SoccerNet/ spot_labels/ --to spot --videos SoccerNet/   # num_frames counted from the videos

A label folder's splits stay apart (train.json, val.json, ... or one file or folder per split). The output
is read back and compared with the input: what the target format cannot hold is listed ("not kept: ...").
Class order and classes without events are kept through a class.txt written beside the output.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from e2espot.data.formats import list_formats

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("src", metavar="SRC", help="label file or folder to read")
    parser.add_argument("dst", metavar="DST", help="file or folder to write (a folder with --split)")
    parser.add_argument("--from", dest="src_format", metavar="FMT", help="source format (default: detected)")
    parser.add_argument(
        "--to",
        dest="dst_format",
        metavar="FMT",
        required=True,
        help="target format: " + ", ".join(list_formats()),
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
        help="split to read from an E2E-Spot label folder (default: every split present, kept apart)",
    )
    parser.add_argument(
        "--split",
        metavar="FRACTIONS",
        help="split the videos into train/val/test, e.g. 70/15/15 "
        "(SoccerNet halves of a game stay together); DST is then a folder",
    )
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed for --split (default 0)")
    parser.add_argument(
        "--videos",
        metavar="DIR",
        help="folder holding the videos: num_frames (and unknown fps) of videos whose labels lack them "
        "are read from the video files (needed for --to spot from CSV or SoccerNet labels)",
    )
    parser.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="events at or after a video's last frame are an error instead of being moved to the last "
        "frame with a warning (default: off)",
    )


def _read_options(args: argparse.Namespace, fmt: str) -> dict:
    opts: dict = {"strict": args.strict}
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
    if fmt != "spot":
        opts["write_classes"] = True  # class order and classes without events survive the trip
    return opts


def _split_target(dst: Path, fmt: str, name: str) -> tuple[Path, dict]:
    if fmt == "spot":
        return dst, {"split": name}
    if fmt == "csv":
        return dst / f"{name}.csv", {}
    return dst / name, {}


def fill_num_frames(labels: Any, videos_root: Path, *, strict: bool = False) -> int:
    """Set missing ``num_frames`` (at the labels' fps) and unknown ``fps`` from the video files under
    ``videos_root`` (``find_video`` naming); events past a probed end move to the last frame with a
    warning (``strict``: an error). Returns how many videos got num_frames."""
    from e2espot.data import timebase
    from e2espot.data.formats._common import clamp_past_end
    from e2espot.data.video import find_video, probe_video
    from e2espot.errors import LabelFormatError

    probed = []
    for v in labels.videos:
        if v.num_frames is not None and v.fps is not None:
            continue
        info = probe_video(find_video(videos_root, v.video))
        if v.num_frames is None:
            v.num_frames = (info.num_frames if not v.fps or not info.fps or v.fps == info.fps
                            else timebase.num_frames_at(info.num_frames, info.fps, v.fps))
            probed.append(v)
        if v.fps is None:
            v.fps = info.fps
    for v in probed:
        late = [e for e in v.events if e.frame >= v.num_frames]
        if late and strict:
            raise LabelFormatError(
                f"video '{v.video}': event at frame {late[0].frame} >= num_frames {v.num_frames} of its video "
                f"under {videos_root} (frames are 0-based); check that labels and video belong together"
            )
    clamp_past_end(probed, [str(videos_root)] * len(probed))
    return len(probed)


def _require_num_frames(labels: Any) -> None:
    from e2espot.errors import LabelFormatError

    missing = [v.video for v in labels.videos if v.num_frames is None]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (f", ... ({len(missing) - 5} more)" if len(missing) > 5
                                                         else "")
        raise LabelFormatError(
            f"E2E-Spot split files need num_frames for every video; {len(missing)} of {len(labels)} have none "
            f"({shown}). Pass --videos DIR (the folder holding the videos) so convert counts their frames"
        )


def _parts(labels: Any) -> dict[str, Any] | None:
    """The splits a label folder was read from (``SPLIT_KEY``), in order; None when there is one or none."""
    from e2espot.data.labels import SPLIT_KEY, LabelSet

    names = list(dict.fromkeys(v.extra.get(SPLIT_KEY) for v in labels.videos))
    if len(names) < 2 or None in names:
        return None
    return {n: LabelSet(list(labels.classes), [v for v in labels.videos if v.extra[SPLIT_KEY] == n]) for n in names}


def _write_soccernet_splits(labels: Any, parts: dict[str, Any], dst: Path, fmt: str, opts: dict) -> list[Path]:
    """One SoccerNet tree with every game, plus ``splits.json`` (split -> games) as ``--splits`` reads it."""
    import json

    from e2espot.data.formats import write_labels
    from e2espot.data.labels import SPLIT_KEY
    from e2espot.data.splits import group_key

    for v in labels.videos:
        v.extra.pop(SPLIT_KEY, None)
    written = write_labels(labels, dst, fmt, **opts)
    mapping = {name: list(dict.fromkeys(group_key(v) for v in part.videos)) for name, part in parts.items()}
    (dst / "splits.json").write_text(json.dumps(mapping, indent=2))
    return [*written, dst / "splits.json"]


def not_kept(before: Any, after: Any, fmt: str) -> list[str]:
    """What ``after`` (the written output read back) lost or changed compared to ``before``."""
    from collections import Counter

    lost: list[str] = []
    b_ids, a_ids = [v.video for v in before.videos], [v.video for v in after.videos]
    if list(before.classes) != list(after.classes):
        lost.append(f"class list ({len(before.classes)} classes -> {len(after.classes)}: {', '.join(after.classes)})")
    gone, added = [i for i in b_ids if i not in set(a_ids)], [i for i in a_ids if i not in set(b_ids)]
    empty_gone = [i for i in gone if not before.get(i).events]
    if empty_gone:
        lost.append(f"{len(empty_gone)} video(s) without events ({fmt} has a row per event)")
    changed = [i for i in gone if i not in set(empty_gone)]
    if changed:
        lost.append(f"video ids ({len(changed)} changed, e.g. {changed[0]!r} -> "
                    f"{(added or ['?'])[0]!r}: {fmt} ids are folder paths league/season/game[/half])")
    elif added:
        why = ("a SoccerNet game of two halves always reads back with both" if fmt.startswith("soccernet")
               else "read back from the written files")
        lost.append(f"{len(added)} empty video(s) added, e.g. {added[0]!r} ({why})")
    after_by = after.by_video()
    pairs = [(v, after_by[v.video]) for v in before.videos if v.video in after_by]
    for field in ("fps", "num_frames", "width", "height"):
        n = sum(1 for b, a in pairs if getattr(b, field) is not None and (
            getattr(a, field) is None or float(getattr(a, field)) != float(getattr(b, field))))
        if n:
            lost.append(f"{field} of {n} video(s)")
    moved = sum(1 for b, a in pairs if sorted((e.frame, e.label) for e in b.events)
                != sorted((e.frame, e.label) for e in a.events))
    if moved:
        lost.append(f"event frames/labels in {moved} video(s)")
    for field in ("score", "team", "visibility", "comment"):
        n = 0
        for b, a in pairs:
            theirs = Counter((e.frame, e.label, getattr(e, field)) for e in a.events)
            for e in b.events:
                key = (e.frame, e.label, getattr(e, field))
                if getattr(e, field) is None:
                    continue
                if theirs[key] > 0:
                    theirs[key] -= 1
                else:
                    n += 1
        if n:
            lost.append(f"{field} of {n} event(s)")
    return lost


def run(args: argparse.Namespace) -> int:
    from e2espot.data.formats import detect_format, get_format, read_labels, write_labels
    from e2espot.data.labels import LabelSet
    from e2espot.data.splits import SPLIT_NAMES, parse_fractions, split_labels
    from e2espot.errors import ConfigError

    src_format = args.src_format or detect_format(args.src, option="--from")
    get_format(src_format)
    get_format(args.dst_format)
    if args.label_file and "soccernet" not in (src_format, args.dst_format):
        raise ConfigError(
            f"--label-file applies to the soccernet format, not {src_format} -> {args.dst_format}"
        )
    labels = read_labels(args.src, src_format, **_read_options(args, src_format))
    if args.videos:
        fill_num_frames(labels, Path(args.videos), strict=args.strict)
    if args.dst_format == "spot":
        _require_num_frames(labels)
    dst = Path(args.dst)
    write_opts = _write_options(args, args.dst_format)
    back_opts = {k: v for k, v in _read_options(args, args.dst_format).items() if k in ("fps",)}
    if args.dst_format == "soccernet":
        back_opts["probe_videos"] = False
    notes: list[str] = []
    parts = None
    if args.split:
        fractions = parse_fractions(args.split)
        parts = split_labels(labels, fractions, seed=args.seed, names=SPLIT_NAMES[: len(fractions)])
    elif (found := _parts(labels)) is not None:
        if dst.suffix in (".json", ".csv", ".zip", ".gz"):
            notes.append(f"the splits {', '.join(found)} are merged into one file (write to a folder to keep them "
                         "apart)")
        else:
            parts = found
    written: list[Path] = []
    lost: dict[str, None] = {}
    if parts is not None and args.dst_format in ("soccernet", "soccernet-results") and dst.suffix != ".zip":
        written += _write_soccernet_splits(labels, parts, dst, args.dst_format, write_opts)
        back = read_labels(dst, args.dst_format, **back_opts)
        lost.update(dict.fromkeys(not_kept(labels, back, args.dst_format)))
        split_note = " split " + ", ".join(f"{name} {len(part)}" for name, part in parts.items()) + ";"
    elif parts is not None:
        backs = []
        for name, part in parts.items():
            target, extra = _split_target(dst, args.dst_format, name)
            written += write_labels(part, target, args.dst_format, **write_opts, **extra)
            if part.videos:
                backs.append(read_labels(target, args.dst_format, **back_opts, **extra))
        if backs:
            whole = LabelSet(list(backs[0].classes), [v for b in backs for v in b.videos])
            lost.update(dict.fromkeys(not_kept(labels, whole, args.dst_format)))
        sizes = ", ".join(f"{name} {len(part)}" for name, part in parts.items())
        split_note = f" split {sizes};"
        empty = [name for name, part in parts.items() if not part.videos]
        if empty:
            notes.append(f"split(s) {', '.join(empty)} got no videos (too few videos or games for the fractions)")
    else:
        written = write_labels(labels, dst, args.dst_format, **write_opts)
        if dst.suffix not in (".csv", ".json", ".zip", ".gz") or dst.exists():
            back = read_labels(dst, args.dst_format, **back_opts)
            lost.update(dict.fromkeys(not_kept(labels, back, args.dst_format)))
        split_note = ""
    written = list(dict.fromkeys(written))  # class.txt is shared by the splits
    num_events = sum(len(v.events) for v in labels.videos)
    print(
        f"{src_format} -> {args.dst_format}: {len(labels)} videos, {num_events} events, "
        f"{labels.num_classes} classes;{split_note} wrote {len(written)} files to {dst}"
    )
    for note in notes:
        print(f"warning: {note}")
    print(f"not kept by {args.dst_format}: {'; '.join(lost)}" if lost else "everything read was kept")
    return 0

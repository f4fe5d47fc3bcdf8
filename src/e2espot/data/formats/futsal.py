"""Futsal JSON of the seed projects: one object per video::

    {"video": "match_01", "num_frames": 5400, "num_events": 2,
     "events": [{"frame": 120, "label": "pass", "team": "left"}, ...]}

Read: a ``.json`` file holding one such object or a list of them, or a folder of such files (``*.json``,
not recursive, sorted by name; a ``class.txt`` in the folder, or beside the file, gives the class order).
Detected by ``video`` + ``num_frames`` + ``events`` and no ``fps`` (teams are optional). Classes default to
the sorted labels used; option ``classes`` (list or class.txt path) overrides. The format carries no fps:
an ``fps`` key is honoured when present, else option ``fps`` (default None = unknown); the writer does
not write fps. Unknown keys are kept
in ``extra`` and written back; ``num_events`` is recomputed on write.

Write: a path ending in ``.json`` gets one file (an object for one video, a list for several); any other
path is a folder with one ``<video>.json`` per video (``/`` in ids becomes ``__``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2espot.data.formats._common import (
    ClassesOpt,
    LabelFormat,
    as_float,
    dump_json,
    expect_type,
    finish,
    load_json,
    require,
    resolve_classes,
    write_class_file,
)
from e2espot.data.labels import SPLIT_KEY, Event, LabelSet, VideoLabels, parse_team
from e2espot.errors import LabelFormatError

CLASS_FILE = "class.txt"
_VIDEO_KEYS = ("video", "num_frames", "num_events", "events", "fps", "width", "height")
_EVENT_KEYS = ("frame", "label", "team", "comment", "score", "visibility")


def _parse_video(raw: Any, where: str, fps: float | None) -> VideoLabels:
    expect_type(raw, dict, "a video object", where)
    video = expect_type(require(raw, "video", where), str, "video", where)
    where = f"{where} (video '{video}')"
    events_raw = expect_type(require(raw, "events", where), list, "events", where)
    events = []
    for i, e in enumerate(events_raw):
        ewhere = f"{where}, event #{i}"
        expect_type(e, dict, "an event", ewhere)
        label = expect_type(require(e, "label", ewhere), str, "label", ewhere)
        event = Event(frame=require(e, "frame", ewhere), label=label, team=parse_team(e.get("team"), ewhere))
        event.comment = e.get("comment")
        event.visibility = e.get("visibility")
        if e.get("score") is not None:
            event.score = as_float(e["score"], "score", ewhere)
        event.extra = {k: val for k, val in e.items() if k not in _EVENT_KEYS}
        events.append(event)
    file_fps = raw.get("fps")
    if file_fps is not None and (isinstance(file_fps, bool) or not isinstance(file_fps, (int, float))):
        raise LabelFormatError(f"{where}: fps {file_fps!r} is not a number")
    return VideoLabels(
        video=video,
        fps=fps if file_fps is None or file_fps <= 0 else file_fps,
        num_frames=require(raw, "num_frames", where),
        events=events,
        width=raw.get("width"),
        height=raw.get("height"),
        extra={k: val for k, val in raw.items() if k not in _VIDEO_KEYS},
    )


def read(
    path: str | Path, *, classes: ClassesOpt = None, fps: float | None = None, strict: bool = False
) -> LabelSet:
    """Read a futsal JSON file (object or list) or a folder of them."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            raise LabelFormatError(f"{path}: no *.json files in this folder")
        if classes is None and (path / CLASS_FILE).is_file():
            classes = path / CLASS_FILE
    else:
        files = [path]
        if classes is None and (path.parent / CLASS_FILE).is_file():
            classes = path.parent / CLASS_FILE  # written beside by write(write_classes=True)
    videos: list[VideoLabels] = []
    sources: list[str] = []
    for file in files:
        data = load_json(file)
        if isinstance(data, dict):
            items = [data]
        elif isinstance(data, list):
            items = data
        else:
            raise LabelFormatError(
                f"{file}: top level must be a video object or an array of them, got {type(data).__name__}"
            )
        for i, raw in enumerate(items):
            videos.append(
                _parse_video(raw, f"{file}: entry #{i}" if isinstance(data, list) else str(file), fps)
            )
            sources.append(str(file))
    return finish(resolve_classes(classes, videos), videos, sources, str(path), strict=strict)


def _video_dict(v: VideoLabels) -> dict[str, Any]:
    events = []
    for e in v.events:
        out: dict[str, Any] = {"frame": e.frame, "label": e.label}
        for key in ("team", "comment", "score", "visibility"):
            if getattr(e, key) is not None:
                out[key] = getattr(e, key)
        out.update(e.extra)
        events.append(out)
    out = {"video": v.video, "num_frames": v.num_frames, "num_events": len(events), "events": events}
    for key in ("width", "height"):
        if getattr(v, key) is not None:
            out[key] = getattr(v, key)
    out.update({k: val for k, val in v.extra.items() if k != SPLIT_KEY})
    return out


def write(
    labels: LabelSet, path: str | Path, *, indent: int | None = 2, write_classes: bool = False
) -> list[Path]:
    """One ``.json`` file, or a folder with one file per video; ``write_classes``: ``class.txt`` beside
    (the file's folder, or in the folder), which ``read`` picks up, so class order and empty classes survive."""
    path = Path(path)
    entries = [_video_dict(v) for v in labels.videos]
    folder = path.parent if path.suffix == ".json" else path
    if path.suffix == ".json":
        written = [dump_json(entries[0] if len(entries) == 1 else entries, path, indent=indent)]
    else:
        folder.mkdir(parents=True, exist_ok=True)
        written = [dump_json(e, path / f"{e['video'].replace('/', '__')}.json", indent=indent) for e in entries]
    if write_classes:
        written.append(write_class_file(labels.classes, folder / CLASS_FILE))
    return written


def _looks_futsal(obj: Any) -> bool:
    # {video, num_frames, events[frame, label]} and no fps (E2E-Spot entries always carry fps); teams optional,
    # so e2espot's own futsal output (events without a team) is detected too
    return (
        isinstance(obj, dict)
        and {"video", "events", "num_frames"} <= obj.keys()
        and "fps" not in obj
        and isinstance(obj["events"], list)
        and all(isinstance(e, dict) and "frame" in e and "label" in e for e in obj["events"])
    )


def sniff(path: Path, data: Any) -> bool:
    if path.is_dir():
        files = sorted(path.glob("*.json"))[:3]
        if not files or any(f.stem in ("train", "val", "test", "challenge") for f in files):
            return False
        try:
            return all(sniff(f, load_json(f)) for f in files)
        except LabelFormatError:
            return False
    if isinstance(data, dict):
        return _looks_futsal(data)
    # a list with fps is E2E-Spot's; futsal files carry no fps
    return isinstance(data, list) and bool(data) and all(_looks_futsal(d) and "fps" not in d for d in data)


FORMAT = LabelFormat(
    "futsal", "futsal JSON: {video, num_frames, num_events, events[frame, label, team]}", read, write, sniff
)

"""E2E-Spot (jhong93/spot) split JSON + ``class.txt``; also its prediction files.

Layout read: a label dir ``class.txt`` + ``{train,val,test,challenge}.json`` (option ``split``: one name, a
list, or None = every split present, concatenated in that order), or one split/prediction JSON (``.json``
or gzipped ``.json.gz`` such as ``pred-test.50.recall.json.gz``) with ``class.txt`` beside it (when absent,
classes are the sorted labels used). Each entry::

    {"video", "num_frames", "num_events", "events": [{"frame", "label", "comment"}], "fps", "width", "height"}

``fps: -1`` or ``null`` means unknown (FineDiving writes -1, our prediction files null) and reads as ``fps=None``; option ``fps`` fills unknown fps.
T-DEED / AdaSpot split lists (entries ``{"video", "num_frames"}`` without ``events``) read as videos
without events. ``valid.json`` is read for split ``val`` (the SoccerNet devkit's spelling). Events at
or after ``num_frames`` move to the last frame with a warning (option ``strict=True``: an error).
Prediction events carry ``score``; our own prediction files also carry ``time_s`` per event, which is
derived from ``frame`` and therefore dropped on read and regenerated on write. Unknown per-video keys
(FineGym/FineDiving ``_source_info``) go to ``VideoLabels.extra``, unknown per-event keys to
``Event.extra``; both are written back. ``num_events`` is informational: it is written as ``len(events)``
unless the file disagreed (2 FineDiving test entries do), in which case the original value is kept in
``extra["num_events"]`` and written back unchanged.

Writing: ``path`` ending in ``.json``/``.json.gz`` is one file (``class.txt`` beside it); anything else is a
label dir and gets ``<split>.json`` (option ``split``, default ``train``). JSON style options: ``indent``
(2) and ``sort_keys`` (True) are what jhong93/spot's ``store_json`` writes (Tennis, FineDiving); the
Figure Skating files use ``indent=4, sort_keys=False`` (keys in schema order). With the matching style
the real files are reproduced byte for byte.
"""

from __future__ import annotations

import gzip
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
    loads_json,
    require,
    resolve_classes,
    write_class_file,
)
from e2espot.data.labels import SPLIT_KEY, Event, LabelSet, VideoLabels, parse_team
from e2espot.data.timebase import frame_to_time_s
from e2espot.errors import ConfigError, LabelFormatError

SPLITS = ("train", "val", "valid", "test", "challenge")
CLASS_FILE = "class.txt"
_VIDEO_KEYS = ("video", "num_frames", "num_events", "events", "fps", "width", "height")
_EVENT_KEYS = ("frame", "label", "comment", "score", "team", "visibility", "time_s")
UNKNOWN_FPS = -1


def _split_files(root: Path, split: str | list[str] | tuple[str, ...] | None) -> list[Path]:
    from e2espot.data.splits import split_candidates

    present = [s for s in SPLITS if (root / f"{s}.json").is_file() or (root / f"{s.capitalize()}.json").is_file()]
    if split is None:
        if not present:
            raise LabelFormatError(
                f"{root}: no split file found; expected some of {', '.join(s + '.json' for s in SPLITS)}"
            )
        return [root / f"{s}.json" if (root / f"{s}.json").is_file() else root / f"{s.capitalize()}.json"
                for s in present]
    names = [split] if isinstance(split, str) else list(split)
    files = []
    for name in names:
        file = next((root / f"{n}.json" for n in split_candidates(name) if (root / f"{n}.json").is_file()),
                    root / f"{name}.json")  # val.json or valid.json (SoccerNet devkit spelling)
        if not file.is_file():
            raise LabelFormatError(
                f"{root}: split '{name}' not found ({file.name} missing); "
                f"present: {', '.join(present) or 'none'}"
            )
        files.append(file)
    return files


def _parse_fps(value: Any, where: str) -> float | None:
    if value is None or value == UNKNOWN_FPS:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise LabelFormatError(f"{where}: fps {value!r} must be a positive number, or -1 for unknown")
    return value  # kept as read (int 25 stays 25) so files round-trip byte for byte


def _parse_event(raw: Any, where: str) -> Event:
    expect_type(raw, dict, "an event", where)
    label = require(raw, "label", where)
    expect_type(label, str, "label", where)
    event = Event(frame=require(raw, "frame", where), label=label)
    if "comment" in raw:
        event.comment = raw["comment"]
    if raw.get("score") is not None:
        event.score = as_float(raw["score"], "score", where)
    event.team = parse_team(raw.get("team"), where)
    event.visibility = raw.get("visibility")
    event.extra = {k: v for k, v in raw.items() if k not in _EVENT_KEYS}
    return event


def _parse_video(raw: Any, where: str, default_fps: float | None) -> VideoLabels:
    expect_type(raw, dict, "a video entry", where)
    video = require(raw, "video", where)
    expect_type(video, str, "video", where)
    where = f"{where} (video '{video}')"
    if "events" not in raw and "num_frames" in raw:
        events_raw = []  # a T-DEED / AdaSpot split list entry: {"video", "num_frames"}, events elsewhere
    else:
        events_raw = expect_type(require(raw, "events", where), list, "events", where)
    events = [_parse_event(e, f"{where}, event #{i}") for i, e in enumerate(events_raw)]
    fps = _parse_fps(raw.get("fps"), where)
    labels = VideoLabels(
        video=video,
        fps=default_fps if fps is None else fps,
        num_frames=raw.get("num_frames"),
        events=events,
        width=raw.get("width"),
        height=raw.get("height"),
        extra={k: v for k, v in raw.items() if k not in _VIDEO_KEYS},
    )
    if "num_events" in raw and raw["num_events"] != len(events):
        labels.extra["num_events"] = raw["num_events"]  # informational; keep the file's value
    return labels


def read(
    path: str | Path,
    *,
    split: str | list[str] | tuple[str, ...] | None = None,
    classes: ClassesOpt = None,
    fps: float | None = None,
    strict: bool = False,
) -> LabelSet:
    """Read a label dir or one split/prediction JSON (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        files, class_file = _split_files(path, split), path / CLASS_FILE
    elif split is not None:
        raise ConfigError(f"split={split!r} applies to a label folder, and {path} is a file")
    else:
        files, class_file = [path], path.parent / CLASS_FILE
    videos: list[VideoLabels] = []
    sources: list[str] = []
    for file in files:
        data = load_json(file)
        if not isinstance(data, list):
            raise LabelFormatError(
                f"{file}: top level must be a JSON array of video entries, got {type(data).__name__}"
            )
        for i, raw in enumerate(data):
            videos.append(_parse_video(raw, f"{file}: entry #{i}", fps))
            sources.append(str(file))
            if len(files) > 1:  # several splits concatenated: keep each video's, so they can be written back
                videos[-1].extra[SPLIT_KEY] = file.stem
    if classes is None and class_file.is_file():
        classes = class_file
    return finish(resolve_classes(classes, videos), videos, sources, str(path), strict=strict)


def _event_dict(e: Event, fps: float | None, with_time_s: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"frame": e.frame, "label": e.label}
    if e.comment is not None:
        out["comment"] = e.comment
    if e.score is not None:
        out["score"] = e.score
        if with_time_s and fps:
            out["time_s"] = round(frame_to_time_s(e.frame, fps), 6)
    if e.team is not None:
        out["team"] = e.team
    if e.visibility is not None:
        out["visibility"] = e.visibility
    out.update(e.extra)
    return out


def video_dict(
    v: VideoLabels, *, num_events: bool = True, time_s: bool = True, unknown_fps: int | None = UNKNOWN_FPS
) -> dict[str, Any]:
    """One E2E-Spot entry, keys in schema order (``sort_keys`` at dump time gives spot's order).

    ``unknown_fps``: what ``fps`` holds when the video's rate is unknown (-1 as in E2E-Spot's FineDiving
    label files; prediction files write None, i.e. JSON ``null``). The reader accepts both.
    """
    extra = {k: val for k, val in v.extra.items() if k != SPLIT_KEY}
    out: dict[str, Any] = {"video": v.video}
    if v.num_frames is not None:
        out["num_frames"] = v.num_frames
    stored_num_events = extra.pop("num_events", None)
    if num_events:
        out["num_events"] = len(v.events) if stored_num_events is None else stored_num_events
    out["events"] = [_event_dict(e, v.fps, time_s) for e in v.events]
    out["fps"] = unknown_fps if v.fps is None else v.fps
    if v.width is not None:
        out["width"] = v.width
    if v.height is not None:
        out["height"] = v.height
    out.update(extra)
    return out


def write(
    labels: LabelSet,
    path: str | Path,
    *,
    split: str = "train",
    indent: int | None = 2,
    sort_keys: bool = True,
    num_events: bool = True,
    time_s: bool = True,
    write_classes: bool = True,
    unknown_fps: int | None = UNKNOWN_FPS,
) -> list[Path]:
    """Write one split JSON (+ class.txt); ``time_s`` adds seconds to scored (prediction) events;
    ``unknown_fps`` is written for videos without a known fps (-1, or None for ``null``)."""
    path = Path(path)
    if not (path.name.endswith(".json") or path.name.endswith(".json.gz")):
        path = path / f"{split}.json"
    entries = [video_dict(v, num_events=num_events, time_s=time_s, unknown_fps=unknown_fps)
               for v in labels.videos]
    written = [dump_json(entries, path, indent=indent, sort_keys=sort_keys)]
    if write_classes:
        written.append(write_class_file(labels.classes, path.parent / CLASS_FILE))
    return written


def json_style(path: str | Path) -> dict[str, Any]:
    """``{"indent", "sort_keys"}`` of a split JSON; pass them to ``write`` for byte-identical output."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fp:
        text = fp.read()
    data = loads_json(text, str(path))
    lines = text.splitlines()
    indent = len(lines[1]) - len(lines[1].lstrip(" ")) if len(lines) > 1 else None
    keys = [list(e) for e in data if isinstance(e, dict)] if isinstance(data, list) else []
    return {"indent": indent, "sort_keys": all(k == sorted(k) for k in keys)}


def sniff(path: Path, data: Any) -> bool:
    if path.is_dir():
        return any((path / f"{s}.json").is_file() or (path / f"{s.capitalize()}.json").is_file() for s in SPLITS)
    if not isinstance(data, list):
        return False
    if not data:
        return path.name.split(".")[0].lower() in SPLITS or path.name.startswith("pred-")
    entries = [e for e in data if isinstance(e, dict)]
    if len(entries) == len(data) and all(set(e) == {"video", "num_frames"} for e in entries):
        return True  # a T-DEED / AdaSpot split list
    return (
        len(entries) == len(data)
        and all("video" in e and "events" in e for e in entries)
        and (any("fps" in e for e in entries) or path.name.startswith("pred-"))
    )


FORMAT = LabelFormat("spot", "E2E-Spot split JSON + class.txt (also pred-*.json[.gz])", read, write, sniff)

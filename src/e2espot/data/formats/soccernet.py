"""SoccerNet ground truth: ``<root>/<league>/<season>/<game>/Labels-v2.json`` (or ``Labels-ball.json``).

Each file::

    {"UrlLocal": ..., "UrlYoutube": ..., ["halftime": "1 - 46:04",]
     "annotations": [{"gameTime": "1 - 12:34", "label": "Goal", "position": "754000",
                      "team": "left", "visibility": "visible"}, ...]}

``position`` is milliseconds from the start of that half's video (a string of an int, or a number).
Two layouts (option ``layout``: ``auto``, ``halves``, ``game``):

* ``halves`` (SoccerNet-v2, 2023 ball): one video per half, id ``"<league>/<season>/<game>/<half>"`` with
  ``extra["game"]``, ``extra["half"]`` (1 or 2); both halves are always present.
* ``game`` (ball 2024+): one video per game, every annotation in half 1, id ``"<league>/<season>/<game>"``,
  ``extra["half"] = 1``.

``auto`` picks ``game`` when the file has ``halftime``, ``halves`` when an annotation is in half 2, then
looks at the videos in the game folder (``1_224p.mkv`` ... vs ``224p.mp4`` ...), and finally uses
``halves`` for ``Labels-v2.json`` and ``game`` otherwise.

``frame = timebase.position_ms_to_frame(position, fps)`` with option ``fps`` (default 25.0); the exact
``position`` is kept in ``Event.extra["position_ms"]``. ``num_frames`` comes from probing the half's/game's
video with PyAV when one is in the game folder (option ``probe_videos``), else None. The game ids are the
folder path below ``root`` (padded to ``league/season/game`` with the folders above it). Top-level keys
other than ``annotations`` go to ``extra["file_keys"]`` and the label file name to ``extra["label_file"]``;
the writer puts them back, one file per game, positions as strings of ints, ``gameTime`` recomputed.
Labels absent from an explicit class list raise (the official evaluator silently drops them).

As found in the field, read like the official evaluator with one warning per file (count + first
examples): ``gameTime`` without zero padding (``"1 - 0:8"``); a ``gameTime`` that disagrees with the
position by more than 1 s (the position is used); annotations without ``position`` (placed at the
``gameTime`` second); annotations in halves other than 1 and 2 (ignored; ``strict=True``: an error);
annotations at or after ``num_frames`` (moved to the last frame; ``strict=True``: an error). A negative
position is an error. ``class.txt`` at the top of the tree gives the class order (``write_classes``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from e2espot.constants import DEFAULT_SOCCERNET_LABEL_FILE
from e2espot.data.formats._common import (
    ClassesOpt,
    LabelFormat,
    as_int,
    dump_json,
    expect_type,
    finish,
    load_json,
    require,
    resolve_classes,
    warn_file,
    write_class_file,
)
from e2espot.data.labels import Event, LabelSet, VideoLabels, parse_team
from e2espot.data.timebase import (
    frame_to_position_ms,
    num_frames_at,
    position_ms_to_frame,
    position_ms_to_game_time,
)
from e2espot.data.video.find import SOCCERNET_GAME_VIDEOS, SOCCERNET_HALF_VIDEOS, soccernet_video
from e2espot.errors import ConfigError, LabelFormatError, VideoError

LABEL_FILES = (DEFAULT_SOCCERNET_LABEL_FILE, "Labels-ball.json")
CLASS_FILE = "class.txt"
LAYOUTS = ("auto", "halves", "game")
HALF_VIDEO_PATTERNS = SOCCERNET_HALF_VIDEOS  # one list, owned by e2espot.data.video.find
GAME_VIDEOS = SOCCERNET_GAME_VIDEOS
_GAME_TIME = re.compile(r"^\s*(\d+)\s*-\s*(\d+):(\d{1,2})\s*$")  # "1 - 0:8" (no padding) is read too
OFFICIAL_HALVES = (1, 2)  # the official evaluator fills two half grids and ignores any other half
_ANNOTATION_KEYS = ("gameTime", "label", "position", "team", "visibility")

# official class orders, for the ``classes`` option (default: sorted labels used, as jhong93/spot)
SOCCERNET_V2_CLASSES = (
    "Penalty",
    "Kick-off",
    "Goal",
    "Substitution",
    "Offside",
    "Shots on target",
    "Shots off target",
    "Clearance",
    "Ball out of play",
    "Throw-in",
    "Foul",
    "Indirect free-kick",
    "Direct free-kick",
    "Corner",
    "Yellow card",
    "Red card",
    "Yellow->red card",
)
BALL_CLASSES = (
    "PASS",
    "DRIVE",
    "HEADER",
    "HIGH PASS",
    "OUT",
    "CROSS",
    "THROW IN",
    "SHOT",
    "BALL PLAYER BLOCK",
    "PLAYER SUCCESSFUL TACKLE",
    "FREE KICK",
    "GOAL",
)


def parse_game_time(value: Any, where: str) -> tuple[int, int]:
    """``"H - mm:ss"`` -> (half, seconds into the half); ``"1 - 0:8"`` (no zero padding) is accepted."""
    match = _GAME_TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise LabelFormatError(
            f"{where}: gameTime {value!r} is malformed; expected 'H - mm:ss' like '1 - 12:34'"
        )
    half, minutes, seconds = (int(g) for g in match.groups())
    if half < 1 or seconds >= 60:
        raise LabelFormatError(
            f"{where}: gameTime {value!r} is out of range; expected 'H - mm:ss' with H >= 1"
        )
    return half, minutes * 60 + seconds


def game_id(root: Path, game_dir: Path) -> str:
    """``league/season/game``: the path below ``root``, padded with the folders above it to 3 parts."""
    base = root if root.is_dir() else root.parent
    rel = game_dir.absolute().relative_to(base.absolute()).parts
    parts = game_dir.absolute().parts
    return "/".join(parts[-max(3, len(rel)) :])


def game_and_half(video: VideoLabels) -> tuple[str, int]:
    """Game id and half of a video: from ``extra`` or its id (``.../<game>/1``, T-DEED ``.../half2``)."""
    if "game" in video.extra:
        return str(video.extra["game"]), int(video.extra.get("half", 1))
    head, _, last = video.video.rpartition("/")
    last = last.removeprefix("half")
    if head and head.count("/") >= 2 and last in ("1", "2"):
        return head, int(last)
    return video.video, int(video.extra.get("half", 1))


def probe_num_frames(path: Path, fps: float) -> int:
    """Frames of a video when resampled to ``fps``: stream frame count, else container duration
    (``e2espot.data.video.probe_video``, the one prober)."""
    from e2espot.data.video import probe_video

    try:
        info = probe_video(path)
    except VideoError as exc:
        raise VideoError(f"{exc}. Pass probe_videos=False to skip probing") from None
    if info.num_frames and info.fps:
        return num_frames_at(info.num_frames, info.fps, fps)
    if info.duration_s:
        return num_frames_at(round(info.duration_s * 1000), 1000.0, fps)
    raise VideoError(f"cannot probe '{path}': neither frame count nor duration is known")


def resolve_position_ms(event: Event, fps: float) -> int:
    """``extra["position_ms"]`` when it still maps to ``event.frame``, else the frame's position."""
    position_ms = event.extra.get("position_ms")
    if isinstance(position_ms, int) and position_ms_to_frame(position_ms, fps) == event.frame:
        return position_ms
    return frame_to_position_ms(event.frame, fps)


def check_event(event: Event, classes: set[str] | None, num_frames: int | None, where: str) -> None:
    """Class and range checks at parse time, so errors name the annotation index in the file."""
    if classes is not None and event.label not in classes:
        raise LabelFormatError(
            f"{where}: label: unknown class '{event.label}'; expected one of: {', '.join(sorted(classes))}. "
            "Add it to the class list or fix the label"
        )
    if num_frames is not None and event.frame >= num_frames:
        raise LabelFormatError(
            f"{where}: position {event.extra.get('position_ms')} ms -> frame {event.frame} >= "
            f"num_frames {num_frames} of the video (frames are 0-based)"
        )


def check_position(raw: dict[str, Any], where: str) -> None:
    """A negative ``position`` is an error (the official evaluator would put it in cell 0 or, below
    ``-1000 / framerate`` ms, wrap it to the end of its 2-hour grid through Python's negative indexing)."""
    value = raw.get("position")
    try:
        negative = float(value) < 0
    except (TypeError, ValueError):
        return  # as_int reports it
    if negative:
        raise LabelFormatError(
            f"{where}: position {value!r} ms is negative; positions are ms from the start of the half's video. "
            "Fix the file (the official SoccerNet evaluator would misplace it: cell 0, or the end of its grid)"
        )


class FileNotes:
    """Per-file tallies of bent rules, reported as one warning each (count + first examples)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.notes: dict[str, list[str]] = {}
        self.actions: dict[str, str] = {}

    def add(self, what: str, example: str, action: str) -> None:
        self.notes.setdefault(what, []).append(example)
        self.actions[what] = action

    def emit(self) -> None:
        for what, examples in self.notes.items():
            warn_file(self.source, len(examples), what, examples, self.actions[what])


def check_game_time(raw: dict[str, Any], half: int, position_ms: int, where: str, notes: FileNotes) -> None:
    """Warn (via ``notes``) when ``gameTime`` disagrees with ``half`` or ``position`` by more than 1 s."""
    if "gameTime" not in raw:
        return
    time_half, seconds = parse_game_time(raw["gameTime"], where)
    if time_half != half or abs(seconds - position_ms / 1000) > 1.0:
        notes.add(
            "whose gameTime disagrees with half/position",
            f"{where.rsplit(': ', 1)[-1]} gameTime {raw['gameTime']!r}, half {half}, position {position_ms}",
            "position and half are used, as the official evaluator does",
        )


def _label_files(root: Path, label_file: str | None) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise LabelFormatError(f"{root}: no such file or folder")
    if label_file is not None:
        files = sorted(root.rglob(label_file))
        if not files:
            raise LabelFormatError(f"{root}: no '{label_file}' below this folder")
        return files
    found = {name: sorted(root.rglob(name)) for name in LABEL_FILES}
    kinds = [name for name, files in found.items() if files]
    if len(kinds) > 1:
        raise LabelFormatError(
            f"{root}: holds both {' and '.join(kinds)}; pass label_file= (CLI: --label-file) to pick one"
        )
    if not kinds:
        raise LabelFormatError(f"{root}: no {' or '.join(LABEL_FILES)} below this folder")
    return found[kinds[0]]


def _layout(layout: str, data: dict[str, Any], halves: set[int], game_dir: Path, file: Path) -> str:
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown SoccerNet layout '{layout}'; expected one of {', '.join(LAYOUTS)}")
    if layout != "auto":
        return layout
    if "halftime" in data:
        return "game"
    if halves - {1}:
        return "halves"
    if soccernet_video(game_dir, 1) or soccernet_video(game_dir, 2):
        return "halves"
    if soccernet_video(game_dir, None):
        return "game"
    return "halves" if file.name == DEFAULT_SOCCERNET_LABEL_FILE else "game"


def _parse_annotation(
    raw: Any, where: str, fps: float, notes: FileNotes, home_side: str | None = None
) -> tuple[int, Event]:
    expect_type(raw, dict, "an annotation", where)
    half, seconds = parse_game_time(require(raw, "gameTime", where), where)
    label = expect_type(require(raw, "label", where), str, "label", where)
    if "position" in raw:
        check_position(raw, where)
        position_ms = as_int(raw["position"], "position", where)
        check_game_time(raw, half, position_ms, where, notes)
    else:  # as the official evaluator: second precision from gameTime
        position_ms = seconds * 1000
        notes.add("without position", f"{where.rsplit(': ', 1)[-1]} gameTime {raw['gameTime']!r}",
                  "placed at the gameTime second, as the official evaluator does")
    event = Event(
        frame=position_ms_to_frame(position_ms, fps),
        label=label,
        team=parse_team(raw.get("team"), where, home_side=home_side),
        visibility=raw.get("visibility"),
        extra={"position_ms": position_ms, **{k: v for k, v in raw.items() if k not in _ANNOTATION_KEYS}},
    )
    return half, event


def read(
    path: str | Path,
    *,
    fps: float = 25.0,
    label_file: str | None = None,
    layout: str = "auto",
    classes: ClassesOpt = None,
    probe_videos: bool = True,
    strict: bool = False,
    home_side: str | None = None,
) -> LabelSet:
    """Read every game below ``path`` (or one label file). ``home_side`` ("left" / "right"): map the
    SoccerNet-v2 teams "home" / "away" to sides (default: kept as written); see ``labels.parse_team``."""
    root = Path(path)
    fixed = None if classes is None else resolve_classes(classes, [])
    known = None if fixed is None else set(fixed)
    videos: list[VideoLabels] = []
    sources: list[str] = []
    for file in _label_files(root, label_file):
        data = load_json(file)
        if not isinstance(data, dict):
            raise LabelFormatError(f"{file}: top level must be a JSON object, got {type(data).__name__}")
        annotations = expect_type(require(data, "annotations", str(file)), list, "annotations", str(file))
        notes = FileNotes(str(file))
        parsed = [_parse_annotation(a, f"{file}: annotation #{i}", fps, notes, home_side)
                  for i, a in enumerate(annotations)]
        game_dir = file.parent
        game = game_id(root, game_dir)
        kind = _layout(layout, data, {h for h, _ in parsed}, game_dir, file)
        file_keys = {k: v for k, v in data.items() if k != "annotations"}
        halves: tuple[int, ...] = (1, 2) if kind == "halves" else (1,)
        by_half: dict[int, VideoLabels] = {}
        for half in halves:
            video_path = soccernet_video(game_dir, half if kind == "halves" else None) if probe_videos else None
            by_half[half] = VideoLabels(
                video=f"{game}/{half}" if kind == "halves" else game,
                fps=fps,
                num_frames=probe_num_frames(video_path, fps) if video_path else None,
                extra={"game": game, "half": half, "label_file": file.name, "file_keys": file_keys},
            )
        for i, (half, event) in enumerate(parsed):
            where = f"{file}: annotation #{i} (gameTime {annotations[i]['gameTime']!r})"
            if half not in OFFICIAL_HALVES and not strict:
                notes.add(f"in half {half}", f"annotation #{i} ({event.label})",
                          "ignored, as the official evaluator ignores halves other than 1 and 2")
                continue
            if half not in by_half:
                expected = (
                    "1 or 2" if kind == "halves" else "1 (one video per game: every annotation is in half 1)"
                )
                raise LabelFormatError(
                    f"{where}: half {half} is not valid in the '{kind}' layout; expected {expected}"
                )
            check_event(event, known, by_half[half].num_frames if strict else None, where)
            by_half[half].events.append(event)
        notes.emit()
        videos.extend(by_half.values())
        sources.extend([str(file)] * len(by_half))
    if fixed is None and root.is_dir() and (root / CLASS_FILE).is_file():
        fixed = resolve_classes(root / CLASS_FILE, [])  # written by write(write_classes=True)
    names = fixed if fixed is not None else resolve_classes(None, videos)
    return finish(names, videos, sources, str(root), strict=strict)


def write(
    labels: LabelSet,
    path: str | Path,
    *,
    label_file: str | None = None,
    fps: float | None = None,
    indent: int | None = 4,
    write_classes: bool = False,
) -> list[Path]:
    """One ``<path>/<game>/<label file>`` per game; ``fps`` is used for videos without one.

    The label file is ``label_file``, else the one the game was read from, else ``Labels-ball.json`` for
    a game that is one video (id = game, the 2024+ layout) and ``Labels-v2.json`` for halves, so ``read``
    finds the same layout again. ``write_classes``: ``<path>/class.txt``, which ``read`` picks up.
    """
    root = Path(path)
    games: dict[str, list[tuple[int, VideoLabels]]] = {}
    for v in labels.videos:
        game, half = game_and_half(v)
        games.setdefault(game, []).append((half, v))
    written = []
    for game, halves in games.items():
        halves.sort(key=lambda hv: hv[0])
        first = halves[0][1]
        file_keys = dict(first.extra["file_keys"]) if "file_keys" in first.extra else {"UrlLocal": game + "/"}
        annotations = []
        for half, v in halves:
            video_fps = v.fps or fps
            if not video_fps:
                raise ConfigError(
                    f"video '{v.video}' has no fps; pass fps= (CLI: --fps) to write SoccerNet positions"
                )
            for e in v.events:
                position_ms = resolve_position_ms(e, video_fps)
                out: dict[str, Any] = {
                    "gameTime": position_ms_to_game_time(half, position_ms),
                    "label": e.label,
                    "position": str(position_ms),
                }
                for key in ("team", "visibility", "comment"):
                    if getattr(e, key) is not None:
                        out[key] = getattr(e, key)
                out.update({k: val for k, val in e.extra.items() if k != "position_ms"})
                annotations.append(out)
        one_video = len(halves) == 1 and first.video == game
        name = label_file or first.extra.get("label_file") or LABEL_FILES[1 if one_video else 0]
        written.append(
            dump_json({**file_keys, "annotations": annotations}, root / game / name, indent=indent)
        )
    if write_classes:
        written.append(write_class_file(labels.classes, root / CLASS_FILE))
    return written


def sniff(path: Path, data: Any) -> bool:
    if path.is_dir():
        if (path / "class.txt").is_file() and any(
            (path / f"{s}.json").is_file() for s in ("train", "val", "valid", "test", "challenge")
        ):
            return False  # an E2E-Spot label folder (e.g. `e2espot synth`'s, with soccernet/ inside)
        return any(next(path.rglob(name), None) for name in LABEL_FILES)
    return path.name in LABEL_FILES or (isinstance(data, dict) and "annotations" in data)


FORMAT = LabelFormat(
    "soccernet", "SoccerNet Labels-v2.json / Labels-ball.json game folders", read, write, sniff
)

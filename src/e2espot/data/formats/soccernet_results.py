"""SoccerNet predictions: ``<root>/<league>/<season>/<game>/results_spotting.json`` (folder or ``.zip``)::

    {"UrlLocal": "...", "predictions": [{"gameTime": "1 - 00:31", "label": "PASS", "position": "31500",
                                         "half": "1", "confidence": "0.0066"}, ...]}

Read: a folder, a zip (member names start with ``league/season/game/``, as the official evaluator wants)
or one file. ``position``, ``half`` and ``confidence`` may be strings or numbers (a fractional number
position is truncated, as the official ``int(position)``); ``gameTime`` is optional (the evaluator ignores
it; an empty string counts as absent); when present it may lack zero padding (``"1 - 0:8"``) and a disagreement with ``half`` or
``position`` (> 1 s) is one warning per file. Predictions in halves other than 1 and 2 are ignored with a
warning, as the official evaluator ignores them (``strict=True``: an error); a negative position is an
error. A ``class.txt`` at the top of the folder or zip gives the class order. ``frame = position_ms_to_frame(position, fps)``
(option ``fps``, default 25.0), ``score = confidence``, the exact position in ``extra["position_ms"]``.
Layout (option ``layout``): ``auto`` uses one video per half (ids ``<game>/<half>``, both halves present)
when any prediction in the set is in half 2, else one video per game (id ``<game>``).

Write: one file per game, predictions sorted by (half, position) (or a ``.zip`` when ``path`` ends with it) with ``UrlLocal`` and predictions
``{"gameTime": "H - mm:ss", "label", "position": int ms, "half": int, "confidence": float}``, plus
``"team"`` ("left" / "right", as the Team-BAS evaluator reads it) when the event has one; other
``Event.extra`` keys (e.g. ``team_score``) follow. Events without a score are written with confidence 1.0.
Read: ``team`` goes to ``Event.team`` (not ``extra``).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from e2espot.data.formats._common import (
    ClassesOpt,
    LabelFormat,
    as_float,
    as_int,
    dump_json,
    expect_type,
    finish,
    load_json,
    loads_json,
    require,
    resolve_classes,
    write_class_file,
)
from e2espot.data.formats.soccernet import (
    CLASS_FILE,
    LAYOUTS,
    OFFICIAL_HALVES,
    FileNotes,
    check_event,
    check_game_time,
    check_position,
    game_and_half,
    game_id,
    resolve_position_ms,
)
from e2espot.data.labels import Event, LabelSet, VideoLabels, parse_team
from e2espot.data.timebase import position_ms_to_frame, position_ms_to_game_time
from e2espot.errors import ConfigError, LabelFormatError

PREDICTION_FILE = "results_spotting.json"
_PREDICTION_KEYS = ("gameTime", "label", "position", "half", "confidence", "team")


def _load_games(root: Path, prediction_file: str) -> list[tuple[str, str, Any]]:
    """(game id, source name, parsed JSON) for every prediction file below ``root``."""
    if root.suffix == ".zip":
        try:
            archive = zipfile.ZipFile(root)
        except (OSError, zipfile.BadZipFile) as exc:
            raise LabelFormatError(f"{root}: cannot open zip: {exc}") from None
        with archive:
            members = sorted(n for n in archive.namelist() if PurePosixPath(n).name == prediction_file)
            if not members:
                raise LabelFormatError(f"{root}: no '{prediction_file}' in this zip")
            games = []
            for name in members:
                source = f"{root}!{name}"
                text = archive.read(name).decode("utf-8")
                games.append((str(PurePosixPath(name).parent), source, loads_json(text, source)))
            return games
    if root.is_file():
        return [(game_id(root, root.parent), str(root), load_json(root))]
    if not root.is_dir():
        raise LabelFormatError(f"{root}: no such file or folder")
    files = sorted(root.rglob(prediction_file))
    if not files:
        raise LabelFormatError(f"{root}: no '{prediction_file}' below this folder")
    return [(game_id(root, f.parent), str(f), load_json(f)) for f in files]


def _parse_prediction(raw: Any, where: str, fps: float, notes: FileNotes) -> tuple[int, Event]:
    expect_type(raw, dict, "a prediction", where)
    label = expect_type(require(raw, "label", where), str, "label", where)
    require(raw, "position", where)
    check_position(raw, where)
    position = raw["position"]
    if isinstance(position, float) and position >= 0:
        position = int(position)  # a JSON number like 754000.7: truncated, as the official int(position)
    position_ms = as_int(position, "position", where)
    half = as_int(require(raw, "half", where), "half", where)
    if half < 1:
        raise LabelFormatError(f"{where}: half {half} must be >= 1")
    if raw.get("gameTime") != "":  # the official evaluator ignores gameTime; "" (T-DEED writes none) = absent
        check_game_time(raw, half, position_ms, where, notes)
    event = Event(
        frame=position_ms_to_frame(position_ms, fps),
        label=label,
        score=as_float(require(raw, "confidence", where), "confidence", where),
        team=parse_team(raw.get("team"), where),
        extra={"position_ms": position_ms, **{k: v for k, v in raw.items() if k not in _PREDICTION_KEYS}},
    )
    return half, event


def read(
    path: str | Path,
    *,
    fps: float = 25.0,
    layout: str = "auto",
    classes: ClassesOpt = None,
    prediction_file: str = PREDICTION_FILE,
    strict: bool = False,
) -> LabelSet:
    """Read predictions from a folder, a zip or one file."""
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown SoccerNet layout '{layout}'; expected one of {', '.join(LAYOUTS)}")
    root = Path(path)
    fixed = None if classes is None else resolve_classes(classes, [])
    known = None if fixed is None else set(fixed)
    parsed_games = []
    for game, source, data in _load_games(root, prediction_file):
        if not isinstance(data, dict):
            raise LabelFormatError(f"{source}: top level must be a JSON object, got {type(data).__name__}")
        preds = expect_type(require(data, "predictions", source), list, "predictions", source)
        notes = FileNotes(source)
        parsed = [_parse_prediction(p, f"{source}: prediction #{i}", fps, notes) for i, p in enumerate(preds)]
        if not strict:
            kept = []
            for i, (half, event) in enumerate(parsed):
                if half in OFFICIAL_HALVES:
                    kept.append((half, event))
                else:
                    notes.add(f"in half {half}", f"prediction #{i} ({event.label})",
                              "ignored, as the official evaluator ignores halves other than 1 and 2")
            parsed = kept
        notes.emit()
        file_keys = {k: v for k, v in data.items() if k != "predictions"}
        parsed_games.append((game, source, file_keys, parsed))
    if layout == "auto":
        layout = "halves" if any(h > 1 for *_, parsed in parsed_games for h, _ in parsed) else "game"
    videos: list[VideoLabels] = []
    sources: list[str] = []
    for game, source, file_keys, parsed in parsed_games:
        by_half = {
            half: VideoLabels(
                video=f"{game}/{half}" if layout == "halves" else game,
                fps=fps,
                num_frames=None,
                extra={"game": game, "half": half, "file_keys": file_keys},
            )
            for half in ((1, 2) if layout == "halves" else (1,))
        }
        for i, (half, event) in enumerate(parsed):
            where = f"{source}: prediction #{i}"
            if half not in by_half:
                raise LabelFormatError(f"{where}: half {half} is not valid in the '{layout}' layout")
            check_event(event, known, None, where)
            by_half[half].events.append(event)
        videos.extend(by_half.values())
        sources.extend([source] * len(by_half))
    if fixed is None and root.is_dir() and (root / CLASS_FILE).is_file():
        fixed = resolve_classes(root / CLASS_FILE, [])  # written by write(write_classes=True)
    elif fixed is None and root.suffix == ".zip":
        with zipfile.ZipFile(root) as archive:
            if CLASS_FILE in archive.namelist():
                text = archive.read(CLASS_FILE).decode("utf-8")
                fixed = [line.strip() for line in text.splitlines() if line.strip()]
    names = fixed if fixed is not None else resolve_classes(None, videos)
    return finish(names, videos, sources, str(root), strict=strict)


def _game_files(labels: LabelSet | Sequence[VideoLabels], fps: float | None) -> dict[str, dict[str, Any]]:
    """``{game id: results_spotting.json content}``; predictions sorted by (half, position), ties in
    the given order (the official evaluator does not care; people reading the file do)."""
    games: dict[str, dict[str, Any]] = {}
    halves: dict[str, list[int]] = {}
    videos = labels.videos if isinstance(labels, LabelSet) else labels
    for v in videos:
        game, half = game_and_half(v)
        video_fps = v.fps or fps
        if not video_fps:
            raise ConfigError(
                f"video '{v.video}' has no fps; pass fps= (CLI: --fps) to write SoccerNet positions"
            )
        if game not in games:
            file_keys = dict(v.extra.get("file_keys") or {})
            games[game] = {"UrlLocal": file_keys.pop("UrlLocal", game + "/"), **file_keys, "predictions": []}
        halves.setdefault(game, []).append(half)
        for e in v.events:
            position_ms = resolve_position_ms(e, video_fps)
            games[game]["predictions"].append(
                {
                    "gameTime": position_ms_to_game_time(half, position_ms),
                    "label": e.label,
                    "position": position_ms,
                    "half": half,
                    "confidence": float(1.0 if e.score is None else e.score),
                    **({"team": e.team} if e.team is not None else {}),
                    **{k: val for k, val in e.extra.items() if k != "position_ms"},
                }
            )
    for game, data in games.items():
        if len(set(halves[game])) != len(halves[game]):
            raise ConfigError(
                f"game '{game}': {len(halves[game])} videos map to halves {halves[game]}; a "
                "results_spotting.json holds one video per half. Set extra['half'] per video (CLI: --half)"
            )
        data["predictions"].sort(key=lambda p: (p["half"], p["position"]))
    return games


def results_spotting(videos: Sequence[VideoLabels], *, fps: float | None = None) -> dict[str, Any]:
    """The content of ONE game's ``results_spotting.json`` (the same dict ``write`` stores per game).

    Game and half of each video: ``soccernet.game_and_half`` (``extra["game"]``/``extra["half"]``, else
    the id ``<league>/<season>/<game>/<half>``, else the id and half 1). ConfigError when the videos
    belong to several games or two videos share a half.
    """
    games = _game_files(list(videos), fps)
    if len(games) > 1:
        raise ConfigError(
            f"{len(videos)} videos belong to {len(games)} games ({', '.join(list(games)[:3])}); a "
            "results_spotting.json holds one game. Write one game at a time, or give a folder "
            "(write_labels(..., 'soccernet-results'))"
        )
    if not games:
        return {"UrlLocal": "", "predictions": []}
    return next(iter(games.values()))


def write_results_spotting(
    videos: Sequence[VideoLabels], path: str | Path, *, fps: float | None = None, indent: int | None = 2
) -> Path:
    """Write ``results_spotting(videos)`` to the file ``path`` (any name; one game)."""
    return dump_json(results_spotting(videos, fps=fps), Path(path), indent=indent)


def write(
    labels: LabelSet,
    path: str | Path,
    *,
    fps: float | None = None,
    prediction_file: str = PREDICTION_FILE,
    indent: int | None = 2,
    write_classes: bool = False,
) -> list[Path]:
    """One ``<game>/results_spotting.json`` per game under ``path``, or a zip when ``path`` ends in .zip.

    ``write_classes``: ``class.txt`` at the top of the folder or zip, which ``read`` picks up.
    """
    root = Path(path)
    games = _game_files(labels, fps)
    if root.suffix == ".zip":
        root.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for game, data in games.items():
                info = zipfile.ZipInfo(f"{game}/{prediction_file}", date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(info, json.dumps(data, indent=indent), zipfile.ZIP_DEFLATED)
            if write_classes:
                info = zipfile.ZipInfo(CLASS_FILE, date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(info, "\n".join(labels.classes), zipfile.ZIP_DEFLATED)
        root.write_bytes(buffer.getvalue())
        return [root]
    written = [dump_json(data, root / game / prediction_file, indent=indent) for game, data in games.items()]
    if write_classes:
        written.append(write_class_file(labels.classes, root / CLASS_FILE))
    return written


def sniff(path: Path, data: Any) -> bool:
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                return any(PurePosixPath(n).name == PREDICTION_FILE for n in archive.namelist())
        except (OSError, zipfile.BadZipFile):
            return False
    if path.is_dir():
        return next(path.rglob(PREDICTION_FILE), None) is not None
    return path.name == PREDICTION_FILE or (isinstance(data, dict) and "predictions" in data)


FORMAT = LabelFormat(
    "soccernet-results", "SoccerNet results_spotting.json predictions (folder or .zip)", read, write, sniff
)

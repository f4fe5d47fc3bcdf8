"""CSV events, one row per event: ``video,frame,time_s,label,score[,team[,team_score]]``.

Read: ``video`` and ``label`` columns are required, plus ``frame`` or ``time_s`` (a row may leave one of
them empty). ``frame`` wins when both are given; ``time_s`` needs option ``fps`` (frame =
``timebase.time_s_to_frame``). ``score`` and ``team`` are optional (empty = None). Videos appear in order
of first row; ``num_frames`` is unknown (None) and videos without events are not representable. Other
columns are kept in ``Event.extra`` as strings. ``team`` is "left" / "right" (side of the frame) or empty;
``team_score`` (the probability of that team, predictions with a team head) goes to
``Event.extra["team_score"]`` as a float. Without option ``fps``, a video's fps is recovered from
its rows that give both ``frame`` and ``time_s`` (the rate that reproduces every ``time_s`` to its printed
precision, common rates such as 25 and 30000/1001 first), else it stays unknown. A ``class.txt`` beside
the file gives the class order (option ``classes`` overrides).

Write: both ``frame`` and ``time_s`` (empty when the video's fps and option ``fps`` are unknown), the
``team`` column only when some event has a team, ``team_score`` only when some event has one. Other
``Event.extra`` keys are not written. ``write_classes=True`` writes ``class.txt`` beside the file.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from e2espot.data.formats._common import (
    ClassesOpt,
    LabelFormat,
    as_float,
    as_int,
    finish,
    resolve_classes,
    write_class_file,
)
from e2espot.data.labels import TEAM_SCORE_KEY, Event, LabelSet, VideoLabels, parse_team
from e2espot.data.timebase import frame_to_time_s, time_s_to_frame
from e2espot.errors import LabelFormatError

COLUMNS = ("video", "frame", "time_s", "label", "score")
CLASS_FILE = "class.txt"
# tried first when recovering an fps from (frame, time_s) pairs
COMMON_FPS = (25, 30, 50, 60, 24, 30000 / 1001, 24000 / 1001, 60000 / 1001, 2, 1, 5, 10, 12.5, 15, 100, 120)
_KNOWN = (*COLUMNS, "team", TEAM_SCORE_KEY)


def read(
    path: str | Path, *, fps: float | None = None, classes: ClassesOpt = None, strict: bool = False
) -> LabelSet:
    """Read an events CSV."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelFormatError(f"{path}: file not found") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in ("video", "label") if c not in header]
    if missing or not ({"frame", "time_s"} & set(header)):
        raise LabelFormatError(
            f"{path}: header {','.join(header) or '(empty)'} lacks {missing or ['frame or time_s']}; "
            f"expected {','.join(COLUMNS)}[,team]"
        )
    videos: dict[str, VideoLabels] = {}
    pairs: dict[str, list[tuple[int, str]]] = {}  # video -> (frame, time_s text), to recover its fps
    for line_no, row in enumerate(reader, start=2):
        if None in row:
            raise LabelFormatError(f"{path}: line {line_no}: more fields than the header has")
        where = f"{path}: line {line_no}"
        video = (row.get("video") or "").strip()
        label = (row.get("label") or "").strip()
        if not video or not label:
            raise LabelFormatError(f"{where}: empty {'video' if not video else 'label'} field")
        frame_text = (row.get("frame") or "").strip()
        time_text = (row.get("time_s") or "").strip()
        if frame_text:
            frame_idx = as_int(frame_text, "frame", where)
            if time_text and fps is None:
                pairs.setdefault(video, []).append((frame_idx, time_text))
        elif time_text:
            if fps is None:
                raise LabelFormatError(
                    f"{where}: only time_s is given, so the fps is needed to get frames; "
                    "pass fps= (CLI: --fps)"
                )
            time_s = as_float(time_text, "time_s", where)
            if time_s < 0:
                raise LabelFormatError(f"{where}: time_s {time_s} is negative")
            frame_idx = time_s_to_frame(time_s, fps)
        else:
            raise LabelFormatError(f"{where}: both frame and time_s are empty")
        score_text = (row.get("score") or "").strip()
        event = Event(
            frame=frame_idx,
            label=label,
            score=as_float(score_text, "score", where) if score_text else None,
            team=parse_team((row.get("team") or "").strip(), where),
            extra={k: v for k, v in row.items() if k not in _KNOWN and v not in (None, "")},
        )
        team_score_text = (row.get(TEAM_SCORE_KEY) or "").strip()
        if team_score_text:
            event.extra[TEAM_SCORE_KEY] = as_float(team_score_text, TEAM_SCORE_KEY, where)
        videos.setdefault(video, VideoLabels(video=video, fps=fps, num_frames=None)).events.append(event)
    items = list(videos.values())
    for v in items:
        if v.fps is None:
            v.fps = infer_fps(pairs.get(v.video, []))
    if classes is None and (path.parent / CLASS_FILE).is_file():
        classes = path.parent / CLASS_FILE
    return finish(resolve_classes(classes, items), items, [str(path)] * len(items), str(path), strict=strict)


def infer_fps(pairs: list[tuple[int, str]]) -> float | None:
    """The fps with ``frame / fps == time_s`` for every (frame, time_s text) pair, to the text's precision.

    Common rates are tried first, then the median estimate rounded to 0..6 decimals. None when no pair
    has a frame > 0 or no rate fits every pair.
    """
    checks = []
    for frame, text in pairs:
        try:
            time_s = float(text)
        except ValueError:
            return None
        decimals = len(text.split(".", 1)[1]) if "." in text else 0
        checks.append((frame, time_s, 0.5 * 10.0**-decimals + 1e-9))
    informative = [(f, t) for f, t, _ in checks if f > 0 and t > 0]
    if not informative:
        return None
    estimate = float(sorted(f / t for f, t in informative)[len(informative) // 2])
    for candidate in (*COMMON_FPS, *(round(estimate, k) for k in range(7))):
        if candidate > 0 and all(abs(f / candidate - t) <= tol for f, t, tol in checks):
            return int(candidate) if float(candidate).is_integer() else candidate
    return None


def _format_float(value: float) -> str:
    return repr(float(value))


def write(
    labels: LabelSet, path: str | Path, *, fps: float | None = None, write_classes: bool = False
) -> list[Path]:
    """Write one CSV with frame and time_s columns (and ``class.txt`` beside with ``write_classes``)."""
    path = Path(path)
    with_team = any(e.team is not None for v in labels.videos for e in v.events)
    with_team_score = any(TEAM_SCORE_KEY in e.extra for v in labels.videos for e in v.events)
    columns: list[str] = [*COLUMNS, *(["team"] if with_team else [])]
    columns += [TEAM_SCORE_KEY] if with_team_score else []
    rows: list[dict[str, Any]] = []
    for v in labels.videos:
        video_fps = v.fps or fps
        for e in v.events:
            row = {
                "video": v.video,
                "frame": e.frame,
                "time_s": f"{frame_to_time_s(e.frame, video_fps):.6f}" if video_fps else "",
                "label": e.label,
                "score": "" if e.score is None else _format_float(e.score),
            }
            if with_team:
                row["team"] = e.team or ""
            if with_team_score:
                team_score = e.extra.get(TEAM_SCORE_KEY)
                row[TEAM_SCORE_KEY] = "" if team_score is None else _format_float(team_score)
            rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fp:
        writer = csv.DictWriter(fp, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    if write_classes:
        return [path, write_class_file(labels.classes, path.parent / CLASS_FILE)]
    return [path]


def sniff(path: Path, data: Any) -> bool:
    return path.is_file() and path.suffix.lower() == ".csv"


FORMAT = LabelFormat("csv", "CSV rows: video,frame,time_s,label,score[,team]", read, write, sniff)

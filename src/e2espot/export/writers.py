"""Event exports: CSV, SoccerNet ``results_spotting.json``, chapters (WebVTT, ffmetadata).

Also ``read_predictions``: our per-video prediction JSON (an E2E-Spot style list) into a LabelSet.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from e2espot.data.labels import TEAM_SCORE_KEY, Event, LabelSet, VideoLabels, infer_classes
from e2espot.data.timebase import frame_to_position_ms, frame_to_time_s, position_ms_to_game_time
from e2espot.errors import ConfigError, LabelFormatError

CSV_HEADER = ("video", "frame", "time_s", "label", "score")


# --------------------------------------------------------------------------- reading


def read_predictions(path: str | Path) -> LabelSet:
    """Read a prediction/label JSON in E2E-Spot style (``[{"video", "fps", "num_frames", "events"}]``).

    Uses ``e2espot.data.formats.read_labels(path, "spot")`` when that is available, else a small
    reader here that accepts the same files.
    """
    path = Path(path)
    try:
        from e2espot.data.formats import read_labels
    except ImportError:
        read_labels = None
    if read_labels is not None:
        return read_labels(path, "spot")
    return _read_spot_json(path)


def _read_spot_json(path: Path) -> LabelSet:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelFormatError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LabelFormatError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise LabelFormatError(f"{path}: expected a list of videos, got {type(data).__name__}")
    videos = []
    for i, v in enumerate(data):
        if not isinstance(v, dict) or "video" not in v or not isinstance(v.get("events", []), list):
            raise LabelFormatError(f"{path}: entry #{i} needs 'video' and an 'events' list")
        fps = v.get("fps")
        fps = float(fps) if isinstance(fps, (int, float)) and fps > 0 else None
        n = v.get("num_frames")
        events = []
        for j, e in enumerate(v.get("events", [])):
            if not isinstance(e, dict) or "label" not in e or ("frame" not in e and "time_s" not in e):
                raise LabelFormatError(f"{path}: video '{v['video']}', event #{j}: needs 'frame' and 'label'")
            frame = e.get("frame")
            if frame is None:
                if fps is None:
                    raise LabelFormatError(f"{path}: video '{v['video']}', event #{j}: no frame and no fps")
                frame = int(float(e["time_s"]) * fps + 1e-6)
            if isinstance(frame, bool) or not isinstance(frame, (int, float)) or int(frame) != frame:
                raise LabelFormatError(
                    f"{path}: video '{v['video']}', event #{j}: frame {frame!r} is not an integer")
            score = e.get("score")
            known = {"frame", "label", "score", "time_s", "team", "visibility", "comment"}
            events.append(Event(int(frame), str(e["label"]),
                                float(score) if score is not None else None,
                                team=e.get("team"), visibility=e.get("visibility"), comment=e.get("comment"),
                                extra={k: val for k, val in e.items() if k not in known}))
        videos.append(VideoLabels(str(v["video"]), fps, int(n) if isinstance(n, int) and n >= 0 else None,
                                  events))
    return LabelSet(infer_classes(videos), videos)


def pick_video(labels: LabelSet, video_path: str | Path | None, source: str) -> VideoLabels:
    """The entry for ``video_path`` (matched by id, file name or stem), or the only entry."""
    if len(labels.videos) == 1:
        return labels.videos[0]
    if video_path is not None:
        p = Path(video_path)
        for v in labels.videos:
            if v.video in (str(p), p.name, p.stem) or Path(v.video).stem == p.stem:
                return v
    ids = ", ".join(v.video for v in labels.videos[:10])
    raise LabelFormatError(
        f"{source}: {len(labels.videos)} videos ({ids}{', ...' if len(labels.videos) > 10 else ''}); "
        "cannot tell which one belongs to the video. Pass a file with that one video"
    )


# --------------------------------------------------------------------------- CSV


def _fps(v: VideoLabels) -> float:
    if not v.fps:
        raise LabelFormatError(f"video '{v.video}': unknown fps; times cannot be computed (set 'fps')")
    return v.fps


def _team_fields(e: Event) -> dict[str, Any]:
    """``team`` and ``team_score`` of an event, when it has them (Team-BAS predictions)."""
    out: dict[str, Any] = {}
    if e.team is not None:
        out["team"] = e.team
    if e.extra.get(TEAM_SCORE_KEY) is not None:
        out[TEAM_SCORE_KEY] = float(e.extra[TEAM_SCORE_KEY])
    return out


def write_csv(videos: Iterable[VideoLabels], path: str | Path) -> Path:
    """One row per event: ``video,frame,time_s,label,score[,team[,team_score]]`` (time in seconds,
    3 decimals; empty score when unscored; the team columns only when some event has them), videos in
    the given order, events by frame."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    videos = list(videos)
    with_team = any(e.team is not None for v in videos for e in v.events)
    with_team_score = any(e.extra.get(TEAM_SCORE_KEY) is not None for v in videos for e in v.events)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_HEADER + ("team",) * with_team + (TEAM_SCORE_KEY,) * with_team_score)
        for v in videos:
            for e in sorted(v.events, key=lambda e: (e.frame, e.label)):
                time_s = f"{frame_to_time_s(e.frame, v.fps):.3f}" if v.fps else ""
                score = f"{e.score:.4f}" if e.score is not None else ""
                team = _team_fields(e)
                row = [v.video, e.frame, time_s, e.label, score]
                row += [team.get("team", "")] * with_team
                row += [f"{team[TEAM_SCORE_KEY]:.4f}" if TEAM_SCORE_KEY in team else ""] * with_team_score
                w.writerow(row)
    return path


# --------------------------------------------------------------------------- SoccerNet


def soccernet_results(videos: Sequence[VideoLabels], *, game: str | None = None,
                      half: int | None = None) -> dict[str, Any]:
    """SoccerNet ``results_spotting.json`` content for one game.

    Each video is one half: ``extra["half"]`` when present, else ``half`` (default 1). ``position``
    is integer ms, ``half`` an int, ``confidence`` a float; predictions sorted by half and position.
    """
    predictions = []
    for v in videos:
        h = int(v.extra.get("half", half or 1))
        fps = _fps(v)
        for e in v.events:
            position_ms = int(e.extra.get("position_ms", frame_to_position_ms(e.frame, fps)))
            predictions.append({
                "gameTime": position_ms_to_game_time(h, position_ms),
                "label": e.label,
                "position": position_ms,
                "half": h,
                "confidence": float(e.score if e.score is not None else 1.0),
                **_team_fields(e),  # Team-BAS: the evaluator reads "team" (left / right)
            })
    predictions.sort(key=lambda p: (p["half"], p["position"], p["label"]))
    url = game or (videos[0].extra.get("game") if videos else None) or (videos[0].video if videos else "")
    return {"UrlLocal": url, "predictions": predictions}


def write_soccernet_results(videos: Sequence[VideoLabels], path: str | Path, *, game: str | None = None,
                            half: int | None = None) -> Path:
    """Write ``soccernet_results(...)`` as JSON."""
    halves = [int(v.extra.get("half", half or 1)) for v in videos]
    if len(set(halves)) != len(halves):
        raise ConfigError(
            f"{len(videos)} videos map to halves {halves}; a results_spotting.json holds one game "
            "(one video per half). Export one game at a time, or set extra['half'] per video"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(soccernet_results(videos, game=game, half=half), indent=2) + "\n",
                    encoding="utf-8")
    return path


# --------------------------------------------------------------------------- chapters


def chapters(video: VideoLabels, *, last_s: float = 5.0) -> list[tuple[int, int, str]]:
    """``(start_ms, end_ms, title)`` per event time (events at the same ms share one chapter).

    A chapter ends where the next starts; the last ends at the video's end (``num_frames / fps``)
    or ``last_s`` seconds after its start when the length is unknown. Titles: ``label (score)``.
    """
    fps = _fps(video)
    by_ms: dict[int, list[Event]] = {}
    for e in sorted(video.events, key=lambda e: (e.frame, e.label)):
        by_ms.setdefault(frame_to_position_ms(e.frame, fps), []).append(e)
    starts = sorted(by_ms)
    end_ms = frame_to_position_ms(video.num_frames, fps) if video.num_frames else None
    out = []
    for i, start in enumerate(starts):
        if i + 1 < len(starts):
            end = starts[i + 1]
        else:
            end = end_ms if end_ms is not None and end_ms > start else start + int(last_s * 1000)
        title = " + ".join(f"{e.label} ({e.score:.2f})" if e.score is not None else e.label
                           for e in by_ms[start])
        out.append((start, end, title))
    return out


def _vtt_time(ms: int) -> str:
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def write_webvtt_chapters(video: VideoLabels, path: str | Path) -> Path:
    """WebVTT chapter track (``<track kind="chapters">``): one cue per chapter."""
    lines = ["WEBVTT", ""]
    for i, (start, end, title) in enumerate(chapters(video), 1):
        lines += [str(i), f"{_vtt_time(start)} --> {_vtt_time(end)}", title.replace("-->", "->"), ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _ffmeta_escape(text: str) -> str:
    for ch in ("\\", "=", ";", "#", "\n"):
        text = text.replace(ch, "\\" + ch)
    return text


def write_ffmetadata_chapters(video: VideoLabels, path: str | Path) -> Path:
    """FFmpeg metadata file; add the chapters with
    ``ffmpeg -i in.mp4 -i chapters.txt -map_metadata 1 -map_chapters 1 -c copy out.mp4``."""
    lines = [";FFMETADATA1", f"title={_ffmeta_escape(video.video)}", ""]
    for start, end, title in chapters(video):
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start}", f"END={end}",
                  f"title={_ffmeta_escape(title)}", ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_prediction_json(video: VideoLabels, path: str | Path) -> Path:
    """Our per-video prediction file: ``[{"video","fps","num_frames","events":[{frame,label,score,time_s}]}]``."""
    fps = video.fps
    events = [{"frame": e.frame, "label": e.label, "score": e.score,
               "time_s": round(frame_to_time_s(e.frame, fps), 6) if fps else None, **_team_fields(e)}
              for e in sorted(video.events, key=lambda e: (e.frame, e.label))]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"video": video.video, "fps": fps, "num_frames": video.num_frames,
                                 "events": events}], indent=2) + "\n", encoding="utf-8")
    return path

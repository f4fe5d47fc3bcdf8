"""Event exports: CSV, SoccerNet ``results_spotting.json``, chapters (WebVTT, ffmetadata).

The event files themselves are written by ``e2espot.data.formats.predictions`` (the one owner of the
CSV, prediction JSON and results_spotting.json layouts); this module keeps the export-side wrappers
(``--game`` / ``--half`` overrides, which video of a file) and the chapter outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from e2espot.data.formats.predictions import (
    read_predictions,
    results_spotting,
    write_prediction_csv,
    write_prediction_json,
    write_results_spotting,
)
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.data.timebase import frame_to_position_ms
from e2espot.errors import LabelFormatError

__all__ = [
    "chapters",
    "pick_video",
    "read_predictions",
    "soccernet_results",
    "write_csv",
    "write_ffmetadata_chapters",
    "write_prediction_json",
    "write_soccernet_results",
    "write_webvtt_chapters",
]


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


def write_csv(videos: Iterable[VideoLabels], path: str | Path) -> Path:
    """The events CSV (``data.formats.predictions.write_prediction_csv``: the ``csv`` format, events by
    frame), the same bytes ``predict`` writes for the same events."""
    return write_prediction_csv(list(videos), path)


# --------------------------------------------------------------------------- SoccerNet


def _one_game(videos: Sequence[VideoLabels], game: str | None, half: int | None) -> list[VideoLabels]:
    """Copies of ``videos`` with ``extra["game"] = game`` (when given) and ``extra["half"] = half`` where
    the video does not name its half."""
    out = []
    for v in videos:
        extra = dict(v.extra)
        if game is not None:
            extra["game"] = game
        if half is not None:
            extra.setdefault("half", half)
        out.append(dataclasses.replace(v, extra=extra))
    return out


def soccernet_results(videos: Sequence[VideoLabels], *, game: str | None = None,
                      half: int | None = None) -> dict[str, Any]:
    """SoccerNet ``results_spotting.json`` content for one game
    (``data.formats.soccernet_results.results_spotting``); ``game`` / ``half`` fill in what the videos
    do not say (the CLI's ``--game`` / ``--half``)."""
    return results_spotting(_one_game(videos, game, half))


def write_soccernet_results(videos: Sequence[VideoLabels], path: str | Path, *, game: str | None = None,
                            half: int | None = None) -> Path:
    """Write ``soccernet_results(...)`` to ``path``; ConfigError when the videos are not one game with
    one video per half."""
    return write_results_spotting(_one_game(videos, game, half), path)


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

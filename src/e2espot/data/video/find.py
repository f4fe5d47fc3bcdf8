"""Resolve a label video id to a video file or frame folder under a videos root."""

from __future__ import annotations

from pathlib import Path

from e2espot.errors import VideoError

FIND_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".avi", ".mov", ".webm")
# SoccerNet: one video per game (2024+) and two halves per game, best resolution last
_SOCCERNET_GAME_NAMES: tuple[str, ...] = ("224p", "720p", "video")
_SOCCERNET_HALF_SUFFIXES: tuple[str, ...] = ("224p", "720p")


def candidate_paths(videos_root: str | Path, video_id: str) -> list[Path]:
    """Every path ``find_video`` tries for ``video_id``, in order."""
    root = Path(videos_root)
    vid = str(video_id).strip("/")
    base = root / vid
    paths = [base]
    paths += [base.with_name(base.name + ext) for ext in FIND_EXTENSIONS]
    # SoccerNet game folder: <root>/<game>/{224p,720p,video}.{mp4,mkv}
    paths += [base / f"{name}{ext}" for name in _SOCCERNET_GAME_NAMES for ext in (".mp4", ".mkv")]
    # SoccerNet two halves: id "<game>/<half>" -> <root>/<game>/<half>_{224p,720p}.{mkv,mp4}
    parent, _, half = vid.rpartition("/")
    if parent and half.isdigit():
        paths += [root / parent / f"{half}_{res}{ext}"
                  for res in _SOCCERNET_HALF_SUFFIXES for ext in (".mkv", ".mp4")]
    return paths


def find_video(videos_root: str | Path, video_id: str) -> Path:
    """The file or frame folder of ``video_id`` under ``videos_root``; VideoError lists what was tried.

    Tried in order: ``<root>/<id>`` (frame folder or file), ``<root>/<id>.{mp4,mkv,avi,mov,webm}``,
    a SoccerNet game folder ``<root>/<id>/{224p,720p,video}.{mp4,mkv}`` and, for a two-halves id
    ``<game>/<half>``, ``<root>/<game>/<half>_{224p,720p}.{mkv,mp4}``.
    """
    root = Path(videos_root)
    if not root.is_dir():
        raise VideoError(f"videos root '{root}' is not a folder. Pass the folder that holds the videos")
    tried = candidate_paths(root, video_id)
    for path in tried:
        if path.is_file():
            return path
        if path.is_dir() and path == tried[0] and _looks_like_frame_folder(path):
            return path
    listing = "\n  ".join(str(p) for p in tried)
    raise VideoError(f"no video for id '{video_id}' under '{root}'. Tried:\n  {listing}\n"
                     "Check --videos (the root folder) and the ids in the label file")


def _looks_like_frame_folder(path: Path) -> bool:
    from e2espot.data.video.folder import SpotFolderReader, TDeedFolderReader

    return SpotFolderReader.accepts(path) or TDeedFolderReader.accepts(path)

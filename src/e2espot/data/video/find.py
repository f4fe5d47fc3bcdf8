"""Resolve a label video id to a video file or frame folder under a videos root."""

from __future__ import annotations

from pathlib import Path

from e2espot.data.video.base import VIDEO_EXTENSIONS
from e2espot.errors import VideoError

# SoccerNet video names, in the order tried (the one list: ``find_video`` and the soccernet label format).
# One video per game (2024+): <game>/<name>; two halves: <game>/<pattern with {half}>.
SOCCERNET_GAME_VIDEOS: tuple[str, ...] = (
    "224p.mp4", "720p.mp4", "224p.mkv", "720p.mkv", "video.mp4", "video.mkv")
SOCCERNET_HALF_VIDEOS: tuple[str, ...] = (
    "{half}_224p.mkv", "{half}_720p.mkv", "{half}_224p.mp4", "{half}_720p.mp4", "{half}.mkv", "{half}.mp4")


def soccernet_video(game_dir: Path, half: int | None) -> Path | None:
    """The video of one half (``half``) or of the whole game (``None``) in a SoccerNet game folder."""
    names = SOCCERNET_GAME_VIDEOS if half is None else [p.format(half=half) for p in SOCCERNET_HALF_VIDEOS]
    return next((game_dir / n for n in names if (game_dir / n).is_file()), None)


def candidate_paths(videos_root: str | Path, video_id: str) -> list[Path]:
    """Every path ``find_video`` tries for ``video_id``, in order."""
    root = Path(videos_root)
    vid = str(video_id).strip("/")
    base = root / vid
    paths = [base]
    paths += [base.with_name(base.name + ext) for ext in VIDEO_EXTENSIONS]
    # SoccerNet game folder: <root>/<game>/{224p,720p,video}.{mp4,mkv}
    paths += [base / name for name in SOCCERNET_GAME_VIDEOS]
    # SoccerNet two halves: id "<game>/<half>" -> <root>/<game>/<half>_{224p,720p}.{mkv,mp4}, <half>.{mkv,mp4}
    parent, _, half = vid.rpartition("/")
    if parent and half.isdigit():
        paths += [root / parent / p.format(half=half) for p in SOCCERNET_HALF_VIDEOS]
    return paths


def find_video(videos_root: str | Path, video_id: str) -> Path:
    """The file or frame folder of ``video_id`` under ``videos_root``; VideoError lists what was tried.

    Tried in order: ``<root>/<id>`` (frame folder or file), ``<root>/<id><ext>`` for every
    ``VIDEO_EXTENSIONS``, a SoccerNet game folder ``<root>/<id>/<SOCCERNET_GAME_VIDEOS>`` and, for a
    two-halves id ``<game>/<half>``, ``<root>/<game>/<SOCCERNET_HALF_VIDEOS>`` (``<half>_224p.mkv``, ...).
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

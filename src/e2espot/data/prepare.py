"""Re-encode videos once at the training fps and height, for fast exact seeks (an optimisation).

Each video becomes an H.264 .mp4 with a short GOP (``gop`` frames between keyframes, so a random
clip decodes at most ``gop - 1`` extra frames), or with ``jpeg=True`` a jhong93/spot frame folder
(``000000.jpg ...`` + ``fps.txt``). Relative sub-paths are kept, so SoccerNet trees stay SoccerNet
trees. Resumable: each output is written under a temporary name and renamed when complete;
finished outputs are skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from e2espot.data.video.base import VIDEO_EXTENSIONS
from e2espot.errors import ConfigError, VideoError

_PART = ".part"
_CHUNK_FRAMES = 64


@dataclass
class PrepareReport:
    """What one ``prepare_videos`` run did; ``bytes_written`` counts the outputs made in this run."""

    bytes_written: int = 0
    videos_done: int = 0
    videos_skipped: int = 0
    outputs: list[Path] = field(default_factory=list)


def list_videos(root: str | Path) -> list[Path]:
    """Video files under ``root`` (recursive, sorted), leaving out unfinished ``prepare`` outputs."""
    root = Path(root)
    return sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file() and _PART not in p.name
    )


def plan_outputs(video_paths_or_dir: str | Path | Iterable[str | Path], out_dir: str | Path, *,
                 jpeg: bool = False) -> list[tuple[Path, Path]]:
    """(source, output) pairs: sub-paths under a folder input are kept; files keep their name."""
    out_dir = Path(out_dir)
    if isinstance(video_paths_or_dir, (str, Path)):
        video_paths_or_dir = [video_paths_or_dir]
    pairs: list[tuple[Path, Path]] = []
    for item in video_paths_or_dir:
        item = Path(item)
        if item.is_dir():
            found = list_videos(item)
            if not found:
                raise VideoError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) under '{item}'")
            pairs += [(p, p.relative_to(item)) for p in found]
        elif item.is_file():
            pairs.append((item, Path(item.name)))
        else:
            raise VideoError(f"cannot prepare '{item}': no such file or folder")
    result, seen = [], {}
    for src, rel in pairs:
        dst = out_dir / (rel.with_suffix("") if jpeg else rel.with_suffix(".mp4"))
        if dst in seen:
            raise ConfigError(
                f"'{src}' and '{seen[dst]}' would both be prepared to '{dst}'; rename one of them"
            )
        seen[dst] = src
        result.append((src, dst))
    return result


def _temp_path(dst: Path) -> Path:
    # keep the extension last so the muxer is chosen from it: .clip.part.mp4
    return dst.with_name(f".{dst.stem}{_PART}{dst.suffix}")


def _tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def prepare_one(src: str | Path, dst: str | Path, *, fps: float | None, height: int | None, gop: int = 8,
                jpeg: bool = False, crf: int = 20, jpeg_quality: int = 90, threads: int = 2) -> int:
    """Re-encode one video to ``dst`` (atomically: temporary name, then rename); return bytes written."""
    from e2espot.data.video.base import open_video

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open_video(src, fps=fps, height=height, threads=threads) as reader:
        if reader.fps is None:
            raise ConfigError(f"'{src}' has no known frame rate (no fps.txt); pass fps")
        if jpeg:
            from PIL import Image

            tmp = dst.with_name(dst.name + _PART)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            for start, chunk in reader.iter_chunks(_CHUNK_FRAMES):
                for i, frame in enumerate(chunk):
                    Image.fromarray(frame).save(tmp / f"{start + i:06d}.jpg", quality=jpeg_quality)
            (tmp / "fps.txt").write_text(f"{reader.fps:g}\n")
        else:
            from e2espot.data.video.writer import VideoWriter

            if reader.width % 2 or reader.height % 2:
                raise ConfigError(
                    f"cannot encode '{src}' at {reader.width}x{reader.height}: H.264 needs an even width "
                    "and height; pass an even height (or use jpeg=True)"
                )
            tmp = _temp_path(dst)
            with VideoWriter(tmp, reader.fps, reader.width, reader.height, gop=gop, crf=crf,
                             threads=threads) as writer:
                for _, chunk in reader.iter_chunks(_CHUNK_FRAMES):
                    writer.write_many(chunk)
    os.replace(tmp, dst)
    return _tree_bytes(dst)


def prepare_videos(video_paths_or_dir: str | Path | Iterable[str | Path], out_dir: str | Path, *,
                   fps: float | None, height: int | None, gop: int = 8, jpeg: bool = False, jobs: int = 1,
                   crf: int = 20, progress: Callable[[Path, str], None] | None = None) -> PrepareReport:
    """Re-encode every video once at ``fps`` / ``height`` into ``out_dir`` (see module docstring).

    ``fps`` / ``height`` None keep the source's. ``jobs`` > 1 runs that many processes.
    ``progress(src, status)`` is called per video with status ``"done"`` or ``"skipped"``.
    """
    if fps is not None and not fps > 0:
        raise ConfigError(f"fps must be > 0, got {fps}")
    if height is not None and height < 2:
        raise ConfigError(f"height must be >= 2 pixels, got {height}")
    if not jpeg and height is not None and height % 2:
        raise ConfigError(f"height {height} is odd; H.264 needs an even height (e.g. {height + 1})")
    if gop < 1:
        raise ConfigError(f"gop must be >= 1 frame, got {gop}")
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    report = PrepareReport()
    todo = []
    for src, dst in plan_outputs(video_paths_or_dir, out_dir, jpeg=jpeg):
        report.outputs.append(dst)
        if dst.exists():
            report.videos_skipped += 1
            if progress:
                progress(src, "skipped")
        else:
            todo.append((src, dst))
    opts = dict(fps=fps, height=height, gop=gop, jpeg=jpeg, crf=crf)

    def finished(src: Path, num_bytes: int) -> None:
        report.bytes_written += num_bytes
        report.videos_done += 1
        if progress:
            progress(src, "done")

    if jobs == 1 or len(todo) <= 1:
        for src, dst in todo:
            finished(src, prepare_one(src, dst, threads=2, **opts))
        return report

    import multiprocessing

    # spawn: never fork a parent that may hold decoder / torch threads
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(prepare_one, src, dst, threads=1, **opts): src for src, dst in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in done:
                if fut.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise fut.exception()
                finished(futures[fut], fut.result())
    return report

"""Re-encode videos once at the training fps and height, for fast exact seeks (an optimisation).

Each video becomes an H.264 .mp4 with a short GOP (``gop`` frames between keyframes, so a random
clip decodes at most ``gop - 1`` extra frames), or with ``jpeg=True`` a jhong93/spot frame folder
(``000000.jpg ...`` + ``fps.txt``). Relative sub-paths are kept, so SoccerNet trees stay SoccerNet
trees. Resumable: each output is written under a temporary name and renamed when complete;
finished outputs are skipped.

A folder is prepared as a batch: a video that fails (corrupt, unsupported, unreadable) is recorded
in ``PrepareReport.failures`` with its error and the others go on. Frames come out upright (display
rotation applied, no rotation stored in the output). An odd source width or height (H.264 4:2:0
needs even sizes) is rounded down to even by dropping the last pixel column / row, with a note in
``PrepareReport.notes``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from e2espot.data.video.base import VIDEO_EXTENSIONS
from e2espot.errors import ConfigError, E2ESpotError, VideoError

_PART = ".part"
_CHUNK_FRAMES = 64


@dataclass
class PrepareReport:
    """What one ``prepare_videos`` run did; ``bytes_written`` counts the outputs made in this run.

    ``failures``: (source, error message) per video that could not be prepared (no output written);
    ``notes``: one line per adjustment made (odd frame sizes rounded to even).
    """

    bytes_written: int = 0
    videos_done: int = 0
    videos_skipped: int = 0
    outputs: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def videos_failed(self) -> int:
        return len(self.failures)


@dataclass(frozen=True)
class PreparedVideo:
    """One output of ``prepare_one``: its size and any note (e.g. an odd size rounded to even)."""

    bytes_written: int
    notes: tuple[str, ...] = ()


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
    return prepare_video(src, dst, fps=fps, height=height, gop=gop, jpeg=jpeg, crf=crf,
                         jpeg_quality=jpeg_quality, threads=threads).bytes_written


def prepare_video(src: str | Path, dst: str | Path, *, fps: float | None, height: int | None, gop: int = 8,
                  jpeg: bool = False, crf: int = 20, jpeg_quality: int = 90,
                  threads: int = 2) -> PreparedVideo:
    """``prepare_one`` that also returns its notes. On an error nothing is left at ``dst`` or its
    temporary name, and the error (``VideoError`` / ``ConfigError``) propagates."""
    from e2espot.data.video.base import open_video

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + _PART) if jpeg else _temp_path(dst)
    notes: list[str] = []
    try:
        with open_video(src, fps=fps, height=height, threads=threads) as reader:
            if reader.fps is None:
                raise ConfigError(f"'{src}' has no known frame rate (no fps.txt); pass fps")
            if jpeg:
                _write_jpeg_folder(reader, tmp, jpeg_quality)
            else:
                width, out_height = reader.width - reader.width % 2, reader.height - reader.height % 2
                if width < 2 or out_height < 2:
                    raise VideoError(f"cannot encode '{src}': {reader.width}x{reader.height} is too small")
                if (width, out_height) != (reader.width, reader.height):
                    notes.append(
                        f"'{src}': {reader.width}x{reader.height} has an odd side; encoded at "
                        f"{width}x{out_height} (last pixel column/row dropped: H.264 needs even sizes)"
                    )
                _write_mp4(reader, tmp, width, out_height, gop=gop, crf=crf, threads=threads)
        os.replace(tmp, dst)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
    return PreparedVideo(_tree_bytes(dst), tuple(notes))


def _write_jpeg_folder(reader, tmp: Path, jpeg_quality: int) -> None:
    from PIL import Image

    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for start, chunk in reader.iter_chunks(_CHUNK_FRAMES):
        for i, frame in enumerate(chunk):
            Image.fromarray(frame).save(tmp / f"{start + i:06d}.jpg", quality=jpeg_quality)
    (tmp / "fps.txt").write_text(f"{reader.fps:g}\n")


def _write_mp4(reader, tmp: Path, width: int, height: int, *, gop: int, crf: int, threads: int) -> None:
    from e2espot.data.video.writer import VideoWriter

    with VideoWriter(tmp, reader.fps, width, height, gop=gop, crf=crf, threads=threads) as writer:
        for _, chunk in reader.iter_chunks(_CHUNK_FRAMES):
            if chunk.shape[1:3] != (height, width):
                chunk = chunk[:, :height, :width]
            writer.write_many(chunk)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, E2ESpotError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc} (unexpected; please report it with the file if it is not corrupt)"


def prepare_videos(video_paths_or_dir: str | Path | Iterable[str | Path], out_dir: str | Path, *,
                   fps: float | None, height: int | None, gop: int = 8, jpeg: bool = False, jobs: int = 1,
                   crf: int = 20, progress: Callable[[Path, str], None] | None = None) -> PrepareReport:
    """Re-encode every video once at ``fps`` / ``height`` into ``out_dir`` (see module docstring).

    ``fps`` / ``height`` None keep the source's. ``jobs`` > 1 runs that many processes.
    ``progress(src, status)`` is called per video with status ``"done"``, ``"skipped"`` or ``"failed"``.
    A video that fails does not stop the others: see ``PrepareReport.failures`` (options that are
    wrong for every video still raise ``ConfigError`` up front).
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

    def finished(src: Path, dst: Path, result: PreparedVideo | None, exc: BaseException | None) -> None:
        if exc is not None:
            report.failures.append((src, _describe(exc)))
            report.outputs.remove(dst)
            if progress:
                progress(src, "failed")
            return
        report.bytes_written += result.bytes_written
        report.videos_done += 1
        report.notes.extend(result.notes)
        if progress:
            progress(src, "done")

    if jobs == 1 or len(todo) <= 1:
        for src, dst in todo:
            try:
                result = prepare_video(src, dst, threads=2, **opts)
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch; listed
                finished(src, dst, None, exc)
            else:
                finished(src, dst, result, None)
        return report

    import multiprocessing

    # spawn: never fork a parent that may hold decoder / torch threads
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(prepare_video, src, dst, threads=1, **opts): (src, dst) for src, dst in todo}
        for fut in as_completed(futures):
            src, dst = futures[fut]
            exc = fut.exception()
            finished(src, dst, None if exc is not None else fut.result(), exc)
    return report

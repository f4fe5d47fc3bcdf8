"""The abstract ``VideoReader``, the backend registry, ``open_video`` and ``probe_video``.

A backend is a ``VideoReader`` subclass registered with ``@register_backend(name)``; it says which
paths it accepts (``accepts``) and reads frames as (n, H, W, 3) uint8 RGB. Resampling to a target
fps and resizing to a target height happen inside the reader, so every caller sees frames at the
training fps and size. Frames are 0-based.
"""

from __future__ import annotations

import abc
import gc
import math
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from e2espot.errors import ConfigError, VideoError, unknown_name

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")

# the resampling epsilon: output times within this many seconds of a source frame start show that frame
_TIME_EPS_S = 1e-6


@dataclass(frozen=True)
class VideoInfo:
    """Cheap facts about a video (from container metadata; ``num_frames`` may be an estimate).

    ``width`` / ``height`` are the displayed (upright) size; ``rotation`` is the display rotation in
    degrees counter-clockwise (0, 90, 180, 270) that readers apply to the stored frames, ``mirrored``
    a left-right flip applied after it (both from the stream's display matrix).
    """

    fps: float | None
    num_frames: int
    width: int
    height: int
    duration_s: float | None
    has_audio: bool
    rotation: int = 0
    mirrored: bool = False


class VideoReader(abc.ABC):
    """Random-access reader of RGB frames, after resampling to ``fps`` and resizing.

    ``fps``, ``num_frames``, ``width``, ``height`` describe the frames returned; ``src_fps`` and
    ``src_num_frames`` describe the source. Readers are picklable: the open decoder is dropped and
    re-opened lazily in the new process.
    """

    backend_name: ClassVar[str] = ""
    # lower runs first when open_video picks a backend for a path
    priority: ClassVar[int] = 100

    path: Path
    fps: float | None
    num_frames: int
    width: int
    height: int
    src_fps: float | None
    src_num_frames: int

    @classmethod
    @abc.abstractmethod
    def accepts(cls, path: Path) -> bool:
        """Whether this backend can read ``path`` (cheap: file type / folder layout only)."""

    @abc.abstractmethod
    def read_clip(self, start: int, num: int) -> np.ndarray:
        """Frames ``start .. start + num - 1`` as a (num, H, W, 3) uint8 RGB array."""

    def close(self) -> None:
        """Release the decoder (the reader re-opens it lazily if used again)."""

    # --- shared behaviour -------------------------------------------------------------------------

    def _check_range(self, start: int, num: int) -> None:
        if num < 0 or start < 0 or start + num > self.num_frames:
            fps_txt = f" at {self.fps:g} fps" if self.fps else ""
            raise VideoError(
                f"'{self.path}': clip of {num} frames from frame {start} is out of range: the video has "
                f"{self.num_frames} frames{fps_txt} (0..{self.num_frames - 1}). "
                "Clamp or pad the clip in the caller."
            )

    def iter_chunks(self, chunk_len: int, start: int = 0, stop: int | None = None
                    ) -> Iterator[tuple[int, np.ndarray]]:
        """Stream frames ``[start, stop)`` as ``(start_idx, (n, H, W, 3) array)`` chunks of ``chunk_len``."""
        if chunk_len < 1:
            raise ConfigError(f"chunk_len must be >= 1, got {chunk_len}")
        stop = self.num_frames if stop is None else stop
        self._check_range(start, max(0, stop - start))
        for idx in range(start, stop, chunk_len):
            yield idx, self.read_clip(idx, min(chunk_len, stop - idx))

    @property
    def frame_times_s(self) -> np.ndarray:
        """(num_frames,) float64: presentation time in seconds of each frame returned (``k / fps`` here;
        the PyAV backend gives true timestamps for variable-frame-rate files read at native rate)."""
        if not self.fps:
            raise VideoError(f"'{self.path}': unknown frame rate, so frame times are unknown; pass fps")
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield frames ``[start, stop)`` one by one as (H, W, 3) uint8 arrays, sequentially decoded."""
        for _, chunk in self.iter_chunks(16, start, stop):
            yield from chunk

    def __len__(self) -> int:
        return self.num_frames

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}('{self.path}', fps={self.fps}, num_frames={self.num_frames}, "
                f"size={self.width}x{self.height})")


# --- registry --------------------------------------------------------------------------------------

_BACKENDS: dict[str, type[VideoReader]] = {}


def register_backend(name: str):
    """Class decorator: register a ``VideoReader`` subclass under ``name``."""

    def deco(cls: type[VideoReader]) -> type[VideoReader]:
        cls.backend_name = name
        _BACKENDS[name] = cls
        return cls

    return deco


def list_backends() -> list[str]:
    """Registered backend names, in the order ``open_video`` tries them."""
    _load_backends(optional=True)
    return [name for name, _ in sorted(_BACKENDS.items(), key=lambda kv: kv[1].priority)]


def _load_backends(optional: bool = False) -> None:
    """Import the backend modules (importing registers them); optional ones only when asked."""
    from e2espot.data.video import folder, pyav_backend  # noqa: F401

    if not optional:
        return
    try:
        from e2espot.data.video import opencv_backend  # noqa: F401
    except ImportError:
        pass


def open_video(path: str | Path, *, fps: float | None = None, height: int | None = None,
               width: int | None = None, threads: int = 2, backend: str | None = None) -> VideoReader:
    """Open a video file (PyAV) or a frame folder, resampled to ``fps`` and resized.

    ``height`` alone keeps the aspect ratio (width rounded to even); ``width`` and ``height`` give a
    fixed size. ``backend`` forces one registered backend (see ``list_backends``).
    """
    _load_backends()
    path = Path(path)
    if fps is not None and not fps > 0:
        raise ConfigError(f"fps must be > 0, got {fps}")
    for name, value in (("height", height), ("width", width)):
        if value is not None and value < 2:
            raise ConfigError(f"{name} must be >= 2 pixels, got {value}")
    if not path.exists():
        raise VideoError(f"cannot open '{path}': no such file or folder. Check the path "
                         "(videos root + video id, see find_video)")
    if path.is_dir():
        from e2espot.data.video.folder import list_folder

        list_folder(path)  # permission problems get their own message
    if backend is not None:
        if backend not in _BACKENDS:
            _load_backends(optional=True)
        if backend not in _BACKENDS:
            raise unknown_name("video backend", backend, _BACKENDS)
        cls = _BACKENDS[backend]
    else:
        cls = next((c for c in sorted(_BACKENDS.values(), key=lambda c: c.priority) if c.accepts(path)), None)
        if cls is None:
            what = "folder" if path.is_dir() else "file"
            raise VideoError(
                f"cannot open '{path}': no backend reads this {what}. Expected a video file "
                f"({', '.join(VIDEO_EXTENSIONS)}) or a frame folder of 000000.jpg (jhong93/spot) or "
                "frame0.jpg (T-DEED) images"
            )
    return cls(path, fps=fps, height=height, width=width, threads=threads)


def probe_video(path: str | Path) -> VideoInfo:
    """Cheap facts about a video file or frame folder, without decoding or indexing it."""
    path = Path(path)
    _load_backends()
    if path.is_dir():
        from e2espot.data.video.folder import probe_folder

        return probe_folder(path)
    from e2espot.data.video.pyav_backend import probe_file

    return probe_file(path)


# --- fork safety (DataLoader workers) -------------------------------------------------------------
# A decoder's worker threads do not exist in a forked child, and freeing such a decoder there waits for
# them forever. So every open reader is closed in the parent just before a fork (readers re-open lazily,
# a seek later), and any decoder that still reaches a child is kept referenced there, never freed.
_LIVE_READERS: weakref.WeakSet = weakref.WeakSet()
_FORK_INHERITED: list = []


def track_open_reader(reader: VideoReader) -> None:
    """Register a reader that holds an open decoder, to be closed before any fork."""
    _LIVE_READERS.add(reader)


def keep_inherited(handle: object) -> None:
    """Keep a decoder inherited through fork alive for the life of this process (never free it)."""
    _FORK_INHERITED.append(handle)


def _close_readers_before_fork() -> None:
    readers = list(_LIVE_READERS)
    for reader in readers:
        reader.close()
    if readers:
        gc.collect()  # PyAV objects hold reference cycles: free the codec contexts now, in the parent


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_readers_before_fork)


# --- helpers shared by backends --------------------------------------------------------------------

def output_size(src_width: int, src_height: int, height: int | None, width: int | None) -> tuple[int, int]:
    """(width, height) after resizing: fixed when both given, else aspect kept and rounded to even."""
    if height is not None and width is not None:
        return int(width), int(height)
    if height is not None:
        return max(2, 2 * round(src_width * height / src_height / 2)), int(height)
    if width is not None:
        return int(width), max(2, 2 * round(src_height * width / src_width / 2))
    return src_width, src_height


def resample_indices(times_s: np.ndarray, duration_s: float, fps: float, *,
                     tolerance_s: float = _TIME_EPS_S) -> np.ndarray:
    """For each output frame k (shown at k / fps), the source frame showing then.

    ``times_s`` are the source frames' start times (ascending, first = 0); the output covers
    ``[0, duration_s)``. The source frame is the latest one starting at or before k / fps; a
    source frame starting up to ``tolerance_s`` later counts as starting then (timestamps rounded
    to the container's time base, e.g. 1 ms in Matroska).
    """
    num_out = max(1, int(math.ceil(duration_s * fps - 1e-6)))
    out_times_s = np.arange(num_out, dtype=np.float64) / fps
    src = np.searchsorted(times_s, out_times_s + tolerance_s, side="right") - 1
    return np.clip(src, 0, len(times_s) - 1).astype(np.int64)


def same_rate(fps: float, src_fps: float | None) -> bool:
    """Whether a requested ``fps`` is the source rate (29.97 asked of a 30000/1001 video: no resampling)."""
    return src_fps is not None and abs(fps / src_fps - 1) < 1e-4

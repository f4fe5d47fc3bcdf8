"""Frame-folder backends: existing extracted datasets read unchanged.

* ``spot`` (jhong93/spot): ``<video>/000000.jpg, 000001.jpg, ...`` (0-based, contiguous) and an
  optional ``fps.txt`` holding the frame rate as a float.
* ``tdeed`` (T-DEED): ``<video>/frame{N}.jpg`` without zero padding; N may start at an offset.
  Frame 0 of the reader is the smallest N (``frame_offset`` keeps it).

A folder without ``fps.txt`` is assumed to be at the requested ``fps`` (frames are usually extracted
at the training rate); with neither, ``fps`` is None. A missing frame is an error, never padded.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np

from e2espot.data.video.base import (
    VideoInfo,
    VideoReader,
    output_size,
    register_backend,
    resample_indices,
    same_rate,
)
from e2espot.errors import VideoError

FPS_FILE = "fps.txt"


def list_folder(path: Path) -> list[str]:
    """File names in a frame folder, or VideoError with the fix."""
    try:
        return os.listdir(path)
    except PermissionError as exc:
        raise VideoError(
            f"cannot read frame folder '{path}': permission denied. Fix it: chmod -R u+rX '{path}'"
        ) from exc
    except NotADirectoryError as exc:
        raise VideoError(f"cannot read frame folder '{path}': not a folder") from exc
    except OSError as exc:
        raise VideoError(f"cannot read frame folder '{path}': {exc.strerror or exc}") from exc


def read_fps_file(path: Path) -> float | None:
    """The frame rate in ``<folder>/fps.txt``, or None when the file is absent."""
    fps_path = path / FPS_FILE
    if not fps_path.is_file():
        return None
    text = fps_path.read_text().strip()
    try:
        fps = float(text)
    except ValueError:
        fps = float("nan")
    if not fps > 0:
        raise VideoError(
            f"'{fps_path}': expected a positive frame rate such as 25.0, found {text!r}. Fix or delete it"
        )
    return fps


class _FrameFolderReader(VideoReader):
    """Shared logic of the frame-folder layouts; subclasses give the file-name pattern."""

    pattern: ClassVar[re.Pattern[str]]
    priority = 20

    @classmethod
    def name_of(cls, number: int) -> str:
        raise NotImplementedError

    @classmethod
    def accepts(cls, path: Path) -> bool:
        if not path.is_dir():
            return False
        try:
            with os.scandir(path) as it:
                return any(cls.pattern.match(entry.name) for entry in it)
        except OSError:
            return False

    @classmethod
    def scan(cls, path: Path) -> np.ndarray:
        """Sorted frame numbers found in the folder; VideoError if any is missing."""
        numbers = sorted(int(m.group(1)) for m in map(cls.pattern.match, list_folder(path)) if m)
        if not numbers:
            raise VideoError(f"cannot read frame folder '{path}': no {cls.name_of(0)}-style frames in it")
        arr = np.asarray(numbers, dtype=np.int64)
        first = cls.first_number(arr)
        expected = np.arange(first, first + len(arr), dtype=np.int64)
        if not np.array_equal(arr, expected):
            gap = int(np.flatnonzero(arr != expected)[0])
            missing = int(expected[gap])
            raise VideoError(
                f"frame folder '{path}': frame {cls.name_of(missing)} is missing ({len(arr)} frames found, "
                f"{cls.name_of(first)}..{cls.name_of(int(arr[-1]))}); missing frames are never padded. "
                "Extract the frames again"
            )
        return arr

    @classmethod
    def first_number(cls, numbers: np.ndarray) -> int:
        return int(numbers[0])

    def __init__(self, path: str | Path, *, fps: float | None = None, height: int | None = None,
                 width: int | None = None, threads: int = 2) -> None:
        from PIL import Image

        self.path = Path(path)
        self.threads = max(1, int(threads))
        self._pool: ThreadPoolExecutor | None = None
        self._pid = os.getpid()
        numbers = self.scan(self.path)
        self.frame_offset = int(numbers[0])
        self.src_num_frames = len(numbers)
        file_fps = read_fps_file(self.path)
        self.src_fps = file_fps if file_fps is not None else fps
        first = self.path / self.name_of(self.frame_offset)
        try:
            with Image.open(first) as im:
                self.src_width, self.src_height = im.size
        except OSError as exc:
            raise VideoError(f"cannot read frame '{first}': {exc}. Extract the frames again") from exc
        self.width, self.height = output_size(self.src_width, self.src_height, height, width)
        if fps is None or self.src_fps is None or same_rate(fps, self.src_fps):
            self.fps = self.src_fps
            self._out_src: np.ndarray | None = None
            self.num_frames = self.src_num_frames
        else:
            self.fps = float(fps)
            times_s = np.arange(self.src_num_frames, dtype=np.float64) / self.src_fps
            self._out_src = resample_indices(times_s, self.src_num_frames / self.src_fps, self.fps)
            self.num_frames = len(self._out_src)

    def source_frame(self, frame_idx: int) -> int:
        """Index (relative to ``frame_offset``) of the source frame that output frame ``frame_idx`` shows."""
        return int(frame_idx if self._out_src is None else self._out_src[frame_idx])

    def _load(self, src_idx: int) -> np.ndarray:
        from PIL import Image

        frame_path = self.path / self.name_of(self.frame_offset + src_idx)
        try:
            with Image.open(frame_path) as im:
                if im.size != (self.width, self.height):
                    im.draft("RGB", (self.width, self.height))  # JPEG DCT scaling: cheap downscale
                im = im.convert("RGB")
                if im.size != (self.width, self.height):
                    im = im.resize((self.width, self.height), Image.BILINEAR)
                return np.asarray(im)
        except FileNotFoundError as exc:
            raise VideoError(f"frame folder '{self.path}': frame {frame_path.name} is missing (deleted after "
                             "opening?); missing frames are never padded. Extract the frames again") from exc
        except OSError as exc:
            raise VideoError(f"cannot read frame '{frame_path}': {exc}. Extract the frames again") from exc

    def read_clip(self, start: int, num: int) -> np.ndarray:
        self._check_range(start, num)
        out = np.empty((num, self.height, self.width, 3), dtype=np.uint8)
        if num == 0:
            return out
        need = np.arange(start, start + num) if self._out_src is None else self._out_src[start:start + num]
        unique, inverse = np.unique(need, return_inverse=True)
        if self.threads > 1 and len(unique) > 1:
            if self._pool is not None and self._pid != os.getpid():
                self._pool = None  # threads do not survive fork (DataLoader workers)
            if self._pool is None:
                self._pid = os.getpid()
                self._pool = ThreadPoolExecutor(max_workers=self.threads)
            frames = list(self._pool.map(self._load, unique.tolist()))
        else:
            frames = [self._load(int(i)) for i in unique]
        for j, u in enumerate(inverse.reshape(-1)):
            out[j] = frames[u]
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_pool"] = None
        return state


@register_backend("spot")
class SpotFolderReader(_FrameFolderReader):
    """jhong93/spot frame folder: ``000000.jpg, 000001.jpg, ...`` (+ optional fps.txt)."""

    pattern = re.compile(r"^(\d{6,})\.jpg$")
    priority = 20

    @classmethod
    def name_of(cls, number: int) -> str:
        return f"{number:06d}.jpg"

    @classmethod
    def first_number(cls, numbers: np.ndarray) -> int:
        return 0  # 0-based: a missing 000000.jpg is a missing frame


@register_backend("tdeed")
class TDeedFolderReader(_FrameFolderReader):
    """T-DEED frame folder: ``frame{N}.jpg`` without padding, from any first N (``frame_offset``)."""

    pattern = re.compile(r"^frame(\d+)\.jpg$")
    priority = 21

    @classmethod
    def name_of(cls, number: int) -> str:
        return f"frame{number}.jpg"


def probe_folder(path: Path) -> VideoInfo:
    """Frame count, fps (fps.txt) and size of a frame folder, without decoding it."""
    from PIL import Image

    for cls in (SpotFolderReader, TDeedFolderReader):
        if cls.accepts(path):
            numbers = cls.scan(path)
            fps = read_fps_file(path)
            first = path / cls.name_of(int(numbers[0]))
            try:
                with Image.open(first) as im:
                    width, height = im.size
            except OSError as exc:
                raise VideoError(f"cannot read frame '{first}': {exc}. Extract the frames again") from exc
            return VideoInfo(fps=fps, num_frames=len(numbers), width=width, height=height,
                             duration_s=len(numbers) / fps if fps else None, has_audio=False)
    list_folder(path)
    raise VideoError(
        f"cannot read frame folder '{path}': no 000000.jpg (jhong93/spot) or frame0.jpg (T-DEED) frames in it"
    )

"""Optional OpenCV backend (``backend="opencv"``), registered only when ``cv2`` imports.

Never picked automatically (PyAV is exact on every input); choose it explicitly where OpenCV's
decoder is faster (small constant-frame-rate videos). Frame positions come from OpenCV's frame
counter, so it assumes a constant frame rate; variable-frame-rate files need the PyAV backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2  # noqa: F401  (ImportError here keeps the backend unregistered)
import numpy as np

from e2espot.data.video.base import (
    VideoReader,
    keep_inherited,
    output_size,
    register_backend,
    resample_indices,
    same_rate,
    track_open_reader,
)
from e2espot.errors import VideoError


@register_backend("opencv")
class OpenCVReader(VideoReader):
    """cv2.VideoCapture reader: seeks with CAP_PROP_POS_FRAMES, streams without re-seeking."""

    priority = 50

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return False  # explicit choice only

    def __init__(self, path: str | Path, *, fps: float | None = None, height: int | None = None,
                 width: int | None = None, threads: int = 2) -> None:
        from e2espot.data.video.pyav_backend import _check_file

        self.path = Path(path)
        self.threads = threads
        _check_file(self.path)
        self._cap = None
        self._pid = os.getpid()
        self._next_pos: int | None = None
        cap = self._open()
        try:
            self.src_fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
            self.src_num_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            self.src_width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            self.src_height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        except BaseException:
            cap.release()
            raise
        if self.src_num_frames <= 0 or not self.src_fps or self.src_width <= 0:
            cap.release()
            raise VideoError(f"cannot decode '{self.path}' with OpenCV: no frame count, rate or size in its "
                             "header. Use the default PyAV backend")
        self._cap = cap
        track_open_reader(self)
        self.width, self.height = output_size(self.src_width, self.src_height, height, width)
        if fps is None or same_rate(fps, self.src_fps):
            self.fps, self._out_src, self.num_frames = self.src_fps, None, self.src_num_frames
        else:
            self.fps = float(fps)
            times_s = np.arange(self.src_num_frames, dtype=np.float64) / self.src_fps
            self._out_src = resample_indices(times_s, self.src_num_frames / self.src_fps, self.fps)
            self.num_frames = len(self._out_src)

    def _open(self):
        cv2.setNumThreads(max(1, int(self.threads)))
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_N_THREADS, max(1, int(self.threads))])
        if not cap.isOpened():
            raise VideoError(f"cannot open '{self.path}' with OpenCV. Use the default PyAV backend, or "
                             f"re-encode it: ffmpeg -i {self.path.name} -c:v libx264 "
                             f"{self.path.stem}_fixed.mp4")
        return cap

    def _convert(self, bgr: np.ndarray) -> np.ndarray:
        if bgr.shape[:2] != (self.height, self.width):
            bgr = cv2.resize(bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def read_clip(self, start: int, num: int) -> np.ndarray:
        self._check_range(start, num)
        out = np.empty((num, self.height, self.width, 3), dtype=np.uint8)
        if num == 0:
            return out
        need = np.arange(start, start + num) if self._out_src is None else self._out_src[start:start + num]
        if self._cap is not None and self._pid != os.getpid():
            keep_inherited(self._cap)  # inherited through fork: open our own, never free this one
            self._cap, self._next_pos = None, None
        if self._cap is None:
            self._cap, self._next_pos, self._pid = self._open(), None, os.getpid()
            track_open_reader(self)
        first = int(need[0])
        if self._next_pos is None or self._next_pos > first:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, first)
            self._next_pos = first
        j = 0
        while j < num:
            pos = self._next_pos
            if pos < int(need[j]):
                ok = self._cap.grab()  # skip without converting
                arr = None
            else:
                ok, bgr = self._cap.read()
                arr = self._convert(bgr) if ok else None
            if not ok:
                self._next_pos = None
                raise VideoError(
                    f"cannot decode '{self.path}': OpenCV stopped before source frame {int(need[j])} of "
                    f"{self.src_num_frames}. The file is truncated or corrupt, or its frame count is wrong; "
                    "use the default PyAV backend"
                )
            self._next_pos = pos + 1
            while arr is not None and j < num and need[j] == pos:
                out[j] = arr
                j += 1
        return out

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap, self._next_pos = None, None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cap"], state["_next_pos"] = None, None
        return state

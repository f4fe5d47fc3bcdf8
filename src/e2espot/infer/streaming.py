"""Streaming pieces of inference: a decode thread that reads ahead into a bounded queue, and a
ring buffer of frames from which sliding windows are cut. Memory is flat in the video's length."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from e2espot.errors import VideoError

Chunk = tuple[int, np.ndarray]  # (start frame_idx, (n, H, W, 3) uint8)


def iter_reader_chunks(reader: Any, chunk_len: int) -> Iterator[Chunk]:
    """Chunks of consecutive frames from a video reader, using the best method it offers:
    ``iter_chunks`` (preferred), else ``iter_frames`` grouped into chunks."""
    if hasattr(reader, "iter_chunks"):
        yield from reader.iter_chunks(chunk_len, start=0, stop=None)
        return
    if hasattr(reader, "iter_frames"):
        buf: list[np.ndarray] = []
        start = 0
        for frame in reader.iter_frames(0, None):
            buf.append(frame)
            if len(buf) == chunk_len:
                yield start, np.stack(buf)
                start += len(buf)
                buf = []
        if buf:
            yield start, np.stack(buf)
        return
    raise VideoError(
        f"{type(reader).__name__} is not a video reader: it has neither iter_chunks nor iter_frames"
    )


class ChunkProducer:
    """Decode in a background thread, ``max_chunks`` chunks ahead at most.

    PyAV releases the GIL while decoding, so decoding overlaps the model's forward pass. Errors in
    the thread are re-raised in the consumer. Use as a context manager so the thread always stops.
    """

    _END = object()

    def __init__(self, reader: Any, chunk_len: int, max_chunks: int = 2) -> None:
        self._reader = reader
        self._chunk_len = chunk_len
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, max_chunks))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2espot-decode", daemon=True)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for chunk in iter_reader_chunks(self._reader, self._chunk_len):
                if not self._put(chunk):
                    return
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)

    def __enter__(self) -> ChunkProducer:
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def __exit__(self, *exc: Any) -> None:
        self.close()


class FrameRing:
    """The most recent frames of a stream, addressed by absolute frame index.

    Frames ``[first, end)`` are held; frame ``i`` lives at slot ``i % capacity``. ``append`` adds
    consecutive frames at ``end``; ``discard_before`` forgets old ones. The buffer only grows when
    a caller holds more than ``capacity`` frames at once (never in ``predict_scores``' schedule).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._buf: np.ndarray | None = None  # (capacity, H, W, 3) uint8, allocated on first append
        self.first = 0
        self.end = 0
        self.peak = 0  # most frames ever held, for tests and benchmarks

    def __len__(self) -> int:
        return self.end - self.first

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """(H, W, 3) of the frames held; VideoError before the first append."""
        if self._buf is None:
            raise VideoError("no frames decoded")
        return tuple(self._buf.shape[1:])

    def append(self, start_idx: int, frames: np.ndarray) -> None:
        n = len(frames)
        if start_idx != self.end:
            raise VideoError(f"reader skipped frames: chunk starts at frame {start_idx}, expected {self.end}")
        if self._buf is None:
            self._buf = np.empty((self.capacity, *frames.shape[1:]), dtype=np.uint8)
        elif frames.shape[1:] != self._buf.shape[1:]:
            raise VideoError(
                f"frame size changed mid-stream at frame {start_idx}: "
                f"{frames.shape[1:]} != {self._buf.shape[1:]}"
            )
        if len(self) + n > self.capacity:
            self._grow(len(self) + n)
        slots = np.arange(self.end, self.end + n) % self.capacity
        self._buf[slots] = frames
        self.end += n
        self.peak = max(self.peak, len(self))

    def _grow(self, needed: int) -> None:
        assert self._buf is not None
        held = self.gather(np.arange(self.first, self.end))
        self.capacity = max(needed, 2 * self.capacity)
        self._buf = np.empty((self.capacity, *self._buf.shape[1:]), dtype=np.uint8)
        self._buf[np.arange(self.first, self.end) % self.capacity] = held

    def discard_before(self, frame_idx: int) -> None:
        self.first = min(max(self.first, frame_idx), self.end)

    def gather(self, frame_idx: np.ndarray) -> np.ndarray:
        """Frames at absolute indices ``frame_idx`` (any shape S) → (*S, H, W, 3) uint8 (a copy)."""
        if self._buf is None:
            raise VideoError("no frames decoded")
        if frame_idx.size and (frame_idx.min() < self.first or frame_idx.max() >= self.end):
            raise IndexError(
                f"frames [{frame_idx.min()}, {frame_idx.max()}] not held (holding [{self.first}, {self.end}))"
            )
        return self._buf[frame_idx % self.capacity]


class ScoreAccumulator:
    """Per-frame sums of window scores and the number of windows covering each frame.

    Grows when the stream is longer than announced (video metadata can under-count)."""

    def __init__(self, num_outputs: int, expected_frames: int | None) -> None:
        size = max(1, expected_frames or 4096)
        self.sums = np.zeros((size, num_outputs), dtype=np.float32)  # (N, K+1)
        self.support = np.zeros(size, dtype=np.int32)  # (N,)

    def add(self, start: int, scores: np.ndarray, counted: np.ndarray | None = None) -> None:
        """Add one window's (v, K+1) scores for frames ``[start, start + v)``; ``counted`` (v,) bool, when
        given, says which rows count towards the support (T-DEED counts only non-zero rows)."""
        stop = start + len(scores)
        if stop > len(self.support):
            new = max(stop, 2 * len(self.support))
            grow = np.zeros((new - len(self.sums), self.sums.shape[1]), np.float32)
            self.sums = np.concatenate([self.sums, grow])
            self.support = np.concatenate([self.support, np.zeros(new - len(self.support), np.int32)])
        self.sums[start:stop] += scores
        self.support[start:stop] += 1 if counted is None else counted.astype(np.int32)

    def mean(self, num_frames: int, empty_rows: str = "error") -> np.ndarray:
        """Sums / support. ``empty_rows="error"`` raises on a frame with support 0; ``"keep"`` divides it
        by 1 (T-DEED ``process_frame_predictions``: support 0 becomes 1, the row stays as summed)."""
        support = self.support[:num_frames]
        if empty_rows == "keep":
            support = np.maximum(support, 1)
        if num_frames and support.min() == 0:
            missing = int(np.flatnonzero(support == 0)[0])
            raise RuntimeError(f"internal error: frame {missing} is covered by no window")
        return (self.sums[:num_frames] / support[:, None]).astype(np.float32, copy=False)

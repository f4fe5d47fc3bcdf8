"""Score files written by ``predict`` and ``test``.

The event files (``<name>.json`` / ``.json.gz`` prediction JSON, ``<name>.csv``) are written by
``e2espot.data.formats.predictions`` (``write_prediction_json``, ``write_prediction_csv``), the one owner
of those layouts.

* ``<name>.npz``: ``scores`` (N, K+1) float32 (column 0 = background), ``classes``, ``fps``
  (NaN when unknown). The split variant holds ``videos``, ``fps`` and ``scores/<video id>`` per video.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write via a temporary file + rename, so readers (and other shards) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def write_npz(path: str | Path, scores: np.ndarray, classes: Sequence[str], fps: float | None) -> Path:
    """One video's score matrix."""
    arrays = {
        "scores": np.asarray(scores, dtype=np.float32),
        "classes": np.asarray(list(classes), dtype=str),
        "fps": np.float64(np.nan if fps is None else fps),
    }
    return _atomic_write_bytes(Path(path), _npz_bytes(arrays))


def write_split_npz(
    path: str | Path, scores: dict[str, np.ndarray], classes: Sequence[str], fps: dict[str, float | None]
) -> Path:
    """Score matrices of many videos: ``videos``, ``classes``, ``fps`` and ``scores/<video id>``."""
    videos = list(scores)
    arrays: dict[str, np.ndarray] = {
        "videos": np.asarray(videos, dtype=str),
        "classes": np.asarray(list(classes), dtype=str),
        "fps": np.asarray([np.nan if fps.get(v) is None else fps[v] for v in videos], dtype=np.float64),
    }
    for v in videos:
        arrays[f"scores/{v}"] = np.asarray(scores[v], dtype=np.float32)
    return _atomic_write_bytes(Path(path), _npz_bytes(arrays))


def read_split_npz(path: str | Path) -> tuple[dict[str, np.ndarray], list[str], dict[str, float | None]]:
    """Inverse of ``write_split_npz``: (scores by video, classes, fps by video)."""
    with np.load(path) as z:
        videos = [str(v) for v in z["videos"]]
        fps = {v: (None if np.isnan(f) else float(f)) for v, f in zip(videos, z["fps"])}
        return {v: z[f"scores/{v}"] for v in videos}, [str(c) for c in z["classes"]], fps

"""Shared helpers for the benchmarks: one JSON line on stdout, progress on stderr, generated videos.

Every benchmark measures its baseline and its candidate in the same process, alternating them
over repeats, and reports medians: absolute times on a shared machine drift, ratios much less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download weights

SYNTH_FPS = 25.0


def log(msg: str) -> None:
    """Progress goes to stderr; stdout carries only the JSON line."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(name: str, args: argparse.Namespace, figures: dict[str, Any]) -> dict[str, Any]:
    """Print the benchmark's one JSON line (``bench``, ``quick``, ``machine``, then its figures)."""
    line = {"bench": name, "quick": bool(getattr(args, "quick", False)), "machine": machine_info(), **figures}
    print(json.dumps(line, sort_keys=False, default=_jsonable), flush=True)
    return line


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__,
    }
    try:
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test), seconds not minutes")
    parser.add_argument("--repeats", type=int, default=None, help="alternating repeats (median reported)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where generated videos go (default: a temporary folder, removed afterwards)")
    return parser


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def alternate(cases: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run every case once per repeat, rotating the order, and collect each case's figures."""
    names = list(cases)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            out[name].append(cases[name]())
    return out


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def r3(x: float) -> float:
    return float(f"{x:.4g}") if x == x else x  # 4 significant digits; NaN stays NaN


# --- videos -----------------------------------------------------------------------------------------


def synth_video(out_dir: Path, *, seconds: float, width: int, height: int, gop: int | None = None,
                seed: int = 0) -> Path:
    """One synthetic match video (H.264; GOP 25 as rendered, or re-encoded with ``gop``)."""
    from e2espot.data.synthetic import generate_dataset

    tag = f"{width}x{height}_{seconds:g}s_s{seed}"
    ds = generate_dataset(out_dir / f"synth_{tag}", num_videos=1, seconds=seconds, width=width, height=height,
                          seed=seed, splits=(1, 0, 0), soccernet=False)
    src = next(iter(ds.videos.values()))
    if gop is None:
        return src
    return reencode(src, out_dir / f"{tag}_gop{gop}.mp4", gop=gop)


def reencode(src: Path, dst: Path, *, gop: int, crf: int = 20, preset: str = "veryfast") -> Path:
    """Re-encode ``src`` with keyframes every ``gop`` frames (same size and rate)."""
    from e2espot.data.video import open_video
    from e2espot.data.video.writer import VideoWriter

    with open_video(src) as reader, VideoWriter(dst, reader.fps, reader.width, reader.height, gop=gop,
                                                crf=crf, preset=preset) as writer:
        for _, chunk in reader.iter_chunks(64):
            writer.write_many(chunk)
    return dst


def pattern_video(path: Path, *, num_frames: int, width: int, height: int, fps: float = SYNTH_FPS,
                  gop: int = 250, preset: str = "ultrafast") -> Path:
    """A cheap moving-pattern video (for long videos where content does not matter)."""
    import numpy as np

    from e2espot.data.video.writer import VideoWriter

    yy, xx = np.mgrid[0:height, 0:width]
    with VideoWriter(path, fps, width, height, gop=gop, crf=28, preset=preset) as writer:
        for i in range(num_frames):
            frame = np.empty((height, width, 3), np.uint8)
            frame[..., 0] = (xx + 3 * i) % 256
            frame[..., 1] = (yy + 2 * i) % 256
            frame[..., 2] = ((xx + yy) // 4 + i) % 256
            writer.write(frame)
    return path


def tree_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Workdir:
    """``--workdir`` when given (kept), else a temporary folder removed on exit."""

    def __init__(self, path: Path | None) -> None:
        self._tmp = None
        if path is None:
            import tempfile

            self._tmp = tempfile.TemporaryDirectory(prefix="e2espot-bench-")
            path = Path(self._tmp.name)
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def save_run_dir(run_dir: Path, model_cfg: Any, data_cfg: Any, classes: tuple[str, ...],
                 seed: int = 0) -> Path:
    """A run directory (config.json + best.pt) with an untrained model, as ``e2espot train`` writes it."""
    import torch

    from e2espot.config import RunConfig
    from e2espot.models import create_spotter

    cfg = RunConfig(model=model_cfg, data=data_cfg, classes=classes)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / "config.json")
    torch.manual_seed(seed)
    model = create_spotter(model_cfg)
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "epoch": 0}, run_dir / "best.pt")
    return run_dir

"""Peak RSS of ``e2espot predict`` on a short vs a 10x longer video (same model, size and settings).

Each run is a fresh ``python -m e2espot predict`` subprocess; its peak resident set size comes from
``os.wait4`` (the child's own ``ru_maxrss``). Baseline: the 1-minute video; candidate: the
10-minute one (with ``--quick``: 0.5 s vs 5 s, both run at once). ``ratio_long_over_short`` is the
target figure: <= 1.2 (memory flat in video length).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Workdir,
    alternate,
    base_parser,
    emit,
    log,
    median,
    pattern_video,
    r3,
    save_run_dir,
)

TARGET = 1.2


def start(cmd: list[str], env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, float, Any]:
    """Start ``cmd`` with its stderr (progress bars) going to ``log_path``."""
    err = open(log_path, "wb")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env), time.perf_counter(), err


def finish(proc: subprocess.Popen, started: float, err: Any, cmd: list[str],
           log_path: Path) -> tuple[float, float]:
    """Wait for ``proc``; return (its own peak RSS in MB from wait4's rusage, wall seconds)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    err.close()
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    return usage.ru_maxrss / 1024.0, wall  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="device passed to predict --device")
    parser.add_argument("--backbone", default="test_tiny", help="model backbone (test_tiny, rny002, ...)")
    args = parser.parse_args(argv)

    from e2espot.config import DataConfig, ModelConfig

    if args.quick:
        width, height, clip_len, short_s = 64, 36, 16, 0.5
    else:
        width, height, clip_len, short_s = 160, 90, 100, 60.0
    fps = 25.0
    repeats = args.repeats or 1
    model_cfg = ModelConfig(num_classes=5, backbone=args.backbone, temporal_module="gsm", head="gru",
                            clip_len=clip_len)

    with Workdir(args.workdir) as work:
        videos = {}
        for name, seconds in (("short", short_s), ("long", 10 * short_s)):
            log(f"encoding the {name} video: {width}x{height}, {seconds:g} s")
            videos[name] = pattern_video(work / f"{name}.mp4", num_frames=int(seconds * fps), width=width,
                                         height=height, fps=fps)
        run_dir = save_run_dir(work / "run", model_cfg, DataConfig(fps=fps, height=height, clip_len=clip_len),
                               tuple(f"class{i}" for i in range(5)))
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        walls: dict[str, list[float]] = {"short": [], "long": []}

        def command(name: str) -> list[str]:
            return [sys.executable, "-m", "e2espot", "predict", str(videos[name]), "--model", str(run_dir),
                    "-o", str(work / f"out_{name}"), "--device", args.device]

        def case(name: str):
            def run() -> float:
                cmd, log_path = command(name), work / f"{name}.log"
                rss, wall = finish(*start(cmd, env, log_path), cmd, log_path)
                walls[name].append(wall)
                log(f"{name}: peak RSS {rss:.0f} MB in {wall:.1f} s")
                return rss
            return run

        if args.quick:  # both at once: RSS is per process, and a smoke run should be quick
            procs = {n: (start(command(n), env, work / f"{n}.log"), command(n), work / f"{n}.log")
                     for n in ("short", "long")}
            results = {}
            for n, (started, cmd, log_path) in procs.items():
                rss, wall = finish(*started, cmd, log_path)
                results[n], walls[n] = [rss], [wall]
        else:
            results = alternate({"short": case("short"), "long": case("long")}, repeats)

    short_mb, long_mb = median(results["short"]), median(results["long"])
    ratio = long_mb / short_mb
    emit("memory", args, {
        "device": args.device, "model": f"{args.backbone}_gsm+gru", "frame_size": [width, height],
        "clip_len": clip_len, "short_s": short_s, "long_s": 10 * short_s, "repeats": repeats,
        "short_peak_rss_mb": r3(short_mb), "long_peak_rss_mb": r3(long_mb),
        "short_wall_s": r3(median(walls["short"])), "long_wall_s": r3(median(walls["long"])),
        "ratio_long_over_short": r3(ratio), "target": TARGET, "meets_target": ratio <= TARGET,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

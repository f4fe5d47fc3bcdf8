"""Run the throughput and memory benchmarks in benchmarks/ and print their JSON lines.

Each benchmark runs in its own Python process and prints one JSON line (progress goes to stderr):
decode (PyAV/OpenCV frames/s, long vs short GOP), predict (end to end vs decode-only and model-only),
memory (peak RSS of predict, 1-minute vs 10-minute video), train (raw vs prepared vs JPEG frames),
precision (training step fp32 vs bf16), adaspot_memory (peak RSS of predict with AdaSpot, raw 720p, 1 vs
10 minutes). 'all' runs decode, predict, memory and train.

Example: e2espot bench all --quick        (seconds; full sizes take a few minutes each on 2 cores)
"""

from __future__ import annotations

import argparse
from pathlib import Path

BENCHMARKS = ("decode", "predict", "memory", "train", "precision", "feature_cache", "adaspot_memory")
ALL = ("decode", "predict", "memory", "train")
TAKES_DEVICE = ("predict", "memory", "train", "precision", "adaspot_memory")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("which", nargs="*", default=[], metavar="BENCH",
                        help=f"benchmarks to run: {', '.join(BENCHMARKS)} or all (default all)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny inputs: a smoke run in seconds; its figures and ratios are smoke figures, "
                             "not measurements (each line gets \"smoke\": true)")
    parser.add_argument("--device", default=None,
                        help="cpu or cuda for the model benchmarks (default: each benchmark's, cpu)")
    parser.add_argument("--compare-threads", action="store_true",
                        help="train only: 1 compute thread + 1 loader worker vs 2 threads + in-process loader")
    parser.add_argument("--benchmarks-dir", type=Path, default=None,
                        help="folder with bench_*.py (default: benchmarks/ of this checkout)")


def find_benchmarks_dir(explicit: Path | None = None) -> Path:
    """``explicit``, else ``benchmarks/`` next to the source tree or under the current folder."""
    from e2espot.errors import ConfigError

    candidates = [explicit] if explicit else [
        Path(__file__).resolve().parents[3] / "benchmarks", Path.cwd() / "benchmarks"]
    for path in candidates:
        if path is not None and (path / "bench_decode.py").is_file():
            return path
    raise ConfigError(
        f"no benchmarks folder with bench_decode.py at {', '.join(str(c) for c in candidates)}; the "
        "benchmarks ship with the source checkout: run from it, or pass --benchmarks-dir"
    )


def benchmark_command(root: Path, name: str, *, quick: bool, device: str | None,
                      compare_threads: bool = False) -> list[str]:
    import sys

    cmd = [sys.executable, str(root / f"bench_{name}.py")]
    if quick:
        cmd.append("--quick")
    if compare_threads and name == "train":
        cmd.append("--compare-threads")
    if device is not None and name in TAKES_DEVICE:
        cmd += ["--device", device]
    return cmd


def check_device(device: str | None) -> None:
    """Refuse a CUDA device on a machine without one, before any benchmark starts (one error line)."""
    from e2espot.errors import ConfigError

    if device is None or not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: this machine has no CUDA GPU that torch can use "
                          f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
                          "run the benchmarks with --device cpu")


def smoke_line(line: str) -> str:
    """A ``--quick`` result line marked as a smoke figure: ``"smoke": true`` first, plus a note."""
    import json

    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return line
    if not isinstance(record, dict):
        return line
    note = "smoke figures from --quick (tiny inputs): they check the benchmark runs, they measure nothing"
    return json.dumps({"smoke": True, "note": note, **record})


def run(args: argparse.Namespace) -> int:
    import os
    import subprocess
    import sys

    from e2espot.errors import E2ESpotError, unknown_name

    check_device(args.device)
    root = find_benchmarks_dir(args.benchmarks_dir)
    names: list[str] = []
    for item in args.which or ["all"]:
        if item not in (*BENCHMARKS, "all"):
            raise unknown_name("benchmark", item, (*BENCHMARKS, "all"))
        for name in (ALL if item == "all" else (item,)):
            if name not in names:
                names.append(name)
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    failed = []
    if args.quick:
        print("bench --quick: tiny inputs; every figure and ratio below is a smoke figure, not a measurement",
              file=sys.stderr, flush=True)
    for name in names:
        proc = subprocess.run(benchmark_command(root, name, quick=args.quick, device=args.device,
                                                compare_threads=args.compare_threads),
                              stdout=subprocess.PIPE, text=True, env=env)  # stderr (progress) passes through
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or not lines:
            failed.append(f"{name} (exit {proc.returncode})")
            continue
        print(smoke_line(lines[-1]) if args.quick else lines[-1], flush=True)
    if failed:
        raise E2ESpotError(f"{'benchmark' if len(failed) == 1 else 'benchmarks'} failed: {', '.join(failed)}; "
                           f"{'its traceback is' if len(failed) == 1 else 'their tracebacks are'} above (stderr)")
    return 0

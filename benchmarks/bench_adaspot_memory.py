"""Peak RSS of ``e2espot predict`` with an AdaSpot run on a raw 720p video: 1 minute vs 10 minutes.

AdaSpot looks at two resolutions of each frame. ``predict`` decodes the video once, the decoder scaling
each 1280x720 frame to the run's high-res size (``data.height`` x ``data.width``); the model builds its
low-res image and its high-res RoI crops from that one tensor (``AdaSpot.inputs``), so there is no second
pass over the file. Frames stream through a bounded ring (``infer.streaming``): memory must not grow with
the video's length.

Each run is a fresh ``python -m e2espot predict VIDEO --model RUN`` subprocess. Its peak resident set size
comes from ``os.wait4`` (the child's own ``ru_maxrss``, i.e. its VmHWM); a sampler thread also reads the
child's ``VmRSS`` from ``/proc/PID/status`` every 0.5 s, so the line reports the largest RSS seen in the
first and in the second half of the run (flat memory: the second half holds no more than the first).
Baseline: the 1-minute video; candidate: the 10-minute one (``--quick``: 1 s vs 10 s of 256x144).
``ratio_long_over_short`` is the target figure: <= 1.2.

The run directory is a randomly initialised ``adaspot_small`` (``models.adaspot.training_config``: the
high-res image is ``--height`` x 16:9, the low-res one half of it, RoI a quarter of the height), as
``e2espot train -m adaspot_small --height H`` writes it; memory, not accuracy, is measured. The videos are
a scrolling pattern encoded with x264 ``ultrafast`` at ``--fps`` (default 12.5, AdaSpot's SoccerNet-Ball rate),
read at that rate (no resampling).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
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
    r3,
    save_run_dir,
)

TARGET = 1.2
SAMPLE_S = 0.5


def _vm_rss_mb(pid: int) -> float | None:
    """The process's current resident set (``VmRSS`` in /proc/PID/status) in MB, None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def sliding_pattern_video(path: Path, *, num_frames: int, width: int, height: int, fps: float) -> Path:
    """A pattern scrolling 3 px per frame, each frame a slice of one precomputed image (no per-frame
    arithmetic: a 10-minute 720p video costs mostly the x264 ``ultrafast`` encode)."""
    import numpy as np

    from e2espot.data.video.writer import VideoWriter

    period = 256
    yy, xx = np.mgrid[0:height, 0 : width + period]
    base = np.empty((height, width + period, 3), np.uint8)
    base[..., 0] = xx % 256
    base[..., 1] = (yy * 2) % 256
    base[..., 2] = ((xx + yy) // 4) % 256
    with VideoWriter(path, fps, width, height, gop=250, crf=28, preset="ultrafast") as writer:
        for i in range(num_frames):
            shift = (3 * i) % period
            writer.write(np.ascontiguousarray(base[:, shift : shift + width]))
    return path


def run_predict(cmd: list[str], env: dict[str, str], log_path: Path) -> dict[str, float]:
    """Run ``cmd`` (stderr to ``log_path``); its peak RSS (wait4), wall time and the largest sampled RSS
    in the first and the second half of its run, all in MB / seconds."""
    samples: list[tuple[float, float]] = []  # (seconds since start, RSS MB)
    with open(log_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                rss = _vm_rss_mb(proc.pid)
                if rss is not None:
                    samples.append((time.perf_counter() - started, rss))
                done.wait(SAMPLE_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    first = [r for t, r in samples if t <= wall / 2]
    second = [r for t, r in samples if t > wall / 2]
    return {
        "peak_rss_mb": usage.ru_maxrss / 1024.0,  # ru_maxrss is in KiB on Linux
        "wall_s": wall,
        "first_half_max_rss_mb": max(first) if first else float("nan"),
        "second_half_max_rss_mb": max(second) if second else float("nan"),
        "samples": float(len(samples)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="device passed to predict --device")
    parser.add_argument("--height", type=int, default=None,
                        help="the run's high-res frame height (width 16:9); default 224 (low-res 112x199), "
                             "--quick 64")
    parser.add_argument("--fps", type=float, default=12.5, help="video and model frame rate (default 12.5)")
    parser.add_argument("--short-s", type=float, default=None,
                        help="baseline video length in seconds (default 60, --quick 1); the long one is 10x")
    parser.add_argument("--clip-len", type=int, default=None, help="frames per window (default 100, --quick 16)")
    args = parser.parse_args(argv)

    from e2espot.config import DataConfig
    from e2espot.models.adaspot import training_config

    if args.quick:
        width, height, model_h, clip_len, short_s = 256, 144, 64, 16, 1.0
    else:
        width, height, model_h, clip_len, short_s = 1280, 720, 224, 100, 60.0
    model_h = args.height or model_h
    clip_len = args.clip_len or clip_len
    short_s = args.short_s or short_s
    fps = args.fps
    repeats = args.repeats or 1
    model_cfg = training_config("adaspot_small", 5, clip_len, model_h, None)
    model_w = model_cfg.head_kwargs["hr_dim"][1]

    with Workdir(args.workdir) as work:
        videos = {}
        for name, seconds in (("short", short_s), ("long", 10 * short_s)):
            path = work / f"{name}_{width}x{height}_{seconds:g}s.mp4"
            if not path.is_file():  # --workdir keeps the (slow to encode) videos between runs
                log(f"encoding the {name} video: {width}x{height}, {seconds:g} s at {fps:g} fps")
                tmp = path.with_suffix(".part.mp4")
                sliding_pattern_video(tmp, num_frames=round(seconds * fps), width=width, height=height, fps=fps)
                tmp.rename(path)
            videos[name] = path
        run_dir = save_run_dir(work / "run", model_cfg,
                               DataConfig(fps=fps, height=model_h, width=model_w, clip_len=clip_len),
                               tuple(f"class{i}" for i in range(5)))
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        results: dict[str, list[dict[str, float]]] = {"short": [], "long": []}

        def command(name: str) -> list[str]:
            return [sys.executable, "-m", "e2espot", "predict", str(videos[name]), "--model", str(run_dir),
                    "-o", str(work / f"out_{name}"), "--device", args.device]

        def case(name: str):
            def run() -> float:
                res = run_predict(command(name), env, work / f"{name}.log")
                results[name].append(res)
                log(f"{name}: peak RSS {res['peak_rss_mb']:.0f} MB in {res['wall_s']:.1f} s (max RSS first half "
                    f"{res['first_half_max_rss_mb']:.0f} MB, second half {res['second_half_max_rss_mb']:.0f} MB)")
                return res["peak_rss_mb"]
            return run

        peaks = alternate({"short": case("short"), "long": case("long")}, repeats)

    def med(name: str, key: str) -> float:
        return median([r[key] for r in results[name]])

    short_mb, long_mb = median(peaks["short"]), median(peaks["long"])
    ratio = long_mb / short_mb
    figures: dict[str, Any] = {
        "device": args.device, "model": "adaspot_small (random init)", "video_size": [width, height],
        "video_fps": fps, "model_highres": [model_h, model_w],
        "model_lowres": list(model_cfg.head_kwargs["lr_dim"]), "roi": list(model_cfg.head_kwargs["roi_size"]),
        "clip_len": clip_len, "short_s": short_s, "long_s": 10 * short_s, "repeats": repeats,
        "short_frames": round(short_s * fps), "long_frames": round(10 * short_s * fps),
        "short_peak_rss_mb": r3(short_mb), "long_peak_rss_mb": r3(long_mb),
        "long_first_half_max_rss_mb": r3(med("long", "first_half_max_rss_mb")),
        "long_second_half_max_rss_mb": r3(med("long", "second_half_max_rss_mb")),
        "short_wall_s": r3(med("short", "wall_s")), "long_wall_s": r3(med("long", "wall_s")),
        "ratio_long_over_short": r3(ratio), "target": TARGET, "meets_target": ratio <= TARGET,
    }
    emit("adaspot_memory", args, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

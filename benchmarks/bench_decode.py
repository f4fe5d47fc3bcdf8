"""Decode throughput: sequential frames/s and random 100-frame clip reads, per backend and GOP.

Videos: a 398x224 and a 1280x720 H.264 synthetic match with a broadcast-like GOP (250), and the
``prepare`` output of each (224 px high, GOP 8). The 720p source is resized to 224 px high in the
decoder. Backends: PyAV (the default), OpenCV when importable, torchcodec when installed. Every
(video, backend, mode) case runs once per repeat, order rotating; medians are reported. Baseline:
the raw long-GOP video; candidate: the prepared short-GOP one (``random_speedup_prepared``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Workdir, alternate, base_parser, emit, log, median, r3, synth_video  # noqa: E402


def _backends() -> tuple[list[str], dict[str, str]]:
    from e2espot.data.video import list_backends

    available = [b for b in ("pyav", "opencv") if b in list_backends()]
    missing = {}
    if "opencv" not in available:
        missing["opencv"] = "not installed (or its backend is not registered)"
    try:
        import torchcodec  # noqa: F401

        missing["torchcodec"] = "installed, but e2espot has no torchcodec backend"
    except ImportError:
        missing["torchcodec"] = "not installed"
    return available, missing


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="decoder threads (open_video threads=)")
    parser.add_argument("--gop", type=int, default=250, help="GOP of the raw videos")
    parser.add_argument("--prepared-gop", type=int, default=8,
                        help="GOP of the prepared videos (prepare default)")
    args = parser.parse_args(argv)
    import numpy as np

    from e2espot.data.prepare import prepare_one
    from e2espot.data.video import open_video

    if args.quick:
        sizes = {"224p": (128, 72, 2.0), "720p": (256, 144, 1.0)}
        height, clip_len, num_clips = 72, 20, 3
    else:
        sizes = {"224p": (398, 224, 60.0), "720p": (1280, 720, 20.0)}
        height, clip_len, num_clips = 224, 100, 8
    repeats = args.repeats or (1 if args.quick else 3)
    backends, missing = _backends()

    with Workdir(args.workdir) as work:
        videos: dict[str, Path] = {}
        for tag, (w, h, seconds) in sizes.items():
            log(f"rendering {tag} ({w}x{h}, {seconds:g} s, GOP {args.gop})")
            videos[f"{tag}_gop{args.gop}"] = synth_video(work, seconds=seconds, width=w, height=h,
                                                         gop=args.gop)
            log(f"prepare {tag} -> {height} px, GOP {args.prepared_gop}")
            dst = work / f"prepared_{tag}.mp4"
            prepare_one(videos[f"{tag}_gop{args.gop}"], dst, fps=None, height=height, gop=args.prepared_gop)
            videos[f"{tag}_prepared_gop{args.prepared_gop}"] = dst

        readers = {(v, b): open_video(p, height=height, threads=args.threads, backend=b)
                   for v, p in videos.items() for b in backends}
        num_frames = {v: readers[(v, "pyav")].num_frames for v in videos}
        rng = np.random.default_rng(0)
        starts = {v: rng.integers(0, n - clip_len, num_clips) for v, n in num_frames.items()}

        def sequential(key):
            def run() -> float:
                reader = readers[key]
                reader.close()  # from a cold decoder, as a new predict run would
                t0 = time.perf_counter()
                count = sum(len(chunk) for _, chunk in reader.iter_chunks(64))
                fps = count / (time.perf_counter() - t0)
                log(f"{key[0]} {key[1]} sequential: {fps:.0f} frames/s")
                return fps
            return run

        def random_clips(key):
            def run() -> float:
                reader = readers[key]
                reader.close()
                t0 = time.perf_counter()
                for s in starts[key[0]]:
                    clip = reader.read_clip(int(s), clip_len)
                    if clip.shape[0] != clip_len:
                        raise RuntimeError(f"read_clip returned {clip.shape}")
                ms = 1000 * (time.perf_counter() - t0) / num_clips
                log(f"{key[0]} {key[1]} random: {ms:.0f} ms/clip")
                return ms
            return run

        cases = {}
        for key in readers:
            cases[(*key, "sequential")] = sequential(key)
            cases[(*key, "random")] = random_clips(key)
        results = alternate(cases, repeats)
        for reader in readers.values():
            reader.close()

    table: dict[str, dict[str, dict[str, float]]] = {}
    for (video, backend, mode), values in results.items():
        row = table.setdefault(video, {}).setdefault(backend, {})
        if mode == "sequential":
            row["sequential_fps"] = r3(median(values))
        else:
            row["random_clip_ms"] = r3(median(values))
            row["random_fps"] = r3(1000 * clip_len / median(values))
    speedups = {}
    for tag in sizes:
        raw, prep = f"{tag}_gop{args.gop}", f"{tag}_prepared_gop{args.prepared_gop}"
        for b in backends:
            raw_b, prep_b = table[raw][b], table[prep][b]
            speedups[f"{tag}_{b}_random"] = r3(raw_b["random_clip_ms"] / prep_b["random_clip_ms"])
            speedups[f"{tag}_{b}_sequential"] = r3(prep_b["sequential_fps"] / raw_b["sequential_fps"])
    best = {mode: max(((v, b) for v in table for b in table[v]), key=lambda vb: table[vb[0]][vb[1]][key])
            for mode, key in (("sequential", "sequential_fps"), ("random", "random_fps"))}
    emit("decode", args, {
        "out_height": height, "clip_len": clip_len, "num_clips": num_clips, "threads": args.threads,
        "repeats": repeats, "num_frames": num_frames, "backends": backends, "not_run": missing,
        "results": table, "prepared_speedup": speedups,
        "fastest": {m: f"{v} / {b}" for m, (v, b) in best.items()},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""predict_scores with and without the per-frame feature cache, same video, model and windows.

For a backbone without a temporal module (rny002 + BiGRU by default, 398x224, clip 100, overlap 50 %), the
cache runs each frame through the backbone once and only the head per window; without it every window
runs the whole model, so each frame goes through the backbone ~ clip_len / (clip_len - overlap) times.
``speedup`` = cached / uncached frames/s (medians of alternating runs in one process).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Workdir, alternate, base_parser, emit, log, median, r3, synth_video  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 (as predict --precision)")
    parser.add_argument("--seconds", type=float, default=None, help="video length (default 12 s, quick 2 s)")
    parser.add_argument("--overlap", type=float, default=0.5, help="window overlap as a fraction of clip_len")
    args = parser.parse_args(argv)

    from e2espot.config import DataConfig, ModelConfig, RunConfig
    from e2espot.data.video import open_video
    from e2espot.infer.predict import predict_scores, resolve_device
    from e2espot.models import create_spotter

    if args.quick:
        width, height, seconds, clip_len, backbone = 64, 48, args.seconds or 2.0, 16, "test_tiny"
    else:
        width, height, seconds, clip_len, backbone = 398, 224, args.seconds or 12.0, 100, "rny002"
    overlap = int(round(clip_len * args.overlap))
    model_cfg = ModelConfig(num_classes=5, backbone=backbone, temporal_module=None, head="gru", clip_len=clip_len)
    cfg = RunConfig(model=model_cfg, data=DataConfig(fps=25.0, height=height, clip_len=clip_len),
                    classes=tuple(f"class{i}" for i in range(5)))
    model = create_spotter(model_cfg).eval()
    device = resolve_device("cpu")
    repeats = args.repeats or (1 if args.quick else 3)

    with Workdir(args.workdir) as work:
        video = synth_video(work, seconds=seconds, width=width, height=height)
        stats: dict[str, dict[str, int]] = {}

        def case(name: str, cache: bool):
            def run() -> float:
                st: dict[str, int] = {}
                t0 = time.perf_counter()
                with open_video(video, fps=cfg.data.fps, height=height) as reader:
                    predict_scores(model, reader, cfg, overlap=overlap, precision=args.precision, device=device,
                                   feature_cache=cache, stats=st)
                fps = st["num_frames"] / (time.perf_counter() - t0)
                stats[name] = st
                log(f"{name}: {fps:.1f} frames/s")
                return fps
            return run

        cases = {"cached": case("cached", True), "uncached": case("uncached", False)}
        cases["cached"]()  # warm-up
        results = alternate(cases, repeats)

    fps = {k: median(v) for k, v in results.items()}
    emit("feature_cache", args, {
        "model": f"{backbone}+gru (no temporal module)", "frame_size": [width, height], "clip_len": clip_len,
        "overlap": overlap, "num_frames": stats["cached"]["num_frames"],
        "num_windows": stats["cached"]["num_windows"], "backbone_frames_cached": stats["cached"]["backbone_frames"],
        "backbone_frames_uncached": stats["cached"]["num_windows"] * clip_len,
        "cached_fps": r3(fps["cached"]), "uncached_fps": r3(fps["uncached"]),
        "all_fps": {k: [r3(x) for x in v] for k, v in results.items()},
        "speedup": r3(fps["cached"] / fps["uncached"]),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

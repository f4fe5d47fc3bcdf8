"""predict end to end (video file -> event files) vs decode-only and model-only, same video and model.

* ``e2e``: ``predict_file`` (decode thread, sliding windows, model, post-processing, file writing);
* ``decode``: the same reader's ``iter_chunks`` at the run's fps and height, nothing else;
* ``model``: random uint8 frames through the same model, in the same windows, batches and precision
  (uint8 -> float -> model -> softmax -> NumPy, as ``predict_scores`` does per batch).

With ``--engines`` (default on full runs) the model-only and end-to-end figures are also taken for the
other inference engines on the same video, model and windows: ``torch.compile`` of the eager model and
the ONNX export run by ONNX Runtime (``e2espot export-model``); ``speedup_best_engine`` = best engine's
model-only frames/s over PyTorch eager's (target >= 1.5 on CPU).

All figures are video frames per second (each frame counts once, whatever the window overlap), run
alternately, medians reported. ``ratio_e2e_over_bound`` = e2e / min(decode, model) of the medians;
target >= 0.8. ``ratio_paired_median`` takes the ratio within each repeat first (less load noise).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

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
    synth_video,
)

TARGET = 0.8


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (the model's device)")
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 (as predict --precision)")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="windows per forward pass (predict default 4)")
    parser.add_argument("--seconds", type=float, default=None, help="video length (default 12 s, quick 2 s)")
    parser.add_argument("--height", type=int, default=None,
                        help="frame height of the full run, 16:9 width (default 224: 398x224)")
    parser.add_argument("--engines", action=argparse.BooleanOptionalAction, default=None,
                        help="also measure torch.compile and ONNX Runtime (default: on, off with --quick)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from e2espot.config import DataConfig, ModelConfig
    from e2espot.data.video import open_video
    from e2espot.device import autocast, resolve_precision
    from e2espot.infer.predict import load_run, predict_file, resolve_device, window_starts

    if args.quick:
        width, height, seconds, clip_len = 64, 48, args.seconds or 2.0, 16
        model_cfg = ModelConfig(num_classes=5, backbone="test_tiny", temporal_module="gsm", head="gru",
                                clip_len=clip_len)
    else:
        height = args.height or 224
        width, seconds, clip_len = int(round(height * 16 / 9 / 2)) * 2, args.seconds or 12.0, 100
        model_cfg = ModelConfig(num_classes=5, backbone="rny002", temporal_module="gsm", head="gru",
                                clip_len=clip_len)
    repeats = args.repeats or (1 if args.quick else 3)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    classes = tuple(f"class{i}" for i in range(model_cfg.num_classes))

    with Workdir(args.workdir) as work:
        log(f"rendering {width}x{height}, {seconds:g} s")
        video = synth_video(work, seconds=seconds, width=width, height=height)
        data_cfg = DataConfig(fps=25.0, height=height, clip_len=clip_len)
        run_dir = save_run_dir(work / "run", model_cfg, data_cfg, classes)
        model, cfg = load_run(run_dir, device=device)
        with open_video(video, fps=cfg.data.fps, height=cfg.data.height) as reader:
            num_frames, frame_hw = reader.num_frames, (reader.height, reader.width)
        starts = window_starts(num_frames, clip_len, clip_len // 2)
        amp = autocast(device, precision)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        rng = np.random.default_rng(0)
        frames_u8 = rng.integers(0, 256, (args.batch_size, clip_len, *frame_hw, 3), dtype=np.uint8)

        def e2e() -> float:
            t0 = time.perf_counter()
            files = predict_file(video, (model, cfg), work / "out", device=device, precision=precision,
                                 batch_size=args.batch_size)
            sync()
            fps = files.video_labels.num_frames / (time.perf_counter() - t0)
            log(f"e2e: {fps:.1f} frames/s")
            return fps

        def decode() -> float:
            t0 = time.perf_counter()
            with open_video(video, fps=cfg.data.fps, height=cfg.data.height) as reader:
                count = sum(len(chunk) for _, chunk in reader.iter_chunks(32))
            fps = count / (time.perf_counter() - t0)
            log(f"decode: {fps:.1f} frames/s")
            return fps

        def model_only(net=model, name="model", context=amp) -> float:
            t0 = time.perf_counter()
            with torch.inference_mode():
                for i in range(0, len(starts), args.batch_size):
                    n = min(args.batch_size, len(starts) - i)
                    x = torch.from_numpy(frames_u8[:n]).to(device, non_blocking=True)
                    x = x.permute(0, 1, 4, 2, 3).float().div_(255.0)  # (B, T, 3, H, W)
                    with context:
                        logits = net(x).logits  # (B, T, K+1)
                    logits.float().softmax(-1).cpu().numpy()
            sync()
            fps = num_frames / (time.perf_counter() - t0)
            log(f"{name}: {fps:.1f} frames/s")
            return fps

        log(f"warm-up ({num_frames} frames, {len(starts)} windows of {clip_len}, batch {args.batch_size}, "
            f"{precision})")
        model_only()
        cases = {"e2e": e2e, "decode": decode, "model": model_only}
        engines = {}
        if args.engines if args.engines is not None else not args.quick:
            engines = engine_cases(model, cfg, run_dir, device, frame_hw, model_only, video, work,
                                   precision, args.batch_size)
            cases.update(engines)
        results = alternate(cases, repeats)

    fps = {k: median(v) for k, v in results.items()}
    bound = min(fps["decode"], fps["model"])
    ratio = fps["e2e"] / bound
    # the same ratio within each repeat (neighbouring runs share the machine's load), then the median
    paired = [e / min(d, m) for e, d, m in zip(results["e2e"], results["decode"], results["model"])]
    emit("predict", args, {
        "device": str(device), "precision": precision,
        "model": f"{model_cfg.backbone}_{model_cfg.temporal_module}+{model_cfg.head}",
        "frame_size": [frame_hw[1], frame_hw[0]], "clip_len": clip_len, "overlap": clip_len // 2,
        "batch_size": args.batch_size, "num_frames": num_frames, "num_windows": len(starts),
        "repeats": repeats,
        "e2e_fps": r3(fps["e2e"]), "decode_fps": r3(fps["decode"]), "model_fps": r3(fps["model"]),
        "all_fps": {k: [r3(x) for x in v] for k, v in results.items()},
        "ratio_e2e_over_bound": r3(ratio), "ratio_per_repeat": [r3(x) for x in paired],
        "ratio_paired_median": r3(median(paired)), "target": TARGET, "meets_target": ratio >= TARGET,
        **engine_summary(fps, results),
    })
    return 0


def engine_cases(model, cfg, run_dir, device, frame_hw, model_only, video, work, precision, batch_size):
    """model-only and end-to-end cases for torch.compile and ONNX Runtime (CPU), warmed up once."""
    from contextlib import nullcontext

    import torch

    from e2espot.infer.engines import OnnxSpotter, export_onnx
    from e2espot.infer.predict import predict_file

    cases = {}
    compiled = torch.compile(model)
    log("torch.compile: compiling (first call)")
    model_only(compiled, "model_compiled")
    cases["model_compiled"] = lambda: model_only(compiled, "model_compiled")
    if device.type == "cpu":
        t0 = time.perf_counter()
        report = export_onnx(model, cfg, work / "model.onnx", height=frame_hw[0], width=frame_hw[1])
        log(f"ONNX export ({report.exporter}) in {time.perf_counter() - t0:.0f} s, "
            f"max diff {max(report.max_abs_diff.values()):.2g}")
        ort = OnnxSpotter(report.path)
        model_only(ort, "model_onnxruntime", nullcontext())
        cases["model_onnxruntime"] = lambda: model_only(ort, "model_onnxruntime", nullcontext())

        def e2e_ort() -> float:
            t0 = time.perf_counter()
            files = predict_file(video, (ort, cfg), work / "out_ort", device=device, precision="fp32",
                                 batch_size=batch_size)
            fps = files.video_labels.num_frames / (time.perf_counter() - t0)
            log(f"e2e_onnxruntime: {fps:.1f} frames/s")
            return fps

        cases["e2e_onnxruntime"] = e2e_ort
    return cases


def engine_summary(fps: dict[str, float], results: dict[str, list[float]]) -> dict:
    """Per-engine medians and the best engine's speed-up over eager PyTorch (model-only, same run)."""
    engines = {k: v for k, v in fps.items() if k.startswith("model_")}
    if not engines:
        return {}
    best = max(engines, key=engines.get)
    out = {f"{k}_fps": r3(v) for k, v in fps.items() if k.startswith(("model_", "e2e_"))}
    out.update(best_engine=best.removeprefix("model_"), speedup_best_engine=r3(engines[best] / fps["model"]),
               speedup_target=1.5, meets_speedup_target=engines[best] / fps["model"] >= 1.5)
    if "e2e_onnxruntime" in fps:
        bound = min(fps["decode"], fps["model_onnxruntime"])
        out["ratio_e2e_over_bound_onnxruntime"] = r3(fps["e2e_onnxruntime"] / bound)
    return out


if __name__ == "__main__":
    sys.exit(main())

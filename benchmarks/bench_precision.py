"""Training-step time, fp32 vs bf16 autocast, per model (channels_last, AdamW, cross-entropy).

Answers "is bf16 autocast faster for training on this device?" with steps of both precisions
alternated in one process. Prints one JSON line: per model, median step seconds of each precision,
forward and backward split, process CPU seconds (less sensitive to a shared machine), and the
ratios bf16 / fp32 (below 1: bf16 is faster).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import alternate, base_parser, emit, log, median, r3  # noqa: E402

MODELS = {"test_tiny_tsm": ("test_tiny", "tsm"), "rny002_gsm": ("rny002", "gsm")}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {list(MODELS)}")
    parser.add_argument("--height", type=int, default=108)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--clip-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    if args.quick:
        args.height, args.width, args.clip_len, args.batch_size = 32, 32, 4, 1
        args.models = "test_tiny_tsm"
    repeats = args.repeats or (1 if args.quick else 3)

    import torch

    from e2espot.config import ModelConfig
    from e2espot.device import resolve_device
    from e2espot.models import create_spotter

    device = resolve_device(args.device)
    results = {}
    for name in args.models.split(","):
        backbone, module = MODELS[name]
        torch.manual_seed(0)
        cfg = ModelConfig(num_classes=5, backbone=backbone, temporal_module=module, head="gru",
                          clip_len=args.clip_len)
        model = create_spotter(cfg).to(device)
        model = model.to(memory_format=torch.channels_last)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        # (B, T, 3, H, W)
        x = torch.rand(args.batch_size, args.clip_len, 3, args.height, args.width, device=device)
        y = torch.randint(0, 6, (args.batch_size, args.clip_len), device=device)  # (B, T)

        cpu: dict[str, list[float]] = {"fp32": [], "bf16": []}

        def step(precision: str) -> tuple[float, float]:
            amp = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                   else torch.autocast(device.type, enabled=False))
            sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            with amp:
                logits = model(x).logits  # (B, T, K+1)
                loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            sync()
            t1 = time.perf_counter()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            cpu[precision].append(time.process_time() - c0)
            return t1 - t0, time.perf_counter() - t1

        log(f"{name}: warm-up")
        step("fp32")
        step("bf16")
        cpu["fp32"].clear()
        cpu["bf16"].clear()
        fwd: dict[str, list[float]] = {"fp32": [], "bf16": []}
        bwd: dict[str, list[float]] = {"fp32": [], "bf16": []}

        def case(precision: str):
            def run() -> float:
                f, b = step(precision)
                fwd[precision].append(f)
                bwd[precision].append(b)
                log(f"{name} {precision}: fwd {f:.3f} s, bwd+step {b:.3f} s")
                return f + b
            return run

        times = alternate({"fp32": case("fp32"), "bf16": case("bf16")}, repeats)
        results[name] = {
            **{f"{p}_step_s": r3(median(times[p])) for p in times},
            **{f"{p}_fwd_s": r3(median(fwd[p])) for p in fwd},
            **{f"{p}_bwd_step_s": r3(median(bwd[p])) for p in bwd},
            **{f"{p}_cpu_s": r3(median(cpu[p])) for p in cpu},
            "bf16_over_fp32": r3(median(times["bf16"]) / median(times["fp32"])),
            "bf16_over_fp32_cpu": r3(median(cpu["bf16"]) / median(cpu["fp32"])),
        }
    emit("precision", args, {
        "device": str(device), "shape": [args.batch_size, args.clip_len, 3, args.height, args.width],
        "channels_last": True, "repeats": repeats, "models": results,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

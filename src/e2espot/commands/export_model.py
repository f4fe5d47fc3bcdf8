"""Export a trained run (or an imported published model) to ONNX for deployment.

The file holds the whole model (normalisation, backbone with its temporal modules, head, displacement
head) for one clip length, with a dynamic batch size and frame size, and the run's config in its
metadata: `e2espot predict VIDEO --model model.onnx` runs it on ONNX Runtime with the same streaming
pipeline and the same events as PyTorch. The export is checked against PyTorch on a random clip and
refused (nothing written) when any output differs by more than --atol.

Example: e2espot export-model runs/tennis -o runs/tennis/model.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from e2espot.infer.engines import DEFAULT_OPSET, EXPORT_ATOL

    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="run directory written by 'e2espot train' or 'e2espot import-model'")
    parser.add_argument("-o", "--out", type=Path, default=None, metavar="MODEL.onnx",
                        help="output file (default RUN_DIR/model.onnx, which 'predict --engine onnxruntime' uses)")
    parser.add_argument("--checkpoint", default="best", help="best, last, or a .pt file inside RUN_DIR")
    parser.add_argument("--clip-len", type=int, default=None, metavar="T",
                        help="frames per window of the exported model (default: the run's clip_len)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset version")
    parser.add_argument("--height", type=int, default=None,
                        help="frame height of the check clip (default: the run's crop or height)")
    parser.add_argument("--width", type=int, default=None,
                        help="frame width of the check clip (default: the run's crop or width, else 16:9)")
    parser.add_argument("--atol", type=float, default=EXPORT_ATOL,
                        help="largest |ONNX - PyTorch| accepted on any output")


def run(args: argparse.Namespace) -> int:
    import time

    from e2espot.infer.engines import export_onnx
    from e2espot.infer.predict import load_run

    out = args.out or args.run_dir / "model.onnx"
    model, cfg = load_run(args.run_dir, device="cpu", checkpoint=args.checkpoint)
    started = time.perf_counter()
    result = export_onnx(model, cfg, out, clip_len=args.clip_len, opset=args.opset, height=args.height,
                         width=args.width, atol=args.atol)
    diffs = ", ".join(f"{name} {diff:.2g}" for name, diff in result.max_abs_diff.items())
    print(f"wrote {result.path} ({result.path.stat().st_size / 1e6:.1f} MB; {result.exporter} exporter, "
          f"clip_len {result.clip_len}, {time.perf_counter() - started:.0f} s); "
          f"max |ONNX Runtime - PyTorch|: {diffs}")
    return 0

"""Re-encode videos once at the training fps and height with a short GOP (fast exact seeks),
or write jhong93/spot JPEG frame folders (--jpeg). Sub-folders are kept; finished outputs are
skipped, so an interrupted run resumes where it stopped. A video that fails does not stop the
others; every failure is listed at the end and the exit code is 1. Odd frame sizes are rounded
down to even (noted).

Example: e2espot prepare videos/ -o prepared/ --fps 25 --height 224 -j 2
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="VIDEO_DIR",
                        help="folder of videos (searched recursively) or video files")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--fps", type=float, default=None,
                        help="target frame rate (default: keep the source's)")
    parser.add_argument("--height", type=int, default=None,
                        help="target height in pixels, aspect kept, width rounded to even (default: keep)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="videos encoded in parallel (processes)")
    parser.add_argument("--jpeg", action=argparse.BooleanOptionalAction, default=False,
                        help="write 000000.jpg frame folders + fps.txt instead of H.264 .mp4")
    parser.add_argument("--gop", type=int, default=8, help="keyframe interval in frames for .mp4 output")
    parser.add_argument("--crf", type=int, default=20, help="H.264 quality (lower is better, 18-23 typical)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="show a progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from e2espot.data.prepare import plan_outputs, prepare_videos

    total = len(plan_outputs(args.inputs, args.out, jpeg=args.jpeg))
    with tqdm(total=total, unit="video", desc="prepare", disable=not args.progress) as bar:
        report = prepare_videos(
            args.inputs, args.out, fps=args.fps, height=args.height, gop=args.gop, jpeg=args.jpeg,
            jobs=args.jobs, crf=args.crf, progress=lambda src, status: bar.update(1),
        )
    print(f"prepared {report.videos_done} videos ({report.videos_skipped} already done) in {args.out}: "
          f"{report.bytes_written} bytes written ({report.bytes_written / 1e6:.1f} MB)")
    for note in report.notes:
        print(f"note: {note}")
    if report.failures:
        print(f"error: {len(report.failures)} of {total} videos failed (nothing written for them):",
              file=sys.stderr)
        for src, message in report.failures:
            print(f"  {src}: {message}", file=sys.stderr)
        return 1
    return 0

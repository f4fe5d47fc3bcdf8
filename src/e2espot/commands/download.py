"""Download data: the 2025 Team-BAS set from the Hugging Face Hub, any SoccerNet task through the SoccerNet
package, or any Hugging Face dataset repo. Re-running a download completes it (finished files are kept).

Examples:
  e2espot download team-bas data/SN-BAS-2025 --split train valid test
  e2espot download soccernet data/SoccerNet --task spotting-ball-2024 --split train valid test
  SOCCERNET_PASSWORD=... e2espot download soccernet data/SoccerNet --videos 1_224p.mkv --split train
  e2espot download hf SoccerNet/SN-BAS-2025 data/SN-BAS-2025 --include "*valid.zip"

The SoccerNet NDA password (videos only) comes from $SOCCERNET_PASSWORD or a prompt, never from a flag;
task data is public and gets the package's generic password (the NDA password there gives HTTP 401).
HF_ENDPOINT / --endpoint point at a Hub mirror; gated repos need `huggingface-cli login` or HF_TOKEN.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SOURCES = ("HuggingFace", "EXRCSDrive")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from e2espot.data.download import TEAM_BAS_SPLITS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    bas = sub.add_parser("team-bas", help="SoccerNet Team Ball Action Spotting 2025 (SoccerNet/SN-BAS-2025)")
    bas.add_argument("out", type=Path, metavar="OUT", help="folder to download into")
    bas.add_argument("--split", nargs="+", default=list(TEAM_BAS_SPLITS), choices=TEAM_BAS_SPLITS,
                     help="splits (default: all)")
    bas.add_argument("--endpoint", default=None,
                     help="Hugging Face Hub endpoint (default: HF_ENDPOINT or the Hub)")
    sn = sub.add_parser("soccernet",
                        help="a SoccerNet task's data, or per-game videos (NDA), via the SoccerNet package")
    sn.add_argument("out", type=Path, metavar="OUT", help="folder to download into (the SoccerNet root)")
    sn.add_argument("--task", default="spotting",
                    help="SoccerNet task, e.g. spotting-ball-2025 (default: spotting)")
    sn.add_argument("--split", nargs="+", required=True, help="splits, e.g. train valid test challenge")
    sn.add_argument("--videos", nargs="+", default=None, metavar="FILE",
                    help="per-game files instead of the task data, e.g. 1_224p.mkv 2_224p.mkv Labels-v2.json "
                         "(asks for the NDA password: $SOCCERNET_PASSWORD or a prompt)")
    sn.add_argument("--source", choices=SOURCES, default="HuggingFace",
                    help="the package's source (default HuggingFace)")
    hf = sub.add_parser("hf", help="any Hugging Face dataset repo through huggingface_hub")
    hf.add_argument("repo", metavar="REPO", help="repo id, e.g. SoccerNet/SN-BAS-2025")
    hf.add_argument("out", type=Path, metavar="OUT", help="folder to download into")
    hf.add_argument("--include", nargs="+", default=None, metavar="GLOB",
                    help="only files matching these globs")
    hf.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    hf.add_argument("--endpoint", default=None,
                    help="Hugging Face Hub endpoint (default: HF_ENDPOINT or the Hub)")


def run(args: argparse.Namespace) -> int:
    from e2espot.data import download

    if args.what == "team-bas":
        path = download.download_team_bas(args.out, args.split, endpoint=args.endpoint)
    elif args.what == "hf":
        path = download.download_hf(args.repo, args.out, include=args.include, revision=args.revision,
                                    endpoint=args.endpoint)
    elif args.videos:
        path = download.download_soccernet_videos(args.out, args.videos, args.split, task=args.task,
                                                  password=download.nda_password(), source=args.source)
    else:
        path = download.download_soccernet_task(args.out, args.task, args.split, source=args.source)
    files = sorted(p for p in Path(path).rglob("*") if p.is_file() and ".cache" not in p.parts)
    print(f"{path}: {len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB")
    return 0

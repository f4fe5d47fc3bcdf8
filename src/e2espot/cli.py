"""The ``e2espot`` command line: a thin client over the library.

Each subcommand lives in ``e2espot.commands.<module>`` and provides ``add_arguments(parser)``
and ``run(args) -> int``. Command modules import heavy libraries (torch, av) inside ``run`` only,
so ``e2espot --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from e2espot import __version__
from e2espot.errors import E2ESpotError

# name -> (module under e2espot.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "render a synthetic sports dataset with frame-exact events"),
    "convert": ("convert", "convert labels between formats, or split one label set"),
    "prepare": ("prepare", "re-encode videos once at the training fps/height (short GOP) or to JPEG folders"),
    "train": ("train", "train a spotting model straight from videos"),
    "test": ("test", "predict every video of a labelled split and score it"),
    "predict": ("predict", "spot events in raw video files (no labels needed)"),
    "evaluate": ("evaluate", "score predictions: E2E-Spot mAP@δ, the official SoccerNet average-mAP, Team-mAP@1"),
    "render": ("render", "annotated video and timeline pictures"),
    "export": ("export", "export events as CSV, SoccerNet JSON, chapters or a highlight reel"),
    "export-model": ("export_model", "export a run to ONNX (checked against PyTorch) for deployment"),
    "serve": ("serve", "run the web app"),
    "demo": ("demo", "synth -> train -> predict -> evaluate -> render, on CPU, no data needed"),
    "bench": ("bench", "run the throughput and memory benchmarks"),
    "download": ("download", "download SoccerNet / Team-BAS data (SoccerNet package, Hugging Face Hub)"),
    "import-model": ("import_model", "convert a published model (E2E-Spot, T-DEED, Team-BAS, AdaSpot, "
                     "OpenSportsLib, hf://) into a run directory"),
}


class _DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help unless the text already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        quiet = (None, False, argparse.SUPPRESS, [], ())
        if (action.option_strings and "default" not in text.lower() and action.default not in quiet
                and action.nargs != 0):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="e2espot",
        description="Find the exact frame at which events happen in sports videos, and name them.",
        formatter_class=_DefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"e2espot {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"e2espot.commands.{module_name}")
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip(),
                           formatter_class=_DefaultsHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except E2ESpotError as exc:
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Run the web app: upload a video, pick a model, follow the job, then watch the video with a
clickable event timeline, filters and downloads. Jobs persist in DATA_DIR/jobs.db (SQLite) and
survive a restart. Binds 127.0.0.1 by default; the JSON API is documented at /docs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", required=True, metavar="[NAME=]SAVE_DIR",
                        help="a trained run directory; repeat for several (NAME defaults to the folder name)")
    parser.add_argument("--data-dir", type=Path, default=Path("e2espot_web"),
                        help="where uploads, results and jobs.db live (default ./e2espot_web)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1, local only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-upload-mb", type=int, default=2048, help="largest accepted upload (default 2048)")
    parser.add_argument("--device", default="cpu", help="torch device for inference (default cpu)")
    parser.add_argument("--workers", type=int, default=1, help="jobs run at the same time (default 1)")


def parse_models(specs: list[str]) -> dict[str, Path]:
    """``NAME=DIR`` or ``DIR`` items into an ordered name -> directory mapping."""
    from e2espot.errors import ConfigError

    from e2espot.models.published.hub import parse_hf_ref, resolve_model_ref

    models: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).resolve().name, spec
        hub = parse_hf_ref(path)
        if hub is not None:  # hf://OWNER/REPO[/SUBDIR][@REV]: the snapshot folder in the Hugging Face cache
            name = name if sep else (hub[1] or hub[0]).rstrip("/").split("/")[-1]
            path = str(resolve_model_ref(path))
        if not Path(path).is_dir():
            raise ConfigError(f"--model {spec}: '{path}' is not a directory (expected a training run directory)")
        if name in models:
            raise ConfigError(f"--model {spec}: name '{name}' given twice; use NAME=DIR to tell them apart")
        models[name] = Path(path).resolve()
    return models


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from e2espot.web.app import create_app, default_predictor

    models = parse_models(args.model)
    app = create_app(models, args.data_dir, predictor=default_predictor(device=args.device),
                     max_upload_bytes=args.max_upload_mb * 1024 * 1024, workers=args.workers)
    logging.getLogger("e2espot").info("serving on http://%s:%d (models: %s)", args.host, args.port,
                                      ", ".join(models))
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0

"""Run the web app: upload a video, pick a model, follow the job, then watch the video with a
clickable event timeline, filters and downloads. Jobs persist in DATA_DIR/jobs.db (SQLite) and
survive a restart; one server per data dir. Binds 127.0.0.1 by default; a non-loopback --host needs
an access token (--token, $E2ESPOT_WEB_TOKEN, or one generated and printed at start). The JSON API is
documented at /docs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

TOKEN_ENV = "E2ESPOT_WEB_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", required=True, metavar="[NAME=]SAVE_DIR",
                        help="a trained run directory; repeat for several (NAME defaults to the folder name)")
    parser.add_argument("--data-dir", type=Path, default=Path("e2espot_web"),
                        help="where uploads, results and jobs.db live (default ./e2espot_web); "
                             "one server per data dir")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1, local only); any other address "
                             "requires the access token on every request")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--token", default=None,
                        help=f"access token for a non-loopback --host (default: ${TOKEN_ENV}, else a "
                             "random one printed at start); with a loopback --host it is required too")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="another Host-header name to answer to (e.g. a DNS name of this machine); "
                             "repeatable. The bind address and, for non-loopback binds, the host name are "
                             "always allowed")
    parser.add_argument("--max-upload-mb", type=int, default=2048, help="largest accepted upload (default 2048)")
    parser.add_argument("--device", default="cpu", help="torch device for inference (default cpu)")
    parser.add_argument("--workers", type=int, default=1, help="jobs run at the same time (default 1)")
    parser.add_argument("--retention-days", type=float, default=None, metavar="DAYS",
                        help="delete finished jobs (upload, results, edits) older than DAYS, at start-up and "
                             "hourly (default: keep them)")


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


def check_models(models: dict[str, Path]) -> None:
    """Load each run on the CPU once (``e2espot.infer.predict.load_run``: config.json, best.pt, weights
    that fit), so a wrong --model fails at start instead of in every job. Raises the loader's
    ``CheckpointError`` / ``ConfigError`` with the --model it came from."""
    from e2espot.errors import E2ESpotError
    from e2espot.infer.predict import load_run

    for name, run_dir in models.items():
        try:
            load_run(run_dir, device="cpu")
        except E2ESpotError as exc:
            raise type(exc)(f"--model {name}={run_dir}: {exc}") from None


def resolve_token(host: str, token: str | None) -> tuple[str | None, bool]:
    """The access token for a bind address: ``(token, generated)``. Loopback binds need none unless one
    is given; other binds use ``token``, else ``$E2ESPOT_WEB_TOKEN``, else a new random one."""
    import re
    import secrets

    from e2espot.web.security import is_loopback

    token = token or os.environ.get(TOKEN_ENV) or None
    if token is not None and not re.fullmatch(r"[A-Za-z0-9._~-]{16,}", token):
        from e2espot.errors import ConfigError

        raise ConfigError(f"access token ({len(token)} characters) must be at least 16 characters of "
                          "A-Z a-z 0-9 . _ ~ - (it goes in URLs and a cookie); omit --token to get a random one")
    if is_loopback(host):
        return token, False
    if token:
        return token, False
    return secrets.token_urlsafe(24), True


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from e2espot.web.app import create_app, default_predictor
    from e2espot.web.security import allowed_hosts_for, is_loopback

    models = parse_models(args.model)
    token, generated = resolve_token(args.host, args.token)
    hosts = allowed_hosts_for(args.host, args.allow_host)
    check_models(models)
    app = create_app(models, args.data_dir, predictor=default_predictor(device=args.device),
                     max_upload_bytes=args.max_upload_mb * 1024 * 1024, workers=args.workers,
                     retention_days=args.retention_days,
                     allowed_hosts=hosts, access_token=token, address=f"{args.host}:{args.port}")
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{args.port}/"
    if token:
        print(f"e2espot: open {url}?token={token}" + (" (a new access token; pass --token or set "
                                                       f"{TOKEN_ENV} to keep one)" if generated else ""),
              flush=True)
    if not is_loopback(args.host):
        print(f"e2espot: reachable from other machines as {', '.join(h for h in hosts if not is_loopback(h))}"
              " (with the token)", flush=True)
    logging.getLogger("e2espot").info("serving on %s (models: %s)", url, ", ".join(models))
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0

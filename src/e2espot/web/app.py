"""The e2espot web app (FastAPI): upload a video, run a model on it, explore the events.

Pages
    ``GET /``                     upload form (drag and drop), model choice, past jobs
    ``GET /jobs/{id}``            progress while the job runs, then the player + timeline + event list

JSON API (also described at ``/docs``)
    ``POST /api/jobs``            multipart form: ``file`` (the video), ``model`` (a configured model name;
                                  optional when only one is configured). 201 -> the job. 400: not a
                                  decodable video / unknown model / unsupported extension; 413: too large.
    ``GET /api/jobs``             ``{"jobs": [job, ...]}``, newest first
    ``GET /api/jobs/{id}``        the job: ``id, status (queued|running|done|failed), stage
                                  (decode|predict|render|done), progress (0..1), model, video_name, error,
                                  num_events, files {kind: name}, urls {video, page, api_events, files {kind: url}}``
    ``GET /api/jobs/{id}/events`` ``{video, fps, num_frames, duration_s, classes, colors {label: "#rrggbb"},
                                  events: [{frame, label, score, time_s}]}``; 409 until the job is done
    ``GET /api/jobs/{id}/files/{name}``  a result file (events JSON, CSV, annotated.mp4, highlights.mp4)
    ``GET /api/jobs/{id}/video``  the uploaded video (HTTP range requests supported, so seeking works)
    ``GET /api/session``          ``{"csrf_token": ...}``: the token scripts send as ``X-CSRF-Token``
    ``GET /api/jobs?offset=&limit=&q=``  a page of the history (``total`` included), ``q`` searches names
    ``DELETE /api/jobs/{id}``     the job, its edits and its files (409 while it runs)
    ``POST /api/jobs/{id}/rerun`` ``{"model"?, "threshold"?}`` -> a new job on the same upload
    ``GET /api/models``           ``{"models": [{name, display, description}]}`` (see ``model_info``)
    Review (``e2espot.web.review``): events carry ``id, review, origin, team, note, model_frame,
    model_label``; ``/events`` adds ``summary`` (counts, precision) and ``can {undo, redo}``.
    ``POST /api/jobs/{id}/edits`` ``{"op", "event_id", ...}``; ``POST .../undo``, ``POST .../redo``;
    ``GET .../edits`` the history. ``GET .../export?fmt=spot|soccernet|csv&scope=all|confirmed``: the
    corrected labels (``write_labels``); ``POST .../selection`` ``{"kind": csv|json|clips|reel,
    "event_ids", "pad_s"}`` -> ``{"name", "url"}`` of a file under ``out/exports/``.
    File routes answer ``HEAD`` too. A done job whose result files were deleted answers 410 on
    ``/events`` and ``/files`` and carries ``results_missing: true``.

Safety (see ``e2espot.web.security``): Host allow-list, same-origin + CSRF token on writes, an access
token when bound beyond loopback, nosniff/CSP/frame-ancestors headers, control characters -> 400, one
server per data dir (a lock), errors shown without server paths. Uploads are streamed to disk in chunks
and aborted over ``max_upload_bytes``; content is checked by decoding two frames with PyAV (still
images are refused); files get server-chosen names; every path built from a request is resolved and
must stay inside the data directory (else 404); job ids must be 32 hex digits.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from e2espot.data.labels import VideoLabels
from e2espot.errors import ConfigError
from e2espot.web import security
from e2espot.web.jobs import JOB_ID, Job, JobRunner, JobStore, Predictor
from e2espot.web.review import EditError, ReviewLog, corrected_labels

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
VIDEO_TYPES = {".mp4": "video/mp4", ".mkv": "video/x-matroska", ".avi": "video/x-msvideo",
               ".mov": "video/quicktime", ".webm": "video/webm"}
BROWSER_PLAYABLE = {".mp4", ".webm", ".mov"}
MAX_FIELD_BYTES = 64 * 1024
CHUNK_SLACK = 1024 * 1024  # multipart overhead allowed on top of the file size cap
PAGE = 25  # jobs per page of the history
EXPORT_FORMATS = ("spot", "soccernet", "csv")
SELECTION_KINDS = ("csv", "json", "clips", "reel")
MAX_CUT_EVENTS = 300  # clips/reel of more events than this: refused (each is a re-encode of the source)
GONE = ("the result files of this job are gone from the server (deleted from the data dir); "
        "upload the video again to re-run it")


def default_predictor(*, device: str = "cpu", render: bool = True, highlights: bool = True,
                      pad_s: float = 3.0) -> Predictor:
    """Predictor that runs ``e2espot.infer.predict.predict_file``, then renders the annotated video
    and the highlight reel into the job's output folder."""

    def predict(video_path: Path, model_dir: Path, out_dir: Path, progress, threshold: float | None = None
                ) -> dict[str, Path]:
        from e2espot.errors import VideoError
        from e2espot.export.highlights import write_highlight_reel
        from e2espot.export.render import render_annotated
        from e2espot.infer.predict import predict_file

        extra = {} if threshold is None else {"threshold": threshold}
        files = predict_file(video_path, model_dir, out_dir, device=device, progress=progress, **extra)
        out: dict[str, Path] = {"events": files.events_json, "csv": files.csv, "scores": files.scores_npz}
        if render:
            out["annotated"] = render_annotated(video_path, files.video_labels, out_dir / "annotated.mp4",
                                                progress=progress).path
        if highlights and files.video_labels.events:
            try:
                out["highlights"] = write_highlight_reel(video_path, files.video_labels,
                                                         out_dir / "highlights.mp4", pad_s=pad_s,
                                                         progress=progress).path
            except VideoError as exc:  # e.g. no event inside the video
                log.info("no highlight reel: %s", exc)
        return out

    return predict


IMAGE_FORMATS = ("image2",)  # PyAV demuxers of still images, besides the ``*_pipe`` ones (png_pipe, ...)


def _swagger_ui_dir() -> Path | None:
    """Folder of Swagger UI 5's JS/CSS bundled by the ``fastapi-offline`` package, or None when it is not
    installed (Swagger UI 5 reads the OpenAPI 3.1 that FastAPI writes)."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    path = Path(fastapi_offline.__file__).parent / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() and (path / "swagger-ui.css").is_file() else None


def safe_stem(filename: str) -> str:
    """The upload's name without extension, reduced to ``[A-Za-z0-9._-]`` (others become ``_``), at most
    80 characters, never starting with a dot; ``video`` when nothing is left. Result files and the
    ``"video"`` field of every export carry it (``match 1.mp4`` -> ``match_1``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).stem)[:80].lstrip(".")
    return stem if stem.strip("_") else "video"


def _threshold(value: Any) -> float | None:
    """A re-run's score threshold (0..1) from a form/JSON field; None when empty; 400 otherwise."""
    if value is None or value == "":
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise HTTPException(400, f"threshold {value!r} is not a number; give a score between 0 and 1") from None
    if not 0.0 <= t <= 1.0:
        raise HTTPException(400, f"threshold {t} is outside 0..1")
    return t


def model_info(name: str, run_dir: Path) -> dict[str, str]:
    """How a model is shown to people: ``{"name", "display", "description"}``.

    Read from the run directory: ``model.json`` (``{"display": ..., "description": ...}``), else
    ``config.json``'s ``"display"`` (a string, or an object with ``name``/``display`` and
    ``description``). The configured name is the fallback display; an unreadable file is ignored
    (logged), never fatal."""
    import json

    info = {"name": name, "display": name, "description": ""}
    for fname in ("model.json", "config.json"):
        path = Path(run_dir) / fname
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("model %s: cannot read %s: %s", name, path, exc)
            continue
        if not isinstance(data, dict):
            continue
        meta = data if fname == "model.json" else data.get("display")
        if isinstance(meta, str):
            meta = {"display": meta}
        if isinstance(meta, dict):
            disp = meta.get("display") or meta.get("name")
            if isinstance(disp, str) and disp.strip():
                info["display"] = disp.strip()[:120]
            if isinstance(meta.get("description"), str):
                info["description"] = meta["description"].strip()[:1000]
            break
    return info


class _NotVideo(ValueError):
    """Why an upload is not a video, in words without server paths."""


def check_video(path: Path) -> dict[str, Any]:
    """Check that ``path`` is a moving video: a video stream, not an image demuxer, at least two
    decodable frames. Raise ValueError with a reason (no server path) otherwise."""
    import av

    from e2espot.data.video import probe_video

    try:
        with av.open(str(path)) as c:
            fmt = c.format.name or ""
            if not c.streams.video:
                raise _NotVideo("it has no video stream")
            if fmt.endswith("_pipe") or any(f in fmt.split(",") for f in IMAGE_FORMATS):
                raise _NotVideo(f"it is a still image ({fmt.removesuffix('_pipe')}), not a video")
            stream = c.streams.video[0]
            num = 0
            for _ in c.decode(stream):
                num += 1
                if num >= 2:
                    break
            if num == 0:
                raise _NotVideo("no frame could be decoded")
            if num < 2:
                raise _NotVideo("it holds a single frame (a still image?); upload a video")
        info = probe_video(path)  # the displayed (upright) size, as every reader returns the frames
        return {"width": info.width, "height": info.height, "fps": float(info.fps or 0)}
    except _NotVideo:
        raise
    except Exception as exc:  # PyAV raises many types (ValueError subclasses among them, with the path)
        raise _NotVideo(f"it could not be decoded ({type(exc).__name__})") from None


class _TooLarge(Exception):
    pass


class _UploadParser:
    """Streaming multipart/form-data parser: the ``file`` part goes straight to ``dest``."""

    def __init__(self, boundary: bytes, dest: Path, max_bytes: int) -> None:
        from python_multipart.multipart import MultipartParser

        self.dest, self.max_bytes = dest, max_bytes
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.size = 0
        self._file = None
        self._headers: dict[bytes, bytes] = {}
        self._hname = b""
        self._hvalue = b""
        self._name: str | None = None
        self._buf = bytearray()
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add("_hname", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_hvalue", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
        })

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _part_begin(self) -> None:
        self._headers, self._name, self._buf = {}, None, bytearray()

    def _header_end(self) -> None:
        self._headers[self._hname.lower()] = self._hvalue
        self._hname = self._hvalue = b""

    def _headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, opts = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = opts.get(b"name", b"").decode("utf-8", "replace")
        if self._name == "file" and self._file is None:
            self.filename = opts.get(b"filename", b"").decode("utf-8", "replace")
            self._file = self.dest.open("wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._name == "file" and self._file is not None and not self._file.closed:
            self.size += end - start
            if self.size > self.max_bytes:
                raise _TooLarge
            self._file.write(data[start:end])
        else:
            self._buf += data[start:end]
            if len(self._buf) > MAX_FIELD_BYTES:
                raise _TooLarge

    def _part_end(self) -> None:
        if self._name == "file" and self._file is not None:
            self._file.close()
        elif self._name:
            self.fields[self._name] = self._buf.decode("utf-8", "replace")

    def write(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def finish(self) -> None:
        self._parser.finalize()
        self.close()

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()


def create_app(
    models: Mapping[str, Path],
    data_dir: Path,
    *,
    predictor: Predictor | None = None,
    max_upload_bytes: int = 2048 * 1024 * 1024,
    workers: int = 1,
    retention_days: float | None = None,
    allowed_hosts: Iterable[str] | None = None,
    access_token: str | None = None,
    address: str = "",
) -> FastAPI:
    """The app. ``models``: name -> run directory (the first is the default); ``predictor`` defaults to
    ``default_predictor()``; ``workers`` background job threads (0: jobs only queue).

    ``allowed_hosts``: Host-header names answered (default: loopback names; ``security.allowed_hosts_for``
    derives them from a bind address); ``retention_days``: finished jobs older than this are deleted (files
    too) at start-up and then hourly (None: kept); ``access_token``: required on every route when given (use it for
    non-loopback binds). ``address`` is only recorded next to the data-dir lock.

    Raises ``ConfigError`` when ``data_dir`` is not a usable directory or another server holds its lock
    (the lock is taken here and released when the app shuts down).
    """
    if not models:
        raise ConfigError("the web app needs at least one model (serve --model SAVE_DIR)")
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"data dir '{data_dir}' is a file, not a directory; pass a folder for uploads, "
                          "results and jobs.db (it is created when missing)")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create data dir '{data_dir}': {exc.strerror or exc}; "
                          "pass a folder you can write to") from None
    lock = security.DataDirLock(data_dir)
    lock.acquire(address)
    try:
        store = JobStore(data_dir)
    except Exception:
        lock.release()
        raise
    root = store.data_dir
    runner = JobRunner(store, models, predictor or default_predictor(), workers=workers)
    model_names = list(models)
    infos = {name: model_info(name, Path(d)) for name, d in models.items()}
    if retention_days is not None and retention_days <= 0:
        lock.release()
        raise ConfigError(f"retention of {retention_days} days: give a positive number of days (or none)")
    reviews = ReviewLog(store)
    last_purge = [0.0]

    def purge(force: bool = False) -> list[str]:
        """Delete finished jobs older than the retention setting (at most hourly unless ``force``)."""
        if retention_days is None or (not force and time.time() - last_purge[0] < 3600):
            return []
        last_purge[0] = time.time()
        gone = store.expired(retention_days * 86400.0)
        for job_id in gone:
            store.delete(job_id)
        if gone:
            log.info("retention: deleted %d jobs older than %s days", len(gone), retention_days)
        return gone

    csrf_token = secrets.token_urlsafe(32)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not lock.held:  # an app started a second time
            lock.acquire(address)
        for stale in (root / "uploads").glob("*.part"):  # uploads cut off by a previous shutdown
            stale.unlink(missing_ok=True)
        purge(force=True)
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            lock.release()

    app = FastAPI(title="e2espot", description="Precise event spotting in sports videos.", debug=False,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.store, app.state.runner, app.state.lock, app.state.csrf_token = store, runner, lock, csrf_token
    app.state.reviews, app.state.purge = reviews, purge
    security.install(app, allowed_hosts=list(allowed_hosts or security.allowed_hosts_for("127.0.0.1")),
                     csrf_token=csrf_token, access_token=access_token,
                     csp_overrides={"/docs": security.DOCS_CSP})
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    swagger_dir = _swagger_ui_dir()
    if swagger_dir is not None:  # /docs without a CDN: Swagger UI's files from fastapi-offline
        app.mount("/docs-assets", StaticFiles(directory=swagger_dir), name="docs-assets")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["csrf_token"] = csrf_token
    templates.env.globals["public_error"] = lambda text: security.public_error(text, {root: "<data>"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        """JSON for the API; a page with a way back for people (404 and other errors on page routes)."""
        wants_html = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api/")
        if wants_html:
            return templates.TemplateResponse(request, "error.html", {"status": exc.status_code,
                                                                      "detail": exc.detail},
                                              status_code=exc.status_code, headers=exc.headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    def get_job(job_id: str) -> Job:
        if not JOB_ID.fullmatch(job_id):
            raise HTTPException(404, "no such job")
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job")
        return job

    def inside(path: Path, base: Path) -> Path:
        """``path`` resolved; 404 unless it is a file inside ``base`` (itself inside the data dir)."""
        path, base = path.resolve(), base.resolve()
        if not base.is_relative_to(root) or not path.is_relative_to(base) or not path.is_file():
            raise HTTPException(404, "no such file")
        return path

    def missing_results(job: Job) -> list[str]:
        """Kinds of a done job's files (and ``video``, the upload) that are no longer on disk."""
        if job.status != "done":
            return []
        job_dir = store.job_dir(job.id)
        gone = [kind for kind, name in job.files.items() if not (job_dir / "out" / name).is_file()]
        return gone + ([] if (job_dir / job.video_file).is_file() else ["video"])

    def job_json(job: Job) -> dict[str, Any]:
        d = job.to_dict()
        if d["error"]:  # rows written before errors were cleaned, too
            d["error"] = security.public_error(d["error"], {root: "<data>"})
        d["missing_files"] = missing_results(job)
        d["results_missing"] = "events" in d["missing_files"]
        base = f"/api/jobs/{job.id}"
        d["urls"] = {"video": f"{base}/video", "page": f"/jobs/{job.id}", "api_events": f"{base}/events",
                     "files": {kind: f"{base}/files/{name}" for kind, name in job.files.items()}}
        d["browser_playable"] = Path(job.video_file).suffix in BROWSER_PLAYABLE
        d["model_display"] = infos[job.model]["display"] if job.model in infos else job.model
        d["video_stem"] = Path(job.video_file).stem
        if job.status == "running" and job.started and job.progress and job.progress > 0.02:
            spent = job.updated - job.started  # the ETA assumes the rest runs at the rate so far
            d["eta_s"] = round(spent * (1.0 - job.progress) / job.progress, 1)
        else:
            d["eta_s"] = None
        return d

    # ------------------------------------------------------------------ pages

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request):
        purge()
        return templates.TemplateResponse(request, "index.html", {
            "models": model_names, "infos": infos, "jobs": store.list(limit=PAGE), "total": store.count(),
            "page_size": PAGE, "max_mb": max_upload_bytes // (1024 * 1024),
            "extensions": ", ".join(VIDEO_TYPES)})

    @app.api_route("/jobs/{job_id}", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
    def job_page(request: Request, job_id: str):
        job = get_job(job_id)
        return templates.TemplateResponse(request, "job.html", {"job": job, "models": model_names, "infos": infos,
                                                                "model_display": infos.get(job.model, {}).get("display", job.model)})

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs(request: Request):
        """Swagger UI, served from this server (works offline); "Try it out" sends the CSRF token."""
        return templates.TemplateResponse(request, "docs.html", {"swagger": swagger_dir is not None})

    # ------------------------------------------------------------------ API

    @app.post("/api/jobs", status_code=201, summary="Upload a video and start a job")
    async def create_job(request: Request):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload_bytes + CHUNK_SLACK:
            raise HTTPException(413, f"upload too large: limit is {max_upload_bytes // (1024 * 1024)} MB")
        from python_multipart.multipart import parse_options_header

        ctype, opts = parse_options_header(request.headers.get("content-type", ""))
        if ctype != b"multipart/form-data" or not opts.get(b"boundary"):
            raise HTTPException(400, "expected multipart/form-data with a 'file' field")
        uploads = root / "uploads"
        uploads.mkdir(exist_ok=True)
        part = uploads / f"{uuid.uuid4().hex}.part"
        parser = _UploadParser(opts[b"boundary"], part, max_upload_bytes)
        try:
            try:
                async for chunk in request.stream():
                    parser.write(chunk)
                parser.finish()
            except _TooLarge:
                raise HTTPException(413, f"upload too large: limit is {max_upload_bytes // (1024 * 1024)} MB, "
                                         "fields 64 KB") from None
            except Exception as exc:  # malformed multipart body, client gone
                if isinstance(exc, HTTPException):
                    raise
                raise HTTPException(400, f"could not read the upload: {type(exc).__name__}") from None
            finally:
                parser.close()
            if parser.filename is None or not part.exists():
                raise HTTPException(400, "no 'file' field in the upload")
            for what, value in (("file name", parser.filename), *parser.fields.items()):
                if security.has_control_chars(value, escaped=True):
                    raise HTTPException(400, f"the {what} holds a NUL or control character; rename it")
            ext = Path(parser.filename).suffix.lower()
            if ext not in VIDEO_TYPES:
                raise HTTPException(400, f"unsupported file type '{ext or parser.filename}'; "
                                         f"upload one of {', '.join(VIDEO_TYPES)}")
            model = parser.fields.get("model") or model_names[0]
            if model not in models:
                raise HTTPException(400, f"unknown model '{model}'; available: {', '.join(model_names)}")
            try:
                await run_in_threadpool(check_video, part)
            except ValueError as exc:
                raise HTTPException(400, f"'{parser.filename}' is not a video file: "
                                         f"{security.public_error(str(exc), {root: '<data>'})}") from None
            job_id = uuid.uuid4().hex
            job_dir = store.job_dir(job_id)
            job_dir.mkdir(parents=True)
            video_file = safe_stem(parser.filename) + ext
            shutil.move(str(part), job_dir / video_file)
        finally:
            part.unlink(missing_ok=True)
        threshold = _threshold(parser.fields.get("threshold"))
        job = store.create(job_id, model, Path(parser.filename).name[:200], video_file,
                           {"threshold": threshold} if threshold is not None else None)
        runner.submit(job_id)
        return JSONResponse(job_json(job), status_code=201)

    @app.get("/api/session", summary="The CSRF token to send as X-CSRF-Token on POST requests")
    def session() -> dict[str, str]:
        return {"csrf_token": csrf_token}

    @app.get("/api/jobs", summary="List jobs, newest first (paging: offset, limit; search: q)")
    def list_jobs(offset: int = 0, limit: int = PAGE, q: str = "") -> dict[str, Any]:
        if offset < 0 or not 1 <= limit <= 500:
            raise HTTPException(400, f"offset {offset} must be >= 0 and limit {limit} within 1..500")
        purge()
        return {"jobs": [job_json(j) for j in store.list(limit=limit, offset=offset, query=q[:200])],
                "total": store.count(q[:200]), "offset": offset, "limit": limit, "models": model_names,
                "model_info": [infos[m] for m in model_names]}

    @app.get("/api/models", summary="Configured models with their display names and descriptions")
    def list_models() -> dict[str, Any]:
        return {"models": [infos[m] for m in model_names]}

    @app.delete("/api/jobs/{job_id}", summary="Delete a job: its row, its edits, its upload and results")
    def delete_job(job_id: str) -> dict[str, Any]:
        job = get_job(job_id)
        if job.status == "running":
            raise HTTPException(409, "the job is running; delete it once it is done or failed")
        store.delete(job.id)
        predictions_cache.pop(job.id, None)
        return {"deleted": job.id}

    @app.post("/api/jobs/{job_id}/rerun", status_code=201, summary="Run the same video again (model, threshold)")
    async def rerun_job(job_id: str, request: Request) -> JSONResponse:
        job = get_job(job_id)
        body = await _json_body(request)
        model = body.get("model") or job.model
        if model not in models:
            raise HTTPException(400, f"unknown model '{model}'; available: {', '.join(model_names)}")
        threshold = _threshold(body.get("threshold"))
        src = store.job_dir(job.id) / job.video_file
        if not src.is_file():
            raise HTTPException(410, "the uploaded video of this job is gone from the server; upload it again")
        new_id = uuid.uuid4().hex
        new_dir = store.job_dir(new_id)
        new_dir.mkdir(parents=True)
        try:
            (new_dir / job.video_file).hardlink_to(src)
        except OSError:
            shutil.copy2(src, new_dir / job.video_file)
        options = {"rerun_of": job.id, **({"threshold": threshold} if threshold is not None else {})}
        new = store.create(new_id, model, job.video_name, job.video_file, options)
        runner.submit(new_id)
        return JSONResponse(job_json(new), status_code=201)

    @app.get("/api/jobs/{job_id}", summary="One job: status, progress, files")
    def read_job(job_id: str) -> dict[str, Any]:
        return job_json(get_job(job_id))

    predictions_cache: dict[str, tuple[tuple[float, int], VideoLabels, list[str]]] = {}

    def predictions(job: Job) -> tuple[VideoLabels, list[str]]:
        """The model's events of a done job (one video) and the class list (the model's, then any other
        label used); cached per file (mtime, size). 409 before the job is done, 410 when gone."""
        from e2espot.data.formats import read_predictions

        if job.status != "done":
            raise HTTPException(409, f"job is {job.status}; events exist once it is done")
        out = store.job_dir(job.id) / "out"
        if "events" in missing_results(job):
            raise HTTPException(410, GONE)
        path = inside(out / job.files["events"], out)
        st = path.stat()
        key = (st.st_mtime, st.st_size)
        hit = predictions_cache.get(job.id)
        if hit is None or hit[0] != key:
            labels = read_predictions(path)
            v = labels.videos[0]
            classes = list(labels.classes) + sorted({e.label for e in v.events} - set(labels.classes))
            hit = predictions_cache[job.id] = (key, v, classes)
        return hit[1], hit[2]

    def review_state(job: Job, video: VideoLabels) -> dict[str, Any]:
        from e2espot.web.review import summary

        events = reviews.state(job.id, video)
        return {"summary": summary(events), "can": reviews.can(job.id), "events": events}

    @app.get("/api/jobs/{job_id}/events", summary="Events of a finished job, with the analyst's corrections")
    def read_events(job_id: str) -> JSONResponse:
        from e2espot.export.render import class_colors, hex_color

        job = get_job(job_id)
        v, classes = predictions(job)
        fps = v.fps or 0.0
        colors = class_colors(classes)
        state = review_state(job, v)
        return JSONResponse({  # plain JSON (no jsonable_encoder walk): a match has thousands of events
            "video": v.video, "fps": v.fps, "num_frames": v.num_frames,
            "duration_s": (v.num_frames / fps) if (fps and v.num_frames) else None,
            "classes": classes, "colors": {c: hex_color(colors[c]) for c in classes},
            "summary": state["summary"], "can": state["can"],
            "events": [e.to_json(v.fps) for e in state["events"] if not e.deleted],
        })

    async def _json_body(request: Request) -> dict[str, Any]:
        import json

        raw = await request.body()
        if len(raw) > 4 * 1024 * 1024:
            raise HTTPException(413, "request body over 4 MB")
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise HTTPException(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(400, "the body must be a JSON object")
        return body

    def _after_edit(job: Job, v: VideoLabels, event_id: str | None) -> dict[str, Any]:
        state = review_state(job, v)
        by_id = {e.id: e for e in state["events"]}
        e = by_id.get(event_id) if event_id else None
        return {"event_id": event_id, "event": e.to_json(v.fps) if e is not None and not e.deleted else None,
                "summary": state["summary"], "can": state["can"]}

    @app.post("/api/jobs/{job_id}/edits", summary="One review edit (saved at once); see e2espot.web.review")
    async def add_edit(job_id: str, request: Request) -> dict[str, Any]:
        job = get_job(job_id)
        v, classes = predictions(job)
        body = await _json_body(request)
        op, event_id = body.get("op"), body.get("event_id")
        if not isinstance(op, str) or (event_id is not None and not isinstance(event_id, str)):
            raise HTTPException(400, "give 'op' (text) and, except for 'add', 'event_id' (text)")
        try:
            e = reviews.edit(job.id, v, classes, op, event_id, body)
        except EditError as exc:
            raise HTTPException(400, str(exc)) from None
        return _after_edit(job, v, e.id if e is not None else event_id)

    def _history_step(job_id: str, step: str) -> dict[str, Any]:
        """Undo or redo (``step``) the latest edit of a job; 409 when there is none to step over."""
        job = get_job(job_id)
        v, _ = predictions(job)
        event_id = getattr(reviews, step)(job.id)
        if event_id is None:
            raise HTTPException(409, f"nothing to {step}")
        return _after_edit(job, v, event_id)

    @app.post("/api/jobs/{job_id}/undo", summary="Undo the latest edit")
    def undo_edit(job_id: str) -> dict[str, Any]:
        return _history_step(job_id, "undo")

    @app.post("/api/jobs/{job_id}/redo", summary="Redo the latest undone edit")
    def redo_edit(job_id: str) -> dict[str, Any]:
        return _history_step(job_id, "redo")

    @app.get("/api/jobs/{job_id}/edits", summary="The edit history of a job (active, undone, discarded)")
    def read_edits(job_id: str) -> dict[str, Any]:
        job = get_job(job_id)
        return {"edits": reviews.history(job.id), "can": reviews.can(job.id)}

    def exports_dir(job: Job) -> Path:
        path = store.job_dir(job.id) / "out" / "exports"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _zip(files: list[Path], base: Path, dest: Path) -> Path:
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in files:
                zf.write(f, f.relative_to(base).as_posix())
        return dest

    @app.get("/api/jobs/{job_id}/export", summary="Corrected events as labels: fmt spot | soccernet | csv")
    def export_labels(job_id: str, fmt: str = "spot", scope: str = "all"):
        """``spot``: a zip with ``train.json`` + ``class.txt`` (an E2E-Spot label dir for ``e2espot train``);
        ``soccernet``: a zip with ``<video>/Labels-ball.json`` (one video per game); ``csv``: one CSV. Written by
        ``e2espot.data.formats.write_labels``."""
        import tempfile

        from e2espot.data.formats import write_labels

        if fmt not in EXPORT_FORMATS:
            raise HTTPException(400, f"format '{fmt}' is not one of: {', '.join(EXPORT_FORMATS)}")
        job = get_job(job_id)
        v, classes = predictions(job)
        try:
            labels = corrected_labels(v, classes, reviews.state(job.id, v), scope=scope)
        except EditError as exc:
            raise HTTPException(400, str(exc)) from None
        dest_dir = exports_dir(job)
        stem = f"{v.video}.corrected" + ("" if scope == "all" else "-confirmed")
        if fmt == "csv":
            path = write_labels(labels, dest_dir / f"{stem}.csv", "csv")[0]
        else:
            with tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
                written = write_labels(labels, Path(tmp), fmt, **({"split": "train"} if fmt == "spot" else {}))
                path = _zip(written, Path(tmp), dest_dir / f"{stem}.{fmt}.zip")
        return FileResponse(path, filename=path.name,
                            media_type="text/csv" if fmt == "csv" else "application/zip")

    @app.post("/api/jobs/{job_id}/selection", summary="Export selected events: csv | json | clips | reel")
    async def export_selection(job_id: str, request: Request) -> dict[str, Any]:
        """Body ``{"kind", "event_ids": [...], "pad_s": 3}``. ``csv``/``json``: the events (with scores) via
        ``write_labels`` (csv) / ``write_prediction_json``; ``clips``: a zip of one clip per event (``pad_s`` either side, audio
        kept); ``reel``: one highlight reel. Answers ``{"name", "url"}``; names start with the video's."""
        from e2espot.data.formats import write_labels, write_prediction_json
        from e2espot.data.labels import Event, LabelSet

        job = get_job(job_id)
        v, classes = predictions(job)
        body = await _json_body(request)
        kind, ids = body.get("kind"), body.get("event_ids")
        if kind not in SELECTION_KINDS:
            raise HTTPException(400, f"kind {kind!r} is not one of: {', '.join(SELECTION_KINDS)}")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise HTTPException(400, "event_ids must be a non-empty list of event ids")
        pad_s = body.get("pad_s", 3.0)
        if isinstance(pad_s, bool) or not isinstance(pad_s, (int, float)) or not 0 <= pad_s <= 60:
            raise HTTPException(400, f"pad_s {pad_s!r} must be a number of seconds within 0..60")
        by_id = {e.id: e for e in reviews.state(job.id, v) if not e.deleted}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise HTTPException(400, f"no event {unknown[0]!r} in this job ({len(unknown)} unknown ids)")
        chosen = sorted((by_id[i] for i in dict.fromkeys(ids)), key=lambda e: (e.frame, e.label))
        if kind in ("clips", "reel") and len(chosen) > MAX_CUT_EVENTS:
            raise HTTPException(400, f"{len(chosen)} events selected; clips and reels take at most "
                                     f"{MAX_CUT_EVENTS} (filter or check fewer rows)")
        events = [Event(e.frame, e.label, e.score, team=e.team, comment=e.note) for e in chosen]
        sel = VideoLabels(v.video, v.fps, v.num_frames, events, width=v.width, height=v.height)
        dest = exports_dir(job)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{v.video}.selection-{stamp}"
        if kind == "csv":
            path = write_labels(LabelSet(classes, [sel]), dest / f"{base}.csv", "csv")[0]
        elif kind == "json":
            path = write_prediction_json(LabelSet(classes, [sel]), dest / f"{base}.json")
        else:
            video_path = store.job_dir(job.id) / job.video_file
            if not video_path.is_file():
                raise HTTPException(410, "the uploaded video of this job is gone from the server; upload it again")
            path = await run_in_threadpool(_cut, kind, video_path, sel, dest, base, float(pad_s))
        rel = path.relative_to(store.job_dir(job.id) / "out").as_posix()
        return {"name": path.name, "url": f"/api/jobs/{job.id}/files/{rel}", "num_events": len(events)}

    def _cut(kind: str, video_path: Path, sel: VideoLabels, dest: Path, base: str, pad_s: float) -> Path:
        import tempfile

        from e2espot.errors import VideoError
        from e2espot.export.highlights import write_highlight_reel

        try:
            if kind == "reel":
                return write_highlight_reel(video_path, sel, dest / f"{base}.reel.mp4", pad_s=pad_s).path
            with tempfile.TemporaryDirectory(dir=dest) as tmp:
                clips = []
                for e in sel.events:
                    t = e.frame / sel.fps if sel.fps else 0.0
                    name = f"{sel.video}_{e.label}_{int(t // 60):02d}m{t % 60:05.2f}s_f{e.frame}"
                    name = re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".mp4"
                    one = VideoLabels(sel.video, sel.fps, sel.num_frames, [e], width=sel.width, height=sel.height)
                    clips.append(write_highlight_reel(video_path, one, Path(tmp) / name, pad_s=pad_s,
                                                      title_s=0.0).path)
                return _zip(clips, Path(tmp), dest / f"{base}.clips.zip")
        except VideoError as exc:
            raise HTTPException(400, security.public_error(str(exc), {root: "<data>"})) from None

    @app.get("/api/jobs/{job_id}/files/{name:path}", summary="Download a result file (HEAD too)")
    @app.head("/api/jobs/{job_id}/files/{name:path}", include_in_schema=False)
    def read_file(job_id: str, name: str):
        job = get_job(job_id)
        out = store.job_dir(job.id) / "out"
        if name in job.files.values() and not (out / name).is_file():
            raise HTTPException(410, GONE)
        path = inside(out / name, out)
        media = VIDEO_TYPES.get(path.suffix.lower())
        return FileResponse(path, media_type=media, content_disposition_type="inline", filename=path.name)

    @app.get("/api/jobs/{job_id}/video", summary="The uploaded video (range requests and HEAD supported)")
    @app.head("/api/jobs/{job_id}/video", include_in_schema=False)
    def read_video(job_id: str):
        job = get_job(job_id)
        if not (store.job_dir(job.id) / job.video_file).is_file():
            raise HTTPException(410, "the uploaded video of this job is gone from the server; upload it again")
        path = inside(store.job_dir(job.id) / job.video_file, store.job_dir(job.id))
        return FileResponse(path, media_type=VIDEO_TYPES.get(path.suffix.lower(), "application/octet-stream"))

    return app

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
import secrets
import shutil
import uuid
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

from e2espot.errors import ConfigError
from e2espot.web import security
from e2espot.web.jobs import JOB_ID, Job, JobRunner, JobStore, Predictor

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
VIDEO_TYPES = {".mp4": "video/mp4", ".mkv": "video/x-matroska", ".avi": "video/x-msvideo",
               ".mov": "video/quicktime", ".webm": "video/webm"}
BROWSER_PLAYABLE = {".mp4", ".webm", ".mov"}
MAX_FIELD_BYTES = 64 * 1024
CHUNK_SLACK = 1024 * 1024  # multipart overhead allowed on top of the file size cap
GONE = ("the result files of this job are gone from the server (deleted from the data dir); "
        "upload the video again to re-run it")


def default_predictor(*, device: str = "cpu", render: bool = True, highlights: bool = True,
                      pad_s: float = 3.0) -> Predictor:
    """Predictor that runs ``e2espot.infer.predict.predict_file``, then renders the annotated video
    and the highlight reel into the job's output folder."""

    def predict(video_path: Path, model_dir: Path, out_dir: Path, progress) -> dict[str, Path]:
        from e2espot.errors import VideoError
        from e2espot.export.highlights import write_highlight_reel
        from e2espot.export.render import render_annotated
        from e2espot.infer.predict import predict_file

        files = predict_file(video_path, model_dir, out_dir, device=device, progress=progress)
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


class _NotVideo(ValueError):
    """Why an upload is not a video, in words without server paths."""


def check_video(path: Path) -> dict[str, Any]:
    """Check that ``path`` is a moving video: a video stream, not an image demuxer, at least two
    decodable frames. Raise ValueError with a reason (no server path) otherwise."""
    import av

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
            return {"width": stream.codec_context.width, "height": stream.codec_context.height,
                    "fps": float(stream.average_rate or stream.guessed_rate or 0)}
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
    allowed_hosts: Iterable[str] | None = None,
    access_token: str | None = None,
    address: str = "",
) -> FastAPI:
    """The app. ``models``: name -> run directory (the first is the default); ``predictor`` defaults to
    ``default_predictor()``; ``workers`` background job threads (0: jobs only queue).

    ``allowed_hosts``: Host-header names answered (default: loopback names; ``security.allowed_hosts_for``
    derives them from a bind address); ``access_token``: required on every route when given (use it for
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
    csrf_token = secrets.token_urlsafe(32)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not lock.held:  # an app started a second time
            lock.acquire(address)
        for stale in (root / "uploads").glob("*.part"):  # uploads cut off by a previous shutdown
            stale.unlink(missing_ok=True)
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            lock.release()

    app = FastAPI(title="e2espot", description="Precise event spotting in sports videos.", debug=False,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.store, app.state.runner, app.state.lock, app.state.csrf_token = store, runner, lock, csrf_token
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
        return d

    # ------------------------------------------------------------------ pages

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request):
        return templates.TemplateResponse(request, "index.html", {
            "models": model_names, "jobs": store.list(), "max_mb": max_upload_bytes // (1024 * 1024),
            "extensions": ", ".join(VIDEO_TYPES)})

    @app.api_route("/jobs/{job_id}", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
    def job_page(request: Request, job_id: str):
        job = get_job(job_id)
        return templates.TemplateResponse(request, "job.html", {"job": job})

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
            video_file = f"video{ext}"
            shutil.move(str(part), job_dir / video_file)
        finally:
            part.unlink(missing_ok=True)
        job = store.create(job_id, model, Path(parser.filename).name[:200], video_file)
        runner.submit(job_id)
        return JSONResponse(job_json(job), status_code=201)

    @app.get("/api/session", summary="The CSRF token to send as X-CSRF-Token on POST requests")
    def session() -> dict[str, str]:
        return {"csrf_token": csrf_token}

    @app.get("/api/jobs", summary="List jobs, newest first")
    def list_jobs() -> dict[str, Any]:
        return {"jobs": [job_json(j) for j in store.list()], "models": model_names}

    @app.get("/api/jobs/{job_id}", summary="One job: status, progress, files")
    def read_job(job_id: str) -> dict[str, Any]:
        return job_json(get_job(job_id))

    @app.get("/api/jobs/{job_id}/events", summary="Events of a finished job")
    def read_events(job_id: str) -> dict[str, Any]:
        from e2espot.data.timebase import frame_to_time_s
        from e2espot.export.render import class_colors, hex_color
        from e2espot.export.writers import read_predictions

        job = get_job(job_id)
        if job.status != "done":
            raise HTTPException(409, f"job is {job.status}; events exist once it is done")
        out = store.job_dir(job.id) / "out"
        if "events" in missing_results(job):
            raise HTTPException(410, GONE)
        path = inside(out / job.files["events"], out)
        labels = read_predictions(path)
        v = labels.videos[0]
        fps = v.fps or 0.0
        classes = sorted({e.label for e in v.events})
        colors = class_colors(classes)
        return {
            "video": v.video, "fps": v.fps, "num_frames": v.num_frames,
            "duration_s": (v.num_frames / fps) if (fps and v.num_frames) else None,
            "classes": classes, "colors": {c: hex_color(colors[c]) for c in classes},
            "events": [{"frame": e.frame, "label": e.label, "score": e.score,
                        "time_s": round(frame_to_time_s(e.frame, fps), 4) if fps else None}
                       for e in sorted(v.events, key=lambda e: (e.frame, e.label))],
        }

    @app.get("/api/jobs/{job_id}/files/{name}", summary="Download a result file (HEAD too)")
    @app.head("/api/jobs/{job_id}/files/{name}", include_in_schema=False)
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

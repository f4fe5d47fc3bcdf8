"""Jobs of the web app: a SQLite store (WAL, one connection per thread) and worker threads.

A job is ``queued`` -> ``running`` -> ``done`` | ``failed``. On start-up, jobs left ``queued`` or
``running`` by a previous process are queued again; finished ones keep their results.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, float], None]
# predictor(video_path, model_dir, out_dir, progress) -> {kind: path inside out_dir}; must give "events"
# (our per-video prediction JSON); may give "csv", "annotated", "highlights", ...
Predictor = Callable[[Path, Path, Path, ProgressFn], Mapping[str, Path]]

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
STATUSES = ("queued", "running", "done", "failed")
STAGES = ("decode", "predict", "render")  # a job's stage only moves forward along these

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    stage TEXT NOT NULL DEFAULT '',
    progress REAL NOT NULL DEFAULT 0,
    model TEXT NOT NULL,
    video_name TEXT NOT NULL,
    video_file TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    error TEXT,
    num_events INTEGER,
    files TEXT NOT NULL DEFAULT '{}'
)
"""
# columns added after the first release: (name, SQL type and default); added to older databases on open
_ADDED_COLUMNS = (("options", "TEXT NOT NULL DEFAULT '{}'"), ("started", "REAL"))


@dataclass
class Job:
    """One row of the jobs table."""

    id: str
    status: str
    stage: str
    progress: float
    model: str
    video_name: str  # the uploaded file's name, for display only
    video_file: str  # server-chosen name inside the job folder
    created: float
    updated: float
    error: str | None = None
    num_events: int | None = None
    files: dict[str, str] = field(default_factory=dict)  # kind -> file name inside the job's out/ folder
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"threshold": 0.3, "rerun_of": id}
    started: float | None = None  # when a worker took it (for the ETA)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("id", "status", "stage", "progress", "model", "video_name",
                                               "created", "updated", "error", "num_events", "files",
                                               "options", "started")}


class JobStore:
    """SQLite-backed job table in ``data_dir/jobs.db``; each thread gets its own connection."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "jobs").mkdir(exist_ok=True)
        self.db_path = self.data_dir / "jobs.db"
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._conn() as c:
            c.execute(_SCHEMA)
            have = {r[1] for r in c.execute("PRAGMA table_info(jobs)")}
            for name, decl in _ADDED_COLUMNS:
                if name not in have:
                    c.execute(f"ALTER TABLE jobs ADD COLUMN {name} {decl}")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def job_dir(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id

    def create(self, job_id: str, model: str, video_name: str, video_file: str,
               options: Mapping[str, Any] | None = None) -> Job:
        now = time.time()
        with self._conn() as c:
            c.execute("INSERT INTO jobs (id, status, model, video_name, video_file, created, updated, options) "
                      "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                      (job_id, model, video_name, video_file, now, now, json.dumps(dict(options or {}))))
        job = self.get(job_id)
        assert job is not None  # just inserted
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list(self, limit: int = 200, offset: int = 0, query: str = "") -> list[Job]:
        """Jobs newest first; ``query`` matches the video name, model or status (case-insensitive)."""
        where, args = self._where(query)
        rows = self._conn().execute(f"SELECT * FROM jobs {where} ORDER BY created DESC LIMIT ? OFFSET ?",
                                    (*args, limit, offset)).fetchall()
        return [_job(r) for r in rows]

    def count(self, query: str = "") -> int:
        where, args = self._where(query)
        return int(self._conn().execute(f"SELECT COUNT(*) FROM jobs {where}", args).fetchone()[0])

    @staticmethod
    def _where(query: str) -> tuple[str, tuple[str, ...]]:
        if not query:
            return "", ()
        like = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = ("WHERE lower(video_name) LIKE ? ESCAPE '\\' OR lower(model) LIKE ? ESCAPE '\\' "
                 "OR status LIKE ? ESCAPE '\\'")
        return where, (like, like, like)

    def delete(self, job_id: str) -> None:
        """Remove the job's row, its edits and its folder (upload and results)."""
        import shutil

        with self._conn() as c:
            c.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            if c.execute("SELECT name FROM sqlite_master WHERE name = 'edits'").fetchone():
                c.execute("DELETE FROM edits WHERE job_id = ?", (job_id,))
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def expired(self, max_age_s: float, now: float | None = None) -> list[str]:
        """Finished jobs created more than ``max_age_s`` seconds ago (the retention setting)."""
        cutoff = (time.time() if now is None else now) - max_age_s
        rows = self._conn().execute("SELECT id FROM jobs WHERE status IN ('done', 'failed') AND created < ?",
                                    (cutoff,)).fetchall()
        return [r["id"] for r in rows]

    def update(self, job_id: str, **fields: Any) -> None:
        if "files" in fields:
            fields["files"] = json.dumps(fields["files"])
        fields["updated"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._conn() as c:
            c.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))

    def unfinished(self) -> list[str]:
        rows = self._conn().execute(
            "SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY created").fetchall()
        return [r["id"] for r in rows]


def _job(row: sqlite3.Row) -> Job:
    d = dict(row)
    d["files"] = json.loads(d.get("files") or "{}")
    d["options"] = json.loads(d.get("options") or "{}")
    return Job(**d)


class JobRunner:
    """Runs queued jobs on ``workers`` background threads (0: jobs wait; useful in tests)."""

    def __init__(self, store: JobStore, models: Mapping[str, Path], predictor: Predictor, *,
                 workers: int = 1) -> None:
        self.store = store
        self.models = dict(models)
        self.predictor = predictor
        self.workers = workers
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def start(self) -> None:
        """Queue again what a previous process left unfinished, then start the workers."""
        for job_id in self.store.unfinished():
            self.store.update(job_id, status="queued", stage="", progress=0.0)
            self._queue.put(job_id)
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"e2espot-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the workers to stop after their current job; wait up to ``timeout`` seconds."""
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                job_id = self._queue.get()
                if job_id is None:
                    break
                self._run(job_id)
        finally:
            self.store.close()

    def _run(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.status != "queued":
            return
        self.store.update(job_id, status="running", stage="decode", progress=0.0, error=None, started=time.time())
        job_dir = self.store.job_dir(job_id)
        out_dir = job_dir / "out"
        out_dir.mkdir(parents=True, exist_ok=True)
        last = [0.0, "decode"]

        def progress(stage: str, fraction: float) -> None:
            # predict_file decodes ahead while the model runs and reports both; once "predict" has been
            # reported, later "decode" reports are not shown, so the page lights the stage that runs
            if stage in STAGES and last[1] in STAGES and STAGES.index(stage) < STAGES.index(last[1]):
                return
            now = time.monotonic()
            if stage != last[1] or now - last[0] > 0.25 or fraction >= 1.0:
                last[0], last[1] = now, stage
                self.store.update(job_id, stage=stage, progress=float(min(max(fraction, 0.0), 1.0)))

        try:
            model_dir = self.models.get(job.model)
            if model_dir is None:
                raise LookupError(f"model '{job.model}' is not configured on this server "
                                  f"(available: {', '.join(self.models)})")
            produced = dict(self._predict(job, model_dir, out_dir, progress))
            files = self._collect(produced, out_dir)
            from e2espot.data.formats import read_predictions

            num_events = sum(len(v.events) for v in read_predictions(out_dir / files["events"]).videos)
            self.store.update(job_id, status="done", stage="done", progress=1.0, files=files,
                              num_events=num_events)
        except Exception as exc:  # a failed job shows its error; the server keeps going
            log.warning("job %s failed: %s\n%s", job_id, exc, traceback.format_exc())
            self.store.update(job_id, status="failed", error=self.public_error(exc, job))

    def _predict(self, job: Job, model_dir: Path, out_dir: Path, progress: ProgressFn) -> Mapping[str, Path]:
        """Call the predictor; a job's ``threshold`` option goes to predictors that take ``threshold=``."""
        import inspect

        kwargs = {}
        if job.options.get("threshold") is not None:
            if "threshold" not in inspect.signature(self.predictor).parameters:
                raise RuntimeError("this server's predictor takes no threshold; re-run without one")
            kwargs["threshold"] = float(job.options["threshold"])
        return self.predictor(self.store.job_dir(job.id) / job.video_file, model_dir, out_dir, progress, **kwargs)

    def public_error(self, exc: BaseException, job: Job) -> str:
        """``Type: message`` of a failed job as people see it: the upload's path becomes its name, the
        model folders ``<model NAME>``, the job and data folders ``<job>`` / ``<data>``, other absolute
        paths their last component, errno markers go (the full error is in the server log)."""
        from e2espot.web.security import public_error

        job_dir = self.store.job_dir(job.id)
        replacements: dict[str | Path, str] = {job_dir / job.video_file: job.video_name, job_dir: "<job>",
                                               self.store.data_dir: "<data>"}
        replacements.update({d: f"<model {name}>" for name, d in self.models.items()})
        return public_error(f"{type(exc).__name__}: {exc}", replacements)

    @staticmethod
    def _collect(produced: Mapping[str, Path], out_dir: Path) -> dict[str, str]:
        """Predictor outputs as file names inside ``out_dir``; adds the CSV when missing."""
        root = out_dir.resolve()
        files: dict[str, str] = {}
        for kind, path in produced.items():
            p = Path(path).resolve()
            if not p.is_relative_to(root) or not p.is_file() or p.parent != root:
                raise RuntimeError(f"predictor output '{kind}' = {path} is not a file directly in {out_dir}")
            files[kind] = p.name
        if "events" not in files:
            raise RuntimeError("the predictor returned no 'events' file")
        if "csv" not in files:
            from e2espot.data.formats import read_predictions, write_prediction_csv

            labels = read_predictions(root / files["events"])
            files["csv"] = write_prediction_csv(labels, root / (Path(files["events"]).stem + ".csv")).name
        return files

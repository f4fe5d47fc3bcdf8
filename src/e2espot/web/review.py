"""Review and correction of a job's events: an append-only edit log in SQLite, replayed over the model's
predictions.

The model's events (the job's events JSON, sorted by ``(frame, label)``) get ids ``p0``, ``p1``, ...; events
the analyst adds get ``a<seq>`` (the edit's sequence number). Every edit is one row of the ``edits`` table
of ``jobs.db`` (``seq, job_id, op, event_id, payload, created, state``), written when it is made, so a
reload or a server restart shows the same events. ``state`` is ``active``, ``undone`` (undo; redo makes it
active again) or ``discarded`` (undone, then replaced by a new edit: the redo branch is dropped, the
row is kept as history).

Operations (``op`` and its payload):

``confirm`` / ``reject`` / ``unreview``   verdict on an event (``review``: ``confirmed`` / ``rejected`` / None)
``relabel {label}``    another class of the model; the event counts as confirmed
``move {frame}``       a 0-based frame of the video, frame-exact; the event counts as confirmed
``add {frame, label, team?, note?}``  a new (analyst) event, confirmed
``delete``             the event is gone (a model event deleted counts as rejected)
``team {team}``        the team (free text, e.g. ``left`` / ``right``), "" clears it
``note {note}``        a free-text note (written as the event's ``comment``), "" clears it

Counts: ``reviewed`` = model events with a verdict (confirmed, rejected, relabelled, moved, deleted);
``precision`` = model events confirmed with the class the model gave / reviewed model events (None
while nothing is reviewed). Corrected labels (``corrected_labels``) are every event that is not rejected
or deleted (``scope="all"``), or only confirmed and added ones (``scope="confirmed"``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from e2espot.data.labels import Event, LabelSet, VideoLabels

OPS = ("confirm", "reject", "unreview", "relabel", "move", "add", "delete", "team", "note")
SCOPES = ("all", "confirmed")
MAX_NOTE = 2000
MAX_TEAM = 60

SCHEMA = """
CREATE TABLE IF NOT EXISTS edits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    op TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'active'
);
CREATE INDEX IF NOT EXISTS edits_job ON edits (job_id, seq);
"""


class EditError(ValueError):
    """An edit that cannot be applied; the message says which value and what is allowed (HTTP 400)."""


@dataclass
class ReviewEvent:
    """One event as the analyst sees it now."""

    id: str
    frame: int
    label: str
    score: float | None
    origin: str  # "model" | "analyst"
    model_frame: int | None = None
    model_label: str | None = None
    team: str | None = None
    note: str | None = None
    review: str | None = None  # None | "confirmed" | "rejected"
    deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, fps: float | None) -> dict[str, Any]:
        return {"id": self.id, "frame": self.frame, "label": self.label, "score": self.score,
                "time_s": round(self.frame / fps, 4) if fps else None, "origin": self.origin,
                "model_frame": self.model_frame, "model_label": self.model_label, "team": self.team,
                "note": self.note, "review": self.review, "deleted": self.deleted}


def base_events(video: VideoLabels) -> list[ReviewEvent]:
    """The model's events as review events ``p0..`` in ``(frame, label)`` order."""
    ordered = sorted(video.events, key=lambda e: (e.frame, e.label))
    return [ReviewEvent(f"p{i}", e.frame, e.label, e.score, "model", e.frame, e.label, team=e.team,
                        note=e.comment) for i, e in enumerate(ordered)]


def check_edit(op: str, payload: dict[str, Any], *, classes: list[str], num_frames: int | None) -> dict[str, Any]:
    """The payload keys ``op`` uses, checked; EditError naming the value and the allowed ones otherwise."""
    if op not in OPS:
        raise EditError(f"unknown edit op '{op}'; one of: {', '.join(OPS)}")
    out: dict[str, Any] = {}
    if op in ("relabel", "add"):
        label = payload.get("label")
        if label not in classes:
            raise EditError(f"label {label!r} is not a class of this model; one of: {', '.join(classes)}")
        out["label"] = label
    if op in ("move", "add"):
        frame = payload.get("frame")
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise EditError(f"frame {frame!r} must be an integer (0-based frame of the video)")
        if frame < 0 or (num_frames is not None and frame >= num_frames):
            raise EditError(f"frame {frame} is outside the video (0..{(num_frames or 1) - 1})")
        out["frame"] = frame
    for key, limit in (("team", MAX_TEAM), ("note", MAX_NOTE)):
        if op == key or (op == "add" and key in payload):
            value = payload.get(key)
            if value is None:
                value = ""
            if not isinstance(value, str) or len(value) > limit:
                raise EditError(f"{key} must be text of at most {limit} characters")
            if any(ord(c) < 32 and c not in "\n\t" for c in value):
                raise EditError(f"{key} holds a control character")
            out[key] = value
    return out


def apply_edit(events: dict[str, ReviewEvent], seq: int, op: str, event_id: str, payload: dict[str, Any]) -> None:
    """Apply one (already checked) edit to ``events`` (id -> event), in place."""
    if op == "add":
        events[event_id] = ReviewEvent(event_id, payload["frame"], payload["label"], None, "analyst",
                                       team=payload.get("team") or None, note=payload.get("note") or None,
                                       review="confirmed")
        return
    e = events[event_id]
    if op == "confirm":
        e.review = "confirmed"
    elif op == "reject":
        e.review = "rejected"
    elif op == "unreview":
        e.review = None if e.origin == "model" else "confirmed"
    elif op == "relabel":
        e.label, e.review = payload["label"], "confirmed"
    elif op == "move":
        e.frame, e.review = payload["frame"], "confirmed"
    elif op == "delete":
        e.deleted = True
    elif op == "team":
        e.team = payload["team"] or None
    elif op == "note":
        e.note = payload["note"] or None


def summary(events: list[ReviewEvent]) -> dict[str, Any]:
    """Counts shown on the page and the model's precision on what was reviewed."""
    model = [e for e in events if e.origin == "model"]
    reviewed = [e for e in model if e.review is not None or e.deleted]
    correct = [e for e in reviewed if not e.deleted and e.review == "confirmed" and e.label == e.model_label]
    live = [e for e in events if not e.deleted]
    return {
        "total": len(live), "model_events": len(model), "reviewed": len(reviewed),
        "unreviewed": len(model) - len(reviewed),
        "confirmed": sum(e.review == "confirmed" for e in live),
        "rejected": sum(e.review == "rejected" for e in live) + sum(e.deleted for e in model),
        "added": sum(e.origin == "analyst" for e in live),
        "relabelled": sum(e.label != e.model_label for e in model if not e.deleted and e.origin == "model"),
        "moved": sum(e.frame != e.model_frame for e in model if not e.deleted),
        "true_positives": len(correct),
        "precision": round(len(correct) / len(reviewed), 4) if reviewed else None,
    }


class ReviewLog:
    """The ``edits`` table of a job store's database (``store._conn()`` gives this thread's connection)."""

    def __init__(self, store) -> None:
        self.store = store
        with store._conn() as c:
            c.executescript(SCHEMA)

    def _c(self) -> sqlite3.Connection:
        return self.store._conn()

    def rows(self, job_id: str, states: tuple[str, ...] = ("active",)) -> list[sqlite3.Row]:
        marks = ",".join("?" * len(states))
        return self._c().execute(f"SELECT * FROM edits WHERE job_id = ? AND state IN ({marks}) ORDER BY seq",
                                 (job_id, *states)).fetchall()

    def state(self, job_id: str, video: VideoLabels) -> list[ReviewEvent]:
        """The model's events with every active edit replayed, in edit order."""
        events = {e.id: e for e in base_events(video)}
        for r in self.rows(job_id):
            if r["op"] == "add" or r["event_id"] in events:
                apply_edit(events, r["seq"], r["op"], r["event_id"], json.loads(r["payload"]))
        return sorted(events.values(), key=lambda e: (e.frame, e.label, e.id))

    def edit(self, job_id: str, video: VideoLabels, classes: list[str], op: str, event_id: str | None,
             payload: dict[str, Any]) -> ReviewEvent | None:
        """Check and store one edit (dropping the redo branch); returns the edited event."""
        clean = check_edit(op, payload, classes=classes, num_frames=video.num_frames)
        current = {e.id: e for e in self.state(job_id, video)}
        if op != "add":
            if event_id not in current:
                raise EditError(f"no event '{event_id}' in this job")
            if current[event_id].deleted:
                raise EditError(f"event '{event_id}' was deleted; undo the delete to edit it")
        with self._c() as c:
            c.execute("UPDATE edits SET state = 'discarded' WHERE job_id = ? AND state = 'undone'", (job_id,))
            cur = c.execute("INSERT INTO edits (job_id, op, event_id, payload, created) VALUES (?, ?, ?, ?, ?)",
                            (job_id, op, event_id or "", json.dumps(clean), time.time()))
            seq = int(cur.lastrowid)
            if op == "add":
                event_id = f"a{seq}"
                c.execute("UPDATE edits SET event_id = ? WHERE seq = ?", (event_id, seq))
        return {e.id: e for e in self.state(job_id, video)}.get(event_id)

    def undo(self, job_id: str) -> str | None:
        """Undo the latest active edit; returns its event id (None: nothing to undo)."""
        with self._c() as c:
            row = c.execute("SELECT seq, event_id FROM edits WHERE job_id = ? AND state = 'active' "
                            "ORDER BY seq DESC LIMIT 1", (job_id,)).fetchone()
            if row is None:
                return None
            c.execute("UPDATE edits SET state = 'undone' WHERE seq = ?", (row["seq"],))
            return row["event_id"]

    def redo(self, job_id: str) -> str | None:
        """Make the earliest undone edit active again; returns its event id (None: nothing to redo)."""
        with self._c() as c:
            row = c.execute("SELECT seq, event_id FROM edits WHERE job_id = ? AND state = 'undone' "
                            "ORDER BY seq LIMIT 1", (job_id,)).fetchone()
            if row is None:
                return None
            c.execute("UPDATE edits SET state = 'active' WHERE seq = ?", (row["seq"],))
            return row["event_id"]

    def can(self, job_id: str) -> dict[str, int]:
        counts = dict(self._c().execute("SELECT state, COUNT(*) FROM edits WHERE job_id = ? GROUP BY state",
                                        (job_id,)).fetchall())
        return {"undo": counts.get("active", 0), "redo": counts.get("undone", 0)}

    def history(self, job_id: str) -> list[dict[str, Any]]:
        return [{"seq": r["seq"], "op": r["op"], "event_id": r["event_id"], "payload": json.loads(r["payload"]),
                 "created": r["created"], "state": r["state"]}
                for r in self.rows(job_id, ("active", "undone", "discarded"))]

    def forget(self, job_id: str) -> None:
        with self._c() as c:
            c.execute("DELETE FROM edits WHERE job_id = ?", (job_id,))


def corrected_labels(video: VideoLabels, classes: list[str], events: list[ReviewEvent], *,
                     scope: str = "all") -> LabelSet:
    """The corrected events as a one-video ``LabelSet`` (scores dropped: these are labels; the note is
    the ``comment``, the team the ``team``). ``scope``: ``all`` (not rejected, not deleted) or
    ``confirmed`` (confirmed and added only)."""
    if scope not in SCOPES:
        raise EditError(f"scope '{scope}' is not one of: {', '.join(SCOPES)}")
    keep = [e for e in events if not e.deleted and e.review != "rejected"
            and (scope == "all" or e.review == "confirmed")]
    out = VideoLabels(video.video, video.fps, video.num_frames,
                      [Event(e.frame, e.label, team=e.team, comment=e.note)
                       for e in sorted(keep, key=lambda e: (e.frame, e.label))],
                      width=video.width, height=video.height)
    return LabelSet(list(classes), [out])

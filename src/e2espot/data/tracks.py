"""Object tracks as a second input stream: detections -> tracks -> one feature vector per frame.

The Ball Action Spotting study fused YOLOv8 + ByteTrack object tracks with the CNN frame features; this
module makes those per-frame track features for any video, and ``e2espot.models.fusion`` fuses them.

Detections come from (first that applies, ``resolve_detections``):

1. a YOLO model through ``ultralytics`` (optional, AGPL: ``pip install 'e2espot[tracks-yolo]'``) when
   YOLO weights are given (``predict --track-weights`` or ``TrackConfig.weights``);
2. a detections file beside the video, ``<stem>.tracks.json`` or ``<stem>.mot.txt`` (``clip.mp4`` ->
   ``clip.tracks.json``; a frame folder ``clip/`` -> ``clip.tracks.json``):

   * MOT Challenge text, one detection a line: ``frame,id,x,y,w,h,conf,class[,...]``, frames 1-based,
     ``x, y`` the top-left corner and ``w, h`` the size in pixels of the source video, ``id`` -1 when
     not tracked, ``class`` an integer or a name (see ``TrackConfig.ball_classes`` / ``player_classes``);
   * JSON (``e2espot synth`` writes it)::

       {"format": "e2espot-tracks", "version": 1, "width": 398, "height": 224, "fps": 25,
        "num_frames": 500, "detections": [{"frame": 0, "id": 3, "box": [x, y, w, h],
                                           "conf": 1.0, "class": "player"}, ...]}

     frames 0-based, ``box`` top-left corner and size in pixels of a ``width`` x ``height`` frame.

   Frames of a file are the source (decoded) frames of the video; they are mapped to the run's frame
   rate as the video readers map them (``reader.source_frame``).

Tracking (``TrackConfig.tracker``): ``bytetrack`` runs ByteTrack (Zhang et al., ECCV 2022) on ball and
player detections separately, from ``supervision`` (``sv.ByteTrack``, supervision < 0.30) or, where that
is gone, its maintained successor ``trackers.ByteTrackTracker`` (supervision 0.30 removed ByteTrack and
points there); ``given`` keeps the ids of the file (every detection needs ``id`` >= 0).

The feature vector of a frame (``feature_names``; dimension ``8 + rows * cols``, 20 for the 3 x 4 grid):

====  =====================  =========================================================================
 idx  name                   value
====  =====================  =========================================================================
 0    ball_present           1 when a ball detection is in the frame, else 0
 1-2  ball_x, ball_y         centre of the most confident ball detection, as a fraction of the frame
                             width / height (0 when absent)
 3-4  ball_vx, ball_vy       (position - position one frame earlier) x fps, frame widths / heights per
                             second, clipped to +-MAX_SPEED; 0 unless the ball is in both frames
 5    nearest_player_dist    distance from the ball centre to the nearest tracked player's box centre,
                             in frame diagonals; 1 when there is no ball or no tracked player
 6    player_tracks          tracked players in the frame / COUNT_SCALE
 7    ball_tracks            tracked balls in the frame
 8-   occupancy[r, c]        tracked player box centres in grid cell (row r, column c) / COUNT_SCALE,
                             row-major, rows top to bottom, columns left to right
====  =====================  =========================================================================

"Tracked" = given a track id by the tracker. The ball's position uses every ball detection: a small
fast ball often has no overlap between frames, so IoU trackers drop or restart it. A horizontal flip
of the clip mirrors the vector (``flip_features``); mixup mixes it with the clips' weight.

Features are cached per video (``TrackCache``): ``<cache_dir>/<stem>-<key>.npy`` with a ``.json``
beside it, the key a hash of the video file and the detections file or weights (path, size,
modification time), the settings, the frame rate and the tracker's version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from e2espot.errors import ConfigError, LabelFormatError

log = logging.getLogger(__name__)

FEATURE_VERSION = 1  # bump when the feature layout or its computation changes (invalidates caches)
BASE_FEATURES = ("ball_present", "ball_x", "ball_y", "ball_vx", "ball_vy", "nearest_player_dist",
                 "player_tracks", "ball_tracks")
MAX_SPEED = 4.0  # frame widths (heights) per second: velocity clip
COUNT_SCALE = 10.0  # counts of players are divided by this
BALL, PLAYER = 0, 1  # detection kinds
TRACKERS = ("bytetrack", "given")
DETECTION_SUFFIXES = (".tracks.json", ".mot.txt")  # files beside a video, in the order tried
JSON_FORMAT = "e2espot-tracks"


@dataclass(frozen=True)
class TrackConfig:
    """How a video's object tracks become features (stored in ``config.json`` as ``data.tracks``).

    ``grid`` (rows, cols) of the occupancy map; ``tracker`` from ``TRACKERS``; ``weights`` YOLO weights
    used when no detections file is beside a video (None: files only); ``min_conf`` drops weaker
    detections; ``ball_classes`` / ``player_classes``: class names or ids (as strings, case-insensitive)
    taken as ball / player (defaults: COCO ``sports ball`` = 32 and ``person`` = 0 for YOLO models and
    COCO-indexed files, MOT ``pedestrian`` = 1). Detections of other classes are dropped (counted in a
    warning).
    """

    grid: tuple[int, int] = (3, 4)
    tracker: str = "bytetrack"
    weights: str | None = None
    min_conf: float = 0.1
    ball_classes: tuple[str, ...] = ("ball", "sports ball", "32")
    player_classes: tuple[str, ...] = ("player", "person", "pedestrian", "0", "1")

    def __post_init__(self) -> None:
        grid = tuple(self.grid)
        if len(grid) != 2 or any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in grid):
            raise ConfigError(f"tracks: grid {self.grid!r} must be two positive integers (rows, cols), e.g. (3, 4)")
        object.__setattr__(self, "grid", grid)
        if self.tracker not in TRACKERS:
            raise ConfigError(f"tracks: unknown tracker '{self.tracker}'; expected one of {', '.join(TRACKERS)}")
        if not 0.0 <= float(self.min_conf) <= 1.0:
            raise ConfigError(f"tracks: min_conf {self.min_conf} must be in [0, 1]")
        for name in ("ball_classes", "player_classes"):
            object.__setattr__(self, name, tuple(str(c).strip().lower() for c in getattr(self, name)))
        both = set(self.ball_classes) & set(self.player_classes)
        if both:
            raise ConfigError(f"tracks: classes {sorted(both)} are both ball and player classes; give each once")

    @property
    def dim(self) -> int:
        """F, the length of a frame's feature vector."""
        return len(BASE_FEATURES) + self.grid[0] * self.grid[1]

    def feature_names(self) -> list[str]:
        rows, cols = self.grid
        return [*BASE_FEATURES, *(f"occupancy_r{r}c{c}" for r in range(rows) for c in range(cols))]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["grid"] = list(self.grid)
        out["ball_classes"], out["player_classes"] = list(self.ball_classes), list(self.player_classes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrackConfig:
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"config.json data.tracks: unknown keys {unknown}; expected some of {sorted(names)}")
        for key in ("grid", "ball_classes", "player_classes"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def kind_of(self, cls_name: str) -> int | None:
        """BALL, PLAYER or None for a class name / id."""
        key = str(cls_name).strip().lower()
        if key in self.ball_classes:
            return BALL
        if key in self.player_classes:
            return PLAYER
        return None


# --------------------------------------------------------------------------- detections


@dataclass
class Detections:
    """Detections of one video. ``frame`` (M,) int64 0-based in the source's frame space, ``track_id``
    (M,) int64 (-1 = none), ``xyxy`` (M, 4) float64 corners as fractions of the frame width / height,
    ``conf`` (M,) float64, ``kind`` (M,) int64 (BALL / PLAYER); ``num_frames`` frames in that space;
    ``width`` / ``height`` the frame size in pixels (distances use the aspect ratio)."""

    frame: np.ndarray
    track_id: np.ndarray
    xyxy: np.ndarray
    conf: np.ndarray
    kind: np.ndarray
    num_frames: int
    width: float
    height: float
    dropped: dict[str, int] = field(default_factory=dict)  # class -> detections of no ball / player class

    def select(self, mask: np.ndarray) -> Detections:
        return Detections(self.frame[mask], self.track_id[mask], self.xyxy[mask], self.conf[mask], self.kind[mask],
                          self.num_frames, self.width, self.height, dict(self.dropped))


def _build(rows: list[tuple[int, int, float, float, float, float, float, str]], cfg: TrackConfig, width: float,
           height: float, num_frames: int, where: str) -> Detections:
    """Rows (frame 0-based, id, x, y, w, h in pixels, conf, class) -> normalised Detections of ball / player."""
    keep, dropped = [], {}
    for row in rows:
        kind = cfg.kind_of(row[7])
        if kind is None:
            dropped[row[7]] = dropped.get(row[7], 0) + 1
        elif row[6] >= cfg.min_conf:
            keep.append((*row[:7], kind))
    if dropped:
        log.warning("%s: %d detections of classes %s are neither ball %s nor player %s and were ignored",
                    where, sum(dropped.values()), sorted(dropped), list(cfg.ball_classes), list(cfg.player_classes))
    arr = np.asarray([k[:7] for k in keep], np.float64).reshape(-1, 7)
    xyxy = np.stack([arr[:, 2] / width, arr[:, 3] / height, (arr[:, 2] + arr[:, 4]) / width,
                     (arr[:, 3] + arr[:, 5]) / height], axis=1) if len(arr) else np.zeros((0, 4))
    return Detections(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), xyxy, arr[:, 6],
                      np.asarray([k[7] for k in keep], np.int64), int(num_frames), float(width), float(height),
                      dropped)


def read_mot(path: str | Path, cfg: TrackConfig, *, width: float, height: float,
             num_frames: int | None = None) -> Detections:
    """MOT Challenge text ``frame,id,x,y,w,h,conf,class[,...]`` (frames 1-based) -> Detections (0-based).

    ``width`` / ``height``: the source video's frame size in pixels. Blank lines are skipped. A line
    with fewer than 8 fields, a non-number, a frame < 1 or >= ``num_frames`` + 1, or a negative size
    raises LabelFormatError naming the file and line.
    """
    path = Path(path)
    rows = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise LabelFormatError(f"{path}: cannot read the detections file ({exc.strerror})") from None
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        parts = [p.strip() for p in text.split(",")]
        where = f"{path}: line {lineno}"
        if len(parts) < 8:
            raise LabelFormatError(f"{where}: {len(parts)} fields in {text!r}; MOT detections need "
                                   "frame,id,x,y,w,h,conf,class")
        try:
            frame, track = int(float(parts[0])), int(float(parts[1]))
            x, y, w, h, conf = (float(v) for v in parts[2:7])
        except ValueError:
            raise LabelFormatError(f"{where}: not a number in {text!r}; MOT detections are "
                                   "frame,id,x,y,w,h,conf,class") from None
        if frame < 1:
            raise LabelFormatError(f"{where}: frame {frame} < 1; MOT frames are 1-based")
        if num_frames is not None and frame > num_frames:
            raise LabelFormatError(f"{where}: frame {frame} is past the video's {num_frames} frames (1-based)")
        if w < 0 or h < 0 or not all(math.isfinite(v) for v in (x, y, w, h, conf)):
            raise LabelFormatError(f"{where}: box ({x}, {y}, {w}, {h}) must be finite with w, h >= 0")
        cls_name = parts[7]
        try:
            cls_name = str(int(float(cls_name)))
        except ValueError:
            pass
        rows.append((frame - 1, track, x, y, w, h, conf, cls_name.lower()))
    n = num_frames if num_frames is not None else (max((r[0] for r in rows), default=-1) + 1)
    return _build(rows, cfg, width, height, n, str(path))


def read_tracks_json(path: str | Path, cfg: TrackConfig, *, num_frames: int | None = None) -> Detections:
    """The JSON layout of the module doc -> Detections. LabelFormatError names the file and detection."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except OSError as exc:
        raise LabelFormatError(f"{path}: cannot read the detections file ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise LabelFormatError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(obj, dict) or obj.get("format") != JSON_FORMAT:
        raise LabelFormatError(f"{path}: not an {JSON_FORMAT} file (expected \"format\": \"{JSON_FORMAT}\")")
    try:
        width, height = float(obj["width"]), float(obj["height"])
        dets = obj["detections"]
    except (KeyError, TypeError, ValueError) as exc:
        raise LabelFormatError(f"{path}: missing or bad key {exc} (need width, height, detections)") from None
    n = obj.get("num_frames") if num_frames is None else num_frames
    rows = []
    for i, d in enumerate(dets):
        where = f"{path}: detection #{i}"
        try:
            frame, track = int(d["frame"]), int(d.get("id", -1))
            x, y, w, h = (float(v) for v in d["box"])
            conf = float(d.get("conf", 1.0))
            cls_name = str(d["class"]).lower()
        except (KeyError, TypeError, ValueError) as exc:
            raise LabelFormatError(f"{where}: bad or missing field ({exc}); expected frame, box [x, y, w, h], "
                                   "class, optional id and conf") from None
        if frame < 0 or (n is not None and frame >= int(n)):
            raise LabelFormatError(f"{where}: frame {frame} outside [0, {n}) (frames are 0-based)")
        rows.append((frame, track, x, y, w, h, conf, cls_name))
    n = int(n) if n is not None else max((r[0] for r in rows), default=-1) + 1
    return _build(rows, cfg, width, height, n, str(path))


def write_tracks_json(path: str | Path, *, width: int, height: int, fps: float, num_frames: int,
                      detections: Sequence[dict[str, Any]]) -> Path:
    """Write the JSON layout of the module doc (``detections``: dicts with frame, id, box, conf, class)."""
    path = Path(path)
    obj = {"format": JSON_FORMAT, "version": 1, "width": width, "height": height,
           "fps": int(fps) if float(fps).is_integer() else fps, "num_frames": num_frames,
           "detections": list(detections)}
    path.write_text(json.dumps(obj, separators=(",", ":")) + "\n")
    return path


def detections_file(video_path: str | Path) -> Path | None:
    """The detections file beside a video (``DETECTION_SUFFIXES``), or None."""
    video_path = Path(video_path)
    stem = video_path.stem if video_path.is_file() else video_path.name
    for suffix in DETECTION_SUFFIXES:
        candidate = video_path.parent / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def detect_yolo(reader: Any, weights: str | Path, cfg: TrackConfig, *, batch_size: int = 16) -> Detections:
    """Detections of every frame ``reader`` gives (frame space = the reader's frames) from a YOLO model
    through ``ultralytics`` (``YOLO(weights).predict``; class names from ``model.names``).
    ConfigError when ultralytics is missing or the weights file does not exist."""
    weights = Path(weights)
    if not weights.is_file():
        raise ConfigError(f"YOLO weights '{weights}' not found; give the path of a .pt file (e.g. yolov8n.pt)")
    try:
        from ultralytics import YOLO
    except ImportError:
        raise ConfigError("YOLO detections need the 'ultralytics' package (AGPL-3.0, optional): "
                          "pip install 'e2espot[tracks-yolo]', or give a detections file beside the video "
                          f"({' or '.join('<stem>' + s for s in DETECTION_SUFFIXES)})") from None
    model = YOLO(str(weights))
    names = getattr(model, "names", {}) or {}
    rows = []
    height, width = int(reader.height), int(reader.width)

    def run(start: int, frames: list[np.ndarray]) -> None:
        # ultralytics reads numpy images as BGR (OpenCV order); our readers give RGB
        results = model.predict([f[..., ::-1] for f in frames], verbose=False, conf=cfg.min_conf)
        for offset, res in enumerate(results):
            boxes = res.boxes
            xyxy, conf, cls_ids = (_numpy(boxes.xyxy).reshape(-1, 4), _numpy(boxes.conf).reshape(-1),
                                   _numpy(boxes.cls).reshape(-1))
            for (x1, y1, x2, y2), c, k in zip(xyxy, conf, cls_ids, strict=True):
                name = str(names.get(int(k), int(k))).lower()
                rows.append((start + offset, -1, float(x1), float(y1), float(x2 - x1), float(y2 - y1), float(c),
                             name))

    batch: list[np.ndarray] = []
    first = 0
    for idx, frame in enumerate(reader.iter_frames()):
        if not batch:
            first = idx
        batch.append(frame)
        if len(batch) == batch_size:
            run(first, batch)
            batch = []
    if batch:
        run(first, batch)
    return _build(rows, cfg, width, height, int(reader.num_frames), f"YOLO {weights.name}")


def _numpy(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):
        t = t.detach()
    if hasattr(t, "cpu"):
        t = t.cpu()
    return np.asarray(t, dtype=np.float64)


# --------------------------------------------------------------------------- tracking


def bytetrack_backend() -> tuple[str, Any]:
    """``("supervision X.Y", factory)`` or ``("trackers X.Y", factory)``; ConfigError when neither has
    ByteTrack. ``factory(frame_rate)`` returns an object with ``update(sv.Detections) -> sv.Detections``."""
    import importlib.metadata as md

    try:
        import supervision as sv
    except ImportError:
        sv = None
    if sv is not None and hasattr(sv, "ByteTrack"):
        def make_sv(frame_rate: float) -> Any:
            tracker = sv.ByteTrack(frame_rate=frame_rate, minimum_consecutive_frames=1)
            return _Updater(tracker.update_with_detections)

        return f"supervision {md.version('supervision')}", make_sv
    try:
        from trackers import ByteTrackTracker
    except ImportError:
        have = f"supervision {md.version('supervision')} has no ByteTrack (removed in 0.30)" if sv else \
            "supervision is not installed"
        raise ConfigError(f"tracker 'bytetrack': {have}; install the tracks extra (pip install "
                          "'e2espot[tracks]': supervision + trackers.ByteTrackTracker), or use tracker 'given' "
                          "with a detections file that has track ids") from None

    def make_trackers(frame_rate: float) -> Any:
        return _Updater(ByteTrackTracker(frame_rate=frame_rate, minimum_consecutive_frames=1).update)

    return f"trackers {md.version('trackers')}", make_trackers


class _Updater:
    def __init__(self, update: Any) -> None:
        self.update = update


def _track_ids(dets: Detections, fps: float) -> np.ndarray:
    """(M,) ByteTrack ids of ``dets`` (ball and player tracked separately), -1 where none was given."""
    import supervision as sv

    _, factory = bytetrack_backend()
    ids = np.full(len(dets.frame), -1, np.int64)
    order = np.argsort(dets.frame, kind="stable")
    for kind in (BALL, PLAYER):
        tracker = factory(fps)
        sel = order[dets.kind[order] == kind]
        bounds = np.searchsorted(dets.frame[sel], np.arange(dets.num_frames + 1))
        scale = np.array([dets.width, dets.height, dets.width, dets.height])
        for f in range(dets.num_frames):
            rows = sel[bounds[f]:bounds[f + 1]]
            batch = sv.Detections(xyxy=(dets.xyxy[rows] * scale).astype(np.float32).reshape(-1, 4),
                                  confidence=dets.conf[rows].astype(np.float32),
                                  class_id=np.zeros(len(rows), int), data={"row": rows.astype(np.int64)})
            out = tracker.update(batch)  # also on frames without detections: tracks age and get lost
            if len(out) == 0:
                continue
            tid = out.tracker_id if out.tracker_id is not None else np.full(len(out), -1)
            for row, t in zip(np.asarray(out.data["row"]), np.asarray(tid), strict=True):
                ids[int(row)] = int(t) if t is not None and int(t) >= 0 else -1
    return ids


def track(dets: Detections, cfg: TrackConfig, fps: float, where: str) -> Detections:
    """``dets`` with ``track_id`` from ``cfg.tracker``: ``bytetrack`` or ``given`` (ids must be >= 0)."""
    if cfg.tracker == "given":
        if (dets.track_id < 0).any():
            raise ConfigError(f"{where}: tracker 'given' needs a track id >= 0 on every detection, "
                              f"{int((dets.track_id < 0).sum())} have none; use tracker 'bytetrack'")
        return dets
    out = dets.select(np.ones(len(dets.frame), bool))
    out.track_id = _track_ids(dets, fps)
    return out


def tracker_version(cfg: TrackConfig) -> str:
    return "given" if cfg.tracker == "given" else bytetrack_backend()[0]


# --------------------------------------------------------------------------- features


def frame_features(dets: Detections, cfg: TrackConfig, frame_map: np.ndarray, fps: float) -> np.ndarray:
    """(N, F) float32 features (module doc) of output frames ``k``, each showing source frame
    ``frame_map[k]`` of ``dets``' frame space; velocities use ``fps`` (output frames per second)."""
    rows, cols = cfg.grid
    n = len(frame_map)
    out = np.zeros((n, cfg.dim), np.float32)
    order = np.argsort(dets.frame, kind="stable")
    bounds = np.searchsorted(dets.frame[order], np.arange(dets.num_frames + 1))
    diag = math.hypot(dets.width, dets.height)
    ball_xy = np.full((n, 2), np.nan)
    for k, src in enumerate(np.asarray(frame_map, np.int64)):
        if not 0 <= src < dets.num_frames:
            continue
        idx = order[bounds[src]:bounds[src + 1]]
        centre = (dets.xyxy[idx, :2] + dets.xyxy[idx, 2:]) / 2  # (m, 2)
        balls = idx[dets.kind[idx] == BALL]
        players = (dets.kind[idx] == PLAYER) & (dets.track_id[idx] >= 0)
        p_xy = centre[players]
        vec = out[k]
        if len(balls):
            best = np.argmax(dets.conf[balls])
            bxy = centre[dets.kind[idx] == BALL][best]
            ball_xy[k] = bxy
            vec[0], vec[1], vec[2] = 1.0, bxy[0], bxy[1]
        vec[5] = 1.0
        if len(balls) and len(p_xy):
            d = np.hypot((p_xy[:, 0] - ball_xy[k, 0]) * dets.width, (p_xy[:, 1] - ball_xy[k, 1]) * dets.height)
            vec[5] = min(1.0, float(d.min()) / diag)
        vec[6] = len(p_xy) / COUNT_SCALE
        vec[7] = float(((dets.kind[idx] == BALL) & (dets.track_id[idx] >= 0)).sum())
        if len(p_xy):
            r = np.clip((p_xy[:, 1] * rows).astype(np.int64), 0, rows - 1)
            c = np.clip((p_xy[:, 0] * cols).astype(np.int64), 0, cols - 1)
            np.add.at(vec, len(BASE_FEATURES) + r * cols + c, 1.0 / COUNT_SCALE)
    both = ~np.isnan(ball_xy[1:, 0]) & ~np.isnan(ball_xy[:-1, 0])
    vel = np.where(both[:, None], (ball_xy[1:] - ball_xy[:-1]) * fps, 0.0)
    out[1:, 3:5] = np.clip(vel, -MAX_SPEED, MAX_SPEED)
    return out


def flip_features(feats: Any, grid: tuple[int, int]) -> Any:
    """Mirror features (..., F) left-right (numpy or torch): ball_x -> 1 - ball_x where present, ball_vx
    negated, occupancy columns reversed."""
    rows, cols = grid
    out = feats.clone() if hasattr(feats, "clone") else feats.copy()
    present = feats[..., 0]
    out[..., 1] = present * (1.0 - feats[..., 1])
    out[..., 3] = -feats[..., 3]
    base = len(BASE_FEATURES)
    grid_vals = feats[..., base:base + rows * cols].reshape(*feats.shape[:-1], rows, cols)
    flipped = grid_vals.flip(-1) if hasattr(grid_vals, "flip") else grid_vals[..., ::-1]
    out[..., base:base + rows * cols] = flipped.reshape(*feats.shape[:-1], rows * cols)
    return out


# --------------------------------------------------------------------------- per-video pipeline + cache


def default_cache_dir() -> Path:
    """``$E2ESPOT_TRACK_CACHE``, else ``$XDG_CACHE_HOME/e2espot/tracks`` (``~/.cache/e2espot/tracks``)."""
    env = os.environ.get("E2ESPOT_TRACK_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "e2espot" / "tracks"


def _file_id(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


class TrackCache:
    """Per-video feature arrays on disk, keyed by the source files and the settings (module doc)."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def path(self, video_path: Path, key: dict[str, Any]) -> Path:
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        stem = video_path.stem if video_path.suffix else video_path.name
        return self.dir / f"{stem}-{digest}.npy"

    def load(self, path: Path, dim: int) -> np.ndarray | None:
        if not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            log.warning("%s: unreadable track cache entry; recomputing", path)
            return None
        return arr if arr.ndim == 2 and arr.shape[1] == dim and arr.dtype == np.float32 else None

    def save(self, path: Path, arr: np.ndarray, key: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, path)
        path.with_suffix(".json").write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")


@dataclass(frozen=True)
class TrackSource:
    """Where a video's detections come from: ``kind`` "file" (``path`` a detections file) or "yolo"
    (``path`` the weights)."""

    kind: str
    path: Path


def resolve_detections(video_path: str | Path, cfg: TrackConfig, weights: str | Path | None = None) -> TrackSource:
    """``weights`` given -> YOLO; else a detections file beside the video; else ``cfg.weights`` -> YOLO;
    else ConfigError saying what was looked for and how to give it."""
    video_path = Path(video_path)
    if weights is not None:
        return TrackSource("yolo", Path(weights))
    found = detections_file(video_path)
    if found is not None:
        return TrackSource("file", found)
    if cfg.weights:
        return TrackSource("yolo", Path(cfg.weights))
    stem = video_path.stem if video_path.suffix else video_path.name
    tried = ", ".join(str(video_path.parent / f"{stem}{s}") for s in DETECTION_SUFFIXES)
    raise ConfigError(f"{video_path}: this model fuses object tracks and no detections were found (tried {tried}). "
                      "Put a detections file there (MOT text or e2espot-tracks JSON) or give YOLO weights "
                      "(--track-weights yolov8n.pt to train or predict; needs ultralytics)")


def video_track_features(video_path: str | Path, cfg: TrackConfig, *, fps: float | None,
                         weights: str | Path | None = None, cache_dir: str | Path | None = None,
                         stats: dict[str, Any] | None = None) -> np.ndarray:
    """(N, F) float32 track features of a video at ``fps`` (None = native), N = the frames a reader
    opened at ``fps`` gives. Computed once per (video, source, settings) and cached (``TrackCache``).
    ``stats`` receives ``cache`` ("hit" / "miss"), ``source`` and ``cache_path``."""
    from e2espot.data.video import open_video

    video_path = Path(video_path)
    source = resolve_detections(video_path, cfg, weights)
    if not source.path.exists():
        raise ConfigError(f"{source.path}: detections source not found (YOLO weights or detections file)")
    cache = TrackCache(cache_dir)
    key = {"version": FEATURE_VERSION, "video": _file_id(video_path) if video_path.is_file() else str(video_path),
           "source": [source.kind, *_file_id(source.path)], "settings": cfg.to_dict() | {"weights": None},
           "fps": fps, "tracker": tracker_version(cfg)}
    path = cache.path(video_path, key)
    cached = cache.load(path, cfg.dim)
    if stats is not None:
        stats.update(cache="hit" if cached is not None else "miss", source=source, cache_path=path)
    if cached is not None:
        return cached
    with open_video(video_path, fps=fps) as reader:
        out_fps = float(reader.fps)
        n = int(reader.num_frames)
        if source.kind == "yolo":
            dets = detect_yolo(reader, source.path, cfg)
            frame_map = np.arange(n)
        else:
            src_n = int(getattr(reader, "src_num_frames", n) or n)
            if source.path.name.endswith(".mot.txt"):
                dets = read_mot(source.path, cfg, width=float(reader.src_width), height=float(reader.src_height),
                                num_frames=src_n)
            else:
                dets = read_tracks_json(source.path, cfg, num_frames=src_n)
            frame_map = np.asarray([_source_frame(reader, k) for k in range(n)], np.int64)
        src_fps = out_fps if source.kind == "yolo" else float(getattr(reader, "src_fps", out_fps) or out_fps)
    dets = track(dets, cfg, src_fps, str(source.path))
    feats = frame_features(dets, cfg, frame_map, out_fps)
    cache.save(path, feats, key)
    return feats


def _source_frame(reader: Any, k: int) -> int:
    fn = getattr(reader, "source_frame", None)
    if callable(fn):
        return int(fn(k))
    from e2espot.data.timebase import resample_frame

    return resample_frame(k, float(reader.fps), float(getattr(reader, "src_fps", reader.fps)))


# --------------------------------------------------------------------------- hooks for train / predict


def run_tracks(run_cfg: Any) -> TrackConfig | None:
    """The run's TrackConfig (``config.json`` ``data.tracks``) when its model fuses tracks, else None.
    ConfigError when one is set without the other, or the model's track_dim is not the config's."""
    fusion = getattr(run_cfg.model, "track_fusion", None)
    data = getattr(run_cfg.data, "tracks", None)
    if fusion is None and data is None:
        return None
    if fusion is None or data is None:
        raise ConfigError("config.json: model.track_fusion and data.tracks go together (set both or neither)")
    cfg = TrackConfig.from_dict(data)
    if run_cfg.model.track_dim != cfg.dim:
        raise ConfigError(f"config.json: model.track_dim {run_cfg.model.track_dim} != {cfg.dim}, the feature "
                          f"dimension of data.tracks (grid {cfg.grid})")
    return cfg


def features_for_video(run_cfg: Any, video: Any, *, weights: str | Path | None = None,
                       videos_root: str | Path | None = None) -> np.ndarray | None:
    """(N, F) track features of a label video (``VideoLabels``) found in ``videos_root`` (default the run's
    ``dataset.videos``), cached in ``dataset.track_cache`` (default ``default_cache_dir()``); None when the
    run fuses no tracks."""
    cfg = run_tracks(run_cfg)
    if cfg is None:
        return None
    from e2espot.data.video import find_video

    root = videos_root or run_cfg.dataset.get("videos")
    if not root:
        raise ConfigError("track fusion needs the run's dataset.videos folder to find each video's detections")
    return video_track_features(find_video(root, video.video), cfg, fps=run_cfg.data.fps, weights=weights,
                                cache_dir=run_cfg.dataset.get("track_cache"))


def _checked(run_cfg: Any, video: Any, feats: np.ndarray) -> np.ndarray:
    """``feats`` when it has a row for every frame the labels give the video at the run's fps, else
    ConfigError (clips would read frames without track features)."""
    from e2espot.data.timebase import num_frames_at

    n = video.num_frames
    if n is None:
        return feats
    fps = run_cfg.data.fps
    if fps is not None and video.fps is not None and video.fps != fps:
        n = num_frames_at(int(n), float(video.fps), float(fps))
    if int(n) > len(feats):
        raise ConfigError(f"video '{video.video}': the labels give {n} frames at the run's fps but its object-track "
                          f"features have {len(feats)} rows (the video's frames); check num_frames in the labels")
    return feats


class TrackInputs:
    """Per-clip track features for the training loop: ``batch_tracks(batch, aug, train)`` -> (B, T, F)
    float32 on the frames' device, from each item's ``video_idx`` / ``start`` (and the mixup clip's,
    mixed with ``aug.lam``), mirrored on the clips ``aug.flip`` flipped. Rows outside a video are 0."""

    def __init__(self, run_cfg: Any, train_labels: Any, val_labels: Any | None) -> None:
        self.cfg = run_tracks(run_cfg)
        if self.cfg is None:
            raise ConfigError("TrackInputs: the run fuses no tracks")
        self.train = [_checked(run_cfg, v, features_for_video(run_cfg, v)) for v in train_labels]
        self.val = [_checked(run_cfg, v, features_for_video(run_cfg, v)) for v in val_labels or []]

    @classmethod
    def for_run(cls, run_cfg: Any, train_labels: Any, val_labels: Any | None) -> TrackInputs | None:
        return cls(run_cfg, train_labels, val_labels) if run_tracks(run_cfg) is not None else None

    def _clips(self, store: list[np.ndarray], video_idx: Any, start: Any, length: int) -> np.ndarray:
        out = np.zeros((len(video_idx), length, self.cfg.dim), np.float32)  # (B, T, F)
        for b, (v, s) in enumerate(zip(np.asarray(video_idx.cpu()), np.asarray(start.cpu()), strict=True)):
            out[b] = window_rows(store[int(v)], int(s) + np.arange(length))
        return out

    def batch_tracks(self, batch: dict[str, Any], aug: Any, train: bool) -> Any:
        import torch

        store = self.train if train else self.val
        length = aug.frames.shape[1]
        feats = torch.from_numpy(self._clips(store, batch["video_idx"], batch["start"], length))
        if "video_idx2" in batch and getattr(aug, "lam", None) is not None:
            second = torch.from_numpy(self._clips(store, batch["video_idx2"], batch["start2"], length))
            lam = aug.lam.detach().cpu().float().view(-1, 1, 1)
            feats = lam * feats + (1.0 - lam) * second
        flip = getattr(aug, "flip", None)
        if flip is not None and bool(flip.any()):
            rows = flip.detach().cpu().view(-1, 1, 1)
            feats = torch.where(rows, flip_features(feats, self.cfg.grid), feats)
        return feats.to(aug.frames.device)


def window_rows(feats: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` (any shape) of ``feats`` (N, F); indices outside [0, N) give zero rows."""
    idx = np.asarray(idx, np.int64)
    inside = (idx >= 0) & (idx < len(feats))
    out = feats[np.clip(idx, 0, max(len(feats) - 1, 0))] if len(feats) else np.zeros((*idx.shape, feats.shape[1]),
                                                                                      np.float32)
    out = np.array(out, np.float32)
    out[~inside] = 0.0
    return out

"""Render a synthetic dataset to disk in the E2E-Spot and SoccerNet-Ball layouts."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from e2espot.data import timebase
from e2espot.data.labels import VISIBLE, Event, LabelSet, VideoLabels
from e2espot.data.synthetic.physics import CLASSES, Match, Pitch, simulate_match
from e2espot.data.synthetic.render import TEAM_CUES, Renderer
from e2espot.errors import ConfigError

SPLITS: tuple[str, str, str] = ("train", "val", "test")
SOCCERNET_LEAGUE, SOCCERNET_SEASON = "synthetic", "2026-2027"
TINY_SIZE: tuple[int, int] = (64, 48)
TINY_NUM_FRAMES = 48
GOP_FRAMES = 25
CRF = 21

Progress = Callable[[str, float], None]


@dataclass
class SyntheticDataset:
    """What :func:`generate_dataset` wrote. ``labels`` maps split -> LabelSet (videos sorted by id)."""

    root: Path
    classes: list[str]
    labels: dict[str, LabelSet]
    videos: dict[str, Path]  # video id -> .mp4
    ground_truth: dict[str, Path]  # video id -> ground_truth json (ball trajectory)
    class_file: Path
    split_files: dict[str, Path]
    soccernet_root: Path | None = None
    soccernet_label_files: dict[str, Path] = field(default_factory=dict)  # video id -> Labels-ball.json
    soccernet_splits: Path | None = None
    fps: float = 25.0
    width: int = 0
    height: int = 0
    tracks: dict[str, Path] = field(default_factory=dict)  # video id -> videos/<id>.tracks.json (object boxes)

    def event_counts(self, split: str | None = None) -> dict[str, int]:
        """Events per class (every class listed, in class order), over one split or all."""
        counts: Counter[str] = Counter()
        for name, ls in self.labels.items():
            if split is None or name == split:
                counts.update(e.label for v in ls for e in v.events)
        return {c: counts.get(c, 0) for c in self.classes}

    def split_of(self, video_id: str) -> str:
        for name, ls in self.labels.items():
            if any(v.video == video_id for v in ls):
                return name
        raise KeyError(video_id)

    def soccernet_game(self, video_id: str) -> str:
        """SoccerNet game id ``<league>/<season>/<game>`` of a video."""
        return f"{SOCCERNET_LEAGUE}/{SOCCERNET_SEASON}/{video_id}"

    def files(self) -> list[Path]:
        out = [self.class_file, *self.split_files.values(), *self.videos.values()]
        out += self.ground_truth.values()
        if self.soccernet_root is not None:
            out += [*self.soccernet_label_files.values(), self.soccernet_splits]
            out += [p.parent / "224p.mp4" for p in self.soccernet_label_files.values()]
        return out


def split_counts(num_videos: int, splits: Sequence[float]) -> list[int]:
    """Videos per split by largest remainder; every split with a positive share gets one when possible."""
    fractions = np.asarray(splits, np.float64) / float(np.sum(splits))
    exact = fractions * num_videos
    counts = np.floor(exact).astype(int)
    # ties go to the later split (test before val before train)
    order = sorted(range(len(counts)), key=lambda i: (-(exact[i] - counts[i]), -i))
    for i in order[: num_videos - int(counts.sum())]:
        counts[i] += 1
    for i in range(len(counts)):  # keep a positive share non-empty if another split can spare a video
        if fractions[i] > 0 and counts[i] == 0:
            donor = int(np.argmax(counts))
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    return [int(c) for c in counts]


def _check_args(num_videos, seconds, fps, width, height, splits) -> None:
    if isinstance(num_videos, bool) or not isinstance(num_videos, int) or num_videos < 1:
        raise ConfigError(f"num_videos must be a positive integer; got {num_videos!r}")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive number; got {fps!r}")
    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds)
                                    and seconds * fps >= 2):
        raise ConfigError(f"seconds must give at least 2 frames at {fps} fps; got {seconds!r}")
    for name, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 16 or v % 2:
            raise ConfigError(f"{name} must be an even integer >= 16 (H.264 yuv420p); got {v!r}")
    shares_ok = len(splits) == 3 and all(isinstance(s, (int, float)) and s >= 0 for s in splits)
    if not shares_ok or sum(splits) <= 0:
        raise ConfigError(f"splits must be three non-negative shares (train, val, test) with a positive sum; "
                          f"got {tuple(splits)!r}")


def generate_dataset(
    out_dir: str | Path,
    *,
    num_videos: int = 6,
    seconds: float = 20.0,
    seed: int = 0,
    width: int = 398,
    height: int = 224,
    fps: float = 25.0,
    splits: Sequence[float] = (0.5, 0.25, 0.25),
    tiny: bool = False,
    soccernet: bool = True,
    zoom: float = 1.0,
    team_cue: str = "none",
    progress: Progress | None = None,
    tracks: bool = True,
) -> SyntheticDataset:
    """Simulate and render ``num_videos`` matches to ``out_dir``; deterministic for a given ``seed``.

    Writes ``videos/<id>.mp4`` (H.264, GOP 25), ``class.txt`` and ``{train,val,test}.json`` (E2E-Spot,
    every event with ``team``: "left" / "right", the side of the frame of the team that acted),
    ``ground_truth/<id>.json`` (per-frame ball position in metres and pixels, camera offsets, events)
    and, with ``soccernet``, ``soccernet/synthetic/2026-2027/<id>/{Labels-ball.json,224p.mp4}`` plus
    ``soccernet/splits.json`` (split -> game ids). ``tiny`` renders 64x48 videos of 48 frames for unit tests.
    ``zoom`` > 1 magnifies the pitch and the camera pans to follow the ball, like a broadcast camera
    (bigger players and ball at a small frame size). ``team_cue`` (``render.TEAM_CUES``) draws what tells
    the teams apart: ``"none"`` (default) only the play, shirt colours drawn per video; ``"sleeve"`` a
    contrasting sleeve on the side of the pitch each team defends; ``"possession"`` a broadcast-style arrow
    at the top centre pointing the way the team of the latest event attacks (both consistent with a
    horizontal flip, which swaps the team labels). The cue changes pixels only: same seed -> same events
    and colours.
    With ``tracks``, ``videos/<id>.tracks.json`` beside each video holds the ground-truth boxes of the ball
    (id 0) and the players (ids 1..P) in every frame (``write_tracks``; the detections file of
    ``e2espot.data.tracks``). Event definitions: see :mod:`e2espot.data.synthetic.physics`.
    ``progress("synth", fraction)`` is called
    while rendering. The labels do not depend on the resolution (same seed and fps -> same events).
    """
    if tiny:
        width, height = TINY_SIZE
    _check_args(num_videos, None if tiny else seconds, fps, width, height, splits)
    if team_cue not in TEAM_CUES:
        raise ConfigError(f"synthetic data: unknown team cue {team_cue!r}; choose one of {', '.join(TEAM_CUES)}")
    if not zoom >= 1.0:
        raise ConfigError(f"synthetic data: zoom {zoom} must be >= 1 (1 shows the whole pitch)")
    fps = float(fps)
    num_frames = TINY_NUM_FRAMES if tiny else int(round(seconds * fps))
    root = Path(out_dir)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    (root / "ground_truth").mkdir(parents=True, exist_ok=True)

    counts = split_counts(num_videos, splits)
    video_ids = [f"synth_{i:03d}" for i in range(num_videos)]
    split_of = [name for name, c in zip(SPLITS, counts) for _ in range(c)]
    per_split: dict[str, list[VideoLabels]] = {s: [] for s in SPLITS}
    videos: dict[str, Path] = {}
    gt_files: dict[str, Path] = {}
    track_files: dict[str, Path] = {}

    for i, vid in enumerate(video_ids):
        path = root / "videos" / f"{vid}.mp4"
        renderer = render_video(path, seed=seed, index=i, num_frames=num_frames, fps=fps, width=width,
                                height=height, zoom=zoom, team_cue=team_cue, progress=progress,
                                total=num_videos)
        match = renderer.match
        videos[vid] = path
        gt_files[vid] = _write_ground_truth(root / "ground_truth" / f"{vid}.json", vid, match, renderer)
        if tracks:
            track_files[vid] = write_tracks(root / "videos" / f"{vid}.tracks.json", renderer)
        per_split[split_of[i]].append(_video_labels(vid, match, width, height))

    labels = {s: LabelSet(list(CLASSES), per_split[s]) for s in SPLITS}
    class_file = root / "class.txt"
    class_file.write_text("".join(c + "\n" for c in CLASSES))
    split_files = {}
    for s in SPLITS:
        split_files[s] = root / f"{s}.json"
        _write_json(split_files[s], [_spot_entry(v) for v in labels[s]])

    ds = SyntheticDataset(root, list(CLASSES), labels, videos, gt_files, class_file, split_files,
                          fps=fps, width=width, height=height, tracks=track_files)
    if soccernet:
        _write_soccernet(ds)
    if progress is not None:
        progress("synth", 1.0)
    return ds


def render_video(path: str | Path, *, seed: int, index: int, num_frames: int, fps: float = 25.0,
                 width: int = 398, height: int = 224, zoom: float = 1.0, team_cue: str = "none",
                 progress: Progress | None = None, total: int = 1) -> Renderer:
    """Simulate and encode video ``index`` of the dataset of ``seed`` (what :func:`generate_dataset` writes
    as ``synth_<index>.mp4``) at any size: the match and its events depend on (seed, index, num_frames,
    fps) only, so a larger copy shows the same play, e.g. for display. Returns the renderer (its
    ``match`` holds the events).
    """
    physics_ss, render_ss = np.random.SeedSequence([int(seed), int(index)]).spawn(2)
    match = simulate_match(np.random.default_rng(physics_ss), int(num_frames), float(fps))
    renderer = Renderer(match, width, height, np.random.default_rng(render_ss), zoom=zoom, team_cue=team_cue)
    _encode(renderer, Path(path), progress, int(index), total)
    return renderer


def _encode(renderer: Renderer, path: Path, progress: Progress | None, index: int, total: int) -> None:
    from e2espot.data.video.writer import VideoWriter

    n = renderer.match.num_frames
    # one encoder thread: same seed -> byte-identical video even on a loaded machine (a full-suite run
    # saw a pixel difference between two same-seed datasets with x264's automatic threading)
    with VideoWriter(path, renderer.match.fps, renderer.width, renderer.height, gop=GOP_FRAMES, crf=CRF,
                     preset="veryfast", threads=1) as writer:
        for f in range(n):
            writer.write(renderer.frame(f))
            if progress is not None and f % 50 == 49:
                progress("synth", (index + (f + 1) / n) / total)


def _video_labels(vid: str, match: Match, width: int, height: int) -> VideoLabels:
    events = [Event(e.frame, e.label, team=e.side, visibility=VISIBLE, comment=e.side,
                    extra={"position_ms": timebase.frame_to_position_ms(e.frame, match.fps)})
              for e in sorted(match.events, key=lambda e: e.frame)]
    return VideoLabels(vid, match.fps, match.num_frames, events, width=width, height=height)


def _json_fps(fps: float) -> float | int:
    return int(fps) if float(fps).is_integer() else fps


def _spot_entry(v: VideoLabels) -> dict:
    return {
        "video": v.video,
        "num_frames": v.num_frames,
        "num_events": len(v.events),
        # team: the side of the frame the acting team plays on ("left" defends the left goal), as in
        # SoccerNet-Ball; comment keeps it too for tools that read only E2E-Spot's keys
        "events": [{"frame": e.frame, "label": e.label, "comment": e.comment or "", "team": e.team}
                   for e in v.events],
        "fps": _json_fps(v.fps),
        "width": v.width,
        "height": v.height,
    }


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, sort_keys=True, indent=2) + "\n")


def _write_ground_truth(path: Path, vid: str, match: Match, renderer: Renderer) -> Path:
    cam = renderer.cam
    obj = {
        "video": vid,
        "fps": _json_fps(match.fps),
        "num_frames": match.num_frames,
        "width": renderer.width,
        "height": renderer.height,
        "pitch": asdict(match.pitch),
        "camera": {"scale_px_per_m": cam.scale_px_per_m, "origin_px": list(cam.origin_px)},
        "ball_radius_px": renderer.ball_r_px,
        "ball_m": np.round(match.ball_m, 4).tolist(),
        "ball_px": np.round(renderer.ball_px(), 3).tolist(),
        "camera_offset_px": renderer.offset_px.tolist(),
        "holder": match.holder.tolist(),
        "events": [{"frame": e.frame, "label": e.label, "team": e.side} for e in match.events],
    }
    if renderer.team_cue != "none":  # (key absent for the default: earlier files unchanged)
        obj["team_cue"] = renderer.team_cue
    _write_json(path, obj)
    return path


def write_tracks(path: Path, renderer: Renderer) -> Path:
    """Ground-truth boxes of the ball (id 0, class "ball") and players (ids 1..P, class "player") in every
    frame, as drawn (centre = the sprite's centre, half side = its radius), clipped to the frame; objects
    wholly outside it are left out. Written in the ``e2espot-tracks`` JSON layout of ``e2espot.data.tracks``."""
    from e2espot.data.tracks import write_tracks_json

    m, cam = renderer.match, renderer.cam
    width, height = renderer.width, renderer.height
    ball = renderer.ball_px()  # (N, 2)
    dets = []
    for f in range(m.num_frames):
        players = cam.to_px(m.players_m[f]) + renderer.offset_px[f]  # (P, 2)
        objects = [(0, "ball", ball[f], renderer.ball_r_px)]
        objects += [(i + 1, "player", xy, renderer.player_r_px) for i, xy in enumerate(players)]
        for obj_id, cls_name, (cx, cy), r in objects:
            x0, y0 = max(0.0, cx - r), max(0.0, cy - r)
            x1, y1 = min(float(width), cx + r), min(float(height), cy + r)
            if x1 <= x0 or y1 <= y0:
                continue
            dets.append({"frame": f, "id": obj_id, "class": cls_name, "conf": 1.0,
                         "box": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]})
    return write_tracks_json(path, width=width, height=height, fps=m.fps, num_frames=m.num_frames, detections=dets)


def _link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _write_soccernet(ds: SyntheticDataset) -> None:
    root = ds.root / "soccernet"
    games: dict[str, list[str]] = {}
    for split, ls in ds.labels.items():
        games[split] = []
        for v in ls:
            game = ds.soccernet_game(v.video)
            game_dir = root / game
            annotations = []
            for e in v.events:
                position_ms = timebase.frame_to_position_ms(e.frame, ds.fps)
                annotations.append({
                    "gameTime": timebase.position_ms_to_game_time(1, position_ms),
                    "label": e.label,
                    "position": str(position_ms),
                    "team": e.team,
                    "visibility": VISIBLE,
                })
            path = game_dir / "Labels-ball.json"
            _write_json(path, {"UrlLocal": game + "/", "annotations": annotations})
            _link_or_copy(ds.videos[v.video], game_dir / "224p.mp4")
            ds.soccernet_label_files[v.video] = path
            games[split].append(game)
    ds.soccernet_root = root
    ds.soccernet_splits = root / "splits.json"
    _write_json(ds.soccernet_splits, games)


__all__ = ["SPLITS", "SyntheticDataset", "generate_dataset", "render_video", "split_counts", "Pitch"]

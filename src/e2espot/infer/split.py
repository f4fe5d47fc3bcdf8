"""Predict every video of a labelled split with a trained run, write the split's prediction files
and score them (what ``e2espot test`` does).

``predict_videos`` is the one loop that runs a model over a set of labelled videos (open each video,
``predict_scores``, close it); ``predict_split`` (``e2espot test``) and the validation passes of training
(``train.loop.validation_map`` / ``choose_postprocess``) both use it.

Files written into the run directory::

    pred-<split>.json              the events a person looks at: the run's NMS and per-class thresholds
                                   (chosen on val at the end of training), as ``predict`` writes them
    pred-<split>.recall.json.gz    every (frame, class) >= 0.01, no NMS: the high-recall list, for mAP
    pred-<split>.scores.npz        per-video (N, K+1) score matrices (see outputs.write_split_npz)
    results-<split>/<game>/results_spotting.json   SoccerNet datasets only: the ranked list (the run's
                                   NMS, every score >= 0.01), as the SoccerNet benchmark expects

Scores: ``result`` is the E2E-Spot mAP of the ranked list (the run's NMS over the high-recall list;
``e2espot evaluate LABELS pred-<split>.recall.json.gz --greedy-nms-window W`` reproduces it for hard NMS;
``--nms-window`` is spot's local-maximum NMS, a different rule),
``recall_result`` that of the high-recall list without NMS (E2E-Spot's own test number) and ``prf``
the precision / recall / F1 of ``pred-<split>.json`` at the thresholds it was written with.

With several shards each process writes ``pred-<split>.parts/part-<i>-of-<n>.npz``; the merge (rank 0
under torchrun, else whichever shard finishes last) builds the files above and evaluates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from e2espot.config import RunConfig
from e2espot.constants import DEFAULT_SOCCERNET_LABEL_FILE, DEFAULT_TOLERANCES
from e2espot.data.labels import LabelSet, VideoLabels
from e2espot.data.tracks import features_for_video
from e2espot.errors import ConfigError, LabelFormatError
from e2espot.infer.predict import (
    HIGH_RECALL_THRESHOLD,
    AppliedPostprocess,
    Progress,
    applied_postprocess,
    high_recall_labels,
    load_run,
    predict_scores,
    resolve_device,
    scores_to_video_labels,
)
from e2espot.infer.sharding import Shard

RANKED_THRESHOLD = HIGH_RECALL_THRESHOLD  # the ranked list for mAP keeps NMSed events down to 0.01, as T-DEED


@dataclass
class SplitPrediction:
    """The outcome of ``predict_split`` in the process that merged (``merged=False`` elsewhere)."""

    split: str
    merged: bool
    videos: list[str]  # this process's videos
    truth: LabelSet | None = None  # aligned to the model's frames (all videos, when merged)
    pred: LabelSet | None = None  # events at the applied thresholds after NMS (pred-<split>.json)
    recall: LabelSet | None = None  # high-recall list (pred-<split>.recall.json.gz)
    ranked: LabelSet | None = None  # the applied NMS over every score >= 0.01 (SoccerNet results, ``result``)
    files: dict[str, Path] = dataclasses.field(default_factory=dict)
    result: Any = None  # e2espot.eval.metrics.MapResult of ``ranked``
    recall_result: Any = None  # MapResult of ``recall`` (E2E-Spot's own test number: no NMS)
    team_result: Any = None  # e2espot.eval.team.TeamMapResult of ``ranked`` when truth and pred carry teams
    team_note: str | None = None  # why Team-mAP@1 was not computed, when the truth has teams
    team_accuracy: Any = None  # e2espot.eval.team.TeamAccuracy of ``ranked`` at the largest tolerance
    prf: dict[str, Any] | None = None  # class (and "all") -> metrics.PRF of ``pred`` at ``prf_tolerance``
    prf_tolerance: int | None = None  # frames
    postprocess: AppliedPostprocess | None = None  # what made ``pred`` and where it came from
    parts_done: int = 0
    parts_total: int = 1


def read_split_labels(
    cfg: RunConfig,
    split: str,
    *,
    labels: str | Path | None = None,
    fmt: str | None = None,
    splits: str | Path | None = None,
    label_file: str | None = None,
) -> tuple[LabelSet, str, str]:
    """Read one split, defaulting to the dataset the run was trained on (``config.json`` ``dataset``).

    Returns the labels, the format key and a description of where they came from (for messages)."""
    from e2espot.data.sources import read_split

    ds = cfg.dataset
    labels = labels or ds.get("labels")
    if not labels:
        raise ConfigError(
            "no labels: the run's config.json has no dataset.labels; "
            "pass --labels LABEL_DIR (or a SoccerNet root)"
        )
    fmt = fmt or ds.get("format") or "spot"
    splits = splits or ds.get("splits")
    kwargs: dict[str, Any] = {"fmt": fmt, "classes": list(cfg.classes)}
    if fmt == "soccernet":
        kwargs["splits"] = Path(splits) if splits else None
        kwargs["label_file"] = label_file or ds.get("label_file") or DEFAULT_SOCCERNET_LABEL_FILE
    labels = Path(labels)
    where = labels / f"{split}.json" if fmt != "soccernet" and labels.is_dir() else labels
    return read_split(labels, split, **kwargs), fmt, f"{where} ({split} split)"


@dataclass(frozen=True)
class VideoScores:
    """One video's scores from ``predict_videos``."""

    video: VideoLabels  # the labelled video they were predicted for
    scores: np.ndarray  # (N, K+1) float32, or (N, 1+2K) for a team model (``predict.predict_scores``)
    fps: float | None  # the reader's frame rate (the frames of ``scores``); None when unknown


def open_labelled_video(video: VideoLabels, cfg: RunConfig, videos_root: str | Path | None = None):
    """Open ``video`` (``data.video.find_video`` in ``videos_root``, default the run's ``dataset.videos``) at
    the run's fps and size. ConfigError when no folder is known."""
    from e2espot.data.video import find_video, open_video

    root = videos_root or cfg.dataset.get("videos")
    if not root:
        raise ConfigError("run config has no dataset.videos folder; pass reader_factory")
    d = cfg.data
    return open_video(find_video(root, video.video), fps=d.fps, height=d.height, width=d.width)


def predict_videos(
    model: torch.nn.Module,
    cfg: RunConfig,
    videos: Iterable[VideoLabels],
    *,
    videos_root: str | Path | None = None,
    reader_factory: Callable[[VideoLabels], Any] | None = None,
    overlap: int | None = None,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    on_open: Callable[[VideoLabels, Any], Progress | None] | None = None,
) -> Iterator[VideoScores]:
    """Run ``model`` over every video of ``videos``, in order, yielding each one's ``VideoScores`` as it is done.

    Each video is opened with ``reader_factory(video)`` when given (training passes its own), else
    ``open_labelled_video``; scored by ``predict.predict_scores`` (whole video, sliding windows with
    ``overlap``, ``batch_size`` windows per forward pass); and closed before the next one opens, so one
    video is held at a time. ``on_open(video, reader)``, when given, runs after opening and before
    predicting (checks that need the reader's frame count; raise there to stop) and may return a
    ``progress(stage, fraction)`` callback for that video.
    """
    for video in videos:
        reader = reader_factory(video) if reader_factory else open_labelled_video(video, cfg, videos_root)
        try:
            fps = getattr(reader, "fps", None)
            fps = float(fps) if fps else None
            progress = on_open(video, reader) if on_open is not None else None
            scores = predict_scores(model, reader, cfg, overlap=overlap, batch_size=batch_size, device=device,
                                    precision=precision, progress=progress,
                                    tracks=features_for_video(cfg, video, videos_root=videos_root))
        finally:
            reader.close()
        yield VideoScores(video, scores, fps)


def _align_one(video: VideoLabels, fps: float, num_frames: int, cfg: RunConfig, source: str) -> VideoLabels:
    from e2espot.data.align import align_labels

    aligned = align_labels(
        LabelSet([], [video]), ".", cfg.data, source=source, probe=lambda _v: (fps, num_frames)
    )
    return aligned.videos[0]


def _parts_dir(run_dir: Path, split: str) -> Path:
    return run_dir / f"pred-{split}.parts"


def predict_split(
    run_dir: str | Path,
    split: str,
    *,
    videos_root: str | Path | None = None,
    labels: str | Path | None = None,
    fmt: str | None = None,
    splits: str | Path | None = None,
    label_file: str | None = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    checkpoint: str | Path = "best",
    overlap: int | None = None,
    batch_size: int = 4,
    nms: str | None = None,
    nms_window: int | None = None,
    threshold: float | None = None,
    tolerances: tuple[int, ...] = DEFAULT_TOLERANCES,
    shard: Shard | None = None,
    progress_for: Callable[[str, int | None], Progress | None] | None = None,
    on_video: Callable[[VideoLabels], None] | None = None,
) -> SplitPrediction:
    """Predict this shard's videos of ``split``; merge, write and evaluate when every shard is done.

    ``progress_for(video_id, num_frames)`` may return a ``progress(stage, fraction)`` callback per
    video; ``on_video(pred_video_labels)`` is called after each video. Events past the end of a video
    raise ``LabelFormatError`` naming the split, video and event, before that video is predicted.
    """
    from e2espot.infer.outputs import write_split_npz

    run_dir = Path(run_dir)
    shard = shard or Shard()
    device = resolve_device(device)
    model, cfg = load_run(run_dir, device=device, checkpoint=checkpoint)
    # fail early on bad post-processing options, before hours of prediction
    post = applied_postprocess(cfg, nms, nms_window, threshold)
    truth_raw, fmt, source = read_split_labels(
        cfg, split, labels=labels, fmt=fmt, splits=splits, label_file=label_file
    )
    videos_root = videos_root or cfg.dataset.get("videos")
    if not videos_root:
        raise ConfigError("no videos folder: pass VIDEOS (the run's config.json has no dataset.videos)")
    if not truth_raw.videos:
        raise LabelFormatError(f"split '{split}' has no videos")

    mine = shard.select(sorted(v.video for v in truth_raw))
    raw_by_id = truth_raw.by_video()
    scores: dict[str, np.ndarray] = {}
    fps_by_video: dict[str, float | None] = {}

    def on_open(video: VideoLabels, reader: Any) -> Progress | None:
        fps = float(reader.fps) if reader.fps else None
        _align_one(video, fps, reader.num_frames, cfg, source)  # fail before predicting
        return progress_for(video.video, reader.num_frames) if progress_for else None

    for done in predict_videos(model, cfg, [raw_by_id[v] for v in mine], videos_root=videos_root, overlap=overlap,
                               batch_size=batch_size, device=device, precision=precision, on_open=on_open):
        video_id = done.video.video
        scores[video_id], fps_by_video[video_id] = done.scores, done.fps
        if on_video is not None:
            on_video(scores_to_video_labels(
                done.scores, cfg, video_id, done.fps, threshold=post.threshold, nms=post.nms,
                nms_window=post.nms_window, thresholds=post.thresholds,
            ))

    out = SplitPrediction(split=split, merged=False, videos=mine, parts_total=shard.count, postprocess=post)
    if shard.enabled:
        parts = _parts_dir(run_dir, split)
        write_split_npz(parts / f"part-{shard.index}-of-{shard.count}.npz", scores, cfg.classes, fps_by_video)
        if shard.from_launcher:
            _barrier()
            if shard.index != 0:
                return out
        done = sorted(parts.glob(f"part-*-of-{shard.count}.npz"))
        out.parts_done = len(done)
        if len(done) < shard.count:
            return out  # another shard will merge
        try:
            scores, fps_by_video = _read_parts(done, cfg)
        except FileNotFoundError:  # another shard finished at the same moment and merged already
            return out

    missing = sorted(set(raw_by_id) - set(scores))
    if missing:
        raise ConfigError(f"merging {split}: no predictions for {len(missing)} videos, e.g. {missing[:3]}")
    out = _finish(out, run_dir, cfg, truth_raw, fmt, source, scores, fps_by_video, post=post,
                  tolerances=tolerances)
    if shard.enabled:  # merged: the parts are in pred-<split>.scores.npz now
        import shutil

        shutil.rmtree(_parts_dir(run_dir, split), ignore_errors=True)
    return out


def prf_tolerance(cfg: RunConfig, tolerances: tuple[int, ...]) -> int:
    """The tolerance (frames) of test's P/R/F1: the one the run's thresholds maximised F1 at
    (``postprocess.f1_tolerance_frames``), else the middle of ``tolerances``."""
    recorded = cfg.postprocess.f1_tolerance_frames  # validated by config.PostprocessConfig
    if recorded is not None:
        return recorded
    ordered = sorted(tolerances)
    return ordered[len(ordered) // 2]


def _barrier() -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")  # a barrier only: gloo works for CPU and GPU runs
    dist.barrier()
    dist.destroy_process_group()


def _read_parts(paths: list[Path], cfg: RunConfig) -> tuple[dict[str, np.ndarray], dict[str, float | None]]:
    from e2espot.infer.outputs import read_split_npz

    scores: dict[str, np.ndarray] = {}
    fps: dict[str, float | None] = {}
    for path in paths:
        part_scores, classes, part_fps = read_split_npz(path)
        if tuple(classes) != tuple(cfg.classes):
            raise ConfigError(
                f"{path}: classes {classes} differ from the run's {list(cfg.classes)}; "
                f"a stale part? Delete {path.parent} and run every shard again"
            )
        scores.update(part_scores)
        fps.update(part_fps)
    return scores, fps


def _finish(
    out: SplitPrediction,
    run_dir: Path,
    cfg: RunConfig,
    truth_raw: LabelSet,
    fmt: str,
    source: str,
    scores: dict[str, np.ndarray],
    fps_by_video: dict[str, float | None],
    *,
    post: AppliedPostprocess,
    tolerances: tuple[int, ...],
) -> SplitPrediction:
    from e2espot.data.formats import write_labels
    from e2espot.data.formats.predictions import write_prediction_json
    from e2espot.eval.metrics import e2e_map, precision_recall_f1
    from e2espot.infer.outputs import write_split_npz

    split = out.split
    truth_videos, pred_videos, recall_videos, ranked_videos = [], [], [], []
    for raw in truth_raw:
        video_scores, fps = scores[raw.video], fps_by_video[raw.video]
        truth = _align_one(raw, fps, int(video_scores.shape[0]), cfg, source)
        truth_videos.append(truth)
        pred = scores_to_video_labels(
            video_scores, cfg, raw.video, fps, threshold=post.threshold, nms=post.nms,
            nms_window=post.nms_window, thresholds=post.thresholds,
        )
        ranked = scores_to_video_labels(
            video_scores, cfg, raw.video, fps, threshold=RANKED_THRESHOLD, nms=post.nms, nms_window=post.nms_window
        )
        recall = high_recall_labels(video_scores, cfg, raw.video, fps)
        for v in (pred, recall, ranked):
            v.extra = {k: raw.extra[k] for k in ("game", "half") if k in raw.extra}
        pred_videos.append(pred)
        recall_videos.append(recall)
        ranked_videos.append(ranked)
    classes = list(cfg.classes)
    out.truth = LabelSet(classes, truth_videos)
    out.pred = LabelSet(classes, pred_videos)
    out.recall = LabelSet(classes, recall_videos)
    out.ranked = LabelSet(classes, ranked_videos)
    out.postprocess = post

    out.files["events"] = write_prediction_json(pred_videos, run_dir / f"pred-{split}.json", classes=classes)
    recall_path = run_dir / f"pred-{split}.recall.json.gz"
    out.files["recall"] = write_prediction_json(recall_videos, recall_path, classes=classes)
    out.files["scores"] = write_split_npz(run_dir / f"pred-{split}.scores.npz", scores, classes, fps_by_video)
    if fmt == "soccernet":
        results_dir = run_dir / f"results-{split}"
        write_labels(out.ranked, results_dir, "soccernet-results")
        out.files["soccernet"] = results_dir

    if any(v.events for v in truth_videos):
        out.result = e2e_map(out.truth, out.ranked, tolerances=tolerances)
        out.recall_result = e2e_map(out.truth, out.recall, tolerances=tolerances)
        out.prf_tolerance = prf_tolerance(cfg, tolerances)
        out.prf = precision_recall_f1(out.truth, out.pred, threshold=0.0, tolerance=out.prf_tolerance)
        out.team_result, out.team_note = team_scores(out.truth, out.ranked, classes)
        if out.team_result is not None:
            from e2espot.eval.team import team_accuracy

            out.team_accuracy = team_accuracy(out.truth, out.ranked, tolerance=max(tolerances))
    out.merged = True
    out.parts_done = out.parts_total
    return out


def team_scores(truth: LabelSet, pred: LabelSet, classes: list[str]) -> tuple[Any, str | None]:
    """Team-mAP@1 of ``pred`` (``e2espot.eval.team.team_map``, the official Team-BAS arithmetic) when
    the truth has left/right teams and the predictions carry them; else ``(None, reason)`` (reason None
    when the truth has no teams). Events without a team are left out of the team metric
    (``missing_team="ignore"``; the result counts them); other label errors give ``(None, message)``."""
    from e2espot.eval.team import has_team_labels, team_map

    if not has_team_labels(truth):
        return None, None
    if not has_team_labels(pred):
        return None, "the ground truth has teams but the predictions carry none (a model without a team head)"
    try:
        return team_map(truth, pred, actions=classes, missing_team="ignore"), None
    except LabelFormatError as exc:
        return None, f"Team-mAP@1 not computed: {exc}"

"""Spot events in whole videos with a trained run directory.

``load_run`` rebuilds the model from ``config.json`` + ``best.pt``; ``predict_scores`` streams a
video through sliding windows and returns per-frame class probabilities; ``predict_file`` turns
those into event files. Decoding runs in a thread ahead of the model and frames live in a ring
buffer, so memory does not grow with the video's length (only the (N, K+1) score matrix does).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from e2espot.config import RunConfig
from e2espot.data.labels import Event, VideoLabels
from e2espot.device import autocast, resolve_device, resolve_precision, tune_cpu_allocator
from e2espot.errors import CheckpointError, ConfigError, VideoError
from e2espot.infer.streaming import ChunkProducer, FrameRing, ScoreAccumulator

Progress = Callable[[str, float], None]

HIGH_RECALL_THRESHOLD = 0.01  # E2E-Spot / T-DEED: every (frame, class) >= 0.01 goes to the mAP list
DEFAULT_THRESHOLD = 0.5  # events shown to people; the high-recall list is what mAP is computed on
# frames, one per config.NMS_KINDS; E2E-Spot eval.py / T-DEED PES defaults
DEFAULT_NMS_WINDOW = {"hard": 1, "soft": 3, "none": 0}
CHUNK_LEN = 32  # frames per decoded chunk
PREFETCH_CHUNKS = 4  # chunks the decode thread may read ahead
# DataConfig.windowing: "aligned" = ours (windows from frame 0, the last aligned to the end, black frames
# past the end); "spot" = jhong93/spot test_e2e.py (ActionSpotVideoDataset: windows from -SPOT_PAD_LEN
# every clip_len - overlap frames while start < N - overlap; frames outside the video are zero after
# normalisation; CenterCrop offsets rounded as torchvision does); "tdeed" = T-DEED's evaluate
# (``predict_scores_tdeed``: from -5 frames, black padding, support on non-zero rows)
WINDOWINGS = ("aligned", "spot", "tdeed")
SPOT_PAD_LEN = 5  # jhong93/spot dataset/frame.py DEFAULT_PAD_LEN


# --------------------------------------------------------------------------- loading


def _checkpoint_path(run_dir: Path, checkpoint: str | Path) -> Path:
    if str(checkpoint) in ("best", "last"):
        return run_dir / f"{checkpoint}.pt"
    path = Path(checkpoint)
    return path if path.is_absolute() or path.exists() else run_dir / path


def load_run(
    run_dir: str | Path,
    device: str | torch.device = "cpu",
    checkpoint: str | Path = "best",
) -> tuple[nn.Module, RunConfig]:
    """Rebuild a trained spotter from a run directory written by ``e2espot train``.

    ``checkpoint`` is ``"best"``, ``"last"`` or a path to a ``.pt`` file. The model comes back in
    eval mode (channels_last when the backbone prefers it), on ``device``. Missing or corrupt files raise ``CheckpointError``.

    ``run_dir`` may also be a published model as its project distributes it (an E2E-Spot folder, an
    OpenSportsLib checkpoint; ``e2espot.models.published``), detected automatically and converted in
    memory, or ``hf://OWNER/REPO[/SUBDIR][@REV]`` (Hugging Face Hub, through its cache). For those,
    ``checkpoint`` "best" means the reference's own choice; anything else picks another checkpoint.
    """
    from e2espot.checkpoint import load_checkpoint
    from e2espot.models import create_spotter
    from e2espot.models.published import build_model, detect_reference, import_reference
    from e2espot.models.published.hub import resolve_model_ref

    run_dir = resolve_model_ref(run_dir)
    kind = detect_reference(run_dir)
    if kind is not None:
        imported = import_reference(run_dir, kind=kind, checkpoint=None if str(checkpoint) == "best" else str(checkpoint))
        model = build_model(imported).to(resolve_device(device))
        return (channels_last(model) if model.prefers_channels_last else model), imported.run_config
    if not run_dir.is_dir():
        raise CheckpointError(
            f"{run_dir}: not a run directory (missing). Pass the SAVE_DIR that 'e2espot train' wrote"
        )
    ckpt_path = _checkpoint_path(run_dir, checkpoint)
    if not ckpt_path.is_file():
        others = sorted(p.name for p in run_dir.glob("*.pt"))
        hint = (
            f"; available: {', '.join(others)} (pick one with --checkpoint)"
            if others
            else "; train first ('e2espot train') or point --model at a finished run"
        )
        raise CheckpointError(f"{ckpt_path}: checkpoint not found{hint}")
    state = load_checkpoint(ckpt_path)  # weights_only=True; CheckpointError when corrupt

    config_path = run_dir / "config.json"
    if config_path.is_file():
        cfg = RunConfig.load(config_path)
    elif isinstance(state.get("config"), dict):
        cfg = RunConfig.from_dict(state["config"])
        post = cfg.postprocess
        used = (f"per-class thresholds {post.thresholds}" if post.thresholds
                else f"threshold {DEFAULT_THRESHOLD if post.threshold is None else post.threshold} for every class")
        logging.getLogger("e2espot").warning(
            "%s: not found; using the config saved in %s, whose post-processing may predate the per-class "
            "thresholds chosen on val at the end of training: %s. Restore config.json or pass --threshold",
            config_path, ckpt_path.name, used)
    else:
        raise CheckpointError(
            f"{config_path}: not found and {ckpt_path.name} holds no config; the run directory is incomplete"
        )

    model = create_spotter(dataclasses.replace(cfg.model, pretrained=False))
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as exc:
        first = " ".join(line.strip() for line in str(exc).splitlines()[:2])[:300]
        raise CheckpointError(
            f"{ckpt_path}: weights do not match the model in {config_path.name} ({first}). "
            "Was config.json edited or copied from another run?"
        ) from None
    model.eval()
    model.to(resolve_device(device))
    return (channels_last(model) if model.prefers_channels_last else model), cfg


def channels_last(model: nn.Module) -> nn.Module:
    """Put every 4-D weight in channels_last layout (in place). ``module.to(memory_format=...)`` refuses
    models that also hold 5-D weights (e.g. the Conv3d of temporal modules), so convert one by one."""
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 4:
                param.data = param.data.contiguous(memory_format=torch.channels_last)
    return model


def _as_loaded(
    run: str | Path | tuple[nn.Module, RunConfig], device: str | torch.device, checkpoint: str | Path = "best"
) -> tuple[nn.Module, RunConfig]:
    if isinstance(run, (str, Path)):
        return load_run(run, device=device, checkpoint=checkpoint)
    model, cfg = run
    return model, cfg


# --------------------------------------------------------------------------- windows


def window_starts(num_frames: int, clip_len: int, overlap: int) -> list[int]:
    """Start frames of the sliding windows over a video of ``num_frames`` frames.

    Windows start every ``clip_len - overlap`` frames; a last window aligned to the end covers the
    remainder; a video shorter than ``clip_len`` gets one window at 0 (padded, padding masked).
    """
    step = clip_len - overlap
    if num_frames <= clip_len:
        return [0] if num_frames > 0 else []
    starts = list(range(0, num_frames - clip_len + 1, step))
    if starts[-1] + clip_len < num_frames:
        starts.append(num_frames - clip_len)
    return starts


def decode_displacement(
    probs: torch.Tensor, displacement: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """T-DEED displacement decoding, vectorised.

    ``probs`` (B, T, C) per-frame probabilities; ``displacement`` (B, T) predicted offset d̂ of the
    event from each frame. Frame t votes for ``dst = clamp(t - round(d̂[t]))`` and every frame keeps
    the element-wise max of the votes it gets; frames nobody votes for score 0. ``valid`` (B,) is the
    number of real (non-padding) frames per window: padding frames neither vote nor receive votes.
    """
    batch, length, num_outputs = probs.shape
    frame_idx = torch.arange(length, device=probs.device).expand(batch, length)  # (B, T)
    dst = frame_idx - torch.round(displacement.float()).long()  # (B, T)
    upper = (valid - 1).clamp(min=0)[:, None] if valid is not None else length - 1
    dst = torch.minimum(dst.clamp(min=0), torch.as_tensor(upper, device=probs.device))
    votes = probs
    if valid is not None:
        votes = probs * (frame_idx < valid[:, None]).unsqueeze(-1)
    out = torch.zeros_like(probs)  # (B, T, C)
    return out.scatter_reduce(1, dst.unsqueeze(-1).expand(-1, -1, num_outputs), votes, reduce="amax")


def _center_crop(frames: np.ndarray, crop: int | None, rounded: bool = False) -> np.ndarray:
    """Square centre crop of (n, H, W, 3) frames (a view). ``rounded``: offsets
    ``int(round((size - crop) / 2))`` as torchvision ``CenterCrop`` (E2E-Spot), else floor."""
    if crop is None:
        return frames
    height, width = frames.shape[1:3]
    if crop > height or crop > width:
        raise ConfigError(
            f"crop {crop} is larger than the {width}x{height} frames; lower data.crop or raise data.height"
        )
    top, left = (height - crop) // 2, (width - crop) // 2
    if rounded:
        top, left = int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))
    return frames[:, top : top + crop, left : left + crop]


# --------------------------------------------------------------------------- scores


def _team_mode(cfg: RunConfig) -> str | None:
    return cfg.team_mode()


def _normalise_overlap(overlap: int | None, clip_len: int) -> int:
    if overlap is None:
        return clip_len // 2
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < clip_len:
        raise ConfigError(
            f"overlap {overlap!r} must be an integer in [0, clip_len={clip_len}); e.g. {clip_len // 2}"
        )
    return overlap


def frame_probabilities(logits: torch.Tensor, cfg: RunConfig) -> torch.Tensor:
    """Per-frame class probabilities (B, T, K+1) from logits, matching the training loss.

    Softmax for the CE / focal losses. A BCE-trained model only trains its K foreground logits
    (one-vs-rest), so those go through a sigmoid and the background column is 1 - max(foreground).
    """
    logits = logits.float()
    if cfg.activation() == "sigmoid":  # RunConfig.score_activation, or the loss of older runs
        fg = logits[..., 1:].sigmoid()
        return torch.cat([1.0 - fg.amax(-1, keepdim=True), fg], dim=-1)
    return logits.softmax(-1)


def predict_scores(
    model: nn.Module,
    reader: Any,
    cfg: RunConfig,
    *,
    overlap: int | None = None,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    progress: Progress | None = None,
    chunk_len: int = CHUNK_LEN,
    prefetch_chunks: int = PREFETCH_CHUNKS,
    stats: dict[str, int] | None = None,
    feature_cache: bool | None = None,
    tracks: np.ndarray | None = None,
) -> np.ndarray:
    """Per-frame class probabilities (N, K+1) float32 of a whole video (column 0 = background); for a
    team model (``RunConfig.team_mode``) the Team-BAS matrix (N, 1+2K), columns ``score_columns``: with a
    team head each window's probabilities go through ``split_team`` (after displacement decoding, as
    ``tdeed_window_output``), a joint action-team head's softmax is that matrix already.

    Sliding windows of ``cfg.data.clip_len`` frames start every ``clip_len - overlap`` frames (the
    last one aligned to the end); each frame's softmax is averaged over the windows covering it.
    With a displacement head, each window's probabilities are first decoded (``decode_displacement``).
    ``cfg.data.windowing == "spot"`` places and pads windows as jhong93/spot's test code does
    (``WINDOWINGS``); the model reads ``cfg.model.modality`` (``data.modality``: flow = G, B of the frames, gray = BT.601 luma).
    ``reader`` is an opened video (``e2espot.data.video.open_video``) at the run's fps and size; it is
    streamed in chunks. ``model`` should be in eval mode (``load_run`` returns it so). ``stats``, when
    given, receives ``peak_frames`` (frames held in the ring), ``num_frames`` and ``num_windows``
    (and ``backbone_frames``, the frames the backbone ran on, with the feature cache).
    ``feature_cache`` (default: on when the model allows it, ``Spotter.has_frame_features``): with no
    temporal module in the backbone, each frame's backbone features are computed once and shared by the
    overlapping windows; only the temporal head runs per window (aligned windowing only).
    ``tracks`` (N, F): the video's object-track features (``data.tracks``) for a model that fuses them;
    each window gets its rows (zero rows outside the video); N must equal the frames decoded.
    """
    windowing = getattr(cfg.data, "windowing", "aligned")
    if windowing not in WINDOWINGS:
        raise ConfigError(f"data.windowing '{windowing}' is unknown; expected one of {', '.join(WINDOWINGS)}")
    if windowing == "tdeed":
        if tracks is not None:
            raise ConfigError("object-track fusion is not supported with data.windowing 'tdeed'")
        return predict_scores_tdeed(
            model, reader, cfg, overlap=overlap, batch_size=batch_size, device=device, precision=precision,
            progress=progress, chunk_len=chunk_len, prefetch_chunks=prefetch_chunks, stats=stats,
        )
    clip_len = cfg.data.clip_len
    overlap = _normalise_overlap(overlap, clip_len)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size {batch_size!r} must be a positive integer")
    step = clip_len - overlap
    spot = windowing == "spot"
    from e2espot.data.modality import get_modality

    modality = get_modality(cfg.model.modality)  # RGB frames -> the model's channels (rgb, gray, flow)
    device = resolve_device(device)
    if device.type == "cpu":
        tune_cpu_allocator()  # large activations: no mmap/munmap page-fault storm per layer
    team = _team_mode(cfg)
    num_logits = 1 + len(cfg.classes) * (2 if team == "joint" else 1)  # the class head's outputs
    num_outputs = 1 + len(cfg.classes) * (2 if team else 1)  # score columns (score_columns)
    expected = getattr(reader, "num_frames", None)
    expected = expected if isinstance(expected, int) and expected > 0 else None

    ring = FrameRing(clip_len + batch_size * step + chunk_len)
    acc = ScoreAccumulator(num_outputs, expected)
    pending: list[int] = []  # starts of windows whose frames are all decoded, not yet run
    next_start = -SPOT_PAD_LEN if spot else 0  # next regular window start
    last_covered = 0  # end of the furthest window queued so far
    num_windows = 0

    def run_batch(starts: list[int], num_frames: int) -> None:
        nonlocal num_windows
        offsets = np.arange(clip_len)
        idx = np.asarray(starts)[:, None] + offsets  # (B, T) absolute frame indices
        valid = np.minimum(num_frames - np.asarray(starts), clip_len)  # (B,) real frames per window
        frames = ring.gather(np.clip(idx, 0, num_frames - 1))  # (B, T, H, W, 3) uint8
        if not spot and (valid < clip_len).any():
            frames[offsets[None, :] >= valid[:, None]] = 0  # zero padding past the end (masked below)
        x = torch.from_numpy(frames).to(device, non_blocking=True)
        x = x.permute(0, 1, 4, 2, 3).float().div_(255.0)  # (B, T, 3, H, W) in [0, 1], channels_last strides
        x = modality.from_rgb(x)  # (B, T, C, H, W): the modality's channels (flow: G, B; gray: BT.601 luma)
        inside = (idx >= 0) & (idx < num_frames)  # (B, T)
        if spot and not inside.all():  # E2E-Spot: frames outside the video are 0 after normalisation
            mean = torch.tensor(modality.mean, device=device).view(1, 1, -1, 1, 1)
            x = torch.where(torch.from_numpy(inside).to(device)[:, :, None, None, None], x, mean)
        kw = {} if tracks is None else {"tracks": _window_tracks(tracks, idx, valid, num_frames, device)}
        with amp:
            out = model(x, **kw) if cache is None else model.forward_head(cached_features(idx, valid), **kw)
        logits = out.logits  # (B, T, K+1), or (B, T, 2K+1) for a joint action-team head
        if logits.shape[-1] != num_logits or logits.shape[:2] != (len(starts), clip_len):
            joint = " x 2 teams (joint head)" if team == "joint" else ""
            raise ConfigError(
                f"model output {tuple(logits.shape)} does not match {len(starts)} windows x {clip_len} "
                "frames x "
                f"{num_logits} classes (K={len(cfg.classes)}{joint} + background); check the run's config.json"
            )
        probs = frame_probabilities(logits, cfg)  # (B, T, K+1) or (B, T, 2K+1)
        displacement = getattr(out, "displacement", None)
        valid_t = torch.from_numpy(valid).to(device)
        if displacement is not None:
            probs = decode_displacement(probs, displacement, valid_t)
        if team == "head":  # Team-BAS split at the row the class score moved to, as the T-DEED path
            team_logits = getattr(out, "team", None)
            if team_logits is None:
                raise ConfigError("config.json says model.team_head but the model returned no team logits; "
                                  "check the run's config.json")
            probs = split_team(probs, team_logits)  # (B, T, 1 + 2K)
        probs_np = probs.cpu().numpy()
        for i, start in enumerate(starts):
            if spot:  # rows of frames inside the video only
                lo, hi = max(0, start), min(num_frames, start + clip_len)
                acc.add(lo, probs_np[i, lo - start : hi - start])
            else:
                acc.add(start, probs_np[i, : valid[i]])
        num_windows += len(starts)

    amp = autocast(device, resolve_precision(precision, device))
    can_cache = bool(getattr(model, "has_frame_features", False)) and not spot
    if feature_cache and not can_cache:
        raise ConfigError("feature_cache needs a PyTorch Spotter without temporal modules and aligned windowing")
    cache: dict[int, torch.Tensor] | None = {} if (can_cache if feature_cache is None else feature_cache) else None
    backbone_frames = 0

    def cached_features(idx: np.ndarray, valid: np.ndarray) -> torch.Tensor:
        """(B, T, D) backbone features of the windows' frames, each frame computed once; key -1 = the
        black padding frame past the end of a short video."""
        nonlocal backbone_frames
        keys = np.where(np.arange(clip_len)[None, :] < valid[:, None], idx, -1)  # (B, T)
        missing = [int(k) for k in np.unique(keys) if int(k) not in cache]
        if missing:
            frames = ring.gather(np.maximum(missing, 0))  # (n, H, W, 3) uint8
            frames[np.asarray(missing) < 0] = 0
            x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div_(255.0)  # (n, 3, H, W)
            x = modality.from_rgb(x)  # (n, C, H, W)
            for key, row in zip(missing, model.frame_features(x), strict=True):
                cache[key] = row
            backbone_frames += len(missing)
        features = torch.stack([cache[int(k)] for k in keys.ravel()])  # (B·T, D)
        lowest = int(idx[-1, 0]) + step  # windows come in increasing order: earlier frames are done
        for key in [k for k in cache if 0 <= k < lowest]:
            del cache[key]
        return features.view(*keys.shape, -1)

    decoded = 0
    with ChunkProducer(reader, chunk_len, prefetch_chunks) as producer, torch.inference_mode():
        for start_idx, frames in producer:
            ring.append(start_idx, _center_crop(frames, cfg.data.crop, rounded=spot))
            decoded = ring.end
            if progress is not None and expected:
                progress("decode", min(1.0, decoded / expected))
            while next_start + clip_len <= decoded:
                pending.append(next_start)
                last_covered = next_start + clip_len
                next_start += step
            while len(pending) >= batch_size:
                run_batch(pending[:batch_size], decoded)
                del pending[:batch_size]
                if progress is not None and expected:
                    progress("predict", max(0.0, min(1.0, (pending[0] if pending else next_start) / expected)))
            # keep what pending windows and a possible end-aligned last window may still need
            ring.discard_before(min(pending[0] if pending else next_start, decoded - clip_len))

        num_frames = decoded
        if num_frames == 0:
            raise VideoError(f"{getattr(reader, 'path', 'video')}: no frames could be decoded")
        if spot:  # ActionSpotVideoDataset: starts in range(-pad, max(0, N - overlap), step)
            while next_start < max(0, num_frames - overlap):
                pending.append(next_start)
                next_start += step
        elif last_covered < num_frames:
            pending.append(max(0, num_frames - clip_len))
        for i in range(0, len(pending), batch_size):
            run_batch(pending[i : i + batch_size], num_frames)

    if tracks is not None and len(tracks) != num_frames:
        raise ConfigError(f"object-track features have {len(tracks)} rows but the video has {num_frames} frames "
                          "at the run's fps; recompute them (delete the track cache entry)")
    if progress is not None:
        progress("decode", 1.0)
        progress("predict", 1.0)
    if stats is not None:
        stats.update(peak_frames=ring.peak, num_frames=num_frames, num_windows=num_windows)
        if cache is not None:
            stats["backbone_frames"] = backbone_frames
    return acc.mean(num_frames)


def _window_tracks(tracks: np.ndarray, idx: np.ndarray, valid: np.ndarray, num_frames: int,
                   device: torch.device) -> torch.Tensor:
    """(B, T, F) track rows of windows ``idx`` (B, T); rows outside the video or past ``valid`` are 0."""
    from e2espot.data.tracks import window_rows

    if num_frames > len(tracks):
        raise ConfigError(f"object-track features have {len(tracks)} rows but the video has more frames "
                          f"({num_frames} decoded so far); recompute them (delete the track cache entry)")
    idx = np.where(np.arange(idx.shape[1])[None, :] < valid[:, None], idx, -1)
    return torch.from_numpy(window_rows(tracks, idx)).to(device)


# --------------------------------------------------------------------------- T-DEED windowing

TDEED_PAD_LEN = 5  # T-DEED dataset/frame.py DEFAULT_PAD_LEN: the first window starts 5 rows before the video


def score_columns(cfg: RunConfig) -> list[str]:
    """Names of the score matrix's foreground columns: the classes, or for a team model (team head or
    joint action-team head, Team-BAS)
    ``<class>-left, <class>-right`` per class (sn-teamspotting's event_team class dict)."""
    if _team_mode(cfg):
        return [f"{c}-{team}" for c in cfg.classes for team in ("left", "right")]
    return list(cfg.classes)


def tdeed_window_starts(num_frames: int, clip_len: int, overlap: int, pad_len: int = TDEED_PAD_LEN) -> list[int]:
    """T-DEED's window starts in model frames (rows): ``range(-pad_len, max(0, N - overlap), clip_len - overlap)``.

    ``ActionSpotVideoDataset`` (arturxe2/T-DEED ``dataset/frame.py`` @ ec1ad55) does this on raw frame indices
    with every index multiplied by the stride; divided by the stride it is this range on rows.
    """
    return list(range(-pad_len, max(0, num_frames - overlap), clip_len - overlap))


def split_team(probs: torch.Tensor, team_logits: torch.Tensor) -> torch.Tensor:
    """Team-BAS ``process_predictionTeam``: (B, T, K+1) probabilities and (B, T) team logits → (B, T, 1+2K).

    Column 0 = background, column 2i+1 = (1 - σ)·p_i (class i, left), 2i+2 = σ·p_i (class i, right), with σ
    the sigmoid of the team logit at the same (target) row (sn-teamspotting ``model/modules.py`` @ 091fed2).
    """
    sigma = torch.sigmoid(team_logits.float()).unsqueeze(-1)  # (B, T, 1)
    batch, length, num_outputs = probs.shape
    out = probs.new_zeros(batch, length, 1 + 2 * (num_outputs - 1))
    out[..., 0] = probs[..., 0]
    out[..., 1::2] = (1 - sigma) * probs[..., 1:]
    out[..., 2::2] = sigma * probs[..., 1:]
    return out


def tdeed_window_output(out: Any) -> torch.Tensor:
    """T-DEED ``predict()`` on a batch of windows: softmax of the (first) class head, displacement max-combine
    over the whole window (``process_double_head``), then the team split when the model has a team head."""
    probs = out.logits.float().softmax(-1)  # (B, T, K+1)
    if out.displacement is not None:
        probs = decode_displacement(probs, out.displacement)
    team = getattr(out, "team", None)
    return probs if team is None else split_team(probs, team)


def tdeed_overlap(cfg: RunConfig) -> int:
    """T-DEED's default overlap: clip_len // 2 for SoccerNet-v2, else clip_len // 4 * 3 (evaluate_tdeed_challenge.py);
    ``cfg.dataset["overlap"]`` when an importer recorded one."""
    clip_len = cfg.data.clip_len
    if isinstance(cfg.dataset.get("overlap"), int):  # set by an importer (AdaSpot: overlap_len = 50)
        return _normalise_overlap(cfg.dataset["overlap"], clip_len)
    return clip_len // 2 if cfg.dataset.get("name") == "soccernet" else clip_len // 4 * 3


def predict_scores_tdeed(
    model: nn.Module,
    reader: Any,
    cfg: RunConfig,
    *,
    overlap: int | None = None,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    progress: Progress | None = None,
    chunk_len: int = CHUNK_LEN,
    prefetch_chunks: int = PREFETCH_CHUNKS,
    stats: dict[str, int] | None = None,
) -> np.ndarray:
    """Per-frame scores (N, K+1) float32, or (N, 1+2K) with a team head, as T-DEED's own inference.

    Reproduces ``util/eval.py:evaluate`` (arturxe2/T-DEED @ ec1ad55) and sn-teamspotting's
    ``mAPevaluateTest``: windows from ``tdeed_window_starts`` (default overlap ``tdeed_overlap``); frames
    outside the video are black (uint8 0, normalised like any frame); each window's output is
    ``tdeed_window_output``; rows of the video sum the window rows over them, and the support counts only
    non-zero rows (a row no frame's displacement points to stays zero); support 0 becomes 1. Frames are
    streamed as in ``predict_scores`` (memory flat in the video's length).
    """
    clip_len = cfg.data.clip_len
    overlap = tdeed_overlap(cfg) if overlap is None else _normalise_overlap(overlap, clip_len)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size {batch_size!r} must be a positive integer")
    step = clip_len - overlap
    device = resolve_device(device)
    if device.type == "cpu":
        tune_cpu_allocator()
    team = _team_mode(cfg) is not None
    num_outputs = 1 + len(cfg.classes) * (2 if team else 1)
    expected = getattr(reader, "num_frames", None)
    expected = expected if isinstance(expected, int) and expected > 0 else None

    ring = FrameRing(clip_len + batch_size * step + chunk_len)
    acc = ScoreAccumulator(num_outputs, expected)
    pending: list[int] = []
    next_start = -TDEED_PAD_LEN
    num_windows = 0
    amp = autocast(device, resolve_precision(precision, device))

    def run_batch(starts: list[int], num_frames: int) -> None:
        nonlocal num_windows
        idx = np.asarray(starts)[:, None] + np.arange(clip_len)  # (B, T) absolute frame indices
        real = (idx >= 0) & (idx < num_frames)
        frames = np.zeros((len(starts), clip_len, *ring.frame_shape), dtype=np.uint8)  # black padding
        frames[real] = ring.gather(idx[real])
        x = torch.from_numpy(frames).to(device, non_blocking=True)
        x = x.permute(0, 1, 4, 2, 3).float().div_(255.0)  # (B, T, 3, H, W) = T-DEED's x / 255
        with amp:
            out = model(x)
        window_scores = tdeed_window_output(out).cpu().numpy()  # (B, T, C)
        if window_scores.shape[-1] != num_outputs:
            raise ConfigError(
                f"model output has {window_scores.shape[-1]} columns, expected {num_outputs} "
                f"({len(cfg.classes)} classes{' x 2 teams' if team else ''} + background); check config.json"
            )
        for i, start in enumerate(starts):
            lo, hi = max(0, -start), min(clip_len, num_frames - start)
            rows = window_scores[i, lo:hi]
            acc.add(start + lo, rows, counted=rows.sum(axis=1) != 0)
        num_windows += len(starts)

    decoded = 0
    with ChunkProducer(reader, chunk_len, prefetch_chunks) as producer, torch.inference_mode():
        for start_idx, frames in producer:
            ring.append(start_idx, _center_crop(frames, cfg.data.crop))
            decoded = ring.end
            if progress is not None and expected:
                progress("decode", min(1.0, decoded / expected))
            while next_start + clip_len <= decoded:  # such a window is in T-DEED's range whatever N is
                pending.append(next_start)
                next_start += step
            while len(pending) >= batch_size:
                run_batch(pending[:batch_size], decoded)
                del pending[:batch_size]
                if progress is not None and expected:
                    progress("predict", min(1.0, max(0, pending[0] if pending else next_start) / expected))
            ring.discard_before(min(pending[0] if pending else next_start, decoded - clip_len))

        num_frames = decoded
        if num_frames == 0:
            raise VideoError(f"{getattr(reader, 'path', 'video')}: no frames could be decoded")
        while next_start < max(0, num_frames - overlap):
            pending.append(next_start)
            next_start += step
        for i in range(0, len(pending), batch_size):
            run_batch(pending[i : i + batch_size], num_frames)

    if progress is not None:
        progress("decode", 1.0)
        progress("predict", 1.0)
    if stats is not None:
        stats.update(peak_frames=ring.peak, num_frames=num_frames, num_windows=num_windows)
    return acc.mean(num_frames, empty_rows="keep")


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class PredictionFiles:
    """What ``predict_file`` wrote for one video, and the events themselves."""

    events_json: Path  # <stem>.json: NMSed, thresholded events
    recall_json: Path  # <stem>.recall.json: every (frame, class) >= 0.01, no NMS (for mAP)
    csv: Path  # <stem>.csv: video,frame,time_s,label,score
    scores_npz: Path  # <stem>.npz: scores (N, K+1) float32, classes, fps
    video_labels: VideoLabels  # the NMSed events


def resolve_postprocess(
    cfg: RunConfig, nms: str | None = None, nms_window: int | None = None, threshold: float | None = None
) -> tuple[str, int, float]:
    """Post-processing settings: explicit arguments first, then what the run recorded
    (``cfg.postprocess``, the ``config.PostprocessConfig`` of ``config.json`` ``postprocess``:
    chosen on validation; ``thresholds`` per class, applied by ``predict_file`` when no threshold is
    given), then the documented defaults: hard NMS, window 1 frame (3 for soft-NMS, as T-DEED),
    threshold 0.5. ConfigError on an unknown NMS, a bad window or threshold."""
    rec = cfg.postprocess
    nms = nms or rec.nms or "hard"
    if nms not in DEFAULT_NMS_WINDOW:
        raise ConfigError(f"unknown NMS '{nms}'; expected one of {', '.join(DEFAULT_NMS_WINDOW)}")
    if nms_window is None:
        recorded = rec.nms_window if rec.nms in (None, nms) else None
        nms_window = DEFAULT_NMS_WINDOW[nms] if recorded is None else recorded
    if isinstance(nms_window, bool) or not isinstance(nms_window, int) or nms_window < 0:
        raise ConfigError(f"NMS window {nms_window!r} must be a non-negative integer (frames)")
    if threshold is None:
        threshold = DEFAULT_THRESHOLD if rec.threshold is None else rec.threshold
    if not 0.0 <= float(threshold) <= 1.0:
        raise ConfigError(f"threshold {threshold} must be in [0, 1]")
    return nms, nms_window, float(threshold)


@dataclass(frozen=True)
class AppliedPostprocess:
    """The post-processing a command applies, and where each part comes from (printed by predict/test)."""

    nms: str
    nms_window: int
    threshold: float  # classes without a per-class threshold
    thresholds: dict[str, float] | None  # per class (chosen on validation), or None
    nms_source: str
    threshold_source: str

    def describe(self) -> list[str]:
        """Two lines: the NMS, then the thresholds, each with its source."""
        frames = "frame" if self.nms_window == 1 else "frames"
        nms = "no NMS" if self.nms == "none" else f"{self.nms} NMS, window {self.nms_window} {frames}"
        if self.thresholds:
            values = ", ".join(f"{c} {t:.3f}" for c, t in self.thresholds.items())
            thr = f"per-class thresholds {values}"
        else:
            thr = f"threshold {self.threshold:g} for every class"
        return [f"post-processing: {nms} ({self.nms_source})", f"score thresholds: {thr} ({self.threshold_source})"]


def applied_postprocess(
    cfg: RunConfig, nms: str | None = None, nms_window: int | None = None, threshold: float | None = None,
    *, run_label: str = "the run's config.json",
) -> AppliedPostprocess:
    """``resolve_postprocess`` plus the per-class thresholds (used when no ``threshold`` is given) and
    the source of each setting: the flag, the run (``run_label``), or the documented default."""
    rec = cfg.postprocess
    nms_, window, thr = resolve_postprocess(cfg, nms, nms_window, threshold)
    nms_source = "--nms" if nms is not None else (run_label if rec.nms else "default")
    if nms_window is not None:
        nms_source += "; window from --nms-window"
    per_class = None if threshold is not None else rec.thresholds
    if threshold is not None:
        thr_source = "--threshold"
    elif per_class:
        tol = rec.f1_tolerance_frames
        at = f" at {tol} frame{'' if tol == 1 else 's'}" if tol is not None else ""
        thr_source = (f"{run_label}: best F1{at} on {rec.chosen_on or 'validation'}, chosen at the end of "
                      "training; --threshold T overrides")
    elif rec.threshold is not None:
        thr_source = f"{run_label}; --threshold T overrides"
    else:
        thr_source = f"default {DEFAULT_THRESHOLD:g}: the run recorded no thresholds"
    return AppliedPostprocess(nms_, window, thr, dict(per_class) if per_class else None, nms_source, thr_source)


def scores_to_video_labels(
    scores: np.ndarray,
    cfg: RunConfig,
    video: str,
    fps: float | None,
    *,
    threshold: float,
    nms: str,
    nms_window: int,
    thresholds: dict[str, float] | None = None,
) -> VideoLabels:
    """Events of one video from its (N, K+1) score matrix (via ``postprocess.scores_to_events``), or for a
    team model its (N, 1+2K) matrix (``postprocess.team_scores_to_events``: events with a team, the score
    the team column's); ``thresholds`` (per class) override ``threshold``. For team models the per-class
    thresholds filter the events after NMS, which equals thresholding first for hard NMS (left and right
    of an action share one threshold and are suppressed together)."""
    from e2espot.infer.postprocess import scores_to_events, team_scores_to_events

    if _team_mode(cfg):  # (N, 1 + 2K) Team-BAS columns: events carry left / right
        floor = min([threshold, *(thresholds or {}).values()])
        events = team_scores_to_events(
            scores, list(cfg.classes), threshold=floor, nms=nms, window=nms_window, fps=fps
        )
        if thresholds:  # per action, on the team column's score; after NMS (left and right NMS together)
            events = [e for e in events if (e.score or 0.0) >= thresholds.get(e.label, threshold)]
    else:
        events = scores_to_events(
            scores, list(cfg.classes), threshold=threshold, nms=nms, window=nms_window, fps=fps,
            thresholds=thresholds,
        )
    events = sorted(events, key=lambda e: (e.frame, -(e.score or 0.0), e.label))
    return VideoLabels(video=video, fps=fps, num_frames=int(scores.shape[0]), events=events)


def high_recall_labels(scores: np.ndarray, cfg: RunConfig, video: str, fps: float | None) -> VideoLabels:
    """Every (frame, class) with score >= 0.01, no NMS: the list mAP is computed on."""
    return scores_to_video_labels(
        scores, cfg, video, fps, threshold=HIGH_RECALL_THRESHOLD, nms="none", nms_window=0
    )


def predict_file(
    video_path: str | Path,
    run: str | Path | tuple[nn.Module, RunConfig],
    out_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    threshold: float | None = None,
    nms: str | None = None,
    nms_window: int | None = None,
    overlap: int | None = None,
    batch_size: int = 4,
    precision: str = "auto",
    checkpoint: str | Path = "best",
    video_id: str | None = None,
    progress: Progress | None = None,
    track_weights: str | Path | None = None,
    track_cache: str | Path | None = None,
) -> PredictionFiles:
    """Spot events in one video file (or frame folder); write ``OUT_DIR/<stem>.{json,recall.json,csv,npz}``.

    ``run`` is a run directory or the ``(model, cfg)`` pair from ``load_run``. Frame indices are at
    the model's fps (``cfg.data.fps``, or the video's own when None). Post-processing defaults: see
    ``resolve_postprocess``. A model that fuses object tracks gets the video's track features from a
    detections file beside it or YOLO ``track_weights`` (``data.tracks.video_track_features``, cached in
    ``track_cache``), computed as in training.
    """
    from e2espot.data.formats.predictions import write_prediction_csv, write_prediction_json
    from e2espot.data.video import open_video
    from e2espot.infer.outputs import write_npz

    device = resolve_device(device)
    model, cfg = _as_loaded(run, device, checkpoint)
    # per-class thresholds chosen on the validation split at the end of training, unless overridden
    post = applied_postprocess(cfg, nms, nms_window, threshold)
    nms, nms_window, threshold, class_thresholds = post.nms, post.nms_window, post.threshold, post.thresholds
    video_path = Path(video_path)
    check_spotting_run(cfg)
    if cfg.model.modality == "flow" and not video_path.is_dir():
        raise ConfigError(
            f"{video_path}: this model reads optical flow, not RGB video. Give a folder of flow frames "
            "(jhong93/spot external/extract_raft_frames.py: %06d.jpg holding (dx, dy, 128) as BGR); spotting "
            "on a raw video needs an optical-flow model (RAFT) run first, which e2espot does not include"
        )
    stem = video_path.stem if video_path.suffix else video_path.name
    video = video_id or stem
    tracks = run_video_tracks(cfg, video_path, track_weights, track_cache)  # object tracks; None without fusion
    with open_video(video_path, fps=cfg.data.fps, height=cfg.data.height, width=cfg.data.width) as reader:
        fps = float(reader.fps) if reader.fps else None
        scores = predict_scores(
            model, reader, cfg, overlap=overlap, batch_size=batch_size, device=device,
            precision=precision, progress=progress, tracks=tracks,
        )
    labels = scores_to_video_labels(
        scores, cfg, video, fps, threshold=threshold, nms=nms, nms_window=nms_window, thresholds=class_thresholds
    )
    recall = high_recall_labels(scores, cfg, video, fps)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return PredictionFiles(
        events_json=write_prediction_json([labels], out_dir / f"{stem}.json", classes=cfg.classes),
        recall_json=write_prediction_json([recall], out_dir / f"{stem}.recall.json", classes=cfg.classes),
        csv=write_prediction_csv([labels], out_dir / f"{stem}.csv", classes=cfg.classes),
        scores_npz=write_npz(out_dir / f"{stem}.npz", scores, score_columns(cfg), fps),
        video_labels=labels,
    )


def check_spotting_run(cfg: RunConfig) -> None:
    """ConfigError when the run is a clip classifier (``train --task classify``): it labels clips, not
    frames, so ``predict`` has nothing to write; the message names ``e2espot test``."""
    if cfg.task == "classify":
        raise ConfigError(
            "this run is a clip classifier (train --task classify): it gives one label per clip, not events "
            "at frames. Score it on a labelled split with: e2espot test RUN -s SPLIT"
        )


def run_video_tracks(cfg: RunConfig, video_path: Path, weights: str | Path | None,
                  cache: str | Path | None) -> np.ndarray | None:
    from e2espot.data.tracks import run_tracks, video_track_features

    track_cfg = run_tracks(cfg)
    if track_cfg is None:
        return None
    return video_track_features(video_path, track_cfg, fps=cfg.data.fps, weights=weights, cache_dir=cache)


def count_by_class(events: list[Event], classes: tuple[str, ...] | list[str]) -> dict[str, int]:
    """Events per class, in class order (for summaries)."""
    counts = dict.fromkeys(classes, 0)
    for e in events:
        counts[e.label] = counts.get(e.label, 0) + 1
    return counts


__all__ = [
    "AppliedPostprocess",
    "PredictionFiles",
    "applied_postprocess",
    "channels_last",
    "check_spotting_run",
    "count_by_class",
    "decode_displacement",
    "high_recall_labels",
    "load_run",
    "predict_file",
    "predict_scores",
    "predict_scores_tdeed",
    "resolve_postprocess",
    "score_columns",
    "scores_to_video_labels",
    "split_team",
    "tdeed_window_starts",
    "window_starts",
]

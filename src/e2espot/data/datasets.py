"""Training and validation clip datasets read straight from videos, and their DataLoader.

``ClipDataset`` is map-style: item ``index`` is drawn with ``numpy.random.default_rng([seed, index])``,
so a clip depends only on ``(seed, index)``, never on the worker that reads it, the number of
workers or the order of reads. Workers therefore cannot share an RNG stream, and a run resumes
exactly. ``EpochSampler`` (used by ``make_loader``) hands out indices ``epoch * len(dataset) + i``,
so every epoch sees fresh clips; it lives in the main process, which makes ``set_epoch`` work with
persistent workers too (a dataset attribute set in the main process would not reach them).

Items are dicts of tensors (frames stay uint8 until the device; ``e2espot.data.transforms`` does
mixup and augmentation there):

* ``frames`` (T, H, W, 3) uint8, ``labels`` (T,) int64 (0 = background), ``displacement`` (T,)
  float32, ``valid`` (T,) bool (False on the explicit zero frames of edge padding),
  ``video_idx`` and ``start`` (int64 scalars: which clip this is);
* with ``team=True``: ``team`` (T,) float32, the Team-BAS team target (0 left, 1 right, -1 no target)
  on the frames the event labels (see ``clip_team_targets``);
* with mixup, the same keys suffixed ``2`` for the second clip (``frames2``, ``labels2``, ...).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from e2espot.config import DataConfig
from e2espot.data.labels import NO_TEAM, TEAMS, LabelSet, VideoLabels
from e2espot.data.sampling import DEFAULT_PAD, ClipRef, ClipSampler, clip_targets
from e2espot.data.timebase import num_frames_at
from e2espot.errors import ConfigError, LabelFormatError, VideoError

EPOCH_NUM_FRAMES = 500_000  # E2E-Spot: one virtual epoch = 500k frames of clips


class ClipReader(Protocol):
    """What the datasets need from a reader of ``e2espot.data.video.open_video`` (a structural subset of
    ``e2espot.data.video.VideoReader``, so test doubles need not subclass it)."""

    num_frames: int
    fps: float
    width: int
    height: int

    def read_clip(self, start: int, num: int) -> np.ndarray:  # (num, H, W, 3) uint8
        ...


ReaderFactory = Callable[[VideoLabels], ClipReader]


class VideoFileReaderFactory:
    """Default reader factory: ``open_video(find_video(video_root, video.video), fps=, height=, width=)``.

    A plain class (not a closure) so that it pickles into DataLoader workers.
    """

    def __init__(self, video_root: str | Path, data_cfg: DataConfig) -> None:
        self.video_root = Path(video_root)
        self.data_cfg = data_cfg

    def __call__(self, video: VideoLabels) -> ClipReader:
        from e2espot.data.video import find_video, open_video  # PyAV loads only when videos are read

        path = find_video(self.video_root, video.video)
        return open_video(path, fps=self.data_cfg.fps, height=self.data_cfg.height, width=self.data_cfg.width)


class _ReaderCache:
    """LRU of open readers, one per process (never shared across a fork)."""

    def __init__(self, factory: ReaderFactory, max_open: int) -> None:
        self.factory = factory
        self.max_open = max_open
        self.pid = os.getpid()
        self._open: OrderedDict[int, ClipReader] = OrderedDict()

    def get(self, video_idx: int, video: VideoLabels) -> ClipReader:
        reader = self._open.get(video_idx)
        if reader is not None:
            self._open.move_to_end(video_idx)
            return reader
        reader = self.factory(video)
        self._open[video_idx] = reader
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            _close(old)
        return reader

    def close(self) -> None:
        while self._open:
            _close(self._open.popitem()[1])

    def __len__(self) -> int:
        return len(self._open)


def _close(reader: Any) -> None:
    close = getattr(reader, "close", None)
    if callable(close):
        close()


@dataclass(frozen=True)
class _VideoIndex:
    """Per-video frame counts and events at the frame rate the readers deliver."""

    num_frames: list[int]
    event_frames: list[np.ndarray]  # (E_v,) int64 each
    event_classes: list[np.ndarray]  # (E_v,) int64 each, 1-based
    event_teams: list[np.ndarray] = field(default_factory=list)  # (E_v,) int64: 0 left, 1 right, -1 none


NO_TEAM_TARGET = -1


def _team_index(team: str | None, where: str) -> int:
    """0 / 1 for "left" / "right" (sigmoid target = P(right), as the Team-BAS baseline), -1 for no team."""
    if team in TEAMS:
        return TEAMS.index(team)
    if team is None or team == NO_TEAM:
        return NO_TEAM_TARGET
    hint = ""
    if team in ("home", "away"):
        hint = " (read SoccerNet-v2 labels with home_side= to map home/away to sides)"
    raise LabelFormatError(f"{where}: team {team!r} is not 'left', 'right' or 'not applicable'{hint}")


def clip_team_targets(
    event_frames: Sequence[int] | np.ndarray,
    event_teams: Sequence[int] | np.ndarray,
    start: int,
    clip_len: int,
    num_frames: int,
    *,
    dilate_len: int = 0,
) -> np.ndarray:
    """(T,) float32 team targets of frames ``start .. start + clip_len - 1``: an event with team ``k``
    (0 left, 1 right, -1 none) at frame ``e`` sets frames ``e - dilate_len .. e + dilate_len`` to ``k``,
    in the same order as ``sampling.clip_targets`` sets the class (frame order, the later event wins), so
    each frame's team belongs to the event its class came from. Every other frame, and edge padding,
    is -1 (no target: the BCE of ``losses.team_bce`` skips it), as sn-teamspotting's ``labels_team``.
    """
    frames = np.asarray(event_frames, dtype=np.int64).reshape(-1)  # (E,)
    teams = np.asarray(event_teams, dtype=np.int64).reshape(-1)  # (E,)
    if len(frames) != len(teams):
        raise ConfigError(f"team targets: {len(frames)} event frames but {len(teams)} event teams")
    out = np.full(clip_len, float(NO_TEAM_TARGET), dtype=np.float32)  # (T,)
    for k in np.argsort(frames, kind="stable"):
        lo = max(int(frames[k]) - dilate_len - start, 0)
        hi = min(int(frames[k]) + dilate_len - start + 1, clip_len)
        if lo < hi:
            out[lo:hi] = teams[k]
    frame_idx = start + np.arange(clip_len)
    out[(frame_idx < 0) | (frame_idx >= num_frames)] = NO_TEAM_TARGET
    return out


def _index_videos(
    labels: LabelSet, data_cfg: DataConfig, factory: ReaderFactory, team: bool = False
) -> _VideoIndex:
    """Event frames and num_frames at ``data_cfg.fps``, re-timed by ``align.align_labels``.

    Videos whose ``num_frames`` is unknown are opened once to ask their reader. An event that lands
    past the end of its video is a ``LabelFormatError`` (never clamped).
    """
    from e2espot.data.align import align_labels

    def probe(video: VideoLabels) -> tuple[float | None, int]:
        convert = data_cfg.fps is not None and video.fps is not None and video.fps != data_cfg.fps
        if video.num_frames is None:
            reader = factory(video)
            try:
                n = int(reader.num_frames)
            finally:
                _close(reader)
        elif convert:
            n = num_frames_at(video.num_frames, video.fps, data_cfg.fps)  # type: ignore[arg-type]
        else:
            n = int(video.num_frames)
        return (float(data_cfg.fps) if data_cfg.fps is not None else video.fps), n

    aligned = align_labels(labels, ".", data_cfg, source="training labels", probe=probe)
    teams = []
    if team:
        teams = [np.asarray([_team_index(e.team, f"training labels: video '{v.video}', event #{i}")
                             for i, e in enumerate(v.events)], dtype=np.int64) for v in aligned]
        if not any((t >= 0).any() for t in teams):
            raise ConfigError("clip dataset: team=True but no event has a 'left' or 'right' team; "
                              "train the team head on labels with teams")
    return _VideoIndex(
        [int(v.num_frames) for v in aligned],
        [np.asarray([e.frame for e in v.events], dtype=np.int64) for v in aligned],
        [np.asarray([labels.class_id(e.label) for e in v.events], dtype=np.int64) for v in aligned],
        teams,
    )


class ClipDataset(Dataset):
    """Random training clips (map-style; ``len`` = clips per epoch, any index >= 0 is a clip).

    ``fg_upsample`` is the probability of a foreground clip (see ``ClipSampler``); ``dilate_len`` and
    ``displacement_radius`` shape the targets (see ``clip_targets``); with ``mixup`` every item carries
    a second, independently drawn clip. ``train=False`` gives the same clips without mixup.
    ``team=True`` adds the ``team`` target (see ``clip_team_targets``; events need a left / right team,
    "not applicable" or none); a horizontal flip swaps the sides, and ``DeviceAugment`` swaps these
    targets with the frames (``transforms.DeviceAugment._flip_targets``).
    Readers come from ``reader_factory(video_labels)`` (default: ``VideoFileReaderFactory(video_root,
    data_cfg)``) and are kept in a per-worker LRU of ``max_open_readers``.
    Edge padding (start < 0, or past the last frame) is explicit zero frames with ``valid`` False; a
    ``VideoError`` from a reader is never turned into padding.
    """

    def __init__(
        self,
        labels: LabelSet,
        data_cfg: DataConfig,
        *,
        epoch_clips: int | None = None,
        fg_upsample: float = 0.0,
        dilate_len: int = 0,
        displacement_radius: int = 0,
        mixup: bool = False,
        seed: int = 0,
        reader_factory: ReaderFactory | None = None,
        train: bool = True,
        video_root: str | Path | None = None,
        pad: int = DEFAULT_PAD,
        max_open_readers: int = 8,
        team: bool = False,
    ) -> None:
        if len(labels) == 0:
            raise ConfigError("clip dataset: the label set has no videos")
        if mixup and not train:
            raise ConfigError("clip dataset: mixup is for training only; pass mixup=False with train=False")
        if reader_factory is None:
            if video_root is None:
                raise ConfigError("clip dataset: give video_root (folder of the videos) or a reader_factory")
            reader_factory = VideoFileReaderFactory(video_root, data_cfg)
        if epoch_clips is None:
            epoch_clips = max(1, EPOCH_NUM_FRAMES // data_cfg.clip_len)
        if epoch_clips < 1:
            raise ConfigError(f"clip dataset: epoch_clips {epoch_clips} must be >= 1")
        if max_open_readers < 1:
            raise ConfigError(f"clip dataset: max_open_readers {max_open_readers} must be >= 1")
        if seed < 0:
            raise ConfigError(f"clip dataset: seed {seed} must be >= 0")
        self.labels = labels
        self.data_cfg = data_cfg
        self.clip_len = data_cfg.clip_len
        self.epoch_clips = int(epoch_clips)
        self.dilate_len = int(dilate_len)
        self.displacement_radius = int(displacement_radius)
        self.mixup = bool(mixup)
        self.seed = int(seed)
        self.train = bool(train)
        self.reader_factory = reader_factory
        self.max_open_readers = int(max_open_readers)
        self.team = bool(team)
        self._index = _index_videos(labels, data_cfg, reader_factory, team=self.team)
        self.sampler = ClipSampler(
            self._index.num_frames, self._index.event_frames, self.clip_len, fg_upsample=fg_upsample, pad=pad
        )
        self._cache: _ReaderCache | None = None

    # --- pickling into workers: never carry open readers -------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None
        return state

    def __len__(self) -> int:
        return self.epoch_clips

    @property
    def num_classes(self) -> int:
        return self.labels.num_classes

    def clips_at(self, index: int) -> tuple[ClipRef, ...]:
        """The clip(s) of item ``index`` (one, or two with mixup), without reading any frame."""
        if index < 0:
            raise IndexError(f"clip index {index} must be >= 0")
        rng = np.random.default_rng([self.seed, int(index)])
        first = self.sampler.sample(rng)
        return (first, self.sampler.sample(rng)) if self.mixup else (first,)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clips = self.clips_at(index)
        item = self.read(clips[0])
        if len(clips) == 2:
            item.update({f"{k}2": v for k, v in self.read(clips[1]).items()})
        return item

    def read(self, clip: ClipRef) -> dict[str, torch.Tensor]:
        """Frames and targets of one clip."""
        video = self.labels.videos[clip.video_idx]
        num_frames = self._index.num_frames[clip.video_idx]
        reader = self._reader(clip.video_idx, video)
        lo, hi = max(clip.start, 0), min(clip.start + self.clip_len, num_frames)
        frames = np.zeros(
            (self.clip_len, int(reader.height), int(reader.width), 3), dtype=np.uint8
        )  # (T, H, W, 3)
        if hi > lo:
            if hi > int(reader.num_frames):
                raise VideoError(
                    f"video '{video.video}': needs frames up to {hi - 1} but its reader has "
                    f"{reader.num_frames} "
                    f"frames (labels say {num_frames}). Check the video file, or fix num_frames in the labels"
                )
            got = np.asarray(reader.read_clip(lo, hi - lo))  # (hi - lo, H, W, 3) uint8
            if got.shape != (hi - lo, *frames.shape[1:]) or got.dtype != np.uint8:
                raise VideoError(
                    f"video '{video.video}': read_clip({lo}, {hi - lo}) returned {got.dtype} {got.shape}; "
                    f"expected uint8 {(hi - lo, *frames.shape[1:])}"
                )
            frames[lo - clip.start : hi - clip.start] = got
        targets = clip_targets(
            self._index.event_frames[clip.video_idx],
            self._index.event_classes[clip.video_idx],
            clip.start,
            self.clip_len,
            num_frames,
            dilate_len=self.dilate_len,
            displacement_radius=self.displacement_radius,
        )
        item = {
            "frames": torch.from_numpy(frames),
            "labels": torch.from_numpy(targets.labels),
            "displacement": torch.from_numpy(targets.displacement),
            "valid": torch.from_numpy(targets.valid),
            "video_idx": torch.tensor(clip.video_idx, dtype=torch.int64),
            "start": torch.tensor(clip.start, dtype=torch.int64),
        }
        if self.team:
            item["team"] = torch.from_numpy(clip_team_targets(
                self._index.event_frames[clip.video_idx], self._index.event_teams[clip.video_idx],
                clip.start, self.clip_len, num_frames, dilate_len=self.dilate_len,
            ))
        return item

    def _reader(self, video_idx: int, video: VideoLabels) -> ClipReader:
        if self._cache is None or self._cache.pid != os.getpid():
            self._cache = _ReaderCache(self.reader_factory, self.max_open_readers)
        return self._cache.get(video_idx, video)

    def close(self) -> None:
        """Close the readers this process opened."""
        if self._cache is not None and self._cache.pid == os.getpid():
            self._cache.close()


class ValidationClips(ClipDataset):
    """A fixed set of ``num_clips`` clips for validation loss: the same clips every epoch, no mixup.

    Default ``num_clips`` is a quarter of a training epoch (E2E-Spot), default sampling is uniform
    (``fg_upsample=0``) so the loss reflects the real background/foreground mix.
    """

    def __init__(
        self,
        labels: LabelSet,
        data_cfg: DataConfig,
        *,
        num_clips: int | None = None,
        fg_upsample: float = 0.0,
        dilate_len: int = 0,
        displacement_radius: int = 0,
        seed: int = 0,
        reader_factory: ReaderFactory | None = None,
        video_root: str | Path | None = None,
        pad: int = DEFAULT_PAD,
        max_open_readers: int = 8,
        team: bool = False,
    ) -> None:
        if num_clips is None:
            num_clips = max(1, EPOCH_NUM_FRAMES // data_cfg.clip_len // 4)
        super().__init__(
            labels,
            data_cfg,
            epoch_clips=num_clips,
            fg_upsample=fg_upsample,
            dilate_len=dilate_len,
            displacement_radius=displacement_radius,
            mixup=False,
            seed=seed,
            reader_factory=reader_factory,
            train=False,
            video_root=video_root,
            pad=pad,
            max_open_readers=max_open_readers,
            team=team,
        )
        self.clips: list[ClipRef] = [super(ValidationClips, self).clips_at(i)[0] for i in range(num_clips)]

    def clips_at(self, index: int) -> tuple[ClipRef, ...]:
        if not 0 <= index < len(self.clips):
            raise IndexError(f"validation clip {index} out of range [0, {len(self.clips)})")
        return (self.clips[index],)


class EpochSampler(Sampler[int]):
    """Indices ``epoch * num_clips + i`` for ``i`` in ``range(rank, num_clips, world_size)``.

    Each iteration uses the current epoch and then advances it by one; call ``set_epoch(e)`` before
    each epoch to pin it (exact resume). ``set_epoch(e, skip=n)`` drops this rank's first ``n`` indices
    of that epoch once (resuming mid-epoch). Ranks of a DDP job get disjoint indices, hence different clips.
    """

    def __init__(self, num_clips: int, *, rank: int = 0, world_size: int = 1, epoch: int = 0) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"epoch sampler: rank {rank} must be in [0, world_size={world_size})")
        self.num_clips = int(num_clips)
        self.rank = rank
        self.world_size = world_size
        self.epoch = epoch
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch = int(epoch)
        self.skip = int(skip)

    def __iter__(self) -> Iterator[int]:
        base = self.epoch * self.num_clips
        first = base + self.rank + self.skip * self.world_size
        self.epoch += 1
        self.skip = 0
        return iter(range(first, base + self.num_clips, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.num_clips, self.world_size))


class FixedSampler(Sampler[int]):
    """Indices ``range(rank, num_clips, world_size)`` every time (validation)."""

    def __init__(self, num_clips: int, *, rank: int = 0, world_size: int = 1) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"fixed sampler: rank {rank} must be in [0, world_size={world_size})")
        self._indices = range(rank, int(num_clips), world_size)

    def set_epoch(self, epoch: int) -> None:  # same clips every epoch
        pass

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices)

    def __len__(self) -> int:
        return len(self._indices)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed ``random`` and NumPy's global RNG from the worker's torch seed.

    Clip sampling does not use them (see the module doc); this keeps any third-party code that does
    from repeating the same stream in every worker.
    """
    import random

    seed = torch.initial_seed() % 2**32  # torch gives each worker base_seed + worker_id
    random.seed(seed)
    np.random.seed(seed)


def collate_clips(items: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items; frames of different sizes get a ConfigError that says what to set."""
    for key in ("frames", "frames2"):
        if key in items[0]:
            shapes = {tuple(it[key].shape) for it in items}
            if len(shapes) > 1:
                raise ConfigError(
                    f"clips in one batch have different frame sizes {sorted(shapes)}; videos differ in "
                    "aspect "
                    "ratio: set a fixed width (DataConfig.width) so every reader resizes to the same size"
                )
    return torch.utils.data.default_collate(list(items))


def make_loader(
    dataset: ClipDataset,
    batch_size: int,
    num_workers: int = 0,
    *,
    pin_memory: bool | None = None,
    persistent_workers: bool = True,
    prefetch_factor: int = 2,
    drop_last: bool | None = None,
    rank: int = 0,
    world_size: int = 1,
    epoch: int = 0,
    device: torch.device | str | None = None,
) -> DataLoader:
    """DataLoader over a ClipDataset with sane defaults.

    Training datasets get an ``EpochSampler`` (fresh clips every epoch, ``loader.sampler.set_epoch``)
    and drop the last partial batch; validation datasets a ``FixedSampler``, keeping every clip.
    ``pin_memory`` defaults to True only when CUDA is the target (``device``, else CUDA availability);
    ``persistent_workers`` and ``prefetch_factor`` apply only with ``num_workers > 0``.
    """
    if batch_size < 1:
        raise ConfigError(f"loader: batch_size {batch_size} must be >= 1")
    if num_workers < 0:
        raise ConfigError(f"loader: num_workers {num_workers} must be >= 0")
    if pin_memory is None:
        pin_memory = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    sampler: Sampler[int]
    if dataset.train:
        sampler = EpochSampler(len(dataset), rank=rank, world_size=world_size, epoch=epoch)
    else:
        sampler = FixedSampler(len(dataset), rank=rank, world_size=world_size)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(persistent_workers=persistent_workers, prefetch_factor=prefetch_factor)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_clips,
        pin_memory=pin_memory,
        drop_last=dataset.train if drop_last is None else drop_last,
        worker_init_fn=seed_worker,
        **kwargs,
    )

"""Training clip sampling and per-frame targets.

Clips are ``clip_len`` consecutive frames of one video. ``ClipSampler`` draws them as E2E-Spot does
(a video with probability proportional to its length, a start uniform over the padded range), plus
foreground oversampling with the sign the name promises: ``fg_upsample=p`` means a clip is a
*foreground* clip (built around a random event) with probability ``p``. E2E-Spot's ``--fg_upsample p``
gave foreground clips with probability ``1 - p``.

``clip_targets`` turns the events of a video into per-frame targets for one clip: class ids with
label dilation, T-DEED displacement targets, and a mask that is False on edge-padding frames.

Everything here is NumPy and deterministic given a ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from e2espot.data.labels import LabelSet
from e2espot.errors import ConfigError

DEFAULT_PAD = 5  # frames of zero padding allowed before the first and after the last frame (E2E-Spot)


@dataclass(frozen=True)
class ClipRef:
    """One sampled clip: frames ``start .. start + clip_len - 1`` of video ``video_idx``.

    ``start`` may be negative and the clip may run past the end; those frames are edge padding.
    ``foreground`` says the clip was drawn around an event (it then contains that event).
    """

    video_idx: int
    start: int
    foreground: bool = False


class ClipSampler:
    """Draw ``ClipRef``s of ``clip_len`` frames.

    * Uniform clip (probability ``1 - fg_upsample``): video ``i`` with probability
      ``num_frames[i] / sum(num_frames)``; start uniform in ``[-pad, num_frames - clip_len + pad]``
      (inclusive; just ``-pad`` when the video is shorter than ``clip_len``).
    * Foreground clip (probability ``fg_upsample``): a uniform event among all events of all videos,
      then a start uniform among those that keep the event inside the clip and the start in the
      padded range above (``max(-pad, e - clip_len + 1) .. min(num_frames - clip_len + pad, e)``;
      the lower end when that range is empty, which still contains the event).
    """

    def __init__(
        self,
        num_frames: Sequence[int],
        event_frames: Sequence[Sequence[int]],
        clip_len: int,
        *,
        fg_upsample: float = 0.0,
        pad: int = DEFAULT_PAD,
    ) -> None:
        if isinstance(clip_len, bool) or not isinstance(clip_len, (int, np.integer)) or clip_len < 1:
            raise ConfigError(f"clip sampler: clip_len {clip_len!r} must be a positive integer")
        if not 0.0 <= float(fg_upsample) <= 1.0:
            raise ConfigError(
                f"clip sampler: fg_upsample {fg_upsample!r} must be in [0, 1] "
                "(it is the probability of a foreground clip)"
            )
        if pad < 0:
            raise ConfigError(f"clip sampler: pad {pad!r} must be >= 0")
        if len(event_frames) != len(num_frames):
            raise ConfigError(
                f"clip sampler: {len(num_frames)} videos but {len(event_frames)} event lists; "
                "expected one per video"
            )
        self.num_frames = np.asarray(num_frames, dtype=np.int64)  # (V,)
        if self.num_frames.ndim != 1 or (self.num_frames < 0).any():
            raise ConfigError(
                f"clip sampler: num_frames must be non-negative integers, got {list(num_frames)}"
            )
        total = int(self.num_frames.sum())
        if total == 0:
            raise ConfigError(
                "clip sampler: no frames to sample from (no videos, or every video has 0 frames)"
            )
        self.clip_len = int(clip_len)
        self.fg_upsample = float(fg_upsample)
        self.pad = int(pad)
        self._cum_frames = np.cumsum(self.num_frames)  # (V,)
        # flattened event list: (video index, frame) of every event
        ev_video = [np.full(len(f), i, dtype=np.int64) for i, f in enumerate(event_frames)]
        ev_frame = [np.asarray(f, dtype=np.int64).reshape(-1) for f in event_frames]
        self._ev_video = np.concatenate(ev_video) if ev_video else np.zeros(0, np.int64)  # (E,)
        self._ev_frame = np.concatenate(ev_frame) if ev_frame else np.zeros(0, np.int64)  # (E,)
        if self.fg_upsample > 0 and len(self._ev_frame) == 0:
            raise ConfigError(
                f"clip sampler: fg_upsample {self.fg_upsample} > 0 but the labels have no events; "
                "set fg_upsample to 0"
            )
        bad = (self._ev_frame < 0) | (self._ev_frame >= self.num_frames[self._ev_video])
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ConfigError(
                f"clip sampler: video #{int(self._ev_video[k])}: event frame {int(self._ev_frame[k])} "
                "is outside "
                f"[0, {int(self.num_frames[self._ev_video[k]])}) (frames are 0-based)"
            )

    @classmethod
    def from_labels(
        cls, labels: LabelSet, clip_len: int, *, fg_upsample: float = 0.0, pad: int = DEFAULT_PAD
    ) -> ClipSampler:
        """Sampler over ``labels`` as they are (frames at the labels' own rate; num_frames must be known)."""
        unknown = [v.video for v in labels if v.num_frames is None]
        if unknown:
            raise ConfigError(
                f"clip sampler: num_frames unknown for {len(unknown)} videos (first: '{unknown[0]}'); "
                "read the labels with their videos or use ClipDataset, which asks the video readers"
            )
        return cls(
            [int(v.num_frames) for v in labels],  # type: ignore[arg-type]
            [[e.frame for e in v.events] for v in labels],
            clip_len,
            fg_upsample=fg_upsample,
            pad=pad,
        )

    @property
    def num_videos(self) -> int:
        return len(self.num_frames)

    @property
    def num_events(self) -> int:
        return len(self._ev_frame)

    def start_range(self, video_idx: int) -> tuple[int, int]:
        """Inclusive range of uniform clip starts for a video."""
        hi = int(self.num_frames[video_idx]) - self.clip_len + self.pad
        return -self.pad, max(-self.pad, hi)

    def sample(self, rng: np.random.Generator) -> ClipRef:
        """Draw one clip. Uses a fixed number of draws per branch, so streams stay reproducible."""
        if self.fg_upsample > 0 and rng.random() < self.fg_upsample:
            return self._sample_foreground(rng)
        return self._sample_uniform(rng)

    def sample_many(self, rng: np.random.Generator, n: int) -> list[ClipRef]:
        return [self.sample(rng) for _ in range(n)]

    def _sample_uniform(self, rng: np.random.Generator) -> ClipRef:
        # video with probability num_frames / total: global frame u lies in video searchsorted(cum, u, right)
        u = int(rng.integers(0, int(self._cum_frames[-1])))
        video_idx = int(np.searchsorted(self._cum_frames, u, side="right"))
        lo, hi = self.start_range(video_idx)
        start = int(rng.integers(lo, hi + 1))
        return ClipRef(video_idx, start, False)

    def _sample_foreground(self, rng: np.random.Generator) -> ClipRef:
        k = int(rng.integers(0, len(self._ev_frame)))
        video_idx, event = int(self._ev_video[k]), int(self._ev_frame[k])
        lo_range, hi_range = self.start_range(video_idx)
        lo = max(lo_range, event - self.clip_len + 1)
        hi = min(hi_range, event)
        start = int(rng.integers(lo, hi + 1)) if hi > lo else lo
        return ClipRef(video_idx, start, True)


@dataclass
class ClipTargets:
    """Per-frame targets of one clip (NumPy)."""

    labels: np.ndarray  # (T,) int64, 0 = background
    displacement: np.ndarray  # (T,) float32, frame - event frame; 0 on background
    valid: np.ndarray  # (T,) bool, False on edge padding (frames outside [0, num_frames))


def clip_targets(
    event_frames: Sequence[int] | np.ndarray,
    event_classes: Sequence[int] | np.ndarray,
    start: int,
    clip_len: int,
    num_frames: int,
    *,
    dilate_len: int = 0,
    displacement_radius: int = 0,
) -> ClipTargets:
    """Targets for frames ``start .. start + clip_len - 1`` of a video with these events.

    * ``labels``: an event of class ``c`` (1-based) at frame ``e`` labels frames ``e - dilate_len ..
      e + dilate_len`` with ``c``. Events are applied in frame order (stable for equal frames), so where
      dilated ranges overlap the **later event overwrites the earlier one**, as in E2E-Spot.
    * ``displacement`` (T-DEED): frames ``i`` within ``±displacement_radius`` of an event get ``i - e``
      (same overwrite order); every other frame 0. T-DEED labels the same frames with the class, i.e.
      use ``dilate_len == displacement_radius`` to reproduce it.
    * ``valid``: False for edge padding. Padding frames are black, so they keep label 0 and
      displacement 0 even when a dilated event near the edge would reach them.
    """
    if dilate_len < 0 or displacement_radius < 0:
        raise ConfigError(
            f"targets: dilate_len {dilate_len} and displacement_radius {displacement_radius} must be >= 0"
        )
    frames = np.asarray(event_frames, dtype=np.int64).reshape(-1)  # (E,)
    classes = np.asarray(event_classes, dtype=np.int64).reshape(-1)  # (E,)
    if len(frames) != len(classes):
        raise ConfigError(f"targets: {len(frames)} event frames but {len(classes)} event classes")
    labels = np.zeros(clip_len, dtype=np.int64)  # (T,)
    displacement = np.zeros(clip_len, dtype=np.float32)  # (T,)
    frame_idx = start + np.arange(clip_len)  # (T,) video frame of each clip position
    valid = (frame_idx >= 0) & (frame_idx < num_frames)  # (T,)
    reach = max(dilate_len, displacement_radius)
    order = np.argsort(frames, kind="stable")
    for k in order:  # events near the clip only; a handful per clip
        e = int(frames[k])
        if e + reach < start or e - reach >= start + clip_len:
            continue
        lo, hi = max(e - dilate_len - start, 0), min(e + dilate_len - start + 1, clip_len)
        if lo < hi:
            labels[lo:hi] = classes[k]
        lo, hi = max(e - displacement_radius - start, 0), min(e + displacement_radius - start + 1, clip_len)
        if displacement_radius > 0 and lo < hi:
            displacement[lo:hi] = frame_idx[lo:hi] - e
    labels[~valid] = 0
    displacement[~valid] = 0.0
    return ClipTargets(labels, displacement, valid)

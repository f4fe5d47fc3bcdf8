"""Sliding-window scoring: coverage, averaging, displacement decoding and streaming, on fakes."""

from __future__ import annotations

import weakref
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.errors import ConfigError, VideoError
from e2espot.infer.predict import decode_displacement, predict_scores, window_starts
from e2espot.infer.streaming import FrameRing

CLASSES = ("a", "b")


def make_cfg(clip_len: int, crop: int | None = None) -> RunConfig:
    return RunConfig(
        model=ModelConfig(num_classes=len(CLASSES), backbone="test_tiny", clip_len=clip_len),
        data=DataConfig(fps=None, height=16, clip_len=clip_len, crop=crop),
        classes=CLASSES,
    )


def encode_frames(start: int, num: int, size: int = 8) -> np.ndarray:
    """Frames whose top-left pixel stores the absolute frame index (R = idx // 256, G = idx % 256)."""
    frames = np.zeros((num, size, size, 3), dtype=np.uint8)  # (n, H, W, 3)
    idx = np.arange(start, start + num)
    frames[:, 0, 0, 0] = idx // 256
    frames[:, 0, 0, 1] = idx % 256
    return frames


class FakeReader:
    """In-memory reader that records how it is consumed and how many frames it has handed out alive."""

    def __init__(
        self, num_frames: int, *, known_length: bool = True, size: int = 8, fail_at: int | None = None
    ) -> None:
        self.total = num_frames
        self.num_frames = num_frames if known_length else None
        self.fps = 25.0
        self.path = "fake.mp4"
        self.size = size
        self.fail_at = fail_at
        self.chunk_calls: list[tuple[int, int, int | None]] = []
        self.live_frames = 0
        self.peak_live_frames = 0

    def _release(self, n: int) -> None:
        self.live_frames -= n

    def iter_chunks(self, chunk_len: int, start: int = 0, stop: int | None = None):
        self.chunk_calls.append((chunk_len, start, stop))
        for s in range(start, self.total if stop is None else stop, chunk_len):
            if self.fail_at is not None and s >= self.fail_at:
                raise VideoError(f"{self.path}: corrupt packet at frame {s}")
            n = min(chunk_len, self.total - s)
            frames = encode_frames(s, n, self.size)
            self.live_frames += n
            self.peak_live_frames = max(self.peak_live_frames, self.live_frames)
            weakref.finalize(frames, self._release, n)
            yield s, frames

    def read_clip(self, start: int, num: int) -> np.ndarray:  # pragma: no cover - must not be used
        raise AssertionError("predict_scores must stream, not read clips")


def frame_logits(frame_idx: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Logits that depend on the absolute frame index and on the position inside the window."""
    return torch.stack([torch.zeros_like(frame_idx), 0.01 * frame_idx, 0.1 * pos], dim=-1)


class IndexModel(nn.Module):
    """Decodes the frame index from the pixels and returns ``frame_logits`` (no displacement head)."""

    def __init__(self, displacement: torch.Tensor | None = None) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.displacement = displacement
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        self.calls.append(tuple(x.shape))
        batch, length = x.shape[:2]  # x: (B, T, 3, H, W) in [0, 1]
        px = torch.round(x[:, :, :2, 0, 0] * 255)  # (B, T, 2)
        frame_idx = (px[..., 0] * 256 + px[..., 1]).float()  # (B, T)
        pos = torch.arange(length, dtype=torch.float32).expand(batch, length)
        disp = None if self.displacement is None else self.displacement[:length].expand(batch, length)
        return SimpleNamespace(logits=frame_logits(frame_idx, pos) * self.scale, displacement=disp)


def expected_scores(num_frames: int, clip_len: int, starts: list[int]) -> np.ndarray:
    """Hand computation: average over the covering windows of softmax(frame_logits(idx, idx - start))."""
    total = np.zeros((num_frames, len(CLASSES) + 1))
    count = np.zeros(num_frames)
    for s in starts:
        for idx in range(s, min(s + clip_len, num_frames)):
            logits = frame_logits(torch.tensor(float(idx)), torch.tensor(float(idx - s))).double().numpy()
            p = np.exp(logits - logits.max())
            total[idx] += p / p.sum()
            count[idx] += 1
    assert count.min() > 0
    return total / count[:, None]


@pytest.mark.parametrize(
    ("num_frames", "clip_len", "overlap", "starts"),
    [
        (10, 4, 0, [0, 4, 6]),  # the last window is aligned to the end
        (10, 4, 2, [0, 2, 4, 6]),
        (11, 4, 2, [0, 2, 4, 6, 7]),
        (12, 4, 0, [0, 4, 8]),
        (4, 4, 2, [0]),
        (3, 4, 2, [0]),  # shorter than a clip: one padded window
        (9, 4, 3, [0, 1, 2, 3, 4, 5]),
    ],
)
def test_window_starts_hand_cases(num_frames, clip_len, overlap, starts):
    assert window_starts(num_frames, clip_len, overlap) == starts


@pytest.mark.parametrize("num_frames", [1, 7, 100, 101, 333])
@pytest.mark.parametrize("overlap_frac", [0.0, 0.5, 0.75])
def test_every_frame_covered(num_frames, overlap_frac):
    clip_len = 16
    overlap = int(clip_len * overlap_frac)
    covered = np.zeros(num_frames, dtype=int)
    for s in window_starts(num_frames, clip_len, overlap):
        assert 0 <= s and (s + clip_len <= num_frames or s == 0)
        covered[s : s + clip_len] += 1
    assert covered.min() >= 1


@pytest.mark.parametrize(
    ("num_frames", "overlap", "batch_size"),
    [(50, 0, 1), (50, 4, 3), (53, 4, 4), (53, 6, 2), (5, 4, 4), (8, 0, 2)],
)
def test_scores_equal_hand_average(num_frames, overlap, batch_size):
    clip_len = 8
    model = IndexModel()
    cfg = make_cfg(clip_len)
    stats: dict[str, int] = {}
    scores = predict_scores(
        model, FakeReader(num_frames), cfg, overlap=overlap, batch_size=batch_size, precision="fp32",
        chunk_len=5, stats=stats,
    )
    starts = window_starts(num_frames, clip_len, overlap)
    assert scores.dtype == np.float32 and scores.shape == (num_frames, 3)
    np.testing.assert_allclose(scores, expected_scores(num_frames, clip_len, starts), atol=1e-5)
    assert stats["num_windows"] == len(starts)
    assert all(shape[1:3] == (clip_len, 3) and shape[0] <= batch_size for shape in model.calls)


def test_overlap_changes_the_average():
    cfg = make_cfg(8)
    no_overlap = predict_scores(IndexModel(), FakeReader(40), cfg, overlap=0, precision="fp32")
    half = predict_scores(IndexModel(), FakeReader(40), cfg, precision="fp32")  # default clip_len // 2
    np.testing.assert_allclose(no_overlap, expected_scores(40, 8, [0, 8, 16, 24, 32]), atol=1e-5)
    np.testing.assert_allclose(half, expected_scores(40, 8, list(range(0, 33, 4))), atol=1e-5)
    assert np.abs(no_overlap - half).max() > 1e-3


def test_bad_overlap_and_batch_size():
    cfg = make_cfg(8)
    with pytest.raises(ConfigError, match="overlap"):
        predict_scores(IndexModel(), FakeReader(20), cfg, overlap=8)
    with pytest.raises(ConfigError, match="batch_size"):
        predict_scores(IndexModel(), FakeReader(20), cfg, batch_size=0)


def test_output_class_mismatch_is_config_error():
    cfg = RunConfig(
        model=ModelConfig(num_classes=3, backbone="test_tiny", clip_len=8),
        data=DataConfig(clip_len=8), classes=("a", "b", "c"),
    )
    with pytest.raises(ConfigError, match="4 classes"):
        predict_scores(IndexModel(), FakeReader(20), cfg, precision="fp32")


def test_decode_displacement_hand_case():
    probs = torch.tensor([[[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.7, 0.3], [0.6, 0.4]]])  # (1, 5, 2)
    disp = torch.tensor([[0.0, 1.0, -1.0, 0.2, 2.4]])  # dst = [0, 0, 3, 3, 2]
    out = decode_displacement(probs, disp)
    expected = torch.tensor([[[0.9, 0.2], [0.0, 0.0], [0.6, 0.4], [0.7, 0.9], [0.0, 0.0]]])
    torch.testing.assert_close(out, expected)


def test_decode_displacement_clamps_and_masks_padding():
    probs = torch.tensor([[[0.5, 0.5], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1]]])  # (1, 4, 2)
    disp = torch.tensor([[-9.0, 3.0, -5.0, 0.0]])  # dst = [3, -2 -> 0, 7 -> 3, 3]
    out = decode_displacement(probs, disp)
    torch.testing.assert_close(out[0, 0], torch.tensor([0.2, 0.8]))
    torch.testing.assert_close(out[0, 3], torch.tensor([0.9, 0.7]))
    # 3 real frames: frame 3 is padding, votes clamp to frame 2 and frame 3 votes for nobody
    out = decode_displacement(probs, disp, valid=torch.tensor([3]))
    torch.testing.assert_close(out[0, 2], torch.tensor([0.5, 0.7]))
    torch.testing.assert_close(out[0, 3], torch.tensor([0.0, 0.0]))


def test_displacement_head_is_decoded_in_predict_scores():
    clip_len, num_frames = 4, 8
    # within each window: positions 0, 1 → 0; 2 → 2; 3 → 3 + 1, clamped to 3
    disp = torch.tensor([0.0, 1.0, 0.0, -1.0])
    scores = predict_scores(
        IndexModel(displacement=disp), FakeReader(num_frames), make_cfg(clip_len), overlap=0, precision="fp32"
    )
    # windows [0, 4) and [4, 8): within each, position 1 gets no vote, position 0 = max(p0, p1)
    raw = expected_scores(num_frames, clip_len, [0, 4])
    for s in (0, 4):
        np.testing.assert_allclose(scores[s], np.maximum(raw[s], raw[s + 1]), atol=1e-6)
        np.testing.assert_allclose(scores[s + 1], 0.0, atol=1e-7)
        np.testing.assert_allclose(scores[s + 2], raw[s + 2], atol=1e-6)
        np.testing.assert_allclose(scores[s + 3], raw[s + 3], atol=1e-6)


def test_streaming_memory_is_bounded():
    clip_len, overlap, batch_size, chunk_len = 16, 8, 4, 32
    reader = FakeReader(3000)
    stats: dict[str, int] = {}
    scores = predict_scores(
        IndexModel(), reader, make_cfg(clip_len), overlap=overlap, batch_size=batch_size, precision="fp32",
        chunk_len=chunk_len, prefetch_chunks=2, stats=stats,
    )
    assert scores.shape == (3000, 3) and stats["num_frames"] == 3000
    assert reader.chunk_calls == [(chunk_len, 0, None)]  # one streaming pass, no random reads
    ring_bound = clip_len + batch_size * (clip_len - overlap) + chunk_len
    assert stats["peak_frames"] <= ring_bound
    # chunks alive at once: the queue (2), one being put, one being consumed, one being made
    assert reader.peak_live_frames <= 5 * chunk_len
    np.testing.assert_allclose(
        scores[-40:], expected_scores(3000, clip_len, window_starts(3000, clip_len, overlap))[-40:], atol=1e-5
    )


def test_unknown_length_and_crop():
    reader = FakeReader(70, known_length=False, size=12)
    cfg = make_cfg(8, crop=12)  # full-size crop keeps the index pixel at (0, 0)
    scores = predict_scores(IndexModel(), reader, cfg, overlap=2, precision="fp32", chunk_len=7)
    np.testing.assert_allclose(scores, expected_scores(70, 8, window_starts(70, 8, 2)), atol=1e-5)


def test_crop_is_centred_and_checked():
    seen = []

    class ShapeModel(IndexModel):
        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return super().forward(x)

    predict_scores(ShapeModel(), FakeReader(10, size=12), make_cfg(4, crop=6), precision="fp32")
    assert set(seen) == {(6, 6)}
    with pytest.raises(ConfigError, match="crop 20"):
        predict_scores(IndexModel(), FakeReader(10, size=12), make_cfg(4, crop=20), precision="fp32")


def test_reader_errors_propagate_from_the_decode_thread():
    with pytest.raises(VideoError, match="corrupt packet"):
        predict_scores(IndexModel(), FakeReader(200, fail_at=64), make_cfg(8), chunk_len=16, precision="fp32")


def test_empty_video_is_an_error():
    with pytest.raises(VideoError, match="no frames"):
        predict_scores(IndexModel(), FakeReader(0), make_cfg(8), precision="fp32")


def test_bf16_precision_runs_and_stays_close():
    cfg = make_cfg(8)
    fp32 = predict_scores(IndexModel(), FakeReader(30), cfg, precision="fp32")
    bf16 = predict_scores(IndexModel(), FakeReader(30), cfg, precision="bf16")
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16, fp32, atol=2e-2)


def test_frame_ring_wraps_and_grows():
    ring = FrameRing(5)
    ring.append(0, encode_frames(0, 4))
    ring.discard_before(2)
    ring.append(4, encode_frames(4, 3))  # wraps around the 5 slots
    got = ring.gather(np.arange(2, 7))
    assert list(got[:, 0, 0, 1]) == [2, 3, 4, 5, 6]
    ring.append(7, encode_frames(7, 4))  # 9 frames held: grows
    assert ring.capacity >= 9 and list(ring.gather(np.arange(2, 11))[:, 0, 0, 1]) == list(range(2, 11))
    with pytest.raises(IndexError):
        ring.gather(np.array([1]))
    with pytest.raises(VideoError, match="skipped"):
        ring.append(20, encode_frames(20, 1))

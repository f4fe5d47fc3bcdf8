import numpy as np
import pytest
import torch

from e2espot.config import DataConfig
from e2espot.data.datasets import (
    ClipDataset,
    EpochSampler,
    FixedSampler,
    ValidationClips,
    collate_clips,
    make_loader,
)
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.data.sampling import ClipRef
from e2espot.errors import ConfigError, VideoError

H, W = 6, 8


class ArrayReader:
    """In-memory VideoReader: frame i of video v has pixels (i % 256, v, i // 256)."""

    def __init__(self, video_idx: int, num_frames: int, fps: float = 25.0, fail: bool = False) -> None:
        self.num_frames, self.fps, self.height, self.width = num_frames, fps, H, W
        self.fail = fail
        frame_idx = np.arange(num_frames)
        self.frames = np.zeros((num_frames, H, W, 3), dtype=np.uint8)  # (N, H, W, 3)
        self.frames[..., 0] = (frame_idx % 256)[:, None, None]
        self.frames[..., 1] = video_idx
        self.frames[..., 2] = (frame_idx // 256)[:, None, None]
        self.closed = False

    def read_clip(self, start: int, num: int) -> np.ndarray:
        if self.fail or start < 0 or num < 0 or start + num > self.num_frames:
            raise VideoError(
                f"cannot read frames {start}..{start + num - 1} of a {self.num_frames}-frame video"
            )
        return self.frames[start : start + num].copy()

    def close(self) -> None:
        self.closed = True


class ArrayFactory:
    """Reader factory; picklable; counts opens. ``num_frames`` overrides the label counts."""

    def __init__(self, labels: LabelSet, num_frames: dict[str, int] | None = None, fail: str | None = None):
        self.ids = [v.video for v in labels]
        self.num_frames = num_frames or {v.video: v.num_frames for v in labels}
        self.fail = fail
        self.opened: list[ArrayReader] = []

    def __call__(self, video: VideoLabels) -> ArrayReader:
        reader = ArrayReader(
            self.ids.index(video.video), self.num_frames[video.video], fail=video.video == self.fail
        )
        self.opened.append(reader)
        return reader


def make_labels() -> LabelSet:
    return LabelSet(
        ["pass", "shot"],
        [
            VideoLabels("v0", 25.0, 300, [Event(10, "pass"), Event(200, "shot")]),
            VideoLabels("v1", 25.0, 500, [Event(0, "shot"), Event(499, "pass")]),
            VideoLabels("v2", 25.0, 40, []),
        ],
    )


CFG = DataConfig(height=H, clip_len=16)


def make_dataset(**kwargs) -> ClipDataset:
    labels = kwargs.pop("labels", None) or make_labels()
    kwargs.setdefault("reader_factory", ArrayFactory(labels))
    kwargs.setdefault("epoch_clips", 64)
    return ClipDataset(labels, kwargs.pop("data_cfg", CFG), **kwargs)


def expected_frame(video_idx: int, frame_idx: int) -> np.ndarray:
    return np.array([frame_idx % 256, video_idx, frame_idx // 256], dtype=np.uint8)


def test_item_frames_and_targets_match_the_clip():
    ds = make_dataset(dilate_len=1, displacement_radius=1, fg_upsample=0.5)
    assert len(ds) == 64
    seen_fg = 0
    for index in range(40):
        item = ds[index]
        (clip,) = ds.clips_at(index)
        assert item["frames"].dtype == torch.uint8 and item["frames"].shape == (16, H, W, 3)
        assert item["labels"].dtype == torch.int64 and item["labels"].shape == (16,)
        assert item["displacement"].dtype == torch.float32 and item["valid"].dtype == torch.bool
        assert int(item["video_idx"]) == clip.video_idx and int(item["start"]) == clip.start
        n = ds.labels.videos[clip.video_idx].num_frames
        for pos in range(16):
            frame_idx = clip.start + pos
            pixel = item["frames"][pos, 2, 3].numpy()
            if 0 <= frame_idx < n:
                assert item["valid"][pos]
                np.testing.assert_array_equal(pixel, expected_frame(clip.video_idx, frame_idx))
            else:  # explicit zero padding
                assert not item["valid"][pos]
                assert int(item["frames"][pos].abs().sum()) == 0
        # labels: each event labels frames e-1..e+1 inside the video
        events = {e.frame: ds.labels.class_id(e.label) for e in ds.labels.videos[clip.video_idx].events}
        for pos in range(16):
            frame_idx = clip.start + pos
            hits = [c for e, c in events.items() if abs(frame_idx - e) <= 1 and 0 <= frame_idx < n]
            assert int(item["labels"][pos]) == (hits[-1] if hits else 0)
        seen_fg += clip.foreground
    assert 0 < seen_fg < 40


def test_edge_padding_at_start_and_end():
    ds = make_dataset()
    item = ds.read(ClipRef(1, -5))
    assert item["valid"].tolist() == [False] * 5 + [True] * 11
    assert int(item["frames"][:5].sum()) == 0
    np.testing.assert_array_equal(item["frames"][5, 0, 0].numpy(), expected_frame(1, 0))
    assert int(item["labels"][5]) == 2  # 'shot' at frame 0
    item = ds.read(ClipRef(1, 490))
    assert item["valid"].tolist() == [True] * 10 + [False] * 6
    assert int(item["labels"][9]) == 1  # 'pass' at frame 499
    assert int(item["frames"][10:].sum()) == 0


def test_deterministic_per_index_and_seed():
    a, b = make_dataset(seed=3, mixup=True), make_dataset(seed=3, mixup=True)
    c = make_dataset(seed=4, mixup=True)
    assert [a.clips_at(i) for i in range(30)] == [b.clips_at(i) for i in range(30)]
    assert [a.clips_at(i) for i in range(30)] != [c.clips_at(i) for i in range(30)]
    # reading order does not matter
    x = a[7]
    a[3], a[11]
    y = a[7]
    for key in x:
        assert torch.equal(x[key], y[key])


def test_mixup_item_carries_a_second_clip():
    ds = make_dataset(mixup=True, seed=1)
    item = ds[0]
    _, second = ds.clips_at(0)
    for key in ("frames", "labels", "displacement", "valid", "video_idx", "start"):
        assert key in item and f"{key}2" in item
    assert int(item["start2"]) == second.start and int(item["video_idx2"]) == second.video_idx
    assert item["frames2"].shape == item["frames"].shape
    assert any(ds.clips_at(i)[0] != ds.clips_at(i)[1] for i in range(10))
    with pytest.raises(ConfigError, match="training only"):
        make_dataset(mixup=True, train=False)


def test_video_error_propagates():
    labels = make_labels()
    ds = make_dataset(labels=labels, reader_factory=ArrayFactory(labels, fail="v1"))
    with pytest.raises(VideoError):
        ds.read(ClipRef(1, 10))
    assert ds.read(ClipRef(0, 10))["valid"].all()


def test_short_reader_is_a_video_error_not_padding():
    labels = make_labels()
    short = {"v0": 300, "v1": 450, "v2": 40}  # the labels say v1 has 500 frames
    ds = make_dataset(labels=labels, reader_factory=ArrayFactory(labels, num_frames=short))
    with pytest.raises(VideoError, match="'v1'.*reader has 450"):
        ds.read(ClipRef(1, 480))


def test_reader_lru_cache_closes_old_readers():
    labels = make_labels()
    factory = ArrayFactory(labels)
    ds = make_dataset(labels=labels, reader_factory=factory, max_open_readers=2)
    for video_idx in (0, 1, 0, 2, 1):
        ds.read(ClipRef(video_idx, 0))
    # opens: v0, v1, (v0 hit), v2 (evicts v1), v1 (evicts v0)
    assert [r.frames[0, 0, 0, 1] for r in factory.opened] == [0, 1, 2, 1]
    assert [r.closed for r in factory.opened] == [True, True, False, False]
    ds.close()
    assert all(r.closed for r in factory.opened)


def test_labels_at_another_fps_are_resampled():
    labels = LabelSet(["a"], [VideoLabels("v0", 50.0, 200, [Event(101, "a")])])
    factory = ArrayFactory(labels, num_frames={"v0": 100})
    ds = make_dataset(
        labels=labels, reader_factory=factory, data_cfg=DataConfig(fps=25.0, height=H, clip_len=16)
    )
    assert ds.sampler.num_frames.tolist() == [100]
    item = ds.read(ClipRef(0, 40))
    assert torch.nonzero(item["labels"]).flatten().tolist() == [10]  # frame 50 = 101 // 2


def test_unknown_num_frames_asks_the_reader():
    labels = LabelSet(["a"], [VideoLabels("v0", None, None, [Event(5, "a")])])
    factory = ArrayFactory(labels, num_frames={"v0": 77})
    ds = make_dataset(labels=labels, reader_factory=factory)
    assert ds.sampler.num_frames.tolist() == [77]
    assert factory.opened[0].closed


def test_needs_a_video_source():
    with pytest.raises(ConfigError, match="video_root"):
        ClipDataset(make_labels(), CFG, reader_factory=None)


def test_validation_clips_are_fixed():
    labels = make_labels()
    val = ValidationClips(labels, CFG, num_clips=10, seed=5, reader_factory=ArrayFactory(labels))
    assert len(val) == 10 and not val.train
    assert [val.clips_at(i) for i in range(10)] == [val.clips_at(i) for i in range(10)]
    assert "frames2" not in val[0]
    with pytest.raises(IndexError):
        val.clips_at(10)
    loader = make_loader(val, batch_size=4)
    assert isinstance(loader.sampler, FixedSampler) and not loader.drop_last
    first = torch.cat([b["start"] for b in loader])
    second = torch.cat([b["start"] for b in loader])
    assert len(first) == 10 and torch.equal(first, second)
    assert first.tolist() == [c.start for c in val.clips]


def test_epoch_sampler_indices():
    s = EpochSampler(6)
    assert list(s) == [0, 1, 2, 3, 4, 5]
    assert list(s) == [6, 7, 8, 9, 10, 11]  # advances by itself
    s.set_epoch(0)
    assert list(s) == [0, 1, 2, 3, 4, 5]
    r0, r1 = EpochSampler(6, rank=0, world_size=2, epoch=2), EpochSampler(6, rank=1, world_size=2, epoch=2)
    assert list(r0) == [12, 14, 16] and list(r1) == [13, 15, 17] and len(r0) == 3
    with pytest.raises(ConfigError):
        EpochSampler(6, rank=2, world_size=2)


def test_collate_rejects_mixed_frame_sizes():
    a = {"frames": torch.zeros(4, 6, 8, 3, dtype=torch.uint8), "labels": torch.zeros(4, dtype=torch.int64)}
    b = {"frames": torch.zeros(4, 6, 10, 3, dtype=torch.uint8), "labels": torch.zeros(4, dtype=torch.int64)}
    assert collate_clips([a, a])["frames"].shape == (2, 4, 6, 8, 3)
    with pytest.raises(ConfigError, match="DataConfig.width"):
        collate_clips([a, b])


class WorkerTaggedDataset(ClipDataset):
    def __getitem__(self, index):
        item = super().__getitem__(index)
        info = torch.utils.data.get_worker_info()
        item["worker"] = torch.tensor(-1 if info is None else info.id)
        return item


def test_loader_workers_draw_different_clips_and_match_single_process():
    labels = make_labels()
    ds = WorkerTaggedDataset(labels, CFG, epoch_clips=32, reader_factory=ArrayFactory(labels), seed=11)
    loader = make_loader(ds, batch_size=4, num_workers=2)
    assert loader.pin_memory == torch.cuda.is_available()
    assert loader.persistent_workers and loader.drop_last

    def epoch_clips(loader, epoch):
        loader.sampler.set_epoch(epoch)
        batches = list(loader)
        keys = [(int(v), int(s)) for b in batches for v, s in zip(b["video_idx"], b["start"])]
        workers = [int(w) for b in batches for w in b["worker"]]
        return keys, workers, batches

    keys0, workers0, batches = epoch_clips(loader, 0)
    assert set(workers0) == {0, 1}
    per_worker = {w: [k for k, ww in zip(keys0, workers0) if ww == w] for w in (0, 1)}
    assert len(per_worker[0]) == len(per_worker[1]) == 16
    assert per_worker[0] != per_worker[1]  # no duplicated RNG stream
    assert len(set(per_worker[0]) & set(per_worker[1])) <= 3  # only chance collisions
    # the clips do not depend on the number of workers
    single = make_loader(ds, batch_size=4, num_workers=0)
    keys_single, _, _ = epoch_clips(single, 0)
    assert keys_single == keys0
    # next epoch: fresh clips, even with persistent workers
    keys1, _, _ = epoch_clips(loader, 1)
    assert keys1 != keys0
    assert epoch_clips(loader, 0)[0] == keys0  # set_epoch pins an epoch: exact resume
    # frames came through the workers intact
    b = batches[0]
    assert b["frames"].shape == (4, 16, H, W, 3) and b["frames"].dtype == torch.uint8
    for v, s, frames, valid in zip(b["video_idx"], b["start"], b["frames"], b["valid"]):
        pos = int(valid.nonzero()[0])
        np.testing.assert_array_equal(frames[pos, 0, 0].numpy(), expected_frame(int(v), int(s) + pos))


def test_event_past_the_end_after_resampling_is_an_error():
    """Re-timing goes through align_labels: an event beyond the video is reported, never clamped."""
    from e2espot.errors import LabelFormatError

    labels = LabelSet(["a"], [VideoLabels("v0", 50.0, None, [Event(199, "a")])])
    factory = ArrayFactory(labels, num_frames={"v0": 60})  # the reader at 25 fps has 60 frames
    with pytest.raises(LabelFormatError, match="event #0 \\(a\\): frame 99 is past the end"):
        make_dataset(labels=labels, reader_factory=factory, data_cfg=DataConfig(fps=25.0, height=H, clip_len=16))

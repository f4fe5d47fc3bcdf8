import numpy as np
import pytest

from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.data.sampling import ClipSampler, clip_targets
from e2espot.errors import ConfigError


def test_video_choice_is_proportional_to_length():
    sampler = ClipSampler([1000, 3000, 6000], [[], [], []], clip_len=20)
    rng = np.random.default_rng(0)
    counts = np.bincount([sampler.sample(rng).video_idx for _ in range(20000)], minlength=3)
    np.testing.assert_allclose(counts / counts.sum(), [0.1, 0.3, 0.6], atol=0.015)


def test_uniform_start_covers_padded_range_uniformly():
    sampler = ClipSampler([30], [[]], clip_len=20, pad=5)
    assert sampler.start_range(0) == (-5, 15)
    rng = np.random.default_rng(1)
    starts = np.array([sampler.sample(rng).start for _ in range(21000)])
    assert starts.min() == -5 and starts.max() == 15
    counts = np.bincount(starts + 5, minlength=21)
    assert len(counts) == 21
    np.testing.assert_allclose(counts / 1000, np.ones(21), atol=0.15)  # 1000 expected per start


def test_short_video_starts_at_minus_pad():
    sampler = ClipSampler([8], [[3]], clip_len=20, pad=5, fg_upsample=0.5)
    rng = np.random.default_rng(2)
    clips = sampler.sample_many(rng, 200)
    assert {c.start for c in clips} == {-5}


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_fg_upsample_is_the_foreground_probability(p):
    # video 0 is long and has one event; foreground clips must contain an event
    events = [[500], [3, 40, 41]]
    num_frames = [10000, 50]
    sampler = ClipSampler(num_frames, events, clip_len=16, fg_upsample=p)
    rng = np.random.default_rng(3)
    clips = sampler.sample_many(rng, 8000)
    fg = np.array([c.foreground for c in clips])
    assert abs(fg.mean() - p) < 0.02  # the right sign: p, not 1 - p
    for c in clips:
        if c.foreground:
            assert any(c.start <= e < c.start + 16 for e in events[c.video_idx])
            lo, hi = sampler.start_range(c.video_idx)
            assert lo <= c.start <= hi
    # a uniform event among all 4 events: video 1 holds 3 of them
    fg_videos = np.array([c.video_idx for c in clips if c.foreground])
    assert abs((fg_videos == 1).mean() - 0.75) < 0.03


def test_fg_start_is_uniform_over_positions_that_contain_the_event():
    sampler = ClipSampler([1000], [[500]], clip_len=10, fg_upsample=1.0)
    rng = np.random.default_rng(4)
    starts = np.array([sampler.sample(rng).start for _ in range(10000)])
    assert starts.min() == 491 and starts.max() == 500
    np.testing.assert_allclose(np.bincount(starts - 491) / 1000, np.ones(10), atol=0.15)


def test_fg_event_near_the_edge_respects_padding():
    sampler = ClipSampler([100], [[0, 99]], clip_len=10, pad=5, fg_upsample=1.0)
    rng = np.random.default_rng(5)
    for c in sampler.sample_many(rng, 500):
        assert -5 <= c.start <= 95
        assert (c.start <= 0 < c.start + 10) or (c.start <= 99 < c.start + 10)


def test_deterministic_given_generator():
    sampler = ClipSampler([100, 200], [[10], [50, 150]], clip_len=10, fg_upsample=0.5)
    a = sampler.sample_many(np.random.default_rng(7), 50)
    b = sampler.sample_many(np.random.default_rng(7), 50)
    c = sampler.sample_many(np.random.default_rng(8), 50)
    assert a == b
    assert a != c


def test_sampler_errors():
    with pytest.raises(ConfigError, match="no events"):
        ClipSampler([100], [[]], clip_len=10, fg_upsample=0.5)
    with pytest.raises(ConfigError, match="probability"):
        ClipSampler([100], [[1]], clip_len=10, fg_upsample=1.5)
    with pytest.raises(ConfigError, match="outside"):
        ClipSampler([100], [[100]], clip_len=10)
    with pytest.raises(ConfigError, match="no frames"):
        ClipSampler([0], [[]], clip_len=10)


def test_from_labels():
    labels = LabelSet(["a"], [VideoLabels("v0", 25.0, 50, [Event(7, "a")]), VideoLabels("v1", 25.0, 150)])
    sampler = ClipSampler.from_labels(labels, 10, fg_upsample=1.0)
    assert sampler.num_videos == 2 and sampler.num_events == 1
    assert sampler.sample(np.random.default_rng(0)).video_idx == 0
    labels.videos[1].num_frames = None
    with pytest.raises(ConfigError, match="num_frames unknown"):
        ClipSampler.from_labels(labels, 10)


# --- targets --------------------------------------------------------------------------------------------


def test_dilation_hand_case():
    t = clip_targets([10], [2], start=0, clip_len=20, num_frames=100, dilate_len=1)
    assert np.flatnonzero(t.labels).tolist() == [9, 10, 11]
    assert (t.labels[[9, 10, 11]] == 2).all()
    assert t.labels.dtype == np.int64 and t.valid.all()
    assert (t.displacement == 0).all()
    t0 = clip_targets([10], [2], start=0, clip_len=20, num_frames=100)
    assert np.flatnonzero(t0.labels).tolist() == [10]


def test_dilation_with_clip_offset():
    t = clip_targets([10, 30], [1, 3], start=8, clip_len=10, num_frames=100, dilate_len=2)
    # frames 8..17 → event 10 covers frames 8..12 = positions 0..4; event 30 is out of the clip
    assert t.labels.tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]


def test_later_events_overwrite_earlier_ones():
    expected = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 0]
    t = clip_targets([10, 12], [1, 2], start=0, clip_len=15, num_frames=100, dilate_len=1)
    assert t.labels.tolist() == expected
    # "later" is in time, not in list order
    t = clip_targets([12, 10], [2, 1], start=0, clip_len=15, num_frames=100, dilate_len=1)
    assert t.labels.tolist() == expected


def test_displacement_targets_tdeed():
    t = clip_targets([10], [4], start=5, clip_len=12, num_frames=100, dilate_len=2, displacement_radius=2)
    # frames 5..16; event 10 at position 5
    assert t.labels.tolist() == [0, 0, 0, 4, 4, 4, 4, 4, 0, 0, 0, 0]
    assert t.displacement.tolist() == [0, 0, 0, -2, -1, 0, 1, 2, 0, 0, 0, 0]
    assert t.displacement.dtype == np.float32
    # two events: the later one wins on the shared frames 11, 12
    t = clip_targets(
        [10, 13], [1, 2], start=8, clip_len=8, num_frames=100, dilate_len=2, displacement_radius=2
    )
    assert t.labels.tolist() == [1, 1, 1, 2, 2, 2, 2, 2]  # frames 8..15
    assert t.displacement.tolist() == [-2, -1, 0, -2, -1, 0, 1, 2]


def test_edge_padding_valid_mask_and_background():
    t = clip_targets(
        [0, 9], [1, 2], start=-3, clip_len=16, num_frames=10, dilate_len=2, displacement_radius=2
    )
    assert t.valid.tolist() == [False] * 3 + [True] * 10 + [False] * 3
    # event at frame 0 dilates onto frames -2, -1 — padding stays background with displacement 0
    assert t.labels.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 2, 2, 2, 0, 0, 0]
    assert t.displacement.tolist() == [0, 0, 0, 0, 1, 2, 0, 0, 0, 0, -2, -1, 0, 0, 0, 0]


def test_targets_errors():
    with pytest.raises(ConfigError):
        clip_targets([1], [1], 0, 5, 10, dilate_len=-1)
    with pytest.raises(ConfigError):
        clip_targets([1, 2], [1], 0, 5, 10)

"""Exact random access over containers x codecs x B-frames x open/closed GOP x GOP length.

``read_clip(k, n)`` must equal frames k..k+n-1 of an independent full PyAV decode, for random k
visited forwards and backwards. The default run takes a representative subset (every container,
every codec, B-frames, open GOPs, a long GOP, the AVI + MPEG-4 Part 2 case that used to fail);
``-m slow`` runs all of ``video_matrix.all_cases()``.
"""

import av
import numpy as np
import pytest
from video_matrix import Case, all_cases, encode_case, full_decode

from e2espot.data.video import open_video
from e2espot.data.video.patterns import decode_index_pattern
from e2espot.errors import VideoError

CLIP = 3

DEFAULT = [
    Case("avi", "mpeg4", 2, True, 12),  # DivX/Xvid style: the known failure
    Case("avi", "mpeg4", 2, False, 12),
    Case("avi", "h264", 2, False, 12),  # no presentation times in the file at all
    Case("mp4", "h264", 2, False, 250),  # long GOP
    Case("mkv", "hevc", 2, True, 12),  # open GOP: leading B-frames after each keyframe
    Case("mov", "hevc", 2, True, 12),
    Case("mp4", "mpeg4", 2, True, 12),
    Case("webm", "vp9", 0, False, 12),
    Case("mkv", "vp9", 0, False, 12),
]
_SLOW = [c for c in all_cases() if c not in DEFAULT]


@pytest.fixture(scope="session")
def matrix_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("matrix")


_cache: dict = {}


def _video(case: Case, root) -> tuple:
    if case not in _cache:
        path = encode_case(case, root / f"{case.name}.{case.container}")
        _cache[case] = (path, full_decode(path))
    return _cache[case]


def _check_case(case: Case, root) -> None:
    path, ref = _video(case, root)
    num = len(ref)
    assert [decode_index_pattern(f) for f in ref] == list(range(num)), "reference decode is not in order"
    rng = np.random.default_rng(abs(hash(case.name)) % 2**32)
    starts = sorted({int(k) for k in rng.integers(0, num - CLIP + 1, 6)} | {0, num - CLIP, 10, num // 2})
    with open_video(path) as reader:
        assert reader.num_frames == num
        assert np.array_equal(reader.read_clip(0, num), ref)  # one long clip across every GOP
        for order in (starts, starts[::-1]):  # forwards, then backwards
            for k in order:
                clip = reader.read_clip(k, CLIP)
                got = [decode_index_pattern(f) for f in clip]
                assert np.array_equal(clip, ref[k:k + CLIP]), \
                    f"{case.name}: read_clip({k}, {CLIP}) gave {got}"


@pytest.mark.parametrize("case", DEFAULT, ids=lambda c: c.name)
def test_random_access_matches_full_decode(case, matrix_dir):
    _check_case(case, matrix_dir)


@pytest.mark.slow
@pytest.mark.parametrize("case", _SLOW, ids=lambda c: c.name)
def test_random_access_matches_full_decode_full_matrix(case, matrix_dir):
    _check_case(case, matrix_dir)


def test_known_avi_mpeg4_bframes_failure(matrix_dir):
    path, ref = _video(Case("avi", "mpeg4", 2, True, 12), matrix_dir)
    with av.open(str(path)) as container:  # the packets really are out of presentation order
        pts = [p.pts for p in container.demux(video=0) if p.size]
    assert pts != sorted(pts)
    with open_video(path) as reader:
        assert reader.exact_index == "decoded"
        assert [decode_index_pattern(f) for f in reader.read_clip(10, 3)] == [10, 11, 12]
        assert [decode_index_pattern(f) for f in reader.read_clip(55, 5)] == [55, 56, 57, 58, 59]
        assert reader.keyframe_idx.tolist()[:3] == [0, 12, 24]  # presentation order, not packet order


def test_avi_resampled_by_time(matrix_dir):
    path, ref = _video(Case("avi", "mpeg4", 2, True, 12), matrix_dir)
    with open_video(path, fps=12.5) as reader:  # every second frame of the 25 fps source
        assert reader.num_frames == 30
        assert np.array_equal(reader.read_clip(20, 5), ref[40:50:2])
        assert np.array_equal(reader.read_clip(3, 4), ref[6:14:2])


def test_open_gop_fixture_really_has_leading_frames(matrix_dir):
    path, _ = _video(Case("mkv", "hevc", 2, True, 12), matrix_dir)
    with av.open(str(path)) as container:
        packets = [(p.pts, p.is_keyframe) for p in container.demux(video=0) if p.size]
    later_keys = [i for i, (_, key) in enumerate(packets) if key and i > 0]
    assert later_keys
    i = later_keys[0]
    assert packets[i + 1][0] < packets[i][0], "no B-frame shown before a keyframe it follows"


def test_sequential_fallback_is_exact(matrix_dir, monkeypatch):
    """Files whose frames cannot be told apart after a seek are decoded from the start: slow, exact."""
    path, ref = _video(Case("avi", "h264", 2, False, 12), matrix_dir)
    with open_video(path) as reader:
        reader.exact_index, reader._id_pts, reader._id_pos = "sequential", None, None
        for k in (40, 5, 57, 0, 23):
            assert np.array_equal(reader.read_clip(k, CLIP), ref[k:k + CLIP])


def test_seek_landing_after_the_target_goes_one_keyframe_back(matrix_dir):
    """A keyframe index entry that lies (the seek lands after the frame asked for) is stepped over."""
    path, ref = _video(Case("mp4", "h264", 2, False, 250), matrix_dir)
    with open_video(path) as reader:
        real = reader._key_seek_ts.copy()
        # claim a keyframe at frame 100 whose seek timestamp is frame 250's: seeking there lands at 250
        reader._key_pos = np.array([0, 100], dtype=np.int64)
        reader._key_seek_ts = np.array([real[0], real[1]], dtype=np.int64)
        reader.__dict__.pop("_key_set_cache", None)
        assert np.array_equal(reader.read_clip(120, CLIP), ref[120:120 + CLIP])


@pytest.mark.parametrize("drops", [1, 2])
def test_frame_missing_after_seek_is_looked_for_again(matrix_dir, drops):
    """A decoder that skips a frame: retried from an earlier keyframe, then from the start."""
    path, ref = _video(Case("mkv", "hevc", 2, True, 12), matrix_dir)
    with open_video(path) as reader:
        real_pull, left = reader._pull, [drops]

        def pull():
            pos, frame = real_pull()
            if pos == 31 and left[0] > 0:  # drop frame 31 the first `drops` times it is decoded
                left[0] -= 1
                return real_pull()
            return pos, frame

        reader._pull = pull
        assert np.array_equal(reader.read_clip(30, 4), ref[30:34])
        assert left[0] == 0


def test_frame_missing_from_every_decode_is_an_error(matrix_dir):
    path, _ = _video(Case("mkv", "hevc", 2, True, 12), matrix_dir)
    with open_video(path) as reader:
        real_pull = reader._pull

        def pull():
            pos, frame = real_pull()
            return real_pull() if pos == 31 else (pos, frame)

        reader._pull = pull
        with pytest.raises(VideoError, match=r"frame 31 .* missing .*also when decoding from the start"):
            reader.read_clip(30, 4)


def test_decoded_index_is_cached_per_file_version(tmp_path, monkeypatch):
    import os

    from e2espot.data.video import pyav_backend

    path = encode_case(Case("avi", "mpeg4", 2, True, 12), tmp_path / "a.avi", num_frames=30)
    decodes = []
    real_open = pyav_backend._open_container
    monkeypatch.setattr(pyav_backend, "_open_container",
                        lambda p, threads: (decodes.append(p), real_open(p, threads))[1])
    assert open_video(path).num_frames == 30
    opened_first = len(decodes)
    assert open_video(path).num_frames == 30
    assert (opened_first, len(decodes) - opened_first) == (2, 1)  # the second open skips the full decode
    encode_case(Case("avi", "mpeg4", 2, True, 12), path, num_frames=20)  # same name, new content
    os.utime(path, ns=(1, 1))
    with open_video(path) as reader:
        assert reader.num_frames == 20
        assert [decode_index_pattern(f) for f in reader.read_clip(15, 5)] == [15, 16, 17, 18, 19]

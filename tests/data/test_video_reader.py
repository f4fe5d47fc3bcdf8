"""PyAV reader: exact seeks (long GOP + B-frames), decoder reuse, fps resampling, VFR, resize, pickling."""

import math
import pickle
from fractions import Fraction

import av
import numpy as np
import pytest

from e2espot.data.video import list_backends, open_video, probe_video, write_video
from e2espot.data.video.patterns import decode_index_pattern, index_pattern
from e2espot.data.video.pyav_backend import PyAVReader

NUM_LONG = 600  # 24 s at 25 fps: keyframes at 0, 250, 500


def _indices(frames: np.ndarray) -> list[int]:
    return [decode_index_pattern(f) for f in frames]


@pytest.fixture(scope="module")
def long_gop(tmp_path_factory):
    path = tmp_path_factory.mktemp("vid") / "long.mp4"
    write_video(path, np.stack([index_pattern(i) for i in range(NUM_LONG)]), 25, gop=250, bframes=3)
    return path


@pytest.fixture(scope="module")
def reference(long_gop) -> np.ndarray:
    """Independent full sequential decode with plain PyAV."""
    with av.open(str(long_gop)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_fixture_really_has_bframes_and_long_gops(long_gop, reference):
    with av.open(str(long_gop)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    pts = [p.pts for p in packets]
    assert pts != sorted(pts), "no B-frames: decode order equals presentation order"
    assert sum(p.is_keyframe for p in packets) == 3
    assert len(reference) == NUM_LONG
    with open_video(long_gop) as reader:
        assert isinstance(reader, PyAVReader)
        assert reader.keyframe_idx.tolist() == [0, 250, 500]


def test_index_gives_exact_metadata(long_gop):
    with open_video(long_gop) as reader:
        assert (reader.num_frames, reader.src_num_frames) == (NUM_LONG, NUM_LONG)
        assert reader.fps == reader.src_fps == 25.0
        assert (reader.width, reader.height) == (64, 48)
        assert reader.src_times_s[1] == pytest.approx(0.04)


def test_sequential_read_equals_reference(long_gop, reference):
    with open_video(long_gop) as reader:
        frames = reader.read_clip(0, NUM_LONG)
    assert frames.shape == (NUM_LONG, 48, 64, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, reference)
    assert _indices(frames) == list(range(NUM_LONG))


def test_random_seeks_are_exact(long_gop, reference):
    rng = np.random.default_rng(0)
    starts = [int(s) for s in rng.integers(0, NUM_LONG - 20, 12)]
    starts += [249, 0, 240, 250, 251, 499, 500, 583, 10, 245]  # across keyframes, backwards too
    with open_video(long_gop) as reader:
        for start in starts:
            clip = reader.read_clip(start, 17)
            assert np.array_equal(clip, reference[start:start + 17]), f"clip at {start} differs"


def test_decoder_is_reused_within_a_gop(long_gop, reference, monkeypatch):
    reader = open_video(long_gop)
    seeks = []
    real_seek = reader._seek
    monkeypatch.setattr(reader, "_seek", lambda pos: (seeks.append(pos), real_seek(pos))[1])
    reader.read_clip(10, 5)
    reader.read_clip(20, 5)  # forward in the same GOP: keep decoding
    reader.read_clip(200, 60)  # crosses keyframe 250 while decoding: still no seek
    assert seeks == [10]
    reader.read_clip(520, 5)  # the target's keyframe (500) is ahead: seek
    reader.read_clip(5, 5)  # backwards: seek
    assert seeks == [10, 520, 5]
    seeks.clear()
    chunks = list(reader.iter_chunks(64))
    assert len(seeks) == 1  # one seek to frame 0, then a single sequential pass
    assert [s for s, _ in chunks] == list(range(0, NUM_LONG, 64))
    assert np.array_equal(np.concatenate([c for _, c in chunks]), reference)
    reader.close()


def test_iter_frames_range(long_gop, reference):
    with open_video(long_gop) as reader:
        frames = list(reader.iter_frames(100, 140))
    assert len(frames) == 40
    assert np.array_equal(np.stack(frames), reference[100:140])


def test_pickled_reader_reopens_lazily(long_gop, reference):
    reader = open_video(long_gop)
    reader.read_clip(300, 4)
    assert reader._container is not None
    data = pickle.dumps(reader)
    assert len(data) < 50_000  # the index travels, the decoder does not
    clone = pickle.loads(data)
    assert clone._container is None
    assert np.array_equal(clone.read_clip(300, 4), reference[300:304])
    assert np.array_equal(reader.read_clip(304, 4), reference[304:308])
    clone.close()
    reader.close()


_FORKED = {}


def _read_in_forked_child(start: int) -> np.ndarray:
    return _FORKED["reader"].read_clip(start, 4)


def test_reader_inherited_through_fork_opens_its_own_file(long_gop, reference):
    import multiprocessing

    reader = open_video(long_gop)
    reader.read_clip(100, 4)  # the parent's decoder is open and positioned
    _FORKED["reader"] = reader
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert reader._container is None  # closed before the fork, so no decoder threads reach the child
        clips = pool.map(_read_in_forked_child, [300, 520])
    assert np.array_equal(clips[0], reference[300:304]) and np.array_equal(clips[1], reference[520:524])
    assert np.array_equal(reader.read_clip(104, 4), reference[104:108])  # parent undisturbed
    reader.close()
    _FORKED.clear()


@pytest.mark.parametrize(
    ("fps", "expected"),
    [
        (10.0, lambda k: math.floor(k * 2.5)),
        (12.5, lambda k: 2 * k),
        (50.0, lambda k: k // 2),
    ],
)
def test_fps_resampling_picks_the_frame_showing(long_gop, fps, expected):
    with open_video(long_gop, fps=fps) as reader:
        assert reader.fps == fps and reader.src_fps == 25.0
        assert reader.num_frames == math.ceil(NUM_LONG * fps / 25.0)
        got = [decode_index_pattern(f) for _, chunk in reader.iter_chunks(37) for f in chunk]
        assert got == [expected(k) for k in range(reader.num_frames)]
        # random access agrees with streaming
        k = reader.num_frames // 2 + 3
        assert _indices(reader.read_clip(k, 3)) == [expected(k + i) for i in range(3)]


def test_ntsc_rate_in_millisecond_timestamps(tmp_path):
    path = write_video(tmp_path / "ntsc.mkv", np.stack([index_pattern(i) for i in range(90)]), 30000 / 1001)
    with open_video(path, fps=29.97) as reader:  # the source rate as labels write it: no resampling
        assert reader.num_frames == 90 and reader.fps == pytest.approx(30000 / 1001)
        assert _indices(reader.read_clip(0, 90)) == list(range(90))
    # Matroska rounds frame times to 1 ms (frame 2 at 67 ms, not 66.73): half the rate still takes 0, 2, 4...
    with open_video(path, fps=15000 / 1001) as reader:
        assert reader.num_frames == 45
        assert _indices(reader.read_clip(0, 45)) == [2 * k for k in range(45)]


VFR_PTS_MS = [0, 40, 100, 110, 200, 400, 410, 420, 700]


def _write_vfr(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.time_base = Fraction(1, 1000)
        stream.options = {"bf": "0"}
        for i, pts_ms in enumerate(VFR_PTS_MS):
            frame = av.VideoFrame.from_ndarray(index_pattern(i), format="rgb24")
            frame.pts, frame.time_base = pts_ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_variable_frame_rate_uses_timestamps(tmp_path, ext):
    path = tmp_path / f"vfr.{ext}"
    _write_vfr(path)
    with open_video(path) as reader:
        assert reader.num_frames == len(VFR_PTS_MS)
        assert np.allclose(reader.src_times_s, np.array(VFR_PTS_MS) / 1000)
        assert _indices(reader.read_clip(0, reader.num_frames)) == list(range(len(VFR_PTS_MS)))
    with open_video(path, fps=25) as reader:
        # output frame k shows at 40k ms: the latest source frame starting at or before then
        expected = [max(i for i, p in enumerate(VFR_PTS_MS) if p <= 40 * k) for k in range(19)]
        assert reader.num_frames == 19  # 700 ms + 40 ms last frame -> 740 ms -> 19 frames at 25 fps
        assert _indices(reader.read_clip(0, 19)) == expected
        assert _indices(reader.read_clip(10, 3)) == expected[10:13]


def test_resize_keeps_aspect_and_even_width(tmp_path, long_gop):
    with open_video(long_gop, height=24) as reader:
        clip = reader.read_clip(7, 2)
        assert clip.shape == (2, 24, 32, 3) and (reader.width, reader.height) == (32, 24)
        assert _indices(clip) == [7, 8]
    with open_video(long_gop, width=40, height=30) as reader:
        assert reader.read_clip(0, 1).shape == (1, 30, 40, 3)
    path = tmp_path / "wide.mp4"
    write_video(path, np.stack([index_pattern(i, width=70, height=48) for i in range(5)]), 25)
    with open_video(path, height=30) as reader:  # 70 * 30 / 48 = 43.75 -> 44
        assert (reader.width, reader.height) == (44, 30)
        assert reader.read_clip(0, 5).shape == (5, 30, 44, 3)
        assert reader.src_width == 70


@pytest.mark.parametrize("ext", ["avi", "mkv", "mov"])
def test_other_containers_with_bframes_seek_exactly(tmp_path, ext):
    path = tmp_path / f"clip.{ext}"
    write_video(path, np.stack([index_pattern(i) for i in range(100)]), 25, gop=30, bframes=2)
    with av.open(str(path)) as container:
        reference = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    with open_video(path, threads=1) as reader:
        assert reader.num_frames == 100
        for start in (61, 29, 30, 0, 95, 44):
            assert np.array_equal(reader.read_clip(start, 5), reference[start:start + 5]), start
        assert _indices(reader.read_clip(58, 4)) == [58, 59, 60, 61]


def test_probe_video_is_cheap_metadata(long_gop):
    info = probe_video(long_gop)
    assert (info.fps, info.num_frames, info.width, info.height) == (25.0, NUM_LONG, 64, 48)
    assert info.duration_s == pytest.approx(24.0, abs=0.05)
    assert info.has_audio is False


def test_backends_are_registered():
    names = list_backends()
    assert names[0] == "pyav"
    assert {"spot", "tdeed"} <= set(names)


def test_opencv_backend_matches_pyav(long_gop, reference):
    pytest.importorskip("cv2")
    assert "opencv" in list_backends()
    with open_video(long_gop, backend="opencv", threads=1) as reader:
        assert (reader.num_frames, reader.fps, reader.width, reader.height) == (NUM_LONG, 25.0, 64, 48)
        for start in (300, 249, 250, 0, 590):
            assert np.array_equal(reader.read_clip(start, 10), reference[start:start + 10]), start
        clone = pickle.loads(pickle.dumps(reader))
        assert np.array_equal(clone.read_clip(400, 3), reference[400:403])
    with open_video(long_gop, backend="opencv", fps=10, height=24) as reader:
        assert reader.read_clip(0, 5).shape == (5, 24, 32, 3)
        assert _indices(reader.read_clip(0, 5)) == [0, 2, 5, 7, 10]

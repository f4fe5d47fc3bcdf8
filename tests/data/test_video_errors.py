"""Every way a video can be unreadable gives a VideoError that names the path and the fix."""

import os
from fractions import Fraction

import av
import numpy as np
import pytest

from e2espot.data.video import open_video, probe_video, write_video
from e2espot.data.video.patterns import index_pattern
from e2espot.errors import ConfigError, UnknownNameError, VideoError

FRAMES = np.stack([index_pattern(i) for i in range(60)])


@pytest.fixture(scope="module")
def good_mp4(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("err") / "good.mp4", FRAMES, 25, gop=250)


def _truncate(src, dst, fraction):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match=r"cannot open '.*nope\.mp4': no such file"):
        open_video(tmp_path / "nope.mp4")


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(VideoError, match=r"empty\.mp4': the file is empty \(0 bytes\)"):
        open_video(tmp_path / "empty.mp4")
    with pytest.raises(VideoError, match="0 bytes"):
        probe_video(tmp_path / "empty.mp4")


def test_not_a_video(tmp_path):
    (tmp_path / "notes.mp4").write_text("hello, I am not a video\n" * 20)
    with pytest.raises(VideoError, match=r"cannot open '.*notes\.mp4'.*ffmpeg -i notes\.mp4"):
        open_video(tmp_path / "notes.mp4")


def test_truncated_mp4_without_index(tmp_path, good_mp4):
    # the moov atom is written last: a cut file cannot even be opened
    path = _truncate(good_mp4, tmp_path / "cut.mp4", 0.6)
    with pytest.raises(VideoError, match=r"cut\.mp4.*truncated"):
        open_video(path)


def test_truncated_mp4_with_index_first(tmp_path):
    src = tmp_path / "fast.mp4"
    with av.open(str(src), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i, frame in enumerate(FRAMES):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    path = _truncate(src, tmp_path / "fast_cut.mp4", 0.7)
    expected = r"fast_cut\.mp4.*truncated: its header lists 60 frames.*stops after frame \d+"
    with pytest.raises(VideoError, match=expected):
        open_video(path)


def test_truncated_mkv(tmp_path):
    src = write_video(tmp_path / "full.mkv", FRAMES, 25, gop=250)
    path = _truncate(src, tmp_path / "cut.mkv", 0.5)
    with pytest.raises(VideoError, match=r"cut\.mkv.*truncated.*after frame \d+"):
        open_video(path)


def test_decoding_stops_early_names_the_frame(tmp_path, good_mp4):
    # the index promises 60 frames, but the data of the last five is garbage
    with av.open(str(good_mp4)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(good_mp4.read_bytes())
    for pos, size in packets[-5:]:
        data[pos:pos + size] = b"\xff" * size
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    with open_video(path) as reader:
        assert reader.num_frames == 60
        assert reader.read_clip(0, 50).shape[0] == 50  # the good part still reads
        with pytest.raises(VideoError, match=r"corrupt\.mp4.*source frame 5[5-9].*truncated or corrupt"):
            reader.read_clip(50, 10)


def test_no_video_stream(tmp_path):
    path = tmp_path / "clip.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(VideoError, match=r"cannot decode '.*clip\.mkv': no video stream\. Re-mux it: ffmpeg"):
        open_video(path)


def test_unsupported_codec(tmp_path):
    src = write_video(tmp_path / "ok.mkv", FRAMES[:10], 25)
    data = src.read_bytes()
    assert b"V_MPEG4/ISO/AVC" in data
    path = tmp_path / "odd.mkv"
    path.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_MPEG4/ISO/XYZ"))  # a codec id FFmpeg does not know
    expected = r"odd\.mkv': unsupported video codec.*ffmpeg -i odd\.mkv -c:v libx264"
    with pytest.raises(VideoError, match=expected):
        open_video(path)


def test_unreadable_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match=r"no backend reads this folder.*000000\.jpg"):
        open_video(tmp_path / "empty")
    (tmp_path / "pngs").mkdir()
    (tmp_path / "pngs" / "0001.png").write_bytes(b"x")
    with pytest.raises(VideoError, match="no backend reads this folder"):
        open_video(tmp_path / "pngs")
    with pytest.raises(VideoError, match="no 000000.jpg"):
        probe_video(tmp_path / "pngs")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any folder")
def test_folder_without_permission(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0)
    try:
        with pytest.raises(VideoError, match="permission denied"):
            open_video(folder)
    finally:
        folder.chmod(0o755)


def test_clip_out_of_range(good_mp4):
    with open_video(good_mp4) as reader:
        for start, num in [(-1, 2), (58, 3), (0, 61), (60, 1)]:
            with pytest.raises(VideoError, match=r"good\.mp4.*out of range.*60 frames at 25 fps \(0\.\.59\)"):
                reader.read_clip(start, num)
        with pytest.raises(VideoError, match="out of range"):
            list(reader.iter_chunks(8, 0, 61))
        assert reader.read_clip(59, 1).shape == (1, 48, 64, 3)
        assert reader.read_clip(10, 0).shape == (0, 48, 64, 3)


def test_bad_options(good_mp4):
    with pytest.raises(ConfigError, match="fps must be > 0"):
        open_video(good_mp4, fps=0)
    with pytest.raises(ConfigError, match="height must be >= 2"):
        open_video(good_mp4, height=1)
    with pytest.raises(UnknownNameError, match="unknown video backend 'pyv'; did you mean 'pyav'"):
        open_video(good_mp4, backend="pyv")

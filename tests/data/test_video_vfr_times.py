"""Variable frame rate: the reader reports true presentation times (frame_times_s), and resampling to
an fps picks frames by timestamp, so frame k of a resampled reader is shown at k / fps."""

from fractions import Fraction

import av
import numpy as np
import pytest

from e2espot.data.video import open_video, write_video
from e2espot.data.video.patterns import decode_index_pattern, index_pattern

# 40 frames 50 ms apart (frame 40 shown at 2.000 s), then 20 frames 25 ms apart: 60 frames in 2.5 s
PTS_MS = [50 * i for i in range(40)] + [2000 + 25 * i for i in range(20)]


@pytest.fixture(scope="module", params=["mkv", "mp4"])
def vfr(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("vfr") / f"phone.{request.param}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(30))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        stream.options = {"bf": "0", "g": "12"}
        for i, pts_ms in enumerate(PTS_MS):
            frame = av.VideoFrame.from_ndarray(index_pattern(i), format="rgb24")
            frame.pts, frame.time_base = pts_ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_native_rate_reports_true_times(vfr):
    with open_video(vfr) as reader:
        assert not reader.is_constant_rate
        assert reader.num_frames == 60
        times = reader.frame_times_s
        assert times.shape == (60,) and np.allclose(times, np.array(PTS_MS) / 1000)
        assert times[40] == pytest.approx(2.0)
        assert 40 / reader.fps != pytest.approx(2.0)  # the average rate would misplace frame 40
        assert decode_index_pattern(reader.read_clip(40, 1)[0]) == 40


def test_resampled_frames_are_picked_by_timestamp(vfr):
    with open_video(vfr, fps=20) as reader:
        assert reader.fps == 20.0
        assert np.allclose(reader.frame_times_s, np.arange(reader.num_frames) / 20)
        # 2.475 s + the last frame's duration (25 ms, or the container's 1/30 s guess)
        assert reader.num_frames in (50, 51)
        got = [decode_index_pattern(f) for f in reader.read_clip(0, 50)]
    # frame k shows at k * 50 ms: the latest source frame starting at or before it
    expected = [max(i for i, p in enumerate(PTS_MS) if p <= 50 * k) for k in range(50)]
    assert got == expected
    assert got[40] == 40 and got[41] == 42  # 2.050 s: source frame 42 started at 2.050 s


def test_constant_rate_times_are_k_over_fps(tmp_path):
    path = write_video(tmp_path / "cfr.mp4", np.stack([index_pattern(i) for i in range(10)]), 25)
    with open_video(path) as reader:
        assert reader.is_constant_rate
        assert np.allclose(reader.frame_times_s, np.arange(10) / 25)


def test_frame_folder_times(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(index_pattern(i)).save(folder / f"{i:06d}.jpg")
    (folder / "fps.txt").write_text("10\n")
    with open_video(folder) as reader:
        assert np.allclose(reader.frame_times_s, [0.0, 0.1, 0.2, 0.3])

"""render / highlights / review decode through e2espot.data.video: upright frames for rotated phone
footage, and on variable-frame-rate files the very frames predict reads (resampled by timestamps)."""

from fractions import Fraction

import av
import numpy as np
import pytest

from e2espot.data.labels import Event, VideoLabels
from e2espot.data.video import open_video, probe_video, write_video
from e2espot.data.video.patterns import decode_index_pattern, index_pattern
from e2espot.export.highlights import write_highlight_reel
from e2espot.export.render import read_frames, render_annotated
from e2espot.export.review import write_review

VFR_PTS_MS = [0, 40, 100, 110, 200, 400, 410, 420, 700, 900, 905, 1000, 1200]


def _marked(n: int) -> np.ndarray:
    frames = np.stack([index_pattern(i) for i in range(n)])
    frames[:, :6, :6] = 255  # marker in the stored top-left corner
    return frames


def _marker_corner(frame: np.ndarray) -> str:
    h, w = frame.shape[:2]
    corners = {"top-left": frame[:3, :3], "top-right": frame[:3, w - 3:], "bottom-left": frame[h - 3:, :3],
               "bottom-right": frame[h - 3:, w - 3:]}
    return max(corners, key=lambda k: float(corners[k].min()))


@pytest.fixture(scope="module")
def phone(tmp_path_factory):
    """30 frames stored 64x48 with a -90 display rotation: shown 48 wide, 64 high."""
    return write_video(tmp_path_factory.mktemp("phone") / "phone.mp4", _marked(30), 25, gop=10, bframes=2,
                       rotation=-90)


@pytest.fixture(scope="module")
def vfr(tmp_path_factory):
    path = tmp_path_factory.mktemp("vfr") / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        stream.options = {"bf": "0"}
        for i, pts_ms in enumerate(VFR_PTS_MS):
            frame = av.VideoFrame.from_ndarray(index_pattern(i), format="rgb24")
            frame.pts, frame.time_base = pts_ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_render_rotated_is_upright(phone, tmp_path):
    events = VideoLabels("phone", 25, 30, [Event(29, "goal", 0.9)])
    res = render_annotated(phone, events, tmp_path / "out.mp4", hold_s=0.04)
    info = probe_video(res.path)
    assert (info.width, info.height, info.rotation) == (48, 64, 0)
    with open_video(res.path) as out, open_video(phone) as src:
        assert out.num_frames == 30
        frame = out.read_clip(5, 1)[0]
        assert _marker_corner(frame) == _marker_corner(src.read_clip(5, 1)[0]) == "top-right"
        # upright index stripes survive: turn back to the stored orientation and decode
        assert decode_index_pattern(np.rot90(frame, k=1)) == 5


def test_highlights_rotated_is_upright(phone, tmp_path):
    events = VideoLabels("phone", 25, 30, [Event(15, "goal", 0.9)])
    reel = write_highlight_reel(phone, events, tmp_path / "reel.mp4", pad_s=0.2, title_s=0.0, audio=False)
    assert [(c.start_frame, c.end_frame) for c in reel.cuts] == [(10, 21)]
    with open_video(reel.path) as out:
        assert (out.width, out.height, out.num_frames) == (48, 64, 11)
        clip = out.read_clip(0, 11)
    assert [decode_index_pattern(np.rot90(f, k=1)) for f in clip] == list(range(10, 21))
    assert _marker_corner(clip[0]) == "top-right"


def test_render_vfr_shows_the_frames_predict_reads(vfr, tmp_path):
    with open_video(vfr, fps=25) as predict_reader:  # how predict reads it for a 25 fps run
        expected = [decode_index_pattern(f) for f in predict_reader.read_clip(0, predict_reader.num_frames)]
    assert len(expected) == 31  # 1200 ms + one frame, at 40 ms steps
    events = VideoLabels("vfr", 25, 31, [Event(30, "goal", 0.9)])
    res = render_annotated(vfr, events, tmp_path / "out.mp4", hold_s=0.04)
    assert (res.num_frames_in, res.fps) == (31, 25)
    with open_video(res.path) as out:
        got = [decode_index_pattern(f) for f in out.read_clip(0, 30)]
    assert got == expected[:30]
    # frame 10 of the events is shown at 400 ms: source frame 5 (not source frame 10, at 905 ms)
    assert got[10] == 5


def test_highlights_vfr_cut_uses_true_times(vfr, tmp_path):
    events = VideoLabels("vfr", 25, 31, [Event(25, "goal", 0.9)])  # 1.000 s
    reel = write_highlight_reel(vfr, events, tmp_path / "reel.mp4", pad_s=0.08, title_s=0.0, audio=False)
    with open_video(reel.path) as out:
        got = [decode_index_pattern(f) for f in out.read_clip(0, out.num_frames)]
    # 920, 960, 1000, 1040, 1080 ms show source frames 10 (905), 10, 11 (1000), 11, 11
    assert got == [10, 10, 11, 11, 11]


def test_review_and_read_frames_vfr(vfr, tmp_path):
    frames = read_frames(vfr, [10, 25, 99], fps=25)
    assert sorted(frames) == [10, 25]  # 99 is past the end: left out
    assert [decode_index_pattern(frames[i]) for i in (10, 25)] == [5, 11]
    preds = VideoLabels("vfr", 25, 31, [Event(10, "goal", 0.9)])
    truth = VideoLabels("vfr", 25, 31, [Event(20, "goal")])
    summary = write_review(vfr, preds, truth, tmp_path / "review.html", tolerance_frames=1, context_frames=0)
    assert (summary.detected, summary.missed, summary.spurious) == (0, 1, 1)
    assert "frame 10 · 0:00.40" in summary.path.read_text()

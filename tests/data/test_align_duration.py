"""Labels whose length disagrees with the video's: an error with both durations, never re-timed."""

import numpy as np
import pytest

from e2espot.config import DataConfig
from e2espot.data.align import align_labels, check_duration
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.data.video import write_video
from e2espot.data.video.patterns import index_pattern
from e2espot.errors import LabelFormatError


def _labels(num_frames, fps, frames=(10, 200)):
    return LabelSet(["goal"], [VideoLabels("m", fps, num_frames, [Event(f, "goal") for f in frames])])


def _probe(fps, frames):
    return lambda video: (fps, frames)


def test_labels_20s_video_16_7s_is_an_error():
    # labels: 500 frames at 25 fps = 20 s; video: 500 frames at 30 fps = 16.67 s; every event inside both
    with pytest.raises(LabelFormatError) as err:
        align_labels(_labels(500, 25), ".", DataConfig(), probe=_probe(30.0, 500))
    msg = str(err.value)
    assert "video 'm'" in msg and "20.00 s (500 frames at 25 fps)" in msg
    assert "16.67 s (500 frames at 30 fps)" in msg
    assert "set their fps to 30" in msg and "never stretched" in msg


def test_label_fps_unknown_compares_frames_at_the_video_fps():
    with pytest.raises(LabelFormatError, match=r"labels last 12.00 s \(300 frames at the video's 25 fps"):
        align_labels(_labels(300, None), ".", DataConfig(), probe=_probe(25.0, 250))


def test_small_differences_and_unknown_lengths_pass():
    out = align_labels(_labels(502, 25), ".", DataConfig(), probe=_probe(25.0, 500))  # 0.08 s off
    assert out.videos[0].num_frames == 500 and [e.frame for e in out.videos[0].events] == [10, 200]
    out = align_labels(_labels(None, 25), ".", DataConfig(), probe=_probe(30.0, 500))
    assert [e.frame for e in out.videos[0].events] == [12, 240]  # re-timed by fps: same instants
    # resampled labels: 20 s at 50 fps against a 25 fps reader of the same 20 s video
    out = align_labels(_labels(1000, 50), ".", DataConfig(fps=25), probe=_probe(25.0, 500))
    assert [e.frame for e in out.videos[0].events] == [5, 100]


def test_relative_tolerance_for_long_videos():
    video = VideoLabels("half", 25, 25 * 2700 + 200, [])  # 45 min + 8 s: within 1 %
    check_duration(video, 25.0, 25 * 2700)
    check_duration(VideoLabels("half", 25, 25 * 2727, []), 25.0, 25 * 2700)  # 27 s = 1 %: still accepted
    with pytest.raises(LabelFormatError, match="2728.00 s"):
        check_duration(VideoLabels("half", 25, 25 * 2728, []), 25.0, 25 * 2700)


def test_real_video(tmp_path):
    write_video(tmp_path / "m.mp4", np.stack([index_pattern(i) for i in range(50)]), 25)  # 2.00 s
    with pytest.raises(LabelFormatError, match=r"labels last 4.00 s .* video lasts 2.00 s"):
        align_labels(_labels(100, 25, frames=(5,)), tmp_path, DataConfig())
    out = align_labels(_labels(50, 25, frames=(5,)), tmp_path, DataConfig())
    assert out.videos[0].num_frames == 50

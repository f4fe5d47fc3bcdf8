"""render_annotated: frame-exact overlay, slow motion, audio passthrough; review HTML."""

import html
from fractions import Fraction

import numpy as np
import pytest

from e2espot.data.labels import Event, VideoLabels
from e2espot.export.render import iter_frames, match_events, probe_video, read_frames, render_annotated
from e2espot.export.review import write_review

FPS = 25


def make_video(path, n=50, w=160, h=96, audio=True):
    """Grey frames whose brightness encodes the frame index; optional 16 kHz mono sine track."""
    import av

    c = av.open(str(path), "w")
    vs = c.add_stream("libx264", rate=Fraction(FPS))
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    vs.options = {"bf": "0", "g": "10"}
    a = c.add_stream("aac", rate=16000, layout="mono") if audio else None
    for i in range(n):
        f = av.VideoFrame.from_ndarray(np.full((h, w, 3), 60 + 2 * i, np.uint8), format="rgb24")
        f.pts = i
        for p in vs.encode(f):
            c.mux(p)
    for p in vs.encode(None):
        c.mux(p)
    if a is not None:
        total = int(n / FPS * 16000)
        sig = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / 16000)).astype(np.float32)[None]
        for k in range(0, total, 1024):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(sig[:, k:k + 1024]), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, k
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    c.close()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("v") / "clip.mp4")


def _region_diff(a, b):
    # top-left box region where the label is drawn
    return np.abs(a[4:14, 4:30].astype(int) - b[4:14, 4:30].astype(int)).mean()


def test_overlay_appears_exactly_at_event_frame(video, tmp_path):
    events = VideoLabels("clip", FPS, 50, [Event(20, "goal", 0.9)])
    res = render_annotated(video, events, tmp_path / "out.mp4", hold_s=0.4)
    assert (res.num_frames_in, res.num_frames_out) == (50, 50)
    src = read_frames(video, [18, 19, 20, 29, 30])
    out = read_frames(res.path, [18, 19, 20, 29, 30])
    assert _region_diff(src[18], out[18]) < 3
    assert _region_diff(src[19], out[19]) < 3  # the frame before: untouched
    assert _region_diff(src[20], out[20]) > 20  # the event frame: the label box is there
    assert _region_diff(src[29], out[29]) > 20  # still held (hold 0.4 s = 10 frames: 20..29)
    assert _region_diff(src[30], out[30]) < 3  # gone after hold
    # timeline bar at the bottom on every frame, with the playhead moving
    assert np.abs(out[18][-3:].astype(int) - src[18][-3:].astype(int)).mean() > 20


def test_slowmo_frame_count_and_audio_dropped(video, tmp_path):
    events = VideoLabels("clip", FPS, 50, [Event(10, "goal", 0.9), Event(45, "shot", 0.6)])
    res = render_annotated(video, events, tmp_path / "slow.mp4", slowmo_s=0.2, slowmo_factor=3)
    # 0.2 s = 5 frames each side: frames 5..15 (11) and 40..49 (10, clamped) are tripled
    assert res.num_frames_out == 50 + 2 * (11 + 10)
    info = probe_video(res.path)
    assert info.num_frames == res.num_frames_out
    assert not info.has_audio and not res.audio


def test_audio_kept(video, tmp_path):
    import av

    assert probe_video(video).has_audio
    res = render_annotated(video, VideoLabels("clip", FPS, 50, [Event(5, "goal", 0.5)]), tmp_path / "a.mp4")
    assert res.audio
    with av.open(str(res.path)) as c:
        assert len(c.streams.audio) == 1
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac" and a.codec_context.sample_rate == 16000
        n_samples = sum(f.samples for f in c.decode(a))
    assert abs(n_samples - 32000) < 2048
    assert not list(tmp_path.glob("*.tmp.mp4"))


def test_truth_styles(tmp_path):
    from e2espot.data.video.writer import write_video

    src = write_video(tmp_path / "v.mp4", np.full((20, 48, 64, 3), 128, np.uint8), FPS)
    preds = VideoLabels("v", FPS, 20, [Event(5, "a", 0.9), Event(12, "b", 0.8)])
    truth = VideoLabels("v", FPS, 20, [Event(6, "a"), Event(16, "b")])
    res = render_annotated(src, preds, tmp_path / "o.mp4", truth=truth, tolerance_frames=2, hold_s=0.2)
    assert res.num_frames_out == 20 and not res.audio
    frames = dict(iter_frames(res.path))
    assert len(frames) == 20
    # spurious prediction at 12 is drawn red-outlined: red dominates its box border
    box = frames[12][2:4, 2:20].astype(int)
    assert box[..., 0].mean() > box[..., 2].mean() + 40


def test_match_events_kinds():
    preds = [Event(10, "a", 0.9), Event(11, "a", 0.5), Event(30, "a", 0.7), Event(50, "b", 0.4)]
    truth = [Event(10, "a"), Event(50, "a"), Event(70, "b")]
    m = match_events(preds, truth, 2)
    assert m.pred_to_truth == {0: 0}
    assert m.duplicates == [1]
    assert m.spurious == [2, 3]
    assert m.missed == [1, 2]


def test_review_html_sections_and_counts(video, tmp_path):
    preds = VideoLabels("clip", FPS, 50, [Event(10, "goal", 0.9), Event(11, "goal", 0.4), Event(30, "shot", 0.7)])
    truth = VideoLabels("clip", FPS, 50, [Event(10, "goal"), Event(40, "shot"), Event(45, "goal")])
    s = write_review(video, preds, truth, tmp_path / "review.html", tolerance_frames=2, context_frames=2)
    assert (s.detected, s.missed, s.duplicate, s.spurious) == (1, 2, 1, 1)
    text = s.path.read_text()
    for section, count in (("missed", 2), ("duplicate", 1), ("spurious", 1)):
        assert f"<section id='{section}'>" in text
        assert text.count(f"data-kind='{section}'") == count
    assert "Missed (2)" in text and "Duplicate (1)" in text and "Spurious (1)" in text
    assert "<td id='count-detected'>1</td>" in text
    # thumbnails: missed at 45 in a 50-frame video -> frames 41..49 (9); at 40 -> 36..44 (9)
    missed = text.split("<section id='missed'>")[1].split("</section>")[0]
    assert missed.count("data:image/jpeg;base64,") == 18
    assert "nearest 'shot' truth at frame 40 (-10 frames" in html.unescape(text)


def test_events_at_model_fps_are_retimed(video, tmp_path):
    # a model that ran at 12.5 fps on this 25 fps video: its frame 10 is video frame 20
    events = VideoLabels("clip", 12.5, 25, [Event(10, "goal", 0.9)])
    res = render_annotated(video, events, tmp_path / "o.mp4", hold_s=0.2)
    src, out = read_frames(video, [19, 20]), read_frames(res.path, [19, 20])
    assert _region_diff(src[19], out[19]) < 3 and _region_diff(src[20], out[20]) > 20


def test_events_past_the_end_are_an_error_not_dropped(video, tmp_path):
    """An events file with no num_frames and events past the video's end (another video's events, or
    another fps than stated): render, review and the highlight reel refuse, naming the frames."""
    from e2espot.errors import LabelFormatError
    from e2espot.export.highlights import write_highlight_reel

    events = VideoLabels("clip", FPS, None, [Event(20, "goal", 0.9), Event(50, "shot", 0.8), Event(77, "shot", 0.7)])
    with pytest.raises(LabelFormatError, match=r"events for 'clip': 2 events at frames outside 'clip.mp4' "
                                                r"\(50 frames at 25 fps\): 50, 77"):
        render_annotated(video, events, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
    truth = VideoLabels("clip", FPS, None, [Event(60, "goal")])
    with pytest.raises(LabelFormatError, match=r"labels for 'clip': 1 event at frames outside"):
        render_annotated(video, VideoLabels("clip", FPS, None, [Event(20, "goal", 0.9)]), tmp_path / "o.mp4",
                         truth=truth)
    with pytest.raises(LabelFormatError, match="2 events at frames outside"):
        write_highlight_reel(video, events, tmp_path / "reel.mp4")

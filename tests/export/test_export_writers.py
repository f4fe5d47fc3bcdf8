"""CSV, SoccerNet results, chapters, highlight cut lists and reels, plots."""

import json

import numpy as np
import pytest
from PIL import Image

from e2espot.data.labels import Event, VideoLabels
from e2espot.data.video.writer import write_video
from e2espot.errors import ConfigError, VideoError
from e2espot.export.highlights import highlight_cuts, write_highlight_reel
from e2espot.export.render import iter_frames, probe_video
from e2espot.export.writers import (
    chapters,
    read_predictions,
    soccernet_results,
    write_csv,
    write_ffmetadata_chapters,
    write_prediction_json,
    write_soccernet_results,
    write_webvtt_chapters,
)


def labels():
    return VideoLabels("match/1", 25.0, 2500, [
        Event(250, "goal", 0.91), Event(100, "shot", 0.5), Event(1530, "card", None), Event(250, "card", 0.2),
    ])


def test_csv_rows_line_by_line(tmp_path):
    other = VideoLabels("b", 50.0, 100, [Event(3, "x", 0.123456)])
    path = write_csv([labels(), other], tmp_path / "e.csv")
    # the one CSV layout (data.formats csv): time_s to 6 decimals, lossless scores, events by frame
    # (ties in the given order), the same bytes predict writes (issue 13)
    assert path.read_text().splitlines() == [
        "video,frame,time_s,label,score",
        "match/1,100,4.000000,shot,0.5",
        "match/1,250,10.000000,goal,0.91",
        "match/1,250,10.000000,card,0.2",
        "match/1,1530,61.200000,card,",
        "b,3,0.060000,x,0.123456",
    ]


def test_soccernet_results_fields(tmp_path):
    v = labels()
    v.extra["half"] = 2
    v.events[0].extra["position_ms"] = 10007  # kept exactly when read from SoccerNet
    res = soccernet_results([v], game="england/2016/game")
    assert res["UrlLocal"] == "england/2016/game/"  # as Labels-v2.json, one SoccerNet writer (issue 13)
    p = res["predictions"]
    assert [x["position"] for x in p] == [4000, 10000, 10007, 61200]
    assert p[3] == {"gameTime": "2 - 01:01", "label": "card", "position": 61200, "half": 2, "confidence": 1.0}
    assert all(isinstance(x["half"], int) and isinstance(x["position"], int) for x in p)
    assert p[2]["confidence"] == pytest.approx(0.91)
    path = write_soccernet_results([v], tmp_path / "results_spotting.json")
    assert json.loads(path.read_text())["predictions"][0]["gameTime"] == "2 - 00:04"
    with pytest.raises(ConfigError):
        write_soccernet_results([labels(), labels()], tmp_path / "x.json")


def test_chapters_webvtt_and_ffmetadata(tmp_path):
    v = labels()
    assert chapters(v) == [
        (4000, 10000, "shot (0.50)"),
        (10000, 61200, "card (0.20) + goal (0.91)"),
        (61200, 100000, "card"),
    ]
    vtt = write_webvtt_chapters(v, tmp_path / "c.vtt").read_text().splitlines()
    assert vtt[:5] == ["WEBVTT", "", "1", "00:00:04.000 --> 00:00:10.000", "shot (0.50)"]
    assert "00:01:01.200 --> 00:01:40.000" in vtt
    meta = write_ffmetadata_chapters(v, tmp_path / "c.txt").read_text().splitlines()
    assert meta[0] == ";FFMETADATA1"
    assert meta[3:9] == ["[CHAPTER]", "TIMEBASE=1/1000", "START=4000", "END=10000", "title=shot (0.50)", ""]
    assert meta.count("[CHAPTER]") == 3
    v.events = [Event(0, "a=b;c", 1.0)]
    v.num_frames = None
    meta = write_ffmetadata_chapters(v, tmp_path / "d.txt").read_text()
    assert "title=a\\=b\\;c (1.00)" in meta and "END=5000" in meta


def test_prediction_json_round_trip(tmp_path):
    path = write_prediction_json(labels(), tmp_path / "p.json")
    data = json.loads(path.read_text())
    assert data[0]["events"][0] == {"frame": 100, "label": "shot", "score": 0.5, "time_s": 4.0}
    ls = read_predictions(path)
    v = ls.videos[0]
    assert (v.video, v.fps, v.num_frames, len(v.events)) == ("match/1", 25.0, 2500, 4)
    assert sorted(ls.classes) == ["card", "goal", "shot"]


def test_highlight_cuts_merge_pad_clamp():
    events = [Event(2, "goal", 0.9), Event(40, "goal", 0.8), Event(44, "shot", 0.7), Event(70, "goal", 0.95),
              Event(98, "goal", 0.6), Event(60, "goal", 0.1)]
    cuts = highlight_cuts(events, fps=10, num_frames=100, pad_s=0.5, min_score=0.5)
    # pad 5 frames: [0,8) clamped at start, [35,46)+[39,50) merged, [65,76), [93,100) clamped at end
    assert [(c.start_frame, c.end_frame) for c in cuts] == [(0, 8), (35, 50), (65, 76), (93, 100)]
    assert [e.frame for e in cuts[1].events] == [40, 44]
    only_goals = highlight_cuts(events, fps=10, num_frames=100, pad_s=0.5, min_score=0.5, classes=["goal"])
    assert [(c.start_frame, c.end_frame) for c in only_goals] == [(0, 8), (35, 46), (65, 76), (93, 100)]
    # touching cuts merge too
    touching = highlight_cuts([Event(10, "a", 1), Event(21, "a", 1)], fps=10, num_frames=100, pad_s=0.5)
    assert [(c.start_frame, c.end_frame) for c in touching] == [(5, 27)]
    with pytest.raises(ConfigError):
        highlight_cuts(events, fps=10, num_frames=100, pad_s=-1)


def test_highlight_reel_frames(tmp_path):
    n = 60
    frames = np.zeros((n, 48, 64, 3), np.uint8)
    frames[:] = (np.arange(n) * 4)[:, None, None, None]  # brightness = 4 * frame index
    src = write_video(tmp_path / "src.mp4", frames, 10.0, gop=8)
    v = VideoLabels("src", 10.0, n, [Event(12, "goal", 0.9), Event(50, "goal", 0.8), Event(30, "shot", 0.9)])
    reel = write_highlight_reel(src, v, tmp_path / "reel.mp4", classes=["goal"], pad_s=0.3, title_s=0.2)
    assert [(c.start_frame, c.end_frame) for c in reel.cuts] == [(9, 16), (47, 54)]
    assert reel.title_frames == 2 and reel.num_frames == 2 * 2 + 7 + 7 and not reel.audio
    out = dict(iter_frames(reel.path))
    assert probe_video(reel.path).num_frames == len(out) == 18
    # frame 2 of the reel is source frame 9, frame 11 is source frame 47 (after the second card)
    assert abs(out[2].mean() - 36) < 4 and abs(out[8].mean() - 60) < 4
    assert abs(out[11].mean() - 188) < 4 and abs(out[17].mean() - 212) < 4
    with pytest.raises(VideoError):
        write_highlight_reel(src, v, tmp_path / "none.mp4", min_score=0.99)


def test_highlight_reel_with_audio(tmp_path):
    import av
    from test_export_render import make_video

    src = make_video(tmp_path / "a.mp4", n=50)
    v = VideoLabels("a", 25.0, 50, [Event(10, "goal", 0.9), Event(40, "goal", 0.9)])
    reel = write_highlight_reel(src, v, tmp_path / "reel.mp4", pad_s=0.2, title_s=0.2)
    assert reel.audio and reel.num_frames == 2 * 5 + 2 * 11
    with av.open(str(reel.path)) as c:
        samples = sum(f.samples for f in c.decode(c.streams.audio[0]))
    assert abs(samples - 32 / 25 * 16000) < 2048  # audio as long as the video


def test_plots_write_pngs(tmp_path):
    from e2espot.export.plots import plot_class_ap, plot_timeline, plot_training_curves

    truth = VideoLabels("match/1", 25.0, 2500, [Event(250, "goal"), Event(1600, "card")])
    p1 = plot_timeline(labels(), tmp_path / "t.png", truth=truth)
    p2 = plot_class_ap({"goal": 0.8, "card": 0.35, "shot": 0.0}, tmp_path / "ap.png")
    (tmp_path / "m.csv").write_text("epoch,train_loss,val_loss,val_map\n0,1.2,1.3,0.1\n1,0.8,1.0,\n2,0.5,0.9,0.4\n")
    p3 = plot_training_curves(tmp_path / "m.csv", tmp_path / "c.png")
    (tmp_path / "m.json").write_text(json.dumps([{"epoch": 0, "train_loss": 1.0, "val_map": 0.2}]))
    p4 = plot_training_curves(tmp_path / "m.json", tmp_path / "c2.png")
    for p in (p1, p2, p3, p4):
        assert p.stat().st_size > 1000
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width > 300
    with pytest.raises(ConfigError):
        plot_class_ap({}, tmp_path / "x.png")


def test_one_soccernet_writer(tmp_path):
    """``export --to soccernet`` and ``write_labels(..., "soccernet-results")`` are one writer (issue 13):
    same bytes for the same game, UrlLocal ``<game>/``, predictions by (half, position)."""
    from e2espot.data.formats import write_labels
    from e2espot.data.labels import LabelSet

    game = "england_epl/2016-2017/a - b"
    h1, h2 = labels(), labels()
    h1.extra.update(game=game, half=1)
    h2.extra.update(game=game, half=2)
    h2.events = h2.events[:2]
    one = write_soccernet_results([h1, h2], tmp_path / "one.json")
    (folder,) = write_labels(LabelSet(["card", "goal", "shot"], [h1, h2]), tmp_path / "res", "soccernet-results")
    assert folder == tmp_path / "res" / game / "results_spotting.json"
    assert one.read_bytes() == folder.read_bytes()
    data = json.loads(one.read_text())
    assert data["UrlLocal"] == game + "/"
    assert [(p["half"], p["position"]) for p in data["predictions"]] == [
        (1, 4000), (1, 10000), (1, 10000), (1, 61200), (2, 4000), (2, 10000)]
    with pytest.raises(ConfigError, match="2 games"):
        write_soccernet_results([h1, labels()], tmp_path / "x.json", half=2)

"""Futsal JSON (file, list, folder) and CSV (frame or time_s) readers and writers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2espot.data.formats import read_labels, write_labels
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import LabelFormatError

MATCH = {
    "video": "match_01",
    "num_frames": 5400,
    "num_events": 2,
    "events": [
        {"frame": 120, "label": "pass", "team": "left"},
        {"frame": 4000, "label": "shot", "team": "right"},
    ],
}


def test_futsal_single_file_list_and_folder(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps(MATCH))
    one = read_labels(tmp_path / "one.json")  # detected
    assert one.classes == ["pass", "shot"]
    video = one.videos[0]
    assert (video.video, video.num_frames, video.fps) == ("match_01", 5400, None)
    assert [(e.frame, e.label, e.team) for e in video.events] == [
        (120, "pass", "left"),
        (4000, "shot", "right"),
    ]
    second = {**MATCH, "video": "match_02", "venue": "Lisbon"}
    (tmp_path / "many.json").write_text(json.dumps([MATCH, second]))
    many = read_labels(tmp_path / "many.json", "futsal", fps=25.0)
    assert [v.video for v in many.videos] == ["match_01", "match_02"] and many.videos[1].fps == 25.0
    assert many.videos[1].extra == {"venue": "Lisbon"}
    out = write_labels(many, tmp_path / "folder", "futsal")
    assert [p.name for p in out] == ["match_01.json", "match_02.json"]
    assert json.loads(out[0].read_text()) == MATCH  # the format has no fps
    assert read_labels(tmp_path / "folder", fps=25.0) == many
    (tmp_path / "folder" / "class.txt").write_text("shot\npass")
    assert read_labels(tmp_path / "folder").classes == ["shot", "pass"]  # still detected as futsal


def test_futsal_errors(tmp_path: Path) -> None:
    bad = {**MATCH, "events": [{"frame": 120, "label": "pass"}, {"frame": 5400, "label": "shot"}]}
    (tmp_path / "m.json").write_text(json.dumps(bad))
    with pytest.raises(
        LabelFormatError, match=r"m\.json: video 'match_01', event #1: frame 5400 >= num_frames 5400"
    ):
        read_labels(tmp_path / "m.json", "futsal", strict=True)
    assert [e.frame for e in read_labels(tmp_path / "m.json", "futsal").videos[0].events] == [120, 5399]
    (tmp_path / "m.json").write_text(json.dumps({k: v for k, v in MATCH.items() if k != "num_frames"}))
    with pytest.raises(LabelFormatError, match=r"m\.json \(video 'match_01'\): missing key 'num_frames'"):
        read_labels(tmp_path / "m.json", "futsal")
    (tmp_path / "m.json").write_text('"match"')
    with pytest.raises(
        LabelFormatError, match=r"top level must be a video object or an array of them, got str"
    ):
        read_labels(tmp_path / "m.json", "futsal")
    (tmp_path / "m.json").write_text(json.dumps([MATCH, MATCH]))
    with pytest.raises(LabelFormatError, match=r"duplicate video id 'match_01'"):
        read_labels(tmp_path / "m.json", "futsal")


def test_csv_round_trip_and_columns(tmp_path: Path) -> None:
    labels = LabelSet(
        ["a", "b"],
        [
            VideoLabels(
                "v1", 29.97, None, [Event(1, "a", score=0.25), Event(7, "b", score=1e-05, team="left")]
            ),
            VideoLabels("v2", 29.97, None, [Event(0, "b")]),
        ],
    )
    (path,) = write_labels(labels, tmp_path / "ev.csv", "csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "video,frame,time_s,label,score,team"
    assert lines[1] == "v1,1,0.033367,a,0.25,"
    assert lines[3] == "v2,0,0.000000,b,,"
    assert read_labels(path, fps=29.97) == labels
    no_team = LabelSet(["a"], [VideoLabels("v", None, None, [Event(3, "a")])])
    (path,) = write_labels(no_team, tmp_path / "n.csv", "csv")
    assert path.read_text() == "video,frame,time_s,label,score\nv,3,,a,\n"


def test_csv_time_only_needs_fps(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("video,time_s,label,score\nv,0.28,goal,0.9\nv,1.0,goal,\n")
    with pytest.raises(
        LabelFormatError, match=r"t\.csv: line 2: only time_s is given, so the fps is needed.*fps="
    ):
        read_labels(path, "csv")
    labels = read_labels(path, "csv", fps=25.0)
    assert [(e.frame, e.score) for e in labels.videos[0].events] == [(7, 0.9), (25, None)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("video,label\nv,a\n", r"lacks \['frame or time_s'\]"),
        ("video,frame,label\nv,-3,a\n", r"line 2: frame -3 is negative"),
        ("video,frame,label\nv,2.5,a\n", r"line 2: frame '2\.5' is not an integer"),
        ("video,frame,label,score\nv,2,a,x\n", r"line 2: score 'x' is not a number"),
        ("video,frame,label\nv,2,\n", r"line 2: empty label field"),
    ],
)
def test_csv_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "e.csv"
    path.write_text(text)
    with pytest.raises(LabelFormatError, match=r"e\.csv: .*" + expected):
        read_labels(path, "csv")


def test_csv_unknown_class_with_class_file(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("video,frame,label\nv,2,a\nv,3,zz\n")
    (tmp_path / "class.txt").write_text("a\n")
    with pytest.raises(LabelFormatError, match=r"e\.csv: video 'v', event #1: unknown class 'zz'"):
        read_labels(path, "csv", classes=tmp_path / "class.txt")

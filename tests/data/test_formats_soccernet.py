"""SoccerNet Labels-v2 / Labels-ball (two-halves and one-video layouts) and results_spotting.json."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from e2espot.data.formats import detect_format, read_labels, write_labels
from e2espot.errors import LabelFormatError

GAME_A = "england_epl/2014-2015/2015-02-21 - 18-00 Chelsea 1 - 1 Burnley"
GAME_B = "europe_uefa-champions-league/2016-2017/2017-03-08 - 22-45 Barcelona 6 - 1 Paris SG"
BALL_GAME = "england_efl/2019-2020/2019-10-01 - Reading - Fulham"


def _annotation(
    half: int, position_ms: int | str, label: str, team: str = "left", vis: str = "visible"
) -> dict:
    seconds = int(position_ms) // 1000
    return {
        "gameTime": f"{half} - {seconds // 60:02d}:{seconds % 60:02d}",
        "label": label,
        "position": str(position_ms),
        "team": team,
        "visibility": vis,
    }


def _write_game(root: Path, game: str, data: dict, name: str = "Labels-v2.json") -> Path:
    path = root / game / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4))
    return path


def _write_video(path: Path, num_frames: int, fps: int = 25) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.fixture()
def v2_root(tmp_path: Path) -> Path:
    """Two games in the two-halves layout; game A has a 2 s video for half 1."""
    root = tmp_path / "SoccerNet"
    _write_game(
        root,
        GAME_A,
        {
            "UrlLocal": GAME_A + "/",
            "UrlYoutube": "",
            "annotations": [
                _annotation(2, 754000, "Goal", "right"),
                _annotation(1, 1000, "Kick-off", "not applicable", "not shown"),
                _annotation(1, 1960, "Foul"),
            ],
        },
    )
    _write_game(
        root,
        GAME_B,
        {
            "UrlLocal": GAME_B + "/",
            "UrlYoutube": "",
            "annotations": [
                _annotation(1, 61000, "Goal"),
            ],
        },
    )
    _write_video(root / GAME_A / "1_224p.mkv", 50)
    return root


def test_two_halves_layout(v2_root: Path) -> None:
    labels = read_labels(v2_root)  # detected, fps 25
    ids = [v.video for v in labels.videos]
    assert ids == [f"{GAME_A}/1", f"{GAME_A}/2", f"{GAME_B}/1", f"{GAME_B}/2"]
    assert labels.classes == ["Foul", "Goal", "Kick-off"]
    half1, half2 = labels.videos[0], labels.videos[1]
    assert half1.extra["game"] == GAME_A and half1.extra["half"] == 1 and half2.extra["half"] == 2
    assert half1.num_frames == 50 and half2.num_frames is None  # only half 1 has a video to probe
    kick_off, foul = half1.events
    assert (kick_off.frame, kick_off.team, kick_off.visibility) == (25, "not applicable", "not shown")
    assert foul.frame == 49 and foul.extra["position_ms"] == 1960  # int(1.96 * 25)
    assert half2.events[0].frame == 754000 * 25 // 1000
    assert half1.extra["file_keys"] == {"UrlLocal": GAME_A + "/", "UrlYoutube": ""}
    at2fps = read_labels(v2_root, "soccernet", fps=2.0, probe_videos=False)
    assert at2fps.videos[0].events[1].frame == 3 and at2fps.videos[0].num_frames is None


def test_two_halves_round_trip(v2_root: Path, tmp_path: Path) -> None:
    labels = read_labels(v2_root, "soccernet", probe_videos=False)
    written = write_labels(labels, tmp_path / "out", "soccernet")
    assert written == [
        tmp_path / "out" / GAME_A / "Labels-v2.json",
        tmp_path / "out" / GAME_B / "Labels-v2.json",
    ]
    raw = json.loads(written[0].read_text())
    assert list(raw) == ["UrlLocal", "UrlYoutube", "annotations"]
    assert raw["annotations"][0] == _annotation(1, 1000, "Kick-off", "not applicable", "not shown")
    assert raw["annotations"][2] == _annotation(2, 754000, "Goal", "right")
    assert read_labels(tmp_path / "out", "soccernet") == labels
    # an edited frame gets a fresh position; an untouched one keeps its exact ms
    labels.videos[0].events[0].frame = 100
    raw = json.loads(write_labels(labels, tmp_path / "edit", "soccernet")[0].read_text())
    assert raw["annotations"][0]["position"] == "4000" and raw["annotations"][0]["gameTime"] == "1 - 00:04"
    assert raw["annotations"][1]["position"] == "1960"


def test_one_video_per_game_layout(tmp_path: Path) -> None:
    root = tmp_path / "ball"
    data = {
        "UrlLocal": "",
        "halftime": "1 - 46:04",
        "annotations": [
            _annotation(1, 3_000_040, "PASS"),
            _annotation(1, 40, "DRIVE", "right"),
        ],
    }
    _write_game(root, BALL_GAME, data, "Labels-ball.json")
    labels = read_labels(root)
    (video,) = labels.videos
    assert video.video == BALL_GAME and video.extra["half"] == 1 and video.num_frames is None
    assert video.extra["file_keys"]["halftime"] == "1 - 46:04"
    assert [e.frame for e in video.events] == [75001, 1]
    out = write_labels(labels, tmp_path / "out", "soccernet")
    assert out == [tmp_path / "out" / BALL_GAME / "Labels-ball.json"]
    raw = json.loads(out[0].read_text())
    assert raw["halftime"] == "1 - 46:04" and raw["annotations"][0]["gameTime"] == "1 - 50:00"
    assert read_labels(tmp_path / "out") == labels
    # a game video next to the labels gives num_frames; annotations past its end are an error with strict,
    # else they move to the last frame with a warning
    _write_video(root / BALL_GAME / "224p.mp4", 20)
    with pytest.raises(
        LabelFormatError, match=r"Labels-ball\.json: annotation #0 .*frame 75001 >= num_frames 20"
    ):
        read_labels(root, strict=True)
    assert [e.frame for e in read_labels(root).videos[0].events][0] == 19


def test_label_file_option_and_both_present(v2_root: Path) -> None:
    _write_game(v2_root, GAME_A, {"annotations": [_annotation(1, 500, "PASS")]}, "Labels-ball.json")
    with pytest.raises(
        LabelFormatError, match=r"holds both Labels-v2\.json and Labels-ball\.json; pass label_file="
    ):
        read_labels(v2_root, "soccernet")
    ball = read_labels(v2_root, "soccernet", label_file="Labels-ball.json")
    # no halftime key, half 1 only, but 1_224p.mkv in the folder: the 2023 two-halves ball layout
    assert [v.video for v in ball.videos] == [f"{GAME_A}/1", f"{GAME_A}/2"] and ball.classes == ["PASS"]
    game = read_labels(v2_root, "soccernet", label_file="Labels-ball.json", layout="game", probe_videos=False)
    assert [v.video for v in game.videos] == [GAME_A]


def _bad(tmp_path: Path, annotation: dict | list) -> Path:
    data = (
        {"annotations": [_annotation(1, 1000, "Goal"), annotation]}
        if isinstance(annotation, dict)
        else annotation
    )
    return _write_game(tmp_path / "root", GAME_A, data)


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (
            {**_annotation(1, 1000, "Goal"), "gameTime": "1 - 12.34"},
            r"annotation #1: gameTime '1 - 12\.34' is malformed; expected 'H - mm:ss'",
        ),
        ({**_annotation(1, 1000, "Goal"), "position": "-40"}, r"annotation #1: position '-40' ms is negative"),
        (
            {**_annotation(1, 1000, "Goal"), "position": "754000.5"},
            r"annotation #1: position '754000\.5' is not an int",
        ),
        ({"gameTime": "1 - 00:01", "position": "1000"}, r"annotation #1: missing key 'label'"),
        (_annotation(3, 1000, "Goal"), r"annotation #1 .*half 3 is not valid in the 'halves' layout"),
    ],
)
def test_annotation_errors(tmp_path: Path, annotation: dict, expected: str) -> None:
    path = _bad(tmp_path, annotation)
    with pytest.raises(LabelFormatError, match=r"Labels-v2\.json: " + expected):
        read_labels(path.parents[3], "soccernet", strict=True)  # strict: half 3 is an error, not ignored


def test_unknown_class_is_an_error_not_dropped(tmp_path: Path) -> None:
    path = _bad(tmp_path, _annotation(1, 2000, "Goall"))
    (tmp_path / "class.txt").write_text("Goal\nFoul\n")
    with pytest.raises(
        LabelFormatError, match=r"annotation #1 \(gameTime '1 - 00:02'\): label: unknown class 'Goall'"
    ):
        read_labels(path.parents[3], "soccernet", classes=tmp_path / "class.txt")


def test_wrong_top_level_and_invalid_json(tmp_path: Path) -> None:
    path = _bad(tmp_path, [])
    with pytest.raises(LabelFormatError, match=r"top level must be a JSON object, got list"):
        read_labels(path, "soccernet")
    path.write_text('{"annotations": [\n\n  {"label": }]}')
    with pytest.raises(LabelFormatError, match=r"invalid JSON at line 3"):
        read_labels(path, "soccernet")


def test_duplicate_video_ids_across_games(tmp_path: Path) -> None:
    # the same game under two roots is fine; the same id twice in one set is not
    root = tmp_path / "r"
    _write_game(root, GAME_A, {"annotations": []})
    labels = read_labels(root, "soccernet")
    write_labels(labels, tmp_path / "same", "soccernet")
    assert json.loads((tmp_path / "same" / GAME_A / "Labels-v2.json").read_text()) == {"annotations": []}
    labels.videos.append(labels.videos[0].copy())
    write_labels(labels, tmp_path / "out", "spot")
    with pytest.raises(LabelFormatError, match=rf"duplicate video id '{GAME_A}/1'"):
        read_labels(tmp_path / "out" / "train.json", "spot")


# ---------------------------------------------------------------- results_spotting.json


def _results(half_value: object = "1") -> dict:
    return {
        "UrlLocal": GAME_A,
        "predictions": [
            {
                "gameTime": "1 - 0:31",
                "label": "Goal",
                "position": "31500",
                "half": half_value,
                "confidence": "0.0066",
            },
            {"gameTime": "2 - 01:00", "label": "Foul", "position": 60000, "half": 2, "confidence": 0.5},
        ],
    }


def test_results_folder_strings_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "preds" / GAME_A / "results_spotting.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_results()))
    assert detect_format(tmp_path / "preds") == "soccernet-results"
    labels = read_labels(tmp_path / "preds")
    assert [v.video for v in labels.videos] == [f"{GAME_A}/1", f"{GAME_A}/2"]
    goal = labels.videos[0].events[0]
    assert (goal.frame, goal.score, goal.extra["position_ms"]) == (787, 0.0066, 31500)
    out = write_labels(labels, tmp_path / "again", "soccernet-results")
    raw = json.loads(out[0].read_text())
    assert raw["UrlLocal"] == GAME_A
    assert raw["predictions"][0] == {
        "gameTime": "1 - 00:31",
        "label": "Goal",
        "position": 31500,
        "half": 1,
        "confidence": 0.0066,
    }
    assert read_labels(tmp_path / "again", "soccernet-results") == labels


def test_results_zip_round_trip(tmp_path: Path) -> None:
    labels = read_labels(_write_results(tmp_path), "soccernet-results")
    out = write_labels(labels, tmp_path / "sub.zip", "soccernet-results")
    assert out == [tmp_path / "sub.zip"]
    with zipfile.ZipFile(out[0]) as archive:
        assert archive.namelist() == [f"{GAME_A}/results_spotting.json"]
    assert detect_format(out[0]) == "soccernet-results"
    assert read_labels(out[0]) == labels


def _write_results(tmp_path: Path, data: dict | None = None) -> Path:
    path = tmp_path / "p" / GAME_A / "results_spotting.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data or _results()))
    return tmp_path / "p"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"half": "one"}, r"prediction #0: half 'one' is not an integer"),
        ({"confidence": "high"}, r"prediction #0: confidence 'high' is not a number"),
        ({"gameTime": "first half"}, r"prediction #0: gameTime 'first half' is malformed"),
        ({"position": -5}, r"prediction #0: position -5 ms is negative"),
    ],
)
def test_results_errors(tmp_path: Path, change: dict, expected: str) -> None:
    data = _results()
    data["predictions"][0].update(change)
    with pytest.raises(LabelFormatError, match=r"results_spotting\.json: " + expected):
        read_labels(_write_results(tmp_path, data), "soccernet-results")
    data = _results()
    del data["predictions"][1]["half"]
    with pytest.raises(LabelFormatError, match=r"prediction #1: missing key 'half'"):
        read_labels(_write_results(tmp_path, data), "soccernet-results")

"""`e2espot convert` through cli.main."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from e2espot.cli import main
from e2espot.data.formats import read_labels
from e2espot.data.video.writer import write_video

GAME = "england_efl/2019-2020/2019-10-01 - Reading - Fulham"


def test_spot_fixture_to_csv_and_back(
    spot_fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = spot_fixtures / "fs_comp" / "val.json"
    assert main(["convert", str(src), str(tmp_path / "val.csv"), "--to", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"spot -> csv: 59 videos, 584 events, 4 classes; wrote 2 files to {tmp_path / 'val.csv'}"
    )
    # the output is read back: CSV keeps fps (recovered from frame + time_s) and the class list (class.txt
    # beside), and convert names what a CSV cannot hold
    assert out[1] == (
        "not kept by csv: num_frames of 59 video(s); width of 59 video(s); height of 59 video(s); "
        "comment of 584 event(s)"
    )
    original, back = read_labels(src), read_labels(tmp_path / "val.csv")
    assert back.classes == original.classes
    assert [v.fps for v in back] == [v.fps for v in original]
    assert [(v.video, [(e.frame, e.label) for e in v.events]) for v in back] == [
        (v.video, [(e.frame, e.label) for e in v.events]) for v in original
    ]
    # E2E-Spot files need num_frames, which a CSV does not hold: a clear error naming --videos
    assert main(["convert", str(tmp_path / "val.csv"), str(tmp_path / "back.json"), "--to", "spot"]) == 2
    err = capsys.readouterr().err
    assert "need num_frames for every video; 59 of 59 have none" in err and "Pass --videos DIR" in err
    assert not (tmp_path / "back.json").exists()


def test_soccernet_to_spot_with_split(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "sn"
    video = tmp_path / "v.mkv"
    write_video(video, np.zeros((75, 32, 32, 3), np.uint8), 25)
    for g in range(10):
        game = src / "league" / "2020-2021" / f"game {g}"
        game.mkdir(parents=True)
        annotations = [
            {
                "gameTime": f"{h} - 00:0{h}",
                "label": "Goal",
                "position": str(1000 * h),
                "team": "left",
                "visibility": "visible",
            }
            for h in (1, 2)
        ]
        (game / "Labels-v2.json").write_text(json.dumps({"UrlLocal": "", "annotations": annotations}))
        for h in (1, 2):  # 3 s at 25 fps: 6 frames at the labels' 2 fps
            (tmp_path / "vids" / game.relative_to(src)).mkdir(parents=True, exist_ok=True)
            shutil.copy(video, tmp_path / "vids" / game.relative_to(src) / f"{h}_224p.mkv")
    args = ["convert", str(src), str(tmp_path / "out"), "--from", "soccernet", "--to", "spot", "--split",
            "60/20/20", "--seed", "1", "--fps", "2"]
    assert main(args) == 2  # SoccerNet labels carry no num_frames
    assert "Pass --videos DIR" in capsys.readouterr().err
    assert main([*args, "--videos", str(tmp_path / "vids")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line == (
        f"soccernet -> spot: 20 videos, 20 events, 1 classes; split train 12, val 4, test 4; "
        f"wrote 4 files to {tmp_path / 'out'}"
    )
    assert {v.num_frames for v in read_labels(tmp_path / "out")} == {6}
    train = read_labels(tmp_path / "out", split="train")
    assert len(train) == 12 and train.videos[1].events[0].frame == 4  # 2000 ms at 2 fps
    games = {v.extra["game"] for v in train}
    test = read_labels(tmp_path / "out", split="test")
    assert games.isdisjoint(v.extra["game"] for v in test)
    # and back to SoccerNet: the game extras survive the trip through spot JSON
    assert main(["convert", str(tmp_path / "out"), str(tmp_path / "sn2"), "--to", "soccernet"]) == 0
    again = json.loads((tmp_path / "sn2" / "league/2020-2021/game 3/Labels-v2.json").read_text())
    assert [a["position"] for a in again["annotations"]] == ["1000", "2000"]


def test_ball_to_results_zip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    game = tmp_path / "ball" / GAME
    game.mkdir(parents=True)
    (game / "Labels-ball.json").write_text(
        json.dumps(
            {
                "halftime": "1 - 46:00",
                "annotations": [
                    {
                        "gameTime": "1 - 00:01",
                        "label": "PASS",
                        "position": "1040",
                        "team": "left",
                        "visibility": "visible",
                    }
                ],
            }
        )
    )
    assert (
        main(
            [
                "convert",
                str(tmp_path / "ball"),
                str(tmp_path / "p.zip"),
                "--to",
                "soccernet-results",
                "--label-file",
                "Labels-ball.json",
            ]
        )
        == 0
    )
    preds = read_labels(tmp_path / "p.zip")
    assert [(v.video, [(e.frame, e.score) for e in v.events]) for v in preds] == [(GAME, [(26, 1.0)])]


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "e.csv").write_text("video,time_s,label\nv,1.5,a\n")
    assert main(["convert", str(tmp_path / "e.csv"), str(tmp_path / "o.json"), "--to", "spot"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: LabelFormatError: ") and "fps" in err and err.count("\n") == 1
    assert main(["convert", str(tmp_path / "e.csv"), str(tmp_path / "o.json"), "--to", "spott"]) == 2
    assert "unknown label format 'spott'; did you mean 'spot'?" in capsys.readouterr().err
    assert (
        main(
            [
                "convert",
                str(tmp_path / "e.csv"),
                str(tmp_path / "o"),
                "--to",
                "spot",
                "--fps",
                "25",
                "--label-file",
                "Labels-ball.json",
            ]
        )
        == 2
    )
    assert "--label-file applies to the soccernet format" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

"""Label files as they exist in the wild: events past the last frame, `valid` splits, T-DEED split lists."""

from __future__ import annotations

import json
import logging

import pytest

from e2espot.cli import main
from e2espot.data.formats import detect_format, read_labels
from e2espot.data.sources import read_split, soccernet_games
from e2espot.errors import LabelFormatError


def _entry(video: str, frames: list[int], num_frames: int = 100) -> dict:
    return {"video": video, "num_frames": num_frames, "fps": 2,
            "events": [{"frame": f, "label": "Goal", "comment": ""} for f in frames]}


def test_events_at_or_after_the_last_frame_move_there_with_one_warning_per_file(tmp_path, caplog):
    # as OSL-ActionSpotting's 2 fps SoccerNet-v2 split JSONs: a few events at/after num_frames
    (tmp_path / "train.json").write_text(json.dumps([_entry("a", [10, 100, 120]), _entry("b", [99, 105, 200, 101])]))
    (tmp_path / "val.json").write_text(json.dumps([_entry("c", [5])]))
    (tmp_path / "class.txt").write_text("Goal")
    with caplog.at_level(logging.WARNING):
        labels = read_labels(tmp_path)
    assert [[e.frame for e in v.events] for v in labels] == [[10, 99, 99], [99, 99, 99, 99], [5]]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # one per file; val.json has none
    assert "train.json: 5 events at or after the last frame (" in warnings[0]
    assert "video 'a' event #1 (Goal) frame 100 >= num_frames 100; video 'a' event #2 (Goal) frame 120" in warnings[0]
    assert "... (2 more)" in warnings[0] and "moved to the last frame" in warnings[0] and "--strict" in warnings[0]
    with pytest.raises(LabelFormatError, match=r"train\.json: video 'a', event #1: frame 100 >= num_frames 100"):
        read_labels(tmp_path, strict=True)
    # the CLI: --strict makes it an error, by default convert goes on
    assert main(["convert", str(tmp_path), str(tmp_path / "out.csv"), "--to", "csv", "--strict"]) == 2
    assert main(["convert", str(tmp_path), str(tmp_path / "out.csv"), "--to", "csv"]) == 0


def test_valid_and_challenge_split_names(tmp_path):
    (tmp_path / "class.txt").write_text("Goal")
    (tmp_path / "train.json").write_text(json.dumps([_entry("a", [1])]))
    (tmp_path / "valid.json").write_text(json.dumps([_entry("b", [2])]))
    (tmp_path / "challenge.json").write_text(json.dumps([_entry("c", [3])]))
    assert [v.video for v in read_labels(tmp_path, split="val")] == ["b"]  # the devkit's "valid"
    assert [v.video for v in read_split(tmp_path, "val")] == ["b"]
    assert [v.video for v in read_split(tmp_path, "challenge")] == ["c"]
    assert [v.video for v in read_labels(tmp_path)] == ["a", "b", "c"]
    # a SoccerNet splits file spelled the devkit's way
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["l/s/g1"], "valid": ["l/s/g2"]}))
    assert soccernet_games(tmp_path, "val", None) == ["l/s/g2"]
    # no val split at all: a LabelFormatError, which training turns into a warning (best = last epoch)
    with pytest.raises(LabelFormatError, match=r"no 'test' entry; has \['train', 'valid'\]"):
        soccernet_games(tmp_path, "test", None)


def test_tdeed_split_lists(tmp_path, capsys):
    # T-DEED / AdaSpot soccer splits: only video and num_frames (25 fps), events live in Labels-*.json
    tdeed = tmp_path / "soccernetball"
    tdeed.mkdir()
    entries = [{"video": "england_efl/2019-2020/2019-10-01 - Reading - Fulham/half1", "num_frames": 67500},
               {"video": "england_efl/2019-2020/2019-10-01 - Reading - Fulham/half2", "num_frames": 67600},
               {"video": "england_efl/2019-2020/2019-10-02 - Leeds - Stoke", "num_frames": 135000}]
    (tdeed / "test.json").write_text(json.dumps(entries))
    (tdeed / "valid.json").write_text(json.dumps(entries[2:]))
    assert detect_format(tdeed / "test.json") == "spot"
    split = read_labels(tdeed / "test.json")
    assert [(v.video, v.num_frames, v.events) for v in split][0] == (entries[0]["video"], 67500, [])
    # as --splits: the folder of split lists, or one list named after its split
    games = ["england_efl/2019-2020/2019-10-01 - Reading - Fulham", "england_efl/2019-2020/2019-10-02 - Leeds - Stoke"]
    assert soccernet_games(tmp_path, "test", tdeed) == games
    assert soccernet_games(tmp_path, "val", tdeed) == games[1:]
    assert soccernet_games(tmp_path, "test", tdeed / "test.json") == games
    with pytest.raises(LabelFormatError, match=r"a split list for 'test', not for 'train'"):
        soccernet_games(tmp_path, "train", tdeed / "test.json")
    # and convert reads it: spot out keeps num_frames
    assert main(["convert", str(tdeed / "test.json"), str(tmp_path / "o" / "test.json"), "--to", "spot"]) == 0
    assert "everything read was kept" in capsys.readouterr().out
    back = json.loads((tmp_path / "o" / "test.json").read_text())
    assert [(e["video"], e["num_frames"], e["events"]) for e in back] == [
        (e["video"], e["num_frames"], []) for e in entries]


def test_osl_split_jsons(tmp_path, caplog):
    # OSL-ActionSpotting's datasets_jsons/soccernetv2/2_fps/*/Valid.json: spot entries at 2.0833 fps, capitalised
    # split names, an extra num_frames_base, and events at/after num_frames
    entry = {"events": [{"frame": 0, "label": "Kick-off", "team": "away", "visibility": "visible"},
                        {"frame": 5625, "label": "Foul", "team": "home", "visibility": "not shown"}],
             "fps": 2.0833333333333335, "height": 224, "num_events": 2, "num_frames": 5625, "num_frames_base": 67500,
             "video": "england_epl/2014-2015/2015-04-11_-_19-30_Burnley_0_-_1_Arsenal/1_224p", "width": 398}
    (tmp_path / "Valid.json").write_text(json.dumps([entry]))
    (tmp_path / "Test.json").write_text(json.dumps([{**entry, "video": entry["video"].replace("1_224p", "2_224p")}]))
    assert detect_format(tmp_path) == "spot"
    with caplog.at_level(logging.WARNING):
        val = read_labels(tmp_path, split="val")
    (video,) = val.videos
    assert [(e.frame, e.team, e.visibility) for e in video.events] == [(0, "away", "visible"),
                                                                        (5624, "home", "not shown")]
    assert video.fps == pytest.approx(2.0833333333333335) and video.extra["num_frames_base"] == 67500
    assert sum("1 event at or after the last frame" in r.getMessage() for r in caplog.records) == 1
    assert len(read_labels(tmp_path)) == 2 and read_split(tmp_path, "test").videos[0].video.endswith("2_224p")

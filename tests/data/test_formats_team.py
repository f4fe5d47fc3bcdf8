"""Team fields (left / right / not applicable / none, team_score) through every label format."""

from __future__ import annotations

import json

import pytest

from e2espot.data.formats import read_labels, write_labels
from e2espot.data.labels import TEAM_SCORE_KEY, Event, LabelSet, VideoLabels, parse_team
from e2espot.errors import ConfigError, LabelFormatError

TEAMS = ["left", "right", None]


def _labels(game_ids: bool = False) -> LabelSet:
    video = "league/2030-2031/a - b" if game_ids else "v1"
    extra = {"game": video, "half": 1} if game_ids else {}
    events = [Event(10 * (i + 1), "PASS", score=0.5, team=t) for i, t in enumerate(TEAMS)]
    return LabelSet(["PASS"], [VideoLabels(video, 25.0, 100, events, extra=extra)])


@pytest.mark.parametrize("fmt,name", [("spot", "labels"), ("futsal", "v.json"), ("csv", "e.csv"),
                                      ("soccernet", "sn"), ("soccernet-results", "res")])
def test_team_round_trips_in_every_format(tmp_path, fmt, name):
    labels = _labels(game_ids=fmt.startswith("soccernet"))
    write_labels(labels, tmp_path / name, fmt)
    opts: dict = {"fps": 25.0} if fmt == "csv" else {}
    if fmt == "soccernet":
        opts["probe_videos"] = False
    if fmt == "spot":
        opts["split"] = "train"  # the writer's default split
    back = read_labels(tmp_path / name, fmt, **opts)
    assert [(e.frame, e.team) for v in back for e in v.events] == [(10, "left"), (20, "right"), (30, None)]


def test_soccernet_not_applicable_and_home_away(tmp_path):
    game = tmp_path / "league" / "2015-2016" / "x - y"
    game.mkdir(parents=True)
    anns = [{"gameTime": "1 - 00:01", "label": "Goal", "position": "1000", "team": t, "visibility": "visible"}
            for t in ("home", "away", "not applicable")]
    (game / "Labels-v2.json").write_text(json.dumps({"annotations": anns}))
    kept = read_labels(tmp_path, "soccernet", probe_videos=False)
    assert [e.team for e in kept.videos[0].events] == ["home", "away", "not applicable"]
    for home_side, expected in (("left", ["left", "right"]), ("right", ["right", "left"])):
        mapped = read_labels(tmp_path, "soccernet", probe_videos=False, home_side=home_side)
        assert [e.team for e in mapped.videos[0].events] == [*expected, "not applicable"]
    # written back as read
    write_labels(kept, tmp_path / "out", "soccernet")
    (out,) = (tmp_path / "out").rglob("Labels-v2.json")
    written = json.loads(out.read_text())["annotations"]
    assert [a["team"] for a in written] == ["home", "away", "not applicable"]
    with pytest.raises(ConfigError, match="home_side must be 'left' or 'right'"):
        read_labels(tmp_path, "soccernet", probe_videos=False, home_side="home")


def test_parse_team_rules():
    assert parse_team(None, "x") is None and parse_team("", "x") is None
    assert parse_team("left", "x") == "left" and parse_team("not applicable", "x") == "not applicable"
    assert parse_team("away", "x", home_side="right") == "left"
    with pytest.raises(LabelFormatError, match=r"f.json: event #3: team 1 is not a string"):
        parse_team(1, "f.json: event #3")


def test_futsal_rejects_a_non_string_team(tmp_path):
    path = tmp_path / "v.json"
    events = [{"frame": 1, "label": "a", "team": 0}]
    path.write_text(json.dumps({"video": "v", "num_frames": 9, "events": events}))
    with pytest.raises(LabelFormatError, match=r"event #0: team 0 is not a string"):
        read_labels(path, "futsal")


def test_csv_team_and_team_score_columns(tmp_path):
    labels = _labels()
    labels.videos[0].events[0].extra[TEAM_SCORE_KEY] = 0.875
    (path,) = write_labels(labels, tmp_path / "e.csv", "csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "video,frame,time_s,label,score,team,team_score"
    assert lines[1] == "v1,10,0.400000,PASS,0.5,left,0.875"
    assert lines[3] == "v1,30,1.200000,PASS,0.5,,"
    back = read_labels(path, "csv", fps=25.0)
    assert [e.extra.get(TEAM_SCORE_KEY) for e in back.videos[0].events] == [0.875, None, None]
    path.write_text(lines[0] + "\nv1,10,,PASS,0.5,left,high\n")
    with pytest.raises(LabelFormatError, match=r"line 2: team_score 'high' is not a number"):
        read_labels(path, "csv")


def test_results_spotting_team_is_read_into_event_team(tmp_path):
    game = tmp_path / "league" / "2030-2031" / "a - b"
    game.mkdir(parents=True)
    preds = [{"gameTime": "1 - 0:1", "label": "PASS", "position": 1000, "half": 1, "confidence": 0.5,
              "team": "right", "team_score": 0.75}]  # sn-teamspotting writes unpadded gameTime
    (game / "results_spotting.json").write_text(json.dumps({"predictions": preds}))
    (event,) = read_labels(tmp_path, "soccernet-results").videos[0].events
    assert (event.frame, event.team, event.extra) == (25, "right", {"position_ms": 1000, "team_score": 0.75})

"""Team fields in the export writers (CSV, results_spotting.json, prediction JSON)."""

from __future__ import annotations

import json

from e2espot.data.labels import Event, VideoLabels
from e2espot.export import writers


def _video() -> VideoLabels:
    events = [Event(25, "PASS", score=0.5, team="left", extra={"team_score": 0.875}),
              Event(50, "SHOT", score=0.25, team="right"), Event(75, "OUT", score=0.125)]
    return VideoLabels("g", 25.0, 100, events, extra={"game": "league/2030-2031/a - b", "half": 1})


def test_csv_team_columns_only_when_present(tmp_path):
    path = writers.write_csv([_video()], tmp_path / "e.csv")
    assert path.read_text().splitlines() == [
        "video,frame,time_s,label,score,team,team_score",
        "g,25,1.000000,PASS,0.5,left,0.875",
        "g,50,2.000000,SHOT,0.25,right,",
        "g,75,3.000000,OUT,0.125,,",
    ]
    plain = VideoLabels("g", 25.0, 100, [Event(25, "PASS", score=0.5)])
    assert writers.write_csv([plain], tmp_path / "p.csv").read_text().splitlines()[0] == \
        "video,frame,time_s,label,score"


def test_results_spotting_carries_team_for_the_team_bas_evaluator(tmp_path):
    data = writers.soccernet_results([_video()])
    assert [(p["label"], p.get("team"), p.get("team_score")) for p in data["predictions"]] == [
        ("PASS", "left", 0.875), ("SHOT", "right", None), ("OUT", None, None)]
    path = writers.write_prediction_json(_video(), tmp_path / "p.json")
    events = json.loads(path.read_text())[0]["events"]
    assert [(e.get("team"), e.get("team_score")) for e in events] == [("left", 0.875), ("right", None),
                                                                       (None, None)]
    back = writers.read_predictions(path)
    assert [(e.team, e.extra.get("team_score")) for e in back.videos[0].events] == [
        ("left", 0.875), ("right", None), (None, None)]

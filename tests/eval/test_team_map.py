"""Team-mAP@1 against the golden cases of the official sn-teamspotting evaluator (shared/fixtures/team-map),
hand-computed cases, the error cases and the label-set entry point."""

from __future__ import annotations

import json
import math
import shutil
import zipfile
from pathlib import Path

import pytest

from e2espot.data.formats import read_labels, write_labels
from e2espot.data.labels import NOT_SHOWN, Event, LabelSet, VideoLabels
from e2espot.errors import ConfigError, LabelFormatError
from e2espot.eval.soccernet import BALL_CLASSES
from e2espot.eval.team import (
    evaluate_team_files,
    format_team_map,
    has_team_labels,
    team_class_names,
    team_map,
)

# conftest's SHARED_FIXTURES / team-map
TEAM_MAP = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "team-map"


def _expected() -> dict:
    if not (TEAM_MAP / "expected.json").is_file():
        return {}
    return json.loads((TEAM_MAP / "expected.json").read_text())


EXPECTED = _expected()
needs_fixtures = pytest.mark.skipif(not EXPECTED, reason=f"team-map golden fixtures not found at {TEAM_MAP}")


def _same(ours: float, ref) -> bool:
    if ref == "NaN":
        return isinstance(ours, float) and math.isnan(ours)
    return abs(ours - ref) <= 1e-12


def _case(case: str) -> tuple[Path, Path]:
    return TEAM_MAP / "cases" / case / "labels", TEAM_MAP / "cases" / case / "preds"


@needs_fixtures
@pytest.mark.parametrize("case", sorted(EXPECTED) or ["none"])
def test_golden_case_every_number(case):
    expected = EXPECTED[case]
    result = evaluate_team_files(*_case(case))
    assert result.games == expected["games"]
    ours = vars(result)
    compared = 0
    for key, ref in expected.items():
        if key == "games":
            continue
        if isinstance(ref, dict):
            assert list(ours[key]) == list(ref), key  # same names, same official order
            for name, value in ref.items():
                assert _same(ours[key][name], value), (case, key, name, ours[key][name], value)
                compared += 1
        else:
            assert _same(ours[key], ref), (case, key, ours[key], ref)
            compared += 1
    assert compared == 162  # every number the fixture gives for a case


@needs_fixtures
def test_golden_reference_stdout_rounded():
    """The official printout: Team-mAP and no-team mAP rounded to 2 decimals, per action."""
    text = (TEAM_MAP / "reference_stdout" / "c01_basic.txt").read_text()
    result = evaluate_team_files(*_case("c01_basic"))
    assert f"mAP - {result.team_map * 100:.2f}" in text
    assert f"mAP without considering the team - {result.no_team_map * 100:.2f}" in text
    assert f"PASS - {result.per_class['PASS'] * 100:.2f}" in text
    table = format_team_map(result)
    assert "Team-mAP@1: 57.48" in table and "mAP@1 without team: 66.74" in table


@needs_fixtures
def test_zip_trees_give_the_same_numbers(tmp_path):
    labels, preds = _case("c06_duplicates")
    zips = []
    for root, name in ((labels, "labels.zip"), (preds, "preds.zip")):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            for file in sorted(root.rglob("*.json")):
                archive.write(file, str(file.relative_to(root)))
        zips.append(path)
    from_zip = evaluate_team_files(*zips)
    assert from_zip.team_map == evaluate_team_files(labels, preds).team_map
    assert _same(from_zip.team_map, EXPECTED["c06_duplicates"]["team_map"])


@needs_fixtures
def test_official_dict_keys_and_values():
    result = evaluate_team_files(*_case("c04_class_absent_for_both_teams"))
    official = result.official()
    assert list(official) == ["mAP", "mAP_per_class", "mAP_visible", "mAP_per_class_visible", "mAP_unshown",
                              "mAP_per_class_unshown", "mAP_no_team", "mAP_per_class_no_team",
                              "mAP_visible_no_team"]
    assert math.isnan(official["mAP"])  # GOAL and FREE KICK have no GT at all
    assert math.isnan(result.per_class["GOAL"]) and result.per_class_no_team["GOAL"] == 0.0
    assert json.loads(json.dumps(result.to_json()))["team_map"] == "NaN"


@needs_fixtures
def test_label_set_entry_point_equals_files_through_our_readers():
    """Read with the soccernet / soccernet-results formats (team in Event.team) and score in memory."""
    for case in ("c01_basic", "c05_wrong_team", "c11_not_shown_visibility"):
        labels, preds = _case(case)
        truth = read_labels(labels, "soccernet", classes=list(BALL_CLASSES), probe_videos=False)
        pred = read_labels(preds, "soccernet-results", classes=list(BALL_CLASSES))
        assert has_team_labels(truth) and has_team_labels(pred)
        result = team_map(truth, pred)
        assert _same(result.team_map, EXPECTED[case]["team_map"]), case
        assert _same(result.no_team_map, EXPECTED[case]["no_team_map"]), case


# ----------------------------------------------------------------------------- the official error cases


needs_error_fixtures = pytest.mark.skipif(not (TEAM_MAP / "expected_errors.json").is_file(),
                                          reason=f"team-map error fixtures not found at {TEAM_MAP}")

ERROR_CASES = {
    "e01_prediction_without_team": ("prediction #", "has no 'team'"),
    "e02_gt_team_not_applicable": ("annotation #", "has team 'not applicable'"),
    "e03_missing_prediction_file": ("2030-09-21 - Gamma Town - Delta City/results_spotting.json",
                                    "needs a prediction file"),
    "e04_unknown_prediction_label": ("prediction #1", "label 'Pass' is not a Team-BAS action"),
}


@needs_error_fixtures
@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_where_the_official_code_stops_we_raise_a_clear_error(case):
    expected = json.loads((TEAM_MAP / "expected_errors.json").read_text())[case]
    with pytest.raises(LabelFormatError) as info:
        evaluate_team_files(*_case(case), games=expected["games"])
    message = str(info.value)
    for part in ERROR_CASES[case]:
        assert part in message, message


@needs_error_fixtures
@pytest.mark.parametrize("case", ["e01_prediction_without_team", "e02_gt_team_not_applicable"])
def test_missing_team_leniency_is_opt_in(case):
    labels, preds = _case(case)
    result = evaluate_team_files(labels, preds, missing_team="ignore")
    side = "predictions" if case.startswith("e01") else "truth"
    assert result.num_without_team[side] >= 1
    assert result.num_without_team["predictions" if side == "truth" else "truth"] == 0
    assert "left out of the team metric" in format_team_map(result)
    # the same events without the teamless one: the team metric is unchanged by them
    data_root = labels if side == "truth" else preds
    name = "Labels-ball.json" if side == "truth" else "results_spotting.json"
    key = "annotations" if side == "truth" else "predictions"
    (file,) = data_root.rglob(name)
    data = json.loads(file.read_text())
    teamless = [e for e in data[key] if e.get("team") not in ("left", "right")]
    assert len(teamless) == result.num_without_team[side]


# ----------------------------------------------------------------------------- hand-computed cases


def _game(tmp_path: Path, annotations: list[dict], predictions: list[dict]) -> tuple[Path, Path]:
    game = "league/2030-2031/a - b"
    (tmp_path / "labels" / game).mkdir(parents=True)
    (tmp_path / "preds" / game).mkdir(parents=True)
    (tmp_path / "labels" / game / "Labels-ball.json").write_text(json.dumps({"annotations": annotations}))
    (tmp_path / "preds" / game / "results_spotting.json").write_text(json.dumps({"predictions": predictions}))
    return tmp_path / "labels", tmp_path / "preds"


def _ann(ms: int, label="PASS", team="left", half=1, **kw) -> dict:
    return {"gameTime": f"{half} - 00:00", "label": label, "team": team, "position": str(ms), **kw}


def _pred(ms, conf, label="PASS", team="left") -> dict:
    return {"position": ms, "label": label, "team": team, "confidence": conf}


def test_greedy_in_gt_order_hand_computed(tmp_path):
    # GT at frames 1000 and 1012 (40 ms per frame); detections at 1006 (0.9) and 994 (0.8).
    # GT 1000 takes 1006 (higher score); GT 1012 finds only 994 at distance 18 > 12: 1 TP of 2.
    # P/R: t <= 0.8 -> (0.5, 0.5); 0.8 < t <= 0.9 -> (1, 0.5): AP = 6 points of 1.0 out of 11.
    labels, preds = _game(tmp_path, [_ann(40_000), _ann(40_480)], [_pred(40_240, 0.9), _pred(39_760, 0.8)])
    result = evaluate_team_files(labels, preds)
    assert result.per_class_team["PASS-left"] == 6 / 11
    assert result.per_class["PASS"] == 6 / 11  # right has no GT: weight 0
    assert result.gt_weight_team["PASS-left"] == 2.0 and result.gt_weight_team["PASS-right"] == 0.0
    assert math.isnan(result.team_map)  # 11 other actions without GT: 0/0
    assert result.no_team_map == (6 / 11) / 12  # the other 11 no-team APs are 0


def test_weights_are_signed_and_last_prediction_wins(tmp_path):
    # left: 2 visible GT, both found; right: 1 visible + 1 "not shown" GT (weight 0) -> PASS = left AP.
    ann = [_ann(10_000), _ann(20_000), _ann(30_000, team="right"),
           _ann(40_000, team="right", visibility=NOT_SHOWN)]
    # the second prediction at 10 000 ms (same cell) overwrites the first, even if lower
    pred = [_pred(10_000, 0.9), _pred(10_000, 0.3), _pred(20_000, 0.5), _pred(30_000, 0.7, team="right")]
    labels, preds = _game(tmp_path, ann, pred)
    result = evaluate_team_files(labels, preds)
    assert result.gt_weight_team["PASS-right"] == 0.0
    assert result.per_class_team["PASS-left"] == 1.0
    assert result.per_class_team["PASS-right"] == 6 / 11  # 1 of 2 GT found, precision 1
    assert result.per_class["PASS"] == (1.0 * 2 + (6 / 11) * 0) / 2


def test_second_half_gt_dropped_and_counted(tmp_path):
    labels, preds = _game(tmp_path, [_ann(5000), _ann(5000, half=2)], [_pred(5000, 0.8)])
    result = evaluate_team_files(labels, preds)
    assert result.num_gt_dropped == 1 and result.gt_weight_team["PASS-left"] == 1.0
    assert result.per_class_team["PASS-left"] == 1.0
    assert "dropped" in format_team_map(result)


def test_official_ms_to_frame_arithmetic_and_cap(tmp_path):
    # 1160 ms: int(25 * (1160 / 1000)) = 28 in floating point (exact: 29). A prediction at 1120 ms
    # (frame 28) is 0 frames away, one at frame 29 + 12 = 41 (1640 ms) is 13 away -> FP.
    labels, preds = _game(tmp_path, [_ann(1160)], [_pred(1640, 0.9)])
    assert evaluate_team_files(labels, preds).per_class_team["PASS-left"] == 0.0
    # GT and prediction past 2 h are capped at frame 179 999 and match
    labels2, preds2 = _game(tmp_path / "b", [_ann(9_000_000)], [_pred(7_300_000, 0.5)])
    assert evaluate_team_files(labels2, preds2).per_class_team["PASS-left"] == 1.0


def test_negative_position_and_bad_fields_raise(tmp_path):
    labels, preds = _game(tmp_path, [_ann(1000)], [_pred(-40, 0.5)])
    with pytest.raises(LabelFormatError, match=r"prediction #0: position -40 is negative"):
        evaluate_team_files(labels, preds)
    labels, preds = _game(tmp_path / "b", [_ann(1000)], [_pred("12.5", 0.5)])
    with pytest.raises(LabelFormatError, match=r"position '12.5' is not an integer"):
        evaluate_team_files(labels, preds)
    labels, preds = _game(tmp_path / "c", [_ann(1000, team="home")], [])
    with pytest.raises(LabelFormatError, match=r"annotation #0: team 'home' .*home_side"):
        evaluate_team_files(labels, preds)
    with pytest.raises(ConfigError, match="missing_team"):
        evaluate_team_files(labels, preds, missing_team="skip")


def test_fast_path_and_checked_path_agree(tmp_path):
    """Confidences as ints / strings and positions as strings / floats take the checked path: same result."""
    ann = [_ann(1000), _ann(9000, team="right")]
    plain = [_pred(1000, 1.0), _pred(9040, 0.25, team="right")]
    odd = [_pred("1000", 1), {"position": 9040.7, "label": "PASS", "team": "right", "confidence": "0.25"}]
    a = evaluate_team_files(*_game(tmp_path / "a", ann, plain))
    b = evaluate_team_files(*_game(tmp_path / "b", ann, odd))
    assert a.per_class_team == b.per_class_team and a.per_class_team["PASS-right"] == 1.0


def test_label_sets_need_scores_and_all_games():
    truth = LabelSet(list(BALL_CLASSES), [VideoLabels("g1", 25.0, None, [Event(25, "PASS", team="left")])])
    pred = LabelSet(list(BALL_CLASSES), [VideoLabels("g1", 25.0, None, [Event(25, "PASS", team="left")])])
    with pytest.raises(LabelFormatError, match="no score"):
        team_map(truth, pred)
    with pytest.raises(LabelFormatError, match="no predictions for 1 game"):
        team_map(truth, LabelSet(list(BALL_CLASSES), []))
    pred.videos[0].events[0].score = 0.7
    result = team_map(truth, pred)
    assert result.per_class_team["PASS-left"] == 1.0 and result.games == ["g1"]


def test_team_class_order():
    names = team_class_names()
    assert names[:4] == ["PASS-left", "PASS-right", "DRIVE-left", "DRIVE-right"]
    assert names[-1] == "GOAL-right" and len(names) == 24


def test_round_trip_of_results_file_keeps_team(tmp_path):
    """Our soccernet-results writer emits what the Team-BAS evaluator reads (team on every prediction)."""
    events = [Event(25, "PASS", score=0.5, team="left", extra={"team_score": 0.875}),
              Event(250, "SHOT", score=0.25, team="right")]
    pred = LabelSet(list(BALL_CLASSES), [VideoLabels("league/2030-2031/a - b", 25.0, None, events,
                                                     extra={"game": "league/2030-2031/a - b", "half": 1})])
    (path,) = write_labels(pred, tmp_path / "preds", "soccernet-results")
    data = json.loads(path.read_text())["predictions"]
    assert [(p["label"], p["team"], p["position"]) for p in data] == [
        ("PASS", "left", 1000), ("SHOT", "right", 10000)]
    assert data[0]["team_score"] == 0.875 and "team_score" not in data[1]
    back = read_labels(tmp_path / "preds", "soccernet-results")
    back_events = back.videos[0].events
    assert [(e.team, e.extra.get("team_score")) for e in back_events] == [("left", 0.875), ("right", None)]
    truth_dir = tmp_path / "labels" / "league/2030-2031/a - b"
    truth_dir.mkdir(parents=True)
    annotations = [_ann(1000), _ann(10_000, "SHOT", "right")]
    (truth_dir / "Labels-ball.json").write_text(json.dumps({"annotations": annotations}))
    result = evaluate_team_files(tmp_path / "labels", tmp_path / "preds")
    assert result.per_class_team["PASS-left"] == 1.0 and result.per_class_team["SHOT-right"] == 1.0
    shutil.rmtree(tmp_path / "labels")


# ----------------------------------------------------------------------------- CLI


@needs_fixtures
def test_cli_evaluate_metric_team_on_trees(tmp_path, capsys):
    from e2espot.cli import main

    labels, preds = _case("c03_team_absent_for_some_classes")
    out_json = tmp_path / "team.json"
    assert main(["evaluate", str(labels), str(preds), "--metric", "team", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    expected = EXPECTED["c03_team_absent_for_some_classes"]
    assert f"Team-mAP@1: {100 * expected['team_map']:.2f}" in text
    assert f"mAP@1 without team: {100 * expected['no_team_map']:.2f}" in text
    res = json.loads(out_json.read_text())
    assert _same(res["team_map"], expected["team_map"]) and res["games"] == expected["games"]
    # --split picks the games of a split from a splits JSON
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"test": expected["games"][:1]}))
    assert main(["evaluate", str(labels), str(preds), "--metric", "team", "--split", "test",
                 "--splits", str(splits), "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["games"] == expected["games"][:1]


@needs_error_fixtures
def test_cli_missing_team_error_and_leniency(capsys):
    from e2espot.cli import main

    labels, preds = _case("e01_prediction_without_team")
    assert main(["evaluate", str(labels), str(preds), "--metric", "team"]) != 0
    assert "has no 'team'" in capsys.readouterr().err
    assert main(["evaluate", str(labels), str(preds), "--metric", "team", "--missing-team", "ignore"]) == 0
    assert "left out of the team metric (no team): 0 GT, 1 predictions" in capsys.readouterr().out


def test_cli_metric_team_on_spot_labels_and_our_predictions(tmp_path, capsys):
    """Other formats are read first: E2E-Spot labels with teams, our prediction JSON with teams."""
    from e2espot.cli import main

    classes = ["PASS", "RECEIVE", "SHOT"]
    gt = [(50, "PASS", "left"), (80, "RECEIVE", "left"), (120, "SHOT", "right"), (200, "PASS", "right")]
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "class.txt").write_text("\n".join(classes))
    (tmp_path / "labels" / "test.json").write_text(json.dumps([{
        "video": "m1", "num_frames": 300, "fps": 25,
        "events": [{"frame": f, "label": c, "team": t} for f, c, t in gt]}]))
    # all found, but the SHOT with the wrong team: SHOT-right AP 0, SHOT-left has no GT (weight 0)
    preds = [{"frame": f + 2, "label": c, "score": 0.9, "team": "left" if c == "SHOT" else t}
             for f, c, t in gt]
    (tmp_path / "pred.json").write_text(json.dumps([{"video": "m1", "fps": 25, "num_frames": 300,
                                                       "events": preds}]))
    out_json = tmp_path / "r.json"
    assert main(["evaluate", str(tmp_path / "labels"), str(tmp_path / "pred.json"), "--split", "test",
                 "--metric", "team", "--classes", *classes, "--json", str(out_json)]) == 0
    res = json.loads(out_json.read_text())
    assert res["per_class"] == {"PASS": 1.0, "RECEIVE": 1.0, "SHOT": 0.0}
    assert res["team_map"] == 2 / 3 and res["no_team_map"] == 1.0
    assert "Team-mAP@1: 66.67" in capsys.readouterr().out


def test_split_joint_labels_of_a_joint_action_team_head():
    from e2espot.eval.team import split_joint_labels

    joint = LabelSet(team_class_names(), [VideoLabels("g", 25.0, None, [
        Event(25, "PASS-left", score=0.9), Event(50, "GOAL-right", score=0.4), Event(75, "SHOT", score=0.2,
                                                                                    team="left")])])
    split = split_joint_labels(joint)
    assert split.classes == list(BALL_CLASSES)
    assert [(e.label, e.team, e.score) for e in split.videos[0].events] == [
        ("PASS", "left", 0.9), ("GOAL", "right", 0.4), ("SHOT", "left", 0.2)]
    assert joint.videos[0].events[0].label == "PASS-left"  # a copy
    with pytest.raises(LabelFormatError, match="neither an action"):
        split_joint_labels(LabelSet(["x"], [VideoLabels("g", 25.0, None, [Event(1, "PASS-middle")])]))


def test_synthetic_both_layouts_give_the_same_team_map(tmp_path, capsys):
    """synth → noisy predictions with teams → evaluate --metric team on the E2E-Spot layout (our
    prediction JSON) and on the SoccerNet layout (results_spotting.json trees): the same numbers."""
    import numpy as np

    from e2espot.cli import main
    from e2espot.data.synthetic import generate_dataset

    ds = generate_dataset(tmp_path / "synth", num_videos=3, seed=3, tiny=True, splits=(0, 0, 1))
    rng = np.random.default_rng(0)
    videos = []
    for v in ds.labels["test"]:
        events = []
        for e in v.events:
            flip = rng.random() < 0.3
            team = {"left": "right", "right": "left"}[e.team] if flip else e.team
            events.append(Event(min(e.frame + int(rng.integers(-2, 3)), v.num_frames - 1), e.label,
                                score=float(rng.random()), team=team))
        events.append(Event(int(rng.integers(0, v.num_frames)), "PASS", score=0.3, team="left"))
        videos.append(VideoLabels(v.video, v.fps, v.num_frames, events,
                                  extra={"game": ds.soccernet_game(v.video), "half": 1}))
    pred = LabelSet(list(ds.classes), videos)
    write_labels(pred, tmp_path / "pred.json", "spot")
    write_labels(pred, tmp_path / "results", "soccernet-results")
    classes = ["--classes", *ds.classes]
    assert main(["evaluate", str(ds.split_files["test"]), str(tmp_path / "pred.json"), "--metric", "team",
                 *classes, "--json", str(tmp_path / "a.json")]) == 0
    assert main(["evaluate", str(ds.soccernet_root), str(tmp_path / "results"), "--metric", "team", *classes,
                 "--json", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["per_class_team"] == b["per_class_team"] and a["no_team_map"] == b["no_team_map"]
    assert 0 < b["no_team_map"] <= 1 and b["num_predictions"] == sum(len(v.events) for v in videos)


def test_team_accuracy_on_spotted_events():
    from e2espot.eval.team import team_accuracy

    truth = LabelSet(["PASS", "SHOT"], [VideoLabels("v", 25.0, 100, [
        Event(10, "PASS", team="left"), Event(20, "PASS", team="right"), Event(30, "SHOT", team="right"),
        Event(60, "PASS", team="not applicable")])])
    pred = LabelSet(["PASS", "SHOT"], [VideoLabels("v", 25.0, 100, [
        Event(11, "PASS", score=0.9, team="left"),  # matches GT 10: right team
        Event(21, "PASS", score=0.8, team="left"),  # matches GT 20: wrong team
        Event(12, "PASS", score=0.7, team="left"),  # GT 10 is taken, GT 20 is 8 frames away: unmatched
        Event(31, "SHOT", score=0.6),  # matches GT 30, no team: wrong
        Event(60, "PASS", score=0.5, team="left"),  # GT without a side: not counted
        Event(90, "PASS", score=0.95, team="left")])])  # spurious
    acc = team_accuracy(truth, pred, tolerance=2)
    assert (acc.correct, acc.total) == (1, 3) and acc.accuracy == 1 / 3
    assert acc.per_class == {"PASS": (1, 2), "SHOT": (0, 1)}
    high = team_accuracy(truth, pred, tolerance=2, threshold=0.75)
    assert high.per_class == {"PASS": (1, 2), "SHOT": (0, 0)}
    assert math.isnan(team_accuracy(truth, LabelSet(["PASS"], [VideoLabels("v", 25.0, 100, [])])).accuracy)

"""The synthetic team cue (``team_cue="sleeve"``): the acting player's sleeve is on its team's side, a flip moves
it with the label, and the default (``"none"``) renders and labels exactly as before."""

from __future__ import annotations

import json

import numpy as np
import pytest

from e2espot.data.synthetic import Renderer, generate_dataset, simulate_match
from e2espot.data.synthetic.render import TEAM_CUES
from e2espot.errors import ConfigError

W, H, ZOOM = 192, 108, 2.5  # players about 13 px wide: the sleeve is a few clean pixels


def _renderers(seed: int = 11, num_frames: int = 400):
    match = simulate_match(np.random.default_rng(seed), num_frames)
    make = {cue: Renderer(match, W, H, np.random.default_rng(seed + 1), zoom=ZOOM, team_cue=cue) for cue in TEAM_CUES}
    return match, make["none"], make["sleeve"]


def _acting_player(match, event) -> int | None:
    """The player who acts at the event frame: the kicker (PASS / SHOT) or receiver (RECEIVE)."""
    f = event.frame
    if event.label == "RECEIVE":
        return int(match.holder[f])
    if event.label in ("PASS", "SHOT"):
        return int(np.argmin(np.linalg.norm(match.players_m[f] - match.ball_m[f], axis=1)))
    return None  # OUT / GOAL: no player at the ball


def _pixel(frame: np.ndarray, xy: np.ndarray) -> np.ndarray:
    x, y = (int(np.rint(v)) for v in xy)
    return frame[y, x].astype(np.float64)


def test_acting_player_is_of_the_event_team_and_wears_the_sleeve_on_its_side():
    match, _, sleeve = _renderers()
    checked = 0
    for event in match.events:
        player = _acting_player(match, event)
        if player is None:
            continue
        team = int(match.player_team[player])
        assert match.player_team[player] == event.team  # the label (0 left, 1 right) names its team
        centre = sleeve.cam.to_px(match.players_m[event.frame, player]) + sleeve.offset_px[event.frame]
        dx = sleeve.sleeve_dx_px(team)
        assert np.sign(dx) == (-1 if event.side == "left" else 1)  # left team: sleeve on the left of the body
        if not (8 <= centre[0] < W - 8 and 2 <= centre[1] < H - 2):
            continue  # at the frame edge
        frame = sleeve.frame(event.frame)
        keeper = bool(match.player_is_keeper[player])
        colour = (sleeve.keeper_sleeve_colours if keeper else sleeve.sleeve_colours)[team] * sleeve.gain[event.frame]
        own_side = np.abs(_pixel(frame, centre + [1.25 * dx, 0.0]) - colour).max()  # clear of the ball's shadow
        other_side = np.abs(_pixel(frame, centre - [1.25 * dx, 0.0]) - colour).max()
        assert own_side < 30 and other_side > 60, (event, own_side, other_side)
        # a horizontal flip moves the sleeve to the side of the other team, as it swaps the label
        flipped = frame[:, ::-1]
        col, row = (int(np.rint(v)) for v in centre + [1.25 * dx, 0.0])  # the sleeve pixel
        col_flipped, centre_flipped = W - 1 - col, W - 1 - centre[0]
        assert np.abs(flipped[row, col_flipped] - colour).max() < 30
        assert np.sign(col_flipped - centre_flipped) == np.sign(sleeve.sleeve_dx_px(1 - team))
        checked += 1
    assert checked >= 10


def test_sleeve_colour_contrasts_with_the_shirt():
    _, _, sleeve = _renderers()
    luma = sleeve.team_colours @ np.array([0.299, 0.587, 0.114])
    for shirt_luma, colour in zip(luma, sleeve.sleeve_colours, strict=True):
        assert colour.tolist() == ([15.0] * 3 if shirt_luma > 150 else [240.0] * 3)


def test_default_cue_changes_nothing_but_the_sleeve_pixels():
    match, none, sleeve = _renderers(num_frames=60)
    # the cue draws no random numbers: same colours, camera and noise as without it
    assert np.array_equal(none.team_colours, sleeve.team_colours)
    assert np.array_equal(none.offset_px, sleeve.offset_px)
    a, b = none.frame(30), sleeve.frame(30)
    differ = np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 0  # (H, W)
    players = none.cam.to_px(match.players_m[30]) + none.offset_px[30]
    ys, xs = np.nonzero(differ)
    assert len(ys) > 0
    near = np.min(np.hypot(xs[:, None] - players[None, :, 0], ys[:, None] - players[None, :, 1]), axis=1)
    assert (near <= none.player_r_px * (1 + 0.75 + 0.42) + 1.5).all()  # only at players


def test_dataset_labels_do_not_depend_on_the_cue(tmp_path):
    a = generate_dataset(tmp_path / "a", num_videos=2, seed=3, tiny=True, soccernet=False)
    b = generate_dataset(tmp_path / "b", num_videos=2, seed=3, tiny=True, soccernet=False, team_cue="sleeve")
    for split in ("train", "test"):
        assert (tmp_path / "a" / f"{split}.json").read_text() == (tmp_path / "b" / f"{split}.json").read_text()
    vid = next(iter(a.ground_truth))
    gt_a = json.loads(a.ground_truth[vid].read_text())
    gt_b = json.loads(b.ground_truth[vid].read_text())
    assert "team_cue" not in gt_a and gt_b.pop("team_cue") == "sleeve" and gt_a == gt_b


def test_unknown_cue_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown team cue 'colour'.*none, sleeve"):
        generate_dataset(tmp_path, num_videos=1, tiny=True, team_cue="colour")


def test_cli_passes_the_cue(tmp_path, capsys):
    import argparse

    from e2espot.commands import synth

    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    args = parser.parse_args([str(tmp_path / "s"), "--videos", "1", "--tiny", "--no-soccernet", "--team-cue", "sleeve"])
    assert synth.run(args) == 0
    gt = json.loads(next((tmp_path / "s" / "ground_truth").glob("*.json")).read_text())
    assert gt["team_cue"] == "sleeve"
    with pytest.raises(SystemExit):
        parser.parse_args(["out", "--team-cue", "colour"])
    assert "invalid choice: 'colour'" in capsys.readouterr().err


def _arrow_points_right(frame: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """True when the white triangle in ``box`` has its base on the left (it points right)."""
    x0, y0, x1, y1 = box
    white = frame[y0:y1, x0:x1].min(axis=2) > 180  # (h, w) bool
    half = white.shape[1] // 2
    return int(white[:, :half].sum()) > int(white[:, -half:].sum())


@pytest.mark.parametrize("size", [(96, 54), (64, 48)])
def test_possession_arrow_points_the_way_the_event_team_attacks(size):
    match = simulate_match(np.random.default_rng(5), 750)
    r = Renderer(match, *size, np.random.default_rng(6), zoom=2.5, team_cue="possession")
    box = r.arrow_box()
    assert box[2] - box[0] >= 8 and (box[0] + box[2] - 1) / 2 == (size[0] - 1) / 2  # centred: a flip keeps it
    assert len(match.events) > 20 and {e.team for e in match.events} == {0, 1}
    for event in match.events:
        assert r.possession[event.frame] == event.team  # at its frame the graphic shows the event's team
        frame = r.frame(event.frame)
        assert _arrow_points_right(frame, box) == (event.side == "left")  # left team attacks to the right
        assert _arrow_points_right(frame[:, ::-1], box) == (event.side == "right")  # flipped: the other team
    none = Renderer(match, *size, np.random.default_rng(6), zoom=2.5)
    assert not np.array_equal(none.frame(10)[box[1]:box[3], box[0]:box[2]], r.frame(10)[box[1]:box[3], box[0]:box[2]])

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from e2espot.cli import main
from e2espot.data import timebase
from e2espot.data.synthetic import CLASSES, Pitch, generate_dataset, simulate_match, split_counts
from e2espot.errors import ConfigError

FPS = 25.0
MIN_PASS_MPF = 9.0 / FPS  # slowest kick from a moving ball, metres per frame
MAX_DRIBBLE_MPF = 2.8 / FPS
TEAM = ("left", "right")


def _decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _second_diff(xy: np.ndarray) -> np.ndarray:
    """|b[g+1] - 2 b[g] + b[g-1]| per frame (0 at both ends)."""
    out = np.zeros(len(xy))
    out[1:-1] = np.hypot(*(xy[2:] - 2 * xy[1:-1] + xy[:-2]).T)
    return out


def _dead_frames(events, num_frames: int) -> set[int]:
    """Frames from each OUT/GOAL up to the restart kick (the ball slides, stops, then is placed)."""
    dead, start = set(), None
    for e in sorted(events, key=lambda e: e.frame):
        if e.label in ("OUT", "GOAL"):
            start = e.frame
        elif e.label == "PASS" and start is not None:
            dead.update(range(start, e.frame))
            start = None
    if start is not None:
        dead.update(range(start, num_frames))
    return dead


@pytest.fixture(scope="module")
def matches():
    return [simulate_match(np.random.SeedSequence([7, i]), 750, FPS) for i in range(12)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("tiny"), num_videos=4, seed=11, tiny=True)


@pytest.fixture(scope="module")
def demo_size(tmp_path_factory):
    """One short video at the demo resolution, for checks on the decoded pixels."""
    return generate_dataset(tmp_path_factory.mktemp("demo"), num_videos=1, seconds=8.0, seed=5,
                            splits=(1, 0, 0), soccernet=False)


# -- physics (no rendering) -------------------------------------------------------------------------

def test_kick_changes_ball_velocity_exactly_at_labelled_frame(matches):
    checked = 0
    for m in matches:
        b, n = m.ball_m, m.num_frames
        acc = _second_diff(b)
        for e in m.events:
            f = e.frame
            if e.label not in ("PASS", "SHOT") or not 1 <= f < n - 2:
                continue
            v_before, v_after = b[f] - b[f - 1], b[f + 1] - b[f]
            speed_before, speed_after = np.hypot(*v_before), np.hypot(*v_after)
            # at the kicker at f, free at f + 1
            assert m.holder[f] >= 0 and np.allclose(b[f], m.players_m[f, m.holder[f]], atol=1e-4)
            assert m.holder[f + 1] == -1
            if speed_before > 0.3 / FPS:  # moving ball: the direction turns by >= 30 degrees
                cos = v_before @ v_after / (speed_before * speed_after)
                assert np.degrees(np.arccos(np.clip(cos, -1, 1))) >= 30.0 - 1e-6
                assert speed_after >= MIN_PASS_MPF * 0.999
                assert speed_before <= MAX_DRIBBLE_MPF + 1e-6
            assert acc[f] > max(acc[f - 1], acc[f + 1])  # the kink is at f, not a neighbour
            assert acc[f + 1] < 1e-6  # constant velocity in flight
            checked += 1
    assert checked > 50


def test_receive_stops_ball_at_the_receiver(matches):
    checked = 0
    for m in matches:
        b = m.ball_m
        for e in m.events:
            f = e.frame
            if e.label != "RECEIVE" or f + 1 >= m.num_frames:
                continue
            assert m.holder[f] >= 0 and m.holder[f - 1] == -1
            assert np.allclose(b[f], m.players_m[f, m.holder[f]], atol=1e-4)
            assert np.hypot(*(b[f] - b[f - 1])) >= 1.0 / FPS  # it was flying ...
            assert np.allclose(b[f + 1], b[f])  # ... and stops while the player controls it
            assert TEAM[m.player_team[m.holder[f]]] == e.side
            checked += 1
    assert checked > 50



def test_no_velocity_change_without_a_label(matches):
    for m in matches:
        acc = _second_diff(m.ball_m)
        labelled = {e.frame for e in m.events}
        dead = _dead_frames(m.events, m.num_frames)
        kinks = set(np.nonzero(acc > 0.5 * MIN_PASS_MPF)[0].tolist())
        for e in m.events:
            if e.label in ("PASS", "SHOT", "RECEIVE") and 0 < e.frame < m.num_frames - 1:
                assert e.frame in kinks, (e.frame, e.label, acc[e.frame])
        unexplained = sorted(kinks - labelled - dead)
        assert unexplained == []


def test_out_and_goal_geometry(matches):
    pitch = Pitch()
    lo, hi = pitch.posts_y_m
    seen = Counter()
    for m in matches:
        for e in m.events:
            if e.label not in ("OUT", "GOAL"):
                continue
            x, y = m.ball_m[e.frame]
            px, py = m.ball_m[e.frame - 1]
            assert 0 <= px <= pitch.length_m and 0 <= py <= pitch.width_m  # inside just before
            outside = x < 0 or x > pitch.length_m or y < 0 or y > pitch.width_m
            assert outside
            beyond_goal_line = (x < 0 or x > pitch.length_m) and 0 <= y <= pitch.width_m
            if e.label == "GOAL":
                assert beyond_goal_line and lo < y < hi
                assert e.side == ("left" if x > pitch.length_m else "right")  # the scoring team
            else:
                assert not (beyond_goal_line and lo < y < hi)
            seen[e.label] += 1
    assert seen["OUT"] >= 3 and seen["GOAL"] >= 1


def test_class_balance_is_natural(matches):
    counts = Counter(e.label for m in matches for e in m.events)
    assert set(counts) <= set(CLASSES)
    assert counts["PASS"] > counts["SHOT"] > counts["GOAL"] >= 1
    assert counts["RECEIVE"] > 3 * counts["OUT"]
    assert counts["PASS"] > 5 * counts["GOAL"]


def test_events_in_range_sorted_and_distinct(matches):
    for m in matches:
        frames = [e.frame for e in m.events]
        assert frames == sorted(frames) and len(set(frames)) == len(frames)
        assert all(0 <= f < m.num_frames for f in frames)


# -- rendered files ---------------------------------------------------------------------------------

def _locate_ball(img: np.ndarray, guess_px: np.ndarray, radius_px: int = 8) -> np.ndarray:
    """Centroid of the ball's yellow (min(R, G) - B high) near a guess."""
    h, w, _ = img.shape
    x0, y0 = max(0, int(guess_px[0]) - radius_px), max(0, int(guess_px[1]) - radius_px)
    x1, y1 = min(w, int(guess_px[0]) + radius_px + 1), min(h, int(guess_px[1]) + radius_px + 1)
    box = img[y0:y1, x0:x1].astype(np.float32)
    weight = np.clip(np.minimum(box[..., 0], box[..., 1]) - box[..., 2] - 90, 0, None)
    assert weight.sum() > 0, "no ball-coloured pixels near the expected position"
    ys, xs = np.mgrid[y0:y1, x0:x1]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


def test_rendered_ball_changes_direction_at_labelled_kicks(demo_size):
    vid = "synth_000"
    frames = _decode(demo_size.videos[vid])
    gt = json.loads(demo_size.ground_truth[vid].read_text())
    assert frames.shape == (gt["num_frames"], 224, 398, 3)
    ball_px, offset_px = np.array(gt["ball_px"]), np.array(gt["camera_offset_px"])
    kicks = [e for e in gt["events"]
             if e["label"] in ("PASS", "SHOT") and 3 <= e["frame"] < gt["num_frames"] - 3]
    assert len(kicks) >= 3
    for e in kicks:
        f = e["frame"]
        idx = np.arange(f - 3, f + 4)
        seen = np.array([_locate_ball(frames[g], ball_px[g]) for g in idx])
        assert np.abs(seen - ball_px[idx]).max() <= 1.0  # the pixels agree with the trajectory
        on_pitch = seen - offset_px[idx]  # undo the camera shake
        acc = _second_diff(on_pitch)[1:-1]  # frames f-2 .. f+2
        assert int(np.argmax(acc)) == 2, (f, acc)  # the kink is at the labelled frame
        after, before = on_pitch[6] - on_pitch[3], on_pitch[3] - on_pitch[0]
        assert np.hypot(*after) >= 3 * 1.5  # >= 1.5 px per frame in flight
        if np.hypot(*before) > 1.5:  # it was moving: the direction turned
            cos = before @ after / (np.hypot(*before) * np.hypot(*after))
            assert np.degrees(np.arccos(np.clip(cos, -1, 1))) > 15


def test_tiny_mode_shape_and_events(tiny):
    assert (tiny.width, tiny.height) == (64, 48)
    for vid, path in tiny.videos.items():
        frames = _decode(path)
        assert frames.shape == (48, 48, 64, 3)
        assert frames.std() > 5  # a drawn pitch, not a blank frame
    for ls in tiny.labels.values():
        for v in ls:
            assert v.num_frames == 48 and len(v.events) >= 1
            assert all(0 <= e.frame < 48 for e in v.events)


def test_same_seed_same_dataset_other_seed_differs(tmp_path, tiny):
    again = generate_dataset(tmp_path / "again", num_videos=4, seed=11, tiny=True)
    other = generate_dataset(tmp_path / "other", num_videos=4, seed=12, tiny=True)
    for name in ("train.json", "val.json", "test.json", "class.txt"):
        assert (tiny.root / name).read_text() == (again.root / name).read_text()
    assert (tiny.root / "train.json").read_text() != (other.root / "train.json").read_text()
    a, b, c = (_decode(ds.videos["synth_000"]) for ds in (tiny, again, other))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert tiny.ground_truth["synth_000"].read_text() == again.ground_truth["synth_000"].read_text()


def test_both_layouts_parse_and_agree(tiny):
    root = tiny.root
    assert (root / "class.txt").read_text().split() == list(CLASSES)
    sn_splits = json.loads((root / "soccernet" / "splits.json").read_text())
    all_ids = []
    for split in ("train", "val", "test"):
        text = (root / f"{split}.json").read_text()
        entries = json.loads(text)
        assert text == json.dumps(entries, sort_keys=True, indent=2) + "\n"
        assert sn_splits[split] == [f"synthetic/2026-2027/{e['video']}" for e in entries]
        for entry in entries:
            vid = entry["video"]
            all_ids.append(vid)
            assert set(entry) == {"video", "num_frames", "num_events", "events", "fps", "width", "height"}
            assert entry["num_events"] == len(entry["events"])
            assert (entry["fps"], entry["width"], entry["height"]) == (25, 64, 48)
            game_dir = root / "soccernet" / "synthetic" / "2026-2027" / vid
            sn = json.loads((game_dir / "Labels-ball.json").read_text())
            assert sn["UrlLocal"] == f"synthetic/2026-2027/{vid}/"
            assert len(sn["annotations"]) == entry["num_events"]
            for ev, ann in zip(entry["events"], sn["annotations"]):
                assert isinstance(ann["position"], str)
                assert timebase.position_ms_to_frame(int(ann["position"]), entry["fps"]) == ev["frame"]
                assert ann["gameTime"] == timebase.position_ms_to_game_time(1, int(ann["position"]))
                assert ann["label"] == ev["label"]
                assert ann["team"] == ev["team"] == ev["comment"] in ("left", "right")
                assert ann["visibility"] == "visible"
            gt = json.loads((root / "ground_truth" / f"{vid}.json").read_text())
            pairs = [(e["frame"], e["label"]) for e in entry["events"]]
            assert [(e["frame"], e["label"]) for e in gt["events"]] == pairs
            assert len(gt["ball_px"]) == len(gt["ball_m"]) == entry["num_frames"]
            video, linked = root / "videos" / f"{vid}.mp4", game_dir / "224p.mp4"
            assert linked.read_bytes() == video.read_bytes()
    assert sorted(all_ids) == sorted(tiny.videos)


def test_both_layouts_carry_the_team_of_every_event(tiny):
    from e2espot.data.formats import read_labels

    spot = read_labels(tiny.root, "spot", split="test")
    soccernet = read_labels(tiny.soccernet_root, "soccernet", probe_videos=False)
    by_game = {v.video.rsplit("/", 1)[-1]: v for v in soccernet}
    assert spot.videos
    for v in spot:
        events = [(e.frame, e.label, e.team) for e in v.events]
        assert events == [(e.frame, e.label, e.team) for e in by_game[v.video].events]
        assert events == [(e.frame, e.label, e.team) for e in tiny.labels["test"].get(v.video).events]
        assert {team for *_, team in events} <= {"left", "right"} and all(team for *_, team in events)


def test_splits_and_bad_arguments(tmp_path):
    assert split_counts(6, (0.5, 0.25, 0.25)) == [3, 1, 2]
    assert split_counts(3, (0.5, 0.25, 0.25)) == [1, 1, 1]
    assert split_counts(4, (1, 0, 0)) == [4, 0, 0]
    assert sum(split_counts(7, (0.6, 0.2, 0.2))) == 7
    for kwargs in ({"width": 65}, {"num_videos": 0}, {"splits": (1, -1, 1)}, {"fps": 0}, {"seconds": 0.01}):
        with pytest.raises(ConfigError):
            generate_dataset(tmp_path / "bad", **kwargs)


def test_progress_reaches_one(tmp_path):
    seen = []
    generate_dataset(tmp_path, num_videos=2, seed=1, tiny=True, soccernet=False,
                     progress=lambda stage, fraction: seen.append((stage, fraction)))
    assert seen[-1] == ("synth", 1.0)
    assert [f for _, f in seen] == sorted(f for _, f in seen)
    assert not (tmp_path / "soccernet").exists()


# -- CLI --------------------------------------------------------------------------------------------

def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", str(out), "--videos", "3", "--seed", "2", "--tiny"]) == 0
    text = capsys.readouterr().out
    assert "wrote 3 videos (64x48, 25 fps, 48 frames each)" in text
    entries = [e for s in ("train", "val", "test") for e in json.loads((out / f"{s}.json").read_text())]
    counts = Counter(ev["label"] for e in entries for ev in e["events"])
    total_line = next(line for line in text.splitlines() if line.startswith("total"))
    assert total_line.split()[1:] == ["3"] + [str(counts[c]) for c in CLASSES]
    assert len(list((out / "videos").glob("*.mp4"))) == 3
    assert main(["synth", str(tmp_path / "one"), "--videos", "1", "--tiny"]) == 0
    assert "wrote 1 video (64x48, 25 fps, 48 frames each)" in capsys.readouterr().out


def test_display_copy_shows_the_same_match(tmp_path):
    """render_video at another size: same events and ball path (metres), a bigger picture."""
    from e2espot.data.synthetic import generate_dataset, render_video

    ds = generate_dataset(tmp_path / "ds", num_videos=2, seconds=2.0, seed=5, width=64, height=36, zoom=2.5,
                          soccernet=False)
    big = render_video(tmp_path / "big.mp4", seed=5, index=1, num_frames=50, fps=25.0, width=256, height=144,
                       zoom=2.5)
    gt = json.loads(ds.ground_truth["synth_001"].read_text())
    assert [{"frame": e.frame, "label": e.label, "team": e.side} for e in big.match.events] == gt["events"]
    assert np.allclose(np.round(big.match.ball_m, 4), gt["ball_m"])
    import av

    with av.open(str(tmp_path / "big.mp4")) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (256, 144)


def test_run_off_area_is_not_the_pitch_colour(tmp_path):
    """The ground outside the lines has its own colour, so a ball going OUT is seen on another ground."""
    from e2espot.data.synthetic import Renderer

    match = simulate_match(3, 10)
    r = Renderer(match, 398, 224, np.random.default_rng(0))
    img = r.static[r.pad:r.pad + 224, r.pad:r.pad + 398].astype(np.float32)
    pitch = Pitch()
    x, y = r.cam.to_px(np.array([pitch.length_m * 0.3, pitch.width_m * 0.3]))  # grass, away from lines
    inside, outside = img[int(y), int(x)], img[2, 2]  # the frame's corner is run-off area at zoom 1
    assert np.abs(inside - outside).max() > 25


def test_cli_synth_rejects_bad_size(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "x"), "--size", "398by224"]) == 2
    assert "ConfigError" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "x"), "--size", "397x224"]) == 2
    assert "even" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_zoomed_camera_follows_the_ball(tmp_path):
    """zoom > 1: players and ball are bigger and the camera pans so the ball stays near the centre."""
    import json

    from e2espot.data.synthetic import generate_dataset

    ds = generate_dataset(tmp_path / "z", num_videos=1, seconds=6.0, seed=4, width=128, height=72, zoom=2.5,
                          soccernet=False)
    gt = json.loads(next((tmp_path / "z" / "ground_truth").glob("*.json")).read_text())
    ball = np.asarray(gt["ball_px"])  # (N, 2) in frame pixels, camera included
    inside = (ball[:, 0] >= 0) & (ball[:, 0] < 128) & (ball[:, 1] >= 0) & (ball[:, 1] < 72)
    assert inside.mean() > 0.95
    offsets = np.asarray(gt["camera_offset_px"])
    assert np.ptp(offsets[:, 0]) > 20  # it pans
    assert gt["camera"]["scale_px_per_m"] > 2.4 * 128 / 44  # magnified vs the whole-pitch fit
    with pytest.raises(ConfigError, match="zoom"):
        generate_dataset(tmp_path / "bad", num_videos=1, tiny=True, zoom=0.5)
    assert ds.classes[0] == "PASS"

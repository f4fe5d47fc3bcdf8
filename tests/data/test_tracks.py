"""Object tracks: detections files, the synthetic ground truth, the per-frame feature vector, its cache."""

from __future__ import annotations

import hashlib
import json
import sys
import types
import typing

import numpy as np
import pytest

from e2espot.data.tracks import (
    BALL,
    PLAYER,
    Detections,
    TrackConfig,
    bytetrack_backend,
    detect_yolo,
    flip_features,
    frame_features,
    read_mot,
    read_tracks_json,
    track,
    video_track_features,
    window_rows,
)
from e2espot.errors import ConfigError, LabelFormatError


def _has_bytetrack() -> bool:
    try:
        bytetrack_backend()
    except ConfigError:
        return False
    return True


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from e2espot.data.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("synth"), num_videos=2, seed=5, tiny=True, soccernet=False)


# --------------------------------------------------------------------------- MOT / JSON files


def test_mot_frames_are_one_based_and_boxes_normalised(tmp_path, caplog):
    path = tmp_path / "clip.mot.txt"
    path.write_text("1,7,10,20,4,6,0.9,1,-1,-1\n\n2,7,12,20,4,6,0.8,1\n2,-1,30,10,2,2,0.7,32\n3,-1,0,0,5,5,0.9,58\n")
    dets = read_mot(path, TrackConfig(), width=100, height=50, num_frames=3)
    assert dets.frame.tolist() == [0, 1, 1]  # MOT frame 1 -> our frame 0; class 58 (COCO potted plant) dropped
    assert dets.track_id.tolist() == [7, 7, -1]
    assert dets.kind.tolist() == [PLAYER, PLAYER, BALL]  # MOT class 1 = pedestrian, COCO 32 = sports ball
    np.testing.assert_allclose(dets.xyxy[0], [0.10, 0.40, 0.14, 0.52])
    np.testing.assert_allclose(dets.conf, [0.9, 0.8, 0.7])
    assert dets.dropped == {"58": 1}
    assert "58" in caplog.text and "ignored" in caplog.text


@pytest.mark.parametrize("text, message", [
    ("1,1,0,0,4,4,1,1\n1,1,0,0,4\n", "line 2: 5 fields"),
    ("1,1,0,0,4,4,1,1\n1,1,zero,0,4,4,1,1\n", "line 2: not a number"),
    ("0,1,0,0,4,4,1,1\n", "line 1: frame 0 < 1; MOT frames are 1-based"),
    ("5,1,0,0,4,4,1,1\n", "line 1: frame 5 is past the video's 4 frames"),
])
def test_mot_bad_line_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.mot.txt"
    path.write_text(text)
    with pytest.raises(LabelFormatError) as info:
        read_mot(path, TrackConfig(), width=64, height=48, num_frames=4)
    assert str(path) in str(info.value) and message in str(info.value)


def test_json_layout_and_bad_detection(tmp_path):
    path = tmp_path / "v.tracks.json"
    path.write_text(json.dumps({"format": "e2espot-tracks", "version": 1, "width": 200, "height": 100, "fps": 25,
                                "num_frames": 3, "detections": [
                                    {"frame": 2, "id": 1, "box": [50, 50, 10, 20], "conf": 0.5, "class": "player"},
                                    {"frame": 0, "box": [0, 0, 2, 2], "class": "ball"}]}))
    dets = read_tracks_json(path, TrackConfig())
    assert dets.num_frames == 3 and dets.frame.tolist() == [2, 0] and dets.track_id.tolist() == [1, -1]
    np.testing.assert_allclose(dets.xyxy[0], [0.25, 0.5, 0.30, 0.70])
    path.write_text(json.dumps({"format": "e2espot-tracks", "width": 2, "height": 2, "num_frames": 3,
                                "detections": [{"frame": 3, "box": [0, 0, 1, 1], "class": "ball"}]}))
    with pytest.raises(LabelFormatError, match=r"v.tracks.json: detection #0: frame 3 outside \[0, 3\)"):
        read_tracks_json(path, TrackConfig())


# --------------------------------------------------------------------------- synthetic ground truth


def test_synth_writes_tracks_beside_each_video(synth):
    gt = json.loads(synth.ground_truth["synth_000"].read_text())
    path = synth.tracks["synth_000"]
    assert path == synth.videos["synth_000"].with_name("synth_000.tracks.json")
    obj = json.loads(path.read_text())
    assert (obj["format"], obj["width"], obj["height"], obj["num_frames"]) == ("e2espot-tracks", 64, 48, 48)
    frame0 = [d for d in obj["detections"] if d["frame"] == 0]
    balls = [d for d in frame0 if d["class"] == "ball"]
    assert len(balls) == 1 and balls[0]["id"] == 0
    x, y, w, h = balls[0]["box"]
    np.testing.assert_allclose([x + w / 2, y + h / 2], gt["ball_px"][0], atol=0.02)  # box centred on the ball
    assert {d["id"] for d in frame0 if d["class"] == "player"} == set(range(1, 11))  # 2 x 5 players
    assert {d["frame"] for d in obj["detections"]} == set(range(48))


def test_synth_tracks_leave_other_outputs_unchanged(synth, tmp_path):
    from e2espot.data.synthetic import generate_dataset

    plain = generate_dataset(tmp_path / "plain", num_videos=2, seed=5, tiny=True, soccernet=False, tracks=False)
    assert plain.tracks == {} and not list((tmp_path / "plain" / "videos").glob("*.tracks.json"))
    for name in ("videos/synth_000.mp4", "videos/synth_001.mp4", "ground_truth/synth_000.json", "train.json",
                 "class.txt"):
        digest = [hashlib.sha1((root / name).read_bytes()).hexdigest() for root in (plain.root, synth.root)]
        assert digest[0] == digest[1], name


# --------------------------------------------------------------------------- features


def _hand_made() -> Detections:
    """A 200 x 100 frame, 2 frames. Frame 0: ball at (0.25, 0.5), tracked players at (0.25, 0.7) and
    (0.9, 0.1), an untracked player at (0.5, 0.5). Frame 1: the ball at (0.30, 0.5), no players."""
    def box(cx, cy, half=0.01):
        return [cx - half, cy - half, cx + half, cy + half]

    rows = [(0, 5, box(0.25, 0.5), 0.9, BALL), (0, 6, box(0.25, 0.5), 0.3, BALL),
            (0, 1, box(0.25, 0.7), 1.0, PLAYER), (0, 2, box(0.9, 0.1), 1.0, PLAYER),
            (0, -1, box(0.5, 0.5), 1.0, PLAYER), (1, -1, box(0.30, 0.5), 0.8, BALL)]
    return Detections(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                      np.array([r[2] for r in rows], float), np.array([r[3] for r in rows]),
                      np.array([r[4] for r in rows]), num_frames=2, width=200, height=100)


def test_feature_vector_of_a_hand_made_case():
    cfg = TrackConfig(grid=(2, 2))
    assert cfg.dim == 12 and cfg.feature_names()[5] == "nearest_player_dist"
    feats = frame_features(_hand_made(), cfg, np.array([0, 1, 5]), fps=25.0)  # frame 5: outside -> zeros
    assert feats.shape == (3, 12) and feats.dtype == np.float32
    diag = np.hypot(200, 100)
    np.testing.assert_allclose(feats[0], [
        1, 0.25, 0.5,  # ball present at its most confident detection
        0, 0,  # no earlier frame
        (0.2 * 100) / diag,  # nearest tracked player 0.2 frame heights = 20 px below (the untracked one is ignored)
        0.2, 2,  # 2 tracked players / 10, 2 tracked balls
        0, 0.1, 0.1, 0,  # occupancy: (row 0, col 1) holds (0.9, 0.1), (row 1, col 0) holds (0.25, 0.7)
    ], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(feats[1], [1, 0.30, 0.5, 0.05 * 25, 0, 1, 0, 0, 0, 0, 0, 0], atol=1e-6)
    assert not feats[2].any()
    flipped = flip_features(feats, cfg.grid)
    np.testing.assert_allclose(flipped[0, :5], [1, 0.75, 0.5, 0, 0], atol=1e-6)
    np.testing.assert_allclose(flipped[1, 3], -1.25, atol=1e-6)
    np.testing.assert_allclose(flipped[0, 8:], [0.1, 0, 0, 0.1], atol=1e-6)  # columns mirrored
    np.testing.assert_array_equal(flip_features(flipped, cfg.grid), feats)  # an involution
    import torch

    np.testing.assert_allclose(flip_features(torch.from_numpy(feats), cfg.grid).numpy(), flipped)


def test_velocity_is_clipped_and_given_tracker_needs_ids():
    dets = _hand_made()
    dets.xyxy[-1] = [0.97, 0.49, 0.99, 0.51]  # ball jumps 0.73 frame widths in 1/25 s
    feats = frame_features(dets, TrackConfig(), np.array([0, 1]), fps=25.0)
    assert feats[1, 3] == pytest.approx(4.0)  # MAX_SPEED
    with pytest.raises(ConfigError, match="tracker 'given' needs a track id >= 0 on every detection, 2 have none"):
        track(dets, TrackConfig(tracker="given"), 25.0, "hand-made")


def test_window_rows_zero_outside():
    feats = np.arange(6, dtype=np.float32).reshape(3, 2) + 1
    out = window_rows(feats, np.array([[-1, 0], [2, 3]]))
    np.testing.assert_array_equal(out, [[[0, 0], [1, 2]], [[5, 6], [0, 0]]])


def test_cache_is_reused_and_invalidated(synth, tmp_path, monkeypatch):
    from e2espot.data import tracks

    calls = []
    real = tracks.frame_features
    monkeypatch.setattr(tracks, "frame_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    video = tmp_path / "v.mp4"
    video.write_bytes(synth.videos["synth_001"].read_bytes())
    det = tmp_path / "v.tracks.json"
    det.write_text(synth.tracks["synth_001"].read_text())
    cfg = TrackConfig(tracker="given")
    stats: dict = {}
    first = video_track_features(video, cfg, fps=None, cache_dir=tmp_path / "cache", stats=stats)
    assert stats["cache"] == "miss" and first.shape == (48, 20) and len(calls) == 1
    assert stats["cache_path"].is_file() and stats["cache_path"].with_suffix(".json").is_file()
    again = video_track_features(video, cfg, fps=None, cache_dir=tmp_path / "cache", stats=stats)
    assert stats["cache"] == "hit" and len(calls) == 1
    np.testing.assert_array_equal(first, again)
    video_track_features(video, TrackConfig(tracker="given", grid=(2, 2)), fps=None, cache_dir=tmp_path / "cache",
                         stats=stats)
    assert stats["cache"] == "miss" and len(calls) == 2  # other settings, other entry
    obj = json.loads(det.read_text())
    obj["detections"] = [d for d in obj["detections"] if d["class"] == "player"]  # the ball removed
    det.write_text(json.dumps(obj))
    changed = video_track_features(video, cfg, fps=None, cache_dir=tmp_path / "cache", stats=stats)
    assert stats["cache"] == "miss" and len(calls) == 3 and not changed[:, 0].any()


def test_missing_detections_say_where_to_put_them(tmp_path, synth):
    video = tmp_path / "raw.mp4"
    video.write_bytes(synth.videos["synth_000"].read_bytes())
    with pytest.raises(ConfigError, match=r"raw.tracks.json, .*raw.mot.txt\).*--track-weights"):
        video_track_features(video, TrackConfig(), fps=None, cache_dir=tmp_path / "c")


# --------------------------------------------------------------------------- YOLO (fake ultralytics), ByteTrack


class _FakeBoxes:
    def __init__(self, xyxy, conf, cls):
        import torch

        self.xyxy, self.conf, self.cls = torch.tensor(xyxy), torch.tensor(conf), torch.tensor(cls)


def _fake_ultralytics(seen: list) -> types.ModuleType:
    """``ultralytics.YOLO``: COCO-like names; one person and one sports ball per frame, the ball at the
    column of the frame's brightest red pixel (so RGB -> BGR order is checked)."""
    class YOLO:
        names: typing.ClassVar = {0: "person", 32: "sports ball", 2: "car"}

        def __init__(self, weights):
            seen.append(("weights", weights))

        def predict(self, frames, verbose=False, conf=0.25):
            seen.append(("batch", len(frames), conf))
            out = []
            for f in frames:
                red = int(np.argmax(f[0, :, 2]))  # BGR: channel 2 is red
                out.append(types.SimpleNamespace(boxes=_FakeBoxes(
                    [[0.0, 0.0, 8.0, 16.0], [red - 1.0, 1.0, red + 1.0, 3.0], [0, 0, 1, 1]],
                    [0.9, 0.8, 0.9], [0.0, 32.0, 2.0])))
            return out

    mod = types.ModuleType("ultralytics")
    mod.YOLO = YOLO
    return mod


class _Reader:
    width, height, num_frames, fps = 32, 16, 5, 25.0

    def iter_frames(self):
        for k in range(self.num_frames):
            frame = np.zeros((16, 32, 3), np.uint8)
            frame[0, 4 + 5 * k, 0] = 255  # red pixel moving right
            yield frame


def test_yolo_detections_through_fake_ultralytics(tmp_path, monkeypatch):
    seen: list = []
    monkeypatch.setitem(sys.modules, "ultralytics", _fake_ultralytics(seen))
    weights = tmp_path / "yolo.pt"
    weights.write_bytes(b"fake")
    dets = detect_yolo(_Reader(), weights, TrackConfig(min_conf=0.2), batch_size=2)
    assert seen[0] == ("weights", str(weights)) and [s[1] for s in seen[1:]] == [2, 2, 1]
    assert seen[1][2] == 0.2
    assert dets.num_frames == 5 and dets.dropped == {"car": 5}
    balls = dets.kind == BALL
    np.testing.assert_allclose((dets.xyxy[balls, 0] + dets.xyxy[balls, 2]) / 2 * 32, [4, 9, 14, 19, 24])
    feats = frame_features(dets.select(np.ones(len(dets.frame), bool)), TrackConfig(), np.arange(5), 25.0)
    np.testing.assert_allclose(feats[1:, 3], 5 / 32 * 25, rtol=1e-5)  # 5 px per frame to the right


def test_yolo_needs_ultralytics_and_weights(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ultralytics", None)  # import fails
    weights = tmp_path / "y.pt"
    with pytest.raises(ConfigError, match="weights .*y.pt' not found"):
        detect_yolo(_Reader(), weights, TrackConfig())
    weights.write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"pip install 'e2espot\[tracks-yolo\]'"):
        detect_yolo(_Reader(), weights, TrackConfig())


@pytest.mark.skipif(not _has_bytetrack(), reason="no ByteTrack: supervision >= 0.30 dropped it and the "
                    "'trackers' package is not installed (pip install 'e2espot[tracks]')")
def test_bytetrack_on_synthetic_ground_truth(synth, tmp_path):
    video = synth.videos["synth_000"]
    given = video_track_features(video, TrackConfig(tracker="given"), fps=None, cache_dir=tmp_path)
    tracked = video_track_features(video, TrackConfig(tracker="bytetrack"), fps=None, cache_dir=tmp_path)
    np.testing.assert_array_equal(tracked[:, :5], given[:, :5])  # the ball uses every ball detection
    # ByteTrack confirms the 10 well-separated players from the first frames on
    assert (tracked[2:, 6] >= 0.8).mean() > 0.9, tracked[:, 6]


@pytest.mark.skipif(not _has_bytetrack(), reason="no ByteTrack: supervision >= 0.30 dropped it and the "
                    "'trackers' package is not installed (pip install 'e2espot[tracks]')")
def test_bytetrack_frames_without_detections(synth, tmp_path):
    """A ball out of view for frames 10-14 (no ball detection at all there): the tracker ages its tracks
    and the features say 'no ball' on exactly those frames."""
    video = tmp_path / "gap.mp4"
    video.write_bytes(synth.videos["synth_001"].read_bytes())
    obj = json.loads(synth.tracks["synth_001"].read_text())
    obj["detections"] = [d for d in obj["detections"] if not (d["class"] == "ball" and 10 <= d["frame"] < 15)]
    (tmp_path / "gap.tracks.json").write_text(json.dumps(obj))
    feats = video_track_features(video, TrackConfig(), fps=None, cache_dir=tmp_path / "c")
    assert np.flatnonzero(feats[:, 0] == 0).tolist() == [10, 11, 12, 13, 14]
    assert not feats[10:16, 3:5].any()  # no velocity into or out of the gap

"""find_video: label video ids -> files or frame folders, SoccerNet layouts included."""

import pytest

from e2espot.data.video import find_video
from e2espot.errors import VideoError


@pytest.fixture
def root(tmp_path):
    files = [
        "plain.mp4",
        "tennis/match_03.mkv",
        "frames_vid/000000.jpg",
        "tdeed_vid/frame7.jpg",
        "england_epl/2014-2015/game_a/1_224p.mkv",
        "england_epl/2014-2015/game_a/2_720p.mp4",
        "england_epl/2014-2015/game_a/Labels-v2.json",
        "spain_laliga/2023-2024/game_b/224p.mp4",
        "spain_laliga/2023-2024/game_c/video.mkv",
        "not_frames/readme.txt",
    ]
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    return tmp_path


@pytest.mark.parametrize(
    ("video_id", "expected"),
    [
        ("plain", "plain.mp4"),
        ("plain.mp4", "plain.mp4"),
        ("tennis/match_03", "tennis/match_03.mkv"),
        ("frames_vid", "frames_vid"),
        ("tdeed_vid", "tdeed_vid"),
        ("england_epl/2014-2015/game_a/1", "england_epl/2014-2015/game_a/1_224p.mkv"),
        ("england_epl/2014-2015/game_a/2", "england_epl/2014-2015/game_a/2_720p.mp4"),
        ("spain_laliga/2023-2024/game_b", "spain_laliga/2023-2024/game_b/224p.mp4"),
        ("spain_laliga/2023-2024/game_c", "spain_laliga/2023-2024/game_c/video.mkv"),
    ],
)
def test_find_video_resolves(root, video_id, expected):
    assert find_video(root, video_id) == root / expected


def test_folder_without_frames_is_not_a_video(root):
    with pytest.raises(VideoError, match="no video for id 'not_frames'"):
        find_video(root, "not_frames")


def test_error_lists_what_was_tried(root):
    with pytest.raises(VideoError) as info:
        find_video(root, "england_epl/2014-2015/game_a/3")
    message = str(info.value)
    assert "no video for id 'england_epl/2014-2015/game_a/3'" in message
    tried_paths = ("game_a/3.mp4", "game_a/3.webm", "game_a/3/224p.mp4", "game_a/3_224p.mkv",
                   "game_a/3_720p.mp4")
    for tried in tried_paths:
        assert tried in message


def test_missing_root(tmp_path):
    with pytest.raises(VideoError, match="is not a folder"):
        find_video(tmp_path / "nope", "x")

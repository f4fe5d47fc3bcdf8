"""Display rotation (phone footage): frames come out upright with width and height swapped, in the
PyAV reader, the OpenCV backend, probe_video and prepare. Render and highlights: tests/export."""

import av
import numpy as np
import pytest

from e2espot.data.prepare import prepare_videos
from e2espot.data.video import open_video, probe_video, write_video
from e2espot.data.video.patterns import decode_index_pattern, index_pattern
from e2espot.errors import VideoError

NUM = 30
STORED = np.stack([index_pattern(i) for i in range(NUM)])  # (30, 48, 64, 3) as stored in the file


def _mark(frames: np.ndarray) -> np.ndarray:
    """Index frames with a white 8x8 block in the stored top-left corner (shows which way is up)."""
    frames = frames.copy()
    frames[:, :8, :8] = 255
    return frames


@pytest.fixture(scope="module", params=[90, -90, 180])
def rotated(request, tmp_path_factory):
    rotation = request.param
    path = tmp_path_factory.mktemp("rot") / f"phone_{rotation}.mp4"
    write_video(path, _mark(STORED), 25, gop=12, bframes=2, rotation=rotation)
    return path, rotation


def _plain_decode(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _corner(frame: np.ndarray) -> str:
    """Which corner the white marker is in."""
    h, w = frame.shape[:2]
    corners = {"top-left": frame[:4, :4], "top-right": frame[:4, w - 4:], "bottom-left": frame[h - 4:, :4],
               "bottom-right": frame[h - 4:, w - 4:]}
    return max(corners, key=lambda k: float(corners[k].min()))


# ffmpeg's display matrix: +90 = turn the stored frame a quarter counter-clockwise to show it
EXPECTED_CORNER = {90: "bottom-left", -90: "top-right", 180: "bottom-right"}


def test_file_really_carries_the_rotation(rotated):
    path, rotation = rotated
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert frame.rotation == (rotation if rotation != 180 else -180)
    assert frame.to_ndarray(format="rgb24").shape == (48, 64, 3)  # stored sideways


def test_reader_returns_upright_frames(rotated):
    path, rotation = rotated
    stored = _plain_decode(path)
    with open_video(path) as reader:
        sideways = rotation in (90, -90)
        assert reader.rotation == rotation % 360
        assert (reader.width, reader.height) == ((48, 64) if sideways else (64, 48))
        assert (reader.src_width, reader.src_height) == (reader.width, reader.height)
        clip = reader.read_clip(10, 5)
        assert clip.shape == (5, reader.height, reader.width, 3)
        assert np.array_equal(clip, np.rot90(stored[10:15], k=rotation // 90, axes=(1, 2)))
        assert _corner(clip[0]) == EXPECTED_CORNER[rotation]
        # undoing the turn gives the stored index pattern back
        assert decode_index_pattern(np.rot90(clip[3], k=-(rotation // 90))) == 13


def test_reader_resizes_the_upright_frame(rotated):
    path, rotation = rotated
    with open_video(path, height=32) as reader:
        clip = reader.read_clip(0, 2)
    expected_width = 24 if rotation in (90, -90) else 42  # aspect of the upright frame, width even
    assert clip.shape == (2, 32, expected_width, 3)
    assert _corner(clip[0]) == EXPECTED_CORNER[rotation]


def test_probe_reports_rotation_and_upright_size(rotated):
    path, rotation = rotated
    info = probe_video(path)
    assert info.rotation == rotation % 360
    assert (info.width, info.height) == ((48, 64) if rotation in (90, -90) else (64, 48))


def test_opencv_backend_agrees_with_pyav(rotated):
    pytest.importorskip("cv2")
    path, rotation = rotated
    with open_video(path) as pyav_reader, open_video(path, backend="opencv") as cv_reader:
        assert (cv_reader.width, cv_reader.height) == (pyav_reader.width, pyav_reader.height)
        a, b = pyav_reader.read_clip(3, 4), cv_reader.read_clip(3, 4)
    assert _corner(b[0]) == _corner(a[0]) == EXPECTED_CORNER[rotation]
    # same frames up to colour conversion differences
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 4


def test_prepare_writes_upright_video_without_rotation(rotated, tmp_path):
    path, rotation = rotated
    prepare_videos([path], tmp_path / "out", fps=None, height=None, gop=4)
    out = tmp_path / "out" / path.name
    info = probe_video(out)
    assert info.rotation == 0
    with open_video(path) as src, open_video(out) as dst:
        assert (dst.width, dst.height) == (src.width, src.height)
        assert _corner(dst.read_clip(5, 1)[0]) == EXPECTED_CORNER[rotation]
        assert np.abs(dst.read_clip(0, NUM).astype(int) - src.read_clip(0, NUM).astype(int)).mean() < 6


def test_rotation_that_is_not_a_quarter_turn_is_an_error(tmp_path):
    path = write_video(tmp_path / "tilted.mp4", STORED[:3], 25, rotation=0)
    with av.open(str(tmp_path / "tilted45.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(45)
        for i, frame in enumerate(STORED[:3]):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    assert probe_video(path).rotation == 0
    for fn in (open_video, probe_video):
        with pytest.raises(VideoError, match=r"tilted45\.mp4': its display matrix rotates by 45 degrees.*"
                                             r"-display_rotation 0"):
            fn(tmp_path / "tilted45.mp4")


@pytest.mark.parametrize(("rotation", "hflip", "vflip", "expected"), [
    (0, True, False, (0, True)),  # selfie camera: PyAV's VideoFrame.rotation says -180 here
    (90, True, False, (90, True)),
    (0, False, True, (180, True)),  # a vertical flip is a half turn, mirrored
])
def test_mirrored_display_matrix(tmp_path, rotation, hflip, vflip, expected):
    path = tmp_path / "mirror.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(rotation, hflip=hflip, vflip=vflip)
        for i, frame in enumerate(_mark(STORED[:3])):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    stored = _plain_decode(path)
    info = probe_video(path)
    assert (info.rotation, info.mirrored) == expected
    with open_video(path) as reader:
        assert (reader.rotation, reader.mirrored) == expected
        got = reader.read_clip(0, 3)
    # libavutil/display.h: (x', y') = (a x + c y, b x + d y); PyAV: rotate, then mirror
    want = np.rot90(stored, k=expected[0] // 90, axes=(1, 2))[:, :, ::-1]
    assert np.array_equal(got, want)
    corner = {(0, True): "top-right", (90, True): "bottom-right", (180, True): "bottom-left"}[expected]
    assert _corner(got[0]) == corner


def test_web_upload_check_reports_the_upright_size(rotated):
    """The web app's upload check and the player see the same upright size as every reader."""
    from e2espot.web.app import check_video

    path, rotation = rotated
    info = check_video(path)
    with open_video(path) as reader:
        assert (info["width"], info["height"]) == (reader.width, reader.height)
    expected = (48, 64) if rotation in (90, -90) else (64, 48)
    assert (info["width"], info["height"]) == expected


def test_soccernet_num_frames_probe_uses_the_shared_prober(rotated):
    from e2espot.data.formats.soccernet import probe_num_frames

    path, _ = rotated
    assert probe_num_frames(path, 25.0) == NUM
    assert probe_num_frames(path, 12.5) == NUM // 2

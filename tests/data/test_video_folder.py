"""Frame-folder backends: jhong93/spot (%06d.jpg + fps.txt) and T-DEED (frame{N}.jpg, offset)."""

import pickle

import numpy as np
import pytest
from PIL import Image

from e2espot.data.video import open_video, probe_video
from e2espot.data.video.folder import SpotFolderReader, TDeedFolderReader
from e2espot.data.video.patterns import decode_index_pattern, index_pattern
from e2espot.errors import VideoError


def _write_frames(folder, names_and_idx, fps=None):
    folder.mkdir(parents=True)
    for name, idx in names_and_idx:
        Image.fromarray(index_pattern(idx)).save(folder / name, quality=95)
    if fps is not None:
        (folder / "fps.txt").write_text(f"{fps}\n")
    return folder


@pytest.fixture
def spot_dir(tmp_path):
    return _write_frames(tmp_path / "match_01", [(f"{i:06d}.jpg", i) for i in range(30)], fps=25.0)


@pytest.fixture
def tdeed_dir(tmp_path):
    return _write_frames(tmp_path / "game", [(f"frame{n}.jpg", n) for n in range(100, 130)])


def _indices(frames):
    return [decode_index_pattern(f) for f in frames]


def test_spot_layout(spot_dir):
    with open_video(spot_dir) as reader:
        assert isinstance(reader, SpotFolderReader)
        assert (reader.num_frames, reader.fps, reader.width, reader.height) == (30, 25.0, 64, 48)
        clip = reader.read_clip(5, 3)
        assert clip.shape == (3, 48, 64, 3) and clip.dtype == np.uint8
        assert _indices(clip) == [5, 6, 7]
        assert _indices(reader.iter_frames(27)) == [27, 28, 29]


def test_spot_layout_resampled_and_resized(spot_dir):
    with open_video(spot_dir, fps=10, height=24) as reader:
        assert (reader.num_frames, reader.fps, reader.src_fps) == (12, 10.0, 25.0)
        clip = reader.read_clip(0, 12)
        assert clip.shape == (12, 24, 32, 3)
        assert _indices(clip) == [int(k * 2.5) for k in range(12)]


def test_threaded_and_single_thread_reads_agree(spot_dir):
    with open_video(spot_dir, threads=1) as one, open_video(spot_dir, threads=3) as three:
        assert np.array_equal(one.read_clip(3, 20), three.read_clip(3, 20))


def test_without_fps_file_assumes_requested_fps(spot_dir):
    (spot_dir / "fps.txt").unlink()
    with open_video(spot_dir) as reader:
        assert reader.fps is None and reader.num_frames == 30
    with open_video(spot_dir, fps=12.5) as reader:
        assert reader.fps == reader.src_fps == 12.5 and reader.num_frames == 30


def test_tdeed_layout_with_offset(tdeed_dir):
    with open_video(tdeed_dir) as reader:
        assert isinstance(reader, TDeedFolderReader)
        assert reader.frame_offset == 100 and reader.num_frames == 30
        assert _indices(reader.read_clip(0, 2)) == [100, 101]
        assert _indices(reader.read_clip(29, 1)) == [129]
    with open_video(tdeed_dir, fps=25) as reader:
        assert reader.fps == 25


def test_missing_frame_is_an_error_never_padded(spot_dir, tdeed_dir):
    (spot_dir / "000010.jpg").unlink()
    with pytest.raises(VideoError, match=r"frame 000010\.jpg is missing.*never padded"):
        open_video(spot_dir)
    (tdeed_dir / "frame117.jpg").unlink()
    with pytest.raises(VideoError, match=r"frame frame117\.jpg is missing"):
        open_video(tdeed_dir)


def test_missing_first_spot_frame(spot_dir):
    (spot_dir / "000000.jpg").unlink()
    with pytest.raises(VideoError, match=r"000000\.jpg is missing"):
        open_video(spot_dir)


def test_frame_deleted_after_open(spot_dir):
    reader = open_video(spot_dir, threads=1)
    (spot_dir / "000004.jpg").unlink()
    with pytest.raises(VideoError, match=r"000004\.jpg is missing"):
        reader.read_clip(2, 4)


def test_corrupt_frame_names_the_file(spot_dir):
    (spot_dir / "000003.jpg").write_bytes(b"not a jpeg")
    with open_video(spot_dir) as reader, pytest.raises(VideoError, match=r"000003\.jpg"):
        reader.read_clip(0, 5)


def test_bad_fps_file(spot_dir):
    (spot_dir / "fps.txt").write_text("twenty-five")
    with pytest.raises(VideoError, match=r"fps\.txt.*positive frame rate"):
        open_video(spot_dir)


def test_out_of_range(spot_dir):
    with open_video(spot_dir) as reader, pytest.raises(VideoError, match="out of range.*30 frames"):
        reader.read_clip(28, 3)


def test_folder_reader_pickles(spot_dir):
    reader = open_video(spot_dir, threads=2)
    first = reader.read_clip(0, 4)
    clone = pickle.loads(pickle.dumps(reader))
    assert np.array_equal(clone.read_clip(0, 4), first)


def test_probe_folder(spot_dir, tdeed_dir):
    info = probe_video(spot_dir)
    assert (info.fps, info.num_frames, info.width, info.height, info.duration_s) == (25.0, 30, 64, 48, 1.2)
    info = probe_video(tdeed_dir)
    assert (info.fps, info.num_frames) == (None, 30)

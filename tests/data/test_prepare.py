"""prepare: re-encode at the training fps/height with a short GOP (or JPEG folders), resumably."""

import math

import numpy as np
import pytest

from e2espot.cli import main
from e2espot.data.prepare import plan_outputs, prepare_videos
from e2espot.data.video import open_video, write_video
from e2espot.data.video.folder import SpotFolderReader
from e2espot.data.video.patterns import decode_index_pattern, index_pattern
from e2espot.errors import ConfigError

NUM_SRC = 50  # 2 s at 25 fps


@pytest.fixture
def src_dir(tmp_path):
    root = tmp_path / "videos"
    frames = np.stack([index_pattern(i) for i in range(NUM_SRC)])
    write_video(root / "sub" / "a.mp4", frames, 25, gop=250, bframes=2)
    write_video(root / "b.mkv", frames, 25, gop=250)
    return root


def _indices(reader):
    return [decode_index_pattern(f) for f in reader.read_clip(0, reader.num_frames)]


def test_prepare_reencodes_at_fps_and_height(src_dir, tmp_path):
    out = tmp_path / "out"
    seen = []
    report = prepare_videos(src_dir, out, fps=10, height=24, gop=8,
                            progress=lambda p, s: seen.append((p.name, s)))
    assert sorted(seen) == [("a.mp4", "done"), ("b.mkv", "done")]
    assert (report.videos_done, report.videos_skipped) == (2, 0)
    outputs = [out / "sub" / "a.mp4", out / "b.mp4"]
    assert sorted(report.outputs) == sorted(outputs)
    assert report.bytes_written == sum(p.stat().st_size for p in outputs) > 0
    for path in outputs:
        with open_video(path) as reader:
            assert (reader.fps, reader.width, reader.height) == (10.0, 32, 24)
            assert reader.num_frames == math.ceil(NUM_SRC * 10 / 25)
            assert reader.keyframe_idx.tolist() == [0, 8, 16]
            assert _indices(reader) == [math.floor(k * 2.5) for k in range(reader.num_frames)]
    assert not list(out.rglob("*.part*"))


def test_prepare_skips_finished_and_resumes(src_dir, tmp_path):
    out = tmp_path / "out"
    prepare_videos(src_dir, out, fps=10, height=24)
    done = out / "b.mp4"
    mtime_ns = done.stat().st_mtime_ns
    again = prepare_videos(src_dir, out, fps=10, height=24)
    assert (again.videos_done, again.videos_skipped, again.bytes_written) == (0, 2, 0)
    assert done.stat().st_mtime_ns == mtime_ns
    # an interrupted run leaves only a temporary file; the next run redoes that video
    (out / "sub" / "a.mp4").unlink()
    (out / "sub" / ".a.part.mp4").write_bytes(b"half-written")
    resumed = prepare_videos(src_dir, out, fps=10, height=24)
    assert (resumed.videos_done, resumed.videos_skipped) == (1, 1)
    assert not (out / "sub" / ".a.part.mp4").exists()
    with open_video(out / "sub" / "a.mp4") as reader:
        assert reader.num_frames == 20


def test_prepare_jpeg_folders(src_dir, tmp_path):
    out = tmp_path / "jpeg"
    report = prepare_videos([src_dir / "b.mkv"], out, fps=12.5, height=24, jpeg=True)
    folder = out / "b"
    assert report.videos_done == 1 and report.outputs == [folder]
    assert (folder / "fps.txt").read_text().strip() == "12.5"
    assert sorted(p.name for p in folder.glob("*.jpg"))[:2] == ["000000.jpg", "000001.jpg"]
    with open_video(folder) as reader:
        assert isinstance(reader, SpotFolderReader)
        assert (reader.fps, reader.num_frames, reader.height, reader.width) == (12.5, 25, 24, 32)
        assert _indices(reader) == [2 * k for k in range(25)]
    assert prepare_videos([src_dir / "b.mkv"], out, fps=12.5, height=24, jpeg=True).videos_skipped == 1


def test_prepare_in_parallel_processes(src_dir, tmp_path):
    report = prepare_videos(src_dir, tmp_path / "par", fps=5, height=24, jobs=2)
    assert report.videos_done == 2
    with open_video(tmp_path / "par" / "sub" / "a.mp4") as reader:
        assert _indices(reader) == [5 * k for k in range(10)]


def test_prepare_rejects_bad_options(src_dir, tmp_path):
    with pytest.raises(ConfigError, match="odd"):
        prepare_videos(src_dir, tmp_path / "o", fps=10, height=25)
    with pytest.raises(ConfigError, match="gop"):
        prepare_videos(src_dir, tmp_path / "o", fps=10, height=24, gop=0)
    (src_dir / "sub" / "a.mkv").write_bytes((src_dir / "b.mkv").read_bytes())
    with pytest.raises(ConfigError, match="would both be prepared to"):
        plan_outputs(src_dir, tmp_path / "o")


def test_cli_prepare(src_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["prepare", str(src_dir), "-o", str(out), "--fps", "10", "--height", "24", "--gop", "4",
                 "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    size = (out / "b.mp4").stat().st_size + (out / "sub" / "a.mp4").stat().st_size
    assert f"{size} bytes written" in printed and "prepared 2 videos" in printed
    with open_video(out / "b.mp4") as reader:
        assert reader.keyframe_idx.tolist() == [0, 4, 8, 12, 16]
    assert main(["prepare", str(tmp_path / "missing"), "-o", str(out), "--no-progress"]) == 2
    assert "error: VideoError" in capsys.readouterr().err

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


def _write_odd(path, width=65, height=49, num=10):
    """An H.264 4:4:4 video with odd width and height (4:2:0 cannot hold odd sizes)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for i in range(num):
            frame = av.VideoFrame.from_ndarray(index_pattern(i, width=width, height=height), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture
def mixed_dir(tmp_path):
    """A folder with good videos, a text file named .mp4, an empty .mkv and an odd-sized video."""
    root = tmp_path / "mixed"
    frames = np.stack([index_pattern(i) for i in range(NUM_SRC)])
    write_video(root / "a_good.mp4", frames, 25, gop=12)
    (root / "b_notes.mp4").write_text("not a video\n" * 10)
    (root / "c_empty.mkv").touch()
    _write_odd(root / "d_odd.mkv")
    write_video(root / "e_good.mp4", frames[:20], 25, gop=12)
    return root


@pytest.mark.parametrize("jobs", [1, 2])
def test_prepare_folder_goes_on_after_a_bad_file(mixed_dir, tmp_path, jobs):
    out = tmp_path / f"out{jobs}"
    seen = []
    report = prepare_videos(mixed_dir, out, fps=None, height=None, jobs=jobs,
                            progress=lambda p, s: seen.append((p.name, s)))
    assert sorted(seen) == [("a_good.mp4", "done"), ("b_notes.mp4", "failed"), ("c_empty.mkv", "failed"),
                            ("d_odd.mkv", "done"), ("e_good.mp4", "done")]
    assert (report.videos_done, report.videos_failed) == (3, 2)
    failed = dict((p.name, msg) for p, msg in report.failures)
    assert sorted(failed) == ["b_notes.mp4", "c_empty.mkv"]
    assert failed["c_empty.mkv"].startswith("VideoError: ") and "0 bytes" in failed["c_empty.mkv"]
    assert "b_notes.mp4" in failed["b_notes.mp4"]
    assert sorted(p.name for p in report.outputs) == ["a_good.mp4", "d_odd.mp4", "e_good.mp4"]
    assert sorted(p.name for p in out.iterdir()) == ["a_good.mp4", "d_odd.mp4", "e_good.mp4"]  # no leftovers
    with open_video(out / "e_good.mp4") as reader:
        assert _indices(reader) == list(range(20))


def test_prepare_rounds_odd_sizes_to_even_with_a_note(mixed_dir, tmp_path):
    report = prepare_videos([mixed_dir / "d_odd.mkv"], tmp_path / "o", fps=None, height=None)
    assert report.notes == [f"'{mixed_dir / 'd_odd.mkv'}': 65x49 has an odd side; encoded at 64x48 "
                            "(last pixel column/row dropped: H.264 needs even sizes)"]
    with open_video(tmp_path / "o" / "d_odd.mp4") as out, open_video(mixed_dir / "d_odd.mkv") as src:
        assert (out.width, out.height, out.num_frames) == (64, 48, 10)
        a, b = out.read_clip(0, 10).astype(int), src.read_clip(0, 10)[:, :48, :64].astype(int)
    assert np.abs(a - b).mean() < 3  # the same picture, cropped, not rescaled


def test_cli_prepare_lists_failures_and_exits_nonzero(mixed_dir, tmp_path, capsys):
    code = main(["prepare", str(mixed_dir), "-o", str(tmp_path / "cli"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert "prepared 3 videos" in captured.out
    assert "note: " in captured.out and "65x49 has an odd side" in captured.out
    assert "error: 2 of 5 videos failed" in captured.err
    lines = [line.strip() for line in captured.err.splitlines()[1:]]
    assert [line.split(": ")[0].rsplit("/", 1)[-1] for line in lines] == ["b_notes.mp4", "c_empty.mkv"]

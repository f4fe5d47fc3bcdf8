"""`e2espot train` edges: the summary when nothing was validated (issue 18 item 1), a non-empty run
directory (issue 12 item 5), missing videos (issue 12 item 7), the CPU thread plan (issue 18 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2espot.cli import main
from e2espot.data.synthetic import generate_dataset
from e2espot.train.loop import TrainResult, cpu_loader_plan


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    generate_dataset(root, num_videos=4, seed=3, tiny=True, soccernet=False)
    return root


def _args(data: Path, run: Path, *extra: str) -> list[str]:
    return ["train", str(data), str(data / "videos"), "-s", str(run), "-m", "test_tiny_tsm", "-t", "fc",
            "--clip-len", "16", "--height", "48", "--epoch-clips", "4", "--batch-size", "2", "-j", "0",
            "--device", "cpu", "--precision", "fp32", "--no-mixup", "--warmup-epochs", "0", *extra]


def test_nothing_validated_ends_with_a_plain_summary_then_run_dir_rules(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    # issue 18: --start-val-epoch past the last epoch used to crash formatting best_score after saving
    assert main(_args(tiny_data, run, "--num-epochs", "1", "--start-val-epoch", "1")) == 0
    out = capsys.readouterr().out
    assert ("no epoch was validated (--start-val-epoch 1 is at or past the last epoch (0; epochs count from 0)): "
            f"best.pt holds the last epoch, 0, not a validated best; run dir {run}") in out
    rows = json.loads((run / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [0] and "val_map" not in rows[0]

    # a non-empty run directory is refused without --resume / --overwrite
    assert main(_args(tiny_data, run, "--num-epochs", "1")) == 2
    err = capsys.readouterr().err
    assert f"-s {run} is not empty" in err and "Pass --resume to continue that run, --overwrite" in err

    # --resume with changed options names each of them
    assert main(_args(tiny_data, run, "--num-epochs", "3", "-lr", "0.002", "--resume")) == 2
    err = capsys.readouterr().err
    assert "differs from this run's in 3 options" in err
    assert "train.lr: 0.001 in the checkpoint, 0.002 now" in err and "train.num_epochs: 1 in the checkpoint, 3 now" in err
    assert "train.start_val_epoch: 1 in the checkpoint, None now" in err

    # --overwrite starts afresh: stale predictions go, other files stay
    (run / "pred-test.json").write_text("[]")
    (run / "notes.txt").write_text("mine")
    assert main(_args(tiny_data, run, "--num-epochs", "1", "--criterion", "loss", "--overwrite")) == 0
    out = capsys.readouterr().out
    assert "best epoch 0 (val loss " in out
    assert not (run / "pred-test.json").exists() and (run / "notes.txt").read_text() == "mine"
    assert [r["epoch"] for r in json.loads((run / "metrics.json").read_text())] == [0]


def test_summary_line_cases(tmp_path):
    from e2espot.commands.train import summary_line

    # best_score is in percent (issue 12: one unit everywhere a run writes mAP)
    assert summary_line(TrainResult(tmp_path, 3, 45.67)) == f"best epoch 3 (val mAP 45.67 %) -> best.pt; run dir {tmp_path}"
    assert summary_line(TrainResult(tmp_path, 2, -0.25, criterion="loss")).startswith("best epoch 2 (val loss 0.2500)")
    assert summary_line(TrainResult(tmp_path, 5, None, unvalidated_reason="no validation split")).startswith(
        "no epoch was validated (no validation split): best.pt holds the last epoch, 5")
    assert "stopped before an epoch ended" in summary_line(TrainResult(tmp_path, None, None))


def test_missing_videos_are_counted_listed_and_skippable(tiny_data, tmp_path, capsys, caplog):
    import shutil

    videos = tmp_path / "videos"
    shutil.copytree(tiny_data / "videos", videos)
    gone = sorted(videos.glob("*.mp4"))[:1]
    for p in gone:
        p.unlink()
    args = _args(tiny_data, tmp_path / "run", "--num-epochs", "1", "--criterion", "loss")
    args[2] = str(videos)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"1 of the 3 videos named in the labels are missing from VIDEOS '{videos}'" in err
    assert "(the second argument of e2espot train)" in err and gone[0].stem in err
    assert "--skip-missing to train on the 2 that exist" in err and "--videos" not in err
    assert main([*args, "--skip-missing"]) == 0
    assert "--skip-missing: training without them" in caplog.text


def test_missing_video_list_is_capped_at_ten(tmp_path):
    from e2espot.commands.train import drop_missing_videos
    from e2espot.data.labels import LabelSet, VideoLabels
    from e2espot.errors import VideoError

    (tmp_path / "videos").mkdir()
    train = LabelSet(["a"], [VideoLabels(f"m{i:02d}", 25.0, 10, []) for i in range(12)])
    with pytest.raises(VideoError) as info:
        drop_missing_videos(train, None, tmp_path / "videos", skip=False)
    msg = str(info.value)
    assert "12 of the 12 videos" in msg and "m09 (train)" in msg and "m10" not in msg and "and 2 more" in msg
    with pytest.raises(VideoError, match="leaves no training video"):
        drop_missing_videos(train, None, tmp_path / "videos", skip=True)


def _plan(*args, **kw) -> tuple[int, int]:
    plan = cpu_loader_plan(*args, **kw)
    return plan.threads, plan.workers


def test_cpu_loader_plan():
    # explicit values win; threads default to the cores left after one per worker
    assert _plan(0, None, device_type="cpu", cores=2) == (2, 0)
    assert _plan(1, None, device_type="cpu", cores=8) == (7, 1)
    assert _plan(2, 3, device_type="cpu", cores=2) == (3, 2)
    assert cpu_loader_plan(None, None, device_type="cuda", cores=2).workers == 2
    plan = cpu_loader_plan(None, None, device_type="cpu", cores=16)
    assert (plan.threads, plan.workers) == (14, 2)
    # per machine (bench_train --compare-threads): 2 cores -> 1 thread + 1 worker, never 2 threads + in process
    assert _plan(None, None, device_type="cpu", cores=2) == (1, 1)
    assert _plan(None, None, device_type="cpu", cores=1) == (1, 1)
    assert _plan(None, None, device_type="cpu", cores=4) == (2, 2)


def test_lr_schedule_option(tmp_path, capsys):
    from e2espot.errors import ConfigError
    from e2espot.train.loop import TrainOptions

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--lr-schedule {cosine,spot}" in text and "jhong93/spot's schedule exactly" in text
    assert TrainOptions(lr_schedule="spot", num_epochs=6).resolved(16).lr_schedule == "spot"
    with pytest.raises(ConfigError, match="raise --num-epochs above --warmup-epochs"):
        TrainOptions(lr_schedule="spot", num_epochs=3, warmup_epochs=3).resolved(16)
    with pytest.raises(ConfigError, match="--lr-schedule linear: expected one of cosine, spot"):
        TrainOptions(lr_schedule="linear").resolved(16)


def test_bench_train_forwards_compare_threads(tmp_path):
    from e2espot.commands.bench import benchmark_command

    cmd = benchmark_command(tmp_path, "train", quick=True, device=None, compare_threads=True)
    assert cmd[1:] == [str(tmp_path / "bench_train.py"), "--quick", "--compare-threads"]
    assert "--compare-threads" not in benchmark_command(tmp_path, "decode", quick=False, device=None,
                                                         compare_threads=True)


def test_native_fps_is_recorded_from_the_labels(caplog):
    """Training at native rate records the labels' fps (never null when they agree), so predict resamples
    a variable-frame-rate video to the rate the model saw and time_s are true times."""
    from types import SimpleNamespace

    from e2espot.commands.train import labels_fps

    def labels(*rates):
        return SimpleNamespace(videos=[SimpleNamespace(fps=r) for r in rates])

    assert labels_fps(labels(25.0, 25.0, None)) == 25.0
    assert labels_fps(labels(None, None)) is None
    with caplog.at_level("WARNING", logger="e2espot"):
        assert labels_fps(labels(25.0, 29.97)) is None
    assert "2 different frame rates (25, 29.97)" in caplog.text and "pass --fps" in caplog.text

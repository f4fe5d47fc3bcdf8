"""Training loop: exact resume, DDP with two gloo processes, run-directory contents, the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from e2espot.checkpoint import load_checkpoint
from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.sources import read_split
from e2espot.data.synthetic import generate_dataset
from e2espot.errors import CheckpointError, ConfigError
from e2espot.train.loop import TrainOptions, train


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    generate_dataset(root, num_videos=4, seed=3, tiny=True, soccernet=False)
    return root


def _setup(root: Path, **opt_kw):
    train_labels = read_split(root, "train")
    val_labels = read_split(root, "val")
    classes = tuple(train_labels.classes)
    run_cfg = RunConfig(
        model=ModelConfig(num_classes=len(classes), backbone="test_tiny", temporal_module="tsm", head="gru",
                          clip_len=16),
        data=DataConfig(height=48, clip_len=16, crop=32),
        classes=classes,
        dataset={"videos": str(root / "videos")},
    )
    opts = TrainOptions(num_epochs=2, epoch_clips=8, batch_size=4, warmup_epochs=1, num_workers=0,
                        device="cpu", precision="fp32", start_val_epoch=0, seed=5, **opt_kw)
    return run_cfg, train_labels, val_labels, opts


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_run_directory_contents(tiny_data, tmp_path):
    run_cfg, tr, va, opts = _setup(tiny_data)
    result = train(run_cfg, tr, va, tmp_path / "run", opts)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "last.pt"]  # no per-epoch pile-up
    saved = RunConfig.load(run / "config.json")
    assert (saved.model, saved.data, saved.classes) == (run_cfg.model, run_cfg.data, run_cfg.classes)
    # post-processing for predict is chosen on validation at the end, with the best weights
    post = saved.postprocess.to_dict()
    assert post["chosen_on"] == "val" and post["nms"] == "hard" and post["f1_tolerance_frames"] == 2
    assert sorted(post["thresholds"]) == sorted(run_cfg.classes)
    assert all(0.0 <= t <= 1.0 for t in post["thresholds"].values())
    rows = json.loads((run / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [0, 1]
    # mAP in percent everywhere a run writes it (issue 12), each row marked with its unit
    assert all(0.0 <= r["val_map"] <= 100.0 and r["val_loss"] > 0 and r["map_unit"] == "percent" for r in rows)
    assert result.best_score == max(r["val_map"] for r in rows)
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,val_loss,val_map,lr,clips_per_s,map_unit"
    assert any((run / "tensorboard").iterdir())
    assert result.best_epoch in (0, 1)
    assert load_checkpoint(run / "best.pt")["epoch"] == result.best_epoch


def test_resume_mid_epoch_matches_uninterrupted(tiny_data, tmp_path):
    run_cfg, tr, va, opts = _setup(tiny_data, mixup=True)
    train(run_cfg, tr, va, tmp_path / "full", opts)
    # "kill" after 3 optimiser steps (mid-epoch 1: 2 steps per epoch), then resume
    train(run_cfg, tr, va, tmp_path / "cut", replace(opts, max_steps=3))
    state = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert (state["epoch"], state["step"]) == (1, 1)
    train(run_cfg, tr, va, tmp_path / "cut", opts, resume=True)
    full, cut = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "cut" / "last.pt")
    assert full.keys() == cut.keys()
    for name in full:
        torch.testing.assert_close(cut[name], full[name], rtol=0, atol=0, msg=name)
    h_full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    h_cut = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert [r["train_loss"] for r in h_cut] == pytest.approx([r["train_loss"] for r in h_full], abs=1e-9)


def test_resume_of_a_run_logged_in_fractions_continues_in_percent(tiny_data, tmp_path):
    """A run written before issue 12 logged val_map and best_score as fractions: resuming converts them,
    so the new epoch's percent score is compared with a percent best and metrics.json has one unit."""
    run_cfg, tr, va, opts = _setup(tiny_data)
    run = tmp_path / "run"
    train(run_cfg, tr, va, run, replace(opts, max_steps=2))  # epoch 0 done and validated
    state = load_checkpoint(run / "last.pt")
    (row,) = json.loads(state["history"])
    old_row = {k: v for k, v in row.items() if k != "map_unit"} | {"val_map": 0.999}  # an old run, a fraction
    state["history"], state["best_score"] = json.dumps([old_row]), 0.999
    torch.save(state, run / "last.pt")
    result = train(run_cfg, tr, va, run, opts, resume=True)
    rows = json.loads((run / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [0, 1] and all(r["map_unit"] == "percent" for r in rows)
    assert rows[0]["val_map"] == pytest.approx(99.9)
    # 99.9 % beats what epoch 1 scores; compared as a fraction, epoch 1's percent would have won
    assert result.best_epoch == 0 and result.best_score == pytest.approx(99.9)


def test_sam_changes_the_step(tiny_data, tmp_path):
    run_cfg, tr, va, opts = _setup(tiny_data)
    opts = replace(opts, num_epochs=1, criterion="loss")
    train(run_cfg, tr, va, tmp_path / "adamw", opts)
    train(run_cfg, tr, va, tmp_path / "sam", replace(opts, optimizer="sam", rho=0.5))
    a, b = _weights(tmp_path / "adamw" / "last.pt"), _weights(tmp_path / "sam" / "last.pt")
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_resume_with_other_config_is_refused(tiny_data, tmp_path):
    run_cfg, tr, va, opts = _setup(tiny_data)
    train(run_cfg, tr, va, tmp_path / "run", replace(opts, max_steps=1))
    other = replace(run_cfg, model=replace(run_cfg.model, head="fc"))
    with pytest.raises(CheckpointError, match="config differs"):
        train(other, tr, va, tmp_path / "run", opts, resume=True)


def test_bad_batch_options(tiny_data, tmp_path):
    run_cfg, tr, va, opts = _setup(tiny_data)
    with pytest.raises(ConfigError, match="divisible"):
        train(run_cfg, tr, va, tmp_path / "run", replace(opts, batch_size=4, acc_grad=3))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes(tiny_data, tmp_path):
    """torchrun-style launch: two gloo processes train one model; rank 0 writes the run dir."""
    script = tmp_path / "ddp_train.py"
    script.write_text(
        "import sys\n"
        "from tests_ddp_entry import main\n"
        "main(sys.argv[1], sys.argv[2])\n"
    )
    (tmp_path / "tests_ddp_entry.py").write_text(
        "from dataclasses import replace\n"
        "from pathlib import Path\n"
        "from e2espot.config import DataConfig, ModelConfig, RunConfig\n"
        "from e2espot.data.sources import read_split\n"
        "from e2espot.train.loop import TrainOptions, train\n"
        "def main(root, out):\n"
        "    root = Path(root)\n"
        "    tr, va = read_split(root, 'train'), read_split(root, 'val')\n"
        "    classes = tuple(tr.classes)\n"
        "    cfg = RunConfig(ModelConfig(num_classes=len(classes), backbone='test_tiny', temporal_module='gsm',\n"
        "                                head='gru', clip_len=16), DataConfig(height=48, clip_len=16), classes,\n"
        "                    dataset={'videos': str(root / 'videos')})\n"
        "    opts = TrainOptions(num_epochs=1, epoch_clips=8, batch_size=2, warmup_epochs=0, num_workers=0,\n"
        "                        device='cpu', precision='fp32', criterion='loss', seed=1)\n"
        "    train(cfg, tr, va, out, opts)\n"
    )
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1", PYTHONPATH=str(tmp_path))
        procs.append(subprocess.Popen([sys.executable, str(script), str(tiny_data), str(tmp_path / "ddp")],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    state = load_checkpoint(tmp_path / "ddp" / "last.pt")
    # 8 clips per epoch / (batch 2 x 2 processes) = 2 optimiser steps, in step on both ranks
    assert state["global_step"] == 2
    rows = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert len(rows) == 1 and rows[0]["clips_per_s"] > 0


def test_train_cli_writes_run_dir(tiny_data, tmp_path):
    from e2espot.cli import main

    toml = tmp_path / "opts.toml"
    toml.write_text('num_epochs = 1\nbatch_size = 2\n')
    code = main(["train", str(tiny_data), str(tiny_data / "videos"), "-s", str(tmp_path / "run"),
                 "-m", "test_tiny_tsm", "-t", "fc", "--clip_len", "16", "--height", "48", "--epoch-clips", "4",
                 "--num-epochs", "5", "--config", str(toml), "-j", "0", "--device", "cpu",
                 "--precision", "fp32", "--start-val-epoch", "0", "--no-mixup"])
    assert code == 0
    cfg = RunConfig.load(tmp_path / "run" / "config.json")
    assert (cfg.model.backbone, cfg.model.temporal_module, cfg.model.head) == ("test_tiny", "tsm", "fc")
    assert cfg.train["num_epochs"] == 5  # the command line wins over the TOML file
    assert cfg.train["batch_size"] == 2  # the TOML file fills what the command line left at default
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0


def test_train_cli_unknown_backbone(tiny_data, tmp_path, capsys):
    from e2espot.cli import main

    code = main(["train", str(tiny_data), str(tiny_data / "videos"), "-s", str(tmp_path / "run"),
                 "-m", "rny02_gsm"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown architecture 'rny02_gsm'; did you mean 'rny002_gsm'?" in err

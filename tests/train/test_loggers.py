"""Weights & Biases beside TensorBoard: a fake wandb module (always), offline runs (when wandb is installed)."""

from __future__ import annotations

import json
import sys
import types

import pytest

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.errors import ConfigError
from e2espot.train.loggers import FanOut, with_wandb

CFG = RunConfig(model=ModelConfig(num_classes=2, backbone="test_tiny", temporal_module=None, head="fc", clip_len=8),
                data=DataConfig(height=32, clip_len=8), classes=("pass", "shot"))


class _Recorder:
    def __init__(self):
        self.calls = []

    def add_scalar(self, tag, value, step):
        self.calls.append(("scalar", tag, value, step))

    def flush(self):
        self.calls.append(("flush",))

    def close(self):
        self.calls.append(("close",))


@pytest.fixture
def fake_wandb(monkeypatch):
    runs = []

    class Run:
        def __init__(self, **kwargs):
            self.kwargs, self.logged, self.finished = kwargs, [], False

        def log(self, data, step):
            self.logged.append((data, step))

        def finish(self):
            self.finished = True

    def init(**kwargs):
        runs.append(Run(**kwargs))
        return runs[-1]

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    return runs


def test_off_returns_the_tensorboard_writer(tmp_path):
    tb = _Recorder()
    assert with_wandb(tb, tmp_path, CFG, "off") is tb
    assert with_wandb(None, tmp_path, CFG, "off") is None


def test_fan_out_to_tensorboard_and_wandb(tmp_path, fake_wandb):
    tb = _Recorder()
    writer = with_wandb(tb, tmp_path / "run7", CFG, "offline", project="ball")
    assert isinstance(writer, FanOut)
    writer.add_scalar("train_loss", 0.5, 0)
    writer.add_scalar("val_map", 0.25, 1)
    writer.flush()
    writer.close()
    run = fake_wandb[0]
    assert run.kwargs["mode"] == "offline" and run.kwargs["project"] == "ball" and run.kwargs["name"] == "run7"
    assert run.kwargs["dir"] == str(tmp_path / "run7") and run.kwargs["config"]["model"]["backbone"] == "test_tiny"
    assert run.logged == [({"train_loss": 0.5}, 0), ({"val_map": 0.25}, 1)]
    assert run.finished
    assert tb.calls == [("scalar", "train_loss", 0.5, 0), ("scalar", "val_map", 0.25, 1), ("flush",), ("close",)]


def test_missing_package_and_bad_mode(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(ConfigError, match=r"--wandb offline needs the wandb package: pip install 'e2espot\[wandb\]'"):
        with_wandb(None, tmp_path, CFG, "offline")
    with pytest.raises(ConfigError, match="--wandb 'cloud': expected one of off, online, offline"):
        with_wandb(None, tmp_path, CFG, "cloud")


def _offline_env(monkeypatch, tmp_path):
    pytest.importorskip("wandb", reason="wandb not installed (optional extra e2espot[wandb])")
    for var, sub in (("WANDB_CONFIG_DIR", "cfg"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / sub))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def test_real_offline_run(tmp_path, monkeypatch):
    """The wandb package in offline mode: a run folder under RUN/wandb/ and every scalar sent to it."""
    _offline_env(monkeypatch, tmp_path)
    import wandb

    logged = []
    real_init = wandb.init

    def spy_init(**kwargs):
        run = real_init(**kwargs)
        real_log = run.log
        run.log = lambda data, step: (logged.append((data, step)), real_log(data, step=step))
        return run

    monkeypatch.setattr(wandb, "init", spy_init)
    writer = with_wandb(_Recorder(), tmp_path / "run", CFG, "offline")
    writer.add_scalar("train_loss", 0.5, 0)
    writer.add_scalar("train_loss", 0.25, 1)
    writer.close()
    assert logged == [({"train_loss": 0.5}, 0), ({"train_loss": 0.25}, 1)]
    files = list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1 and files[0].stat().st_size > 0


@pytest.mark.slow  # ~15 s CPU: a real (tiny) training run with validation
def test_training_loop_logs_to_wandb(tmp_path, fake_wandb):
    """train(..., TrainOptions(wandb="offline")) sends the epoch metrics that metrics.json holds."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: one intra-op thread is faster
    from e2espot.data.sources import read_split
    from e2espot.data.synthetic import generate_dataset
    from e2espot.train.loop import TrainOptions, train

    root = tmp_path / "data"
    generate_dataset(root, num_videos=4, seed=3, tiny=True, soccernet=False)
    tr, va = read_split(root, "train"), read_split(root, "val")
    classes = tuple(tr.classes)
    cfg = RunConfig(
        model=ModelConfig(num_classes=len(classes), backbone="test_tiny", temporal_module=None, head="fc", clip_len=16),
        data=DataConfig(height=32, clip_len=16, crop=32), classes=classes, dataset={"videos": str(root / "videos")},
    )
    opts = TrainOptions(num_epochs=1, epoch_clips=4, batch_size=2, warmup_epochs=1, num_workers=0, device="cpu",
                        precision="fp32", start_val_epoch=0, seed=1, wandb="offline", wandb_project="e2espot-test")
    run = tmp_path / "run"
    try:
        train(cfg, tr, va, run, opts)
    finally:
        torch.set_num_threads(threads)
    assert any((run / "tensorboard").iterdir())
    history = json.loads((run / "metrics.json").read_text())
    (wb,) = fake_wandb
    assert wb.kwargs["mode"] == "offline" and wb.kwargs["project"] == "e2espot-test" and wb.finished
    sent = {k: v for data, step in wb.logged for k, v in data.items() if step == 0}
    for key in ("train_loss", "val_loss", "val_map", "lr"):
        assert sent[key] == pytest.approx(history[0][key])

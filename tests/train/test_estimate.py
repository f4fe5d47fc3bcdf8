"""Defaults that fit the machine (issue 12 item 2): source height, batch chosen to fit, the estimate
printed before training and a refusal with the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from e2espot.cli import main
from e2espot.config import ModelConfig
from e2espot.data.synthetic import generate_dataset
from e2espot.train import estimate
from e2espot.train.estimate import OVERHEAD, StepEstimate, probe_step


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    generate_dataset(root, num_videos=4, seed=3, tiny=True, soccernet=False)
    return root


def test_step_estimate_arithmetic():
    est = StepEstimate(height=10, width=20, activation_bytes_per_frame=1000.0, parameter_bytes=400,
                       seconds_per_frame=0.01)
    # weights, grads, two AdamW moments + uint8 input + 1.5 x activations
    assert est.step_bytes(2, 5) == 4 * 400 + 10 * 10 * 20 * 3 + int(OVERHEAD * 1000 * 10)
    assert est.epoch_seconds(100, 5) == pytest.approx(5.0)
    sam = StepEstimate(10, 20, 1000.0, 400, 0.01, optimizer="sam")
    assert sam.step_bytes(2, 5) - est.step_bytes(2, 5) == 400  # SAM keeps a copy of the weights
    assert sam.epoch_seconds(100, 5) == pytest.approx(10.0)  # two passes


def test_probe_measures_saved_activations():
    cfg = ModelConfig(num_classes=3, backbone="test_tiny", temporal_module="tsm", head="fc", clip_len=16)
    small = probe_step(cfg, 32, 48, device=torch.device("cpu"), precision="fp32")
    from e2espot.models import create_spotter

    assert small.parameter_bytes == 4 * sum(p.numel() for p in create_spotter(cfg).parameters())
    assert small.activation_bytes_per_frame > 3 * 32 * 48 * 4  # at least the normalised input frame
    assert small.seconds_per_frame > 0
    # above PROBE_MAX_HEIGHT the probe runs smaller and scales by the pixel ratio
    big = probe_step(cfg, 2 * estimate.PROBE_MAX_HEIGHT, 4 * estimate.PROBE_MAX_HEIGHT, device=torch.device("cpu"),
                     precision="fp32")
    assert (big.height, big.width) == (2 * estimate.PROBE_MAX_HEIGHT, 4 * estimate.PROBE_MAX_HEIGHT)


def _args(data: Path, run: Path, *extra: str) -> list[str]:
    return ["train", str(data), str(data / "videos"), "-s", str(run), "-m", "test_tiny_tsm", "-t", "fc",
            "--epoch-clips", "4", "-j", "0", "--device", "cpu", "--precision", "fp32", "--no-mixup",
            "--warmup-epochs", "0", "--num-epochs", "1", "--criterion", "loss", *extra]


def test_defaults_fit_the_machine_and_print_the_estimate(tiny_data, tmp_path, capsys, monkeypatch):
    fake = StepEstimate(height=48, width=64, activation_bytes_per_frame=1e6, parameter_bytes=1000,
                        seconds_per_frame=0.001)
    monkeypatch.setattr(estimate, "probe_step", lambda *a, **k: fake)
    # room for batch 2 x 100 frames, not for 4 x 100
    room = fake.step_bytes(3, 100) / 0.8
    monkeypatch.setattr(estimate, "available_bytes", lambda device: int(room))
    assert main(_args(tiny_data, tmp_path / "run")) == 0
    out = capsys.readouterr().out
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["data"]["height"] == 48  # the source videos' height, not 224
    assert cfg["data"]["clip_len"] == 100 and cfg["train"]["batch_size"] == 2
    assert "estimate: 288 MB per training step (batch 2 (chosen to fit) x 100 frames at 48x64, fp32)" in out
    assert "per epoch of 4 clips on cpu" in out

    # given values that cannot fit: refused before training, with the fix
    monkeypatch.setattr(estimate, "available_bytes", lambda device: 10 * 2**20)
    assert main(_args(tiny_data, tmp_path / "run2", "--batch-size", "4", "--clip-len", "64")) == 2
    err = capsys.readouterr().err
    assert "a training step needs about 368 MB (batch 4 / -ag 1 x 64 frames at 48x64, fp32) but 10 MB" in err
    assert "Lower --batch-size (raise -ag to keep the effective batch), --clip-len, or --height/--crop-dim" in err
    assert not (tmp_path / "run2" / "config.json").exists()


@pytest.mark.slow  # eight AdaSpot forward + backward passes: ~20 s on a quiet 2-core machine
def test_probe_of_adaspot_is_not_scaled_by_the_input_pixels(monkeypatch):
    """AdaSpot resizes any input to its own sizes (64x114 high-res, 32x57 low-res here), so a probe above
    PROBE_MAX_HEIGHT measures the full cost: before, such frames were probed smaller and scaled by the pixel
    ratio (252x448 by 5.1, refusing ``train -m adaspot_small --height 252`` for 17.2 GB it does not need)."""
    from e2espot.models.adaspot import training_config

    monkeypatch.setattr(estimate, "PROBE_MAX_HEIGHT", 48)  # a tiny model above the probe height
    cfg = training_config("adaspot_small", 3, 4, 64, 114)
    cpu = torch.device("cpu")
    big = probe_step(cfg, 64, 114, device=cpu, precision="fp32")
    small = probe_step(cfg, 32, 56, device=cpu, precision="fp32")
    assert (big.height, big.width) == (64, 114)  # the uint8 input batch is still counted at its size
    assert big.activation_bytes_per_frame == pytest.approx(small.activation_bytes_per_frame, rel=0.01)
    # at least the normalised high-res image the first conv saves (3 x 64 x 114 fp32)
    assert big.activation_bytes_per_frame > 3 * 64 * 114 * 4

"""`e2espot train` prints its summary line when validation gives no score (no val events in the split)."""

from __future__ import annotations

import json

import pytest
import torch

from e2espot.cli import main
from e2espot.data.synthetic import generate_dataset


@pytest.mark.slow  # ~16 s CPU: a tiny training run
def test_summary_without_validation_score(tmp_path, capsys):
    root = tmp_path / "data"
    generate_dataset(root, num_videos=2, seed=3, tiny=True, soccernet=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["train", str(root), str(root / "videos"), "-s", str(tmp_path / "run"), "-m", "test_tiny",
                     "-t", "fc", "--clip_len", "8", "--height", "32", "--epoch-clips", "2", "--batch-size", "2",
                     "--num-epochs", "1", "-j", "0", "--device", "cpu", "--precision", "fp32",
                     "--start-val-epoch", "0", "--no-mixup"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [0] and "val_map" not in rows[0]
    out = capsys.readouterr().out
    assert f"best epoch 0 (no validation score); run dir {tmp_path / 'run'}" in out

"""`e2espot bench`: a missing GPU is one error line; --quick figures are labelled as smoke figures."""

from __future__ import annotations

import json

import pytest

from e2espot.cli import main
from e2espot.commands.bench import smoke_line


def test_bench_cuda_without_a_gpu_is_one_error_line(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert main(["bench", "decode", "--device", "cuda"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].startswith("error: ConfigError: --device cuda: this machine has no CUDA GPU")
    assert "--device cpu" in lines[0] and captured.out == ""


def test_quick_lines_are_labelled_smoke_figures():
    line = smoke_line(json.dumps({"bench": "predict", "quick": True, "ratio": 0.93}))
    record = json.loads(line)
    assert record["smoke"] is True and record["ratio"] == 0.93 and "measure nothing" in record["note"]
    assert next(iter(record)) == "smoke"
    assert smoke_line("not json") == "not json"


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 35)" in text and "(default: test_tiny_tsm)" in text and "(default: demo_out)" in text
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "smoke figures" in text and "(default: each benchmark's, cpu)" in text

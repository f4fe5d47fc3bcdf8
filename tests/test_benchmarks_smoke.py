"""Smoke test of benchmarks/: every benchmark runs in --quick mode on tiny inputs and prints one JSON
line with its figures. Benchmarks are never timed tests: only keys and sane values are checked."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"

if not (BENCH_DIR / "bench_decode.py").is_file():
    pytest.skip(f"benchmarks folder not found at {BENCH_DIR}", allow_module_level=True)


def _load(name: str):
    sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(f"_e2espot_bench_{name}", BENCH_DIR / f"bench_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(name: str, capsys, tmp_path: Path, *extra: str) -> dict:
    code = _load(name).main(["--quick", "--workdir", str(tmp_path / name), *extra])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert len(out) == 1, f"bench_{name} must print exactly one line on stdout, got {out}"
    line = json.loads(out[0])
    assert line["bench"] == name and line["quick"] is True
    assert line["machine"]["cpus"] >= 1
    return line


def _positive(*values: float) -> None:
    for v in values:
        assert isinstance(v, (int, float)) and math.isfinite(v) and v > 0, values


def test_bench_predict_quick(capsys, tmp_path):
    line = _run("predict", capsys, tmp_path, "--seconds", "1")
    _positive(line["e2e_fps"], line["decode_fps"], line["model_fps"], line["ratio_e2e_over_bound"])
    assert line["num_frames"] == 25 and line["num_windows"] >= 1
    bound = min(line["decode_fps"], line["model_fps"])
    assert line["ratio_e2e_over_bound"] == pytest.approx(line["e2e_fps"] / bound, rel=1e-2)
    assert line["meets_target"] == (line["ratio_e2e_over_bound"] >= line["target"])


def test_bench_memory_quick(capsys, tmp_path):
    line = _run("memory", capsys, tmp_path)
    _positive(line["short_peak_rss_mb"], line["long_peak_rss_mb"])
    assert line["short_peak_rss_mb"] > 50  # a Python process with torch, not an empty measurement
    assert line["long_s"] == 10 * line["short_s"]
    ratio = line["long_peak_rss_mb"] / line["short_peak_rss_mb"]
    assert line["ratio_long_over_short"] == pytest.approx(ratio, rel=1e-2)


@pytest.mark.slow
def test_bench_adaspot_memory_quick(capsys, tmp_path):
    """AdaSpot predict on 256x144 videos of 1 s and 10 s (two predict subprocesses: about a CPU-minute)."""
    line = _run("adaspot_memory", capsys, tmp_path)
    _positive(line["short_peak_rss_mb"], line["long_peak_rss_mb"], line["long_first_half_max_rss_mb"])
    assert line["short_peak_rss_mb"] > 50 and (line["short_frames"], line["long_frames"]) == (12, 125)
    assert line["model_highres"] == [64, 114] and line["model_lowres"] == [32, 57]
    ratio = line["long_peak_rss_mb"] / line["short_peak_rss_mb"]
    assert line["ratio_long_over_short"] == pytest.approx(ratio, rel=1e-2)


def test_bench_train_quick(capsys, tmp_path):
    line = _run("train", capsys, tmp_path, "--precision", "fp32")  # bf16 backward is slow for tiny models
    assert set(line["pipelines"]) == {"raw", "prepared", "jpeg"}
    for fig in line["pipelines"].values():
        _positive(fig["clips_per_s"], fig["loader_clips_per_s"], fig["disk_bytes"])
        assert 0.0 <= fig["stall_fraction"] <= 1.0
    assert line["ratio_prepared_over_jpeg_bytes"] == pytest.approx(
        line["pipelines"]["prepared"]["disk_bytes"] / line["pipelines"]["jpeg"]["disk_bytes"], rel=1e-2)
    _positive(line["ratio_prepared_over_jpeg_clips_per_s"],
              line["ratio_prepared_over_jpeg_loader_clips_per_s"])


def test_bench_precision_quick(capsys, tmp_path):
    line = _run("precision", capsys, tmp_path)
    fig = line["models"]["test_tiny_tsm"]
    _positive(fig["fp32_step_s"], fig["bf16_step_s"], fig["bf16_over_fp32"])


def test_bench_command_runs_decode(capsys, tmp_path, monkeypatch):
    """``e2espot bench decode --quick`` runs the script in a subprocess and relays its one JSON line."""
    from e2espot.cli import main

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert main(["bench", "decode", "--quick", "--benchmarks-dir", str(BENCH_DIR)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    line = json.loads(out[0])
    assert line["bench"] == "decode"
    assert line["not_run"]["torchcodec"] in (
        "not installed", "installed, but e2espot has no torchcodec backend")
    assert "pyav" in line["backends"]
    for video, per_backend in line["results"].items():
        for backend, fig in per_backend.items():
            _positive(fig["sequential_fps"], fig["random_clip_ms"], fig["random_fps"])
    assert any(v.startswith("720p_prepared") for v in line["results"])


def test_bench_command_names(capsys):
    from e2espot.cli import build_parser, main

    assert build_parser().parse_args(["bench"]).which == []  # no names: all
    assert main(["bench", "decod", "--benchmarks-dir", str(BENCH_DIR)]) == 2
    assert "did you mean 'decode'" in capsys.readouterr().err

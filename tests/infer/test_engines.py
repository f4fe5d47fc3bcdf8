"""ONNX export (parity with PyTorch, refusal of a differing file) and the onnxruntime / compiled engines
giving the same events as PyTorch eager through the same predict pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from e2espot.cli import main
from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.errors import CheckpointError, ConfigError
from e2espot.models import create_spotter
from e2espot.models.registry import list_heads, list_temporal_modules

pytest.importorskip("onnxruntime")
from e2espot.infer.engines import OnnxSpotter, export_onnx, load_engine  # noqa: E402

CLIP_LEN = 8


def tiny_cfg(module: str | None, head: str, *, displacement: bool = False, backbone: str = "test_tiny",
             height: int = 32, width: int = 48, **heads) -> RunConfig:
    model = ModelConfig(num_classes=3, backbone=backbone, temporal_module=module, head=head,
                        clip_len=CLIP_LEN, displacement=displacement, **heads)
    return RunConfig(model=model, data=DataConfig(height=height, width=width, clip_len=CLIP_LEN),
                     classes=("a", "b", "c"))


def check_parity(cfg: RunConfig, path: Path, frame_hw: tuple[int, int] = (40, 64)) -> None:
    torch.manual_seed(0)
    model = create_spotter(cfg.model).eval()
    report = export_onnx(model, cfg, path)
    assert path.is_file()
    assert max(report.max_abs_diff.values()) <= 1e-4
    # another batch size and frame size than the export's check clip: the axes are dynamic
    x = torch.rand(3, CLIP_LEN, 3, *frame_hw, generator=torch.Generator().manual_seed(5))
    got = OnnxSpotter(path)(x)
    with torch.inference_mode():
        ref = model(x)
    assert got.logits.shape == ref.logits.shape == (3, CLIP_LEN, 4)
    np.testing.assert_allclose(got.logits.numpy(), ref.logits.numpy(), atol=1e-4, rtol=1e-4)
    assert torch.equal(got.logits.argmax(-1), ref.logits.argmax(-1))
    for name in ("displacement", "team", "extra_logits"):
        if getattr(ref, name) is None:
            assert getattr(got, name) is None, name
        else:
            np.testing.assert_allclose(getattr(got, name).numpy(), getattr(ref, name).numpy(), atol=1e-4,
                                       rtol=1e-4, err_msg=name)


# the default run: every temporal module once, paired with different heads (the full grid is 'slow')
FAST_GRID = [(None, "gru", False), ("tsm", "fc", True), ("gsm", "gru", False), ("gsf", "lstm", False),
             ("astrm", "transformer", False)]


@pytest.mark.parametrize("module,head,displacement", FAST_GRID)
def test_export_parity_fast_grid(module, head, displacement, tmp_path):
    check_parity(tiny_cfg(module, head, displacement=displacement), tmp_path / "m.onnx")


@pytest.mark.slow
@pytest.mark.parametrize("head", list_heads())
@pytest.mark.parametrize("module", [None, *list_temporal_modules()])
def test_export_parity_full_grid(module, head, tmp_path):
    """Every temporal module x head (edsgp and asformer go through the dynamo exporter)."""
    check_parity(tiny_cfg(module, head, displacement=head == "edsgp"), tmp_path / "m.onnx")


@pytest.mark.slow
@pytest.mark.parametrize("backbone,module", [("rny002", "gsm"), ("rny002", "gsf"), ("rn18", "tsm"),
                                             ("effb0", None), ("convnextt", "tsm")])
def test_export_parity_timm_backbones(backbone, module, tmp_path):
    check_parity(tiny_cfg(module, "gru", backbone=backbone, height=64, width=64), tmp_path / "m.onnx",
                 frame_hw=(64, 96))


def test_export_parity_team_and_second_class_head(tmp_path):
    """The Team-BAS layout: displacement, team (sigmoid = P(right)) and a second class head."""
    cfg = tiny_cfg("gsf", "gru", displacement=True, team_head=True, extra_num_classes=2)
    check_parity(cfg, tmp_path / "m.onnx")
    assert OnnxSpotter(tmp_path / "m.onnx").output_names == ("logits", "displacement", "team", "extra_logits")


def test_export_refuses_a_differing_model_and_writes_nothing(tmp_path):
    cfg = tiny_cfg("gsm", "gru")
    model = create_spotter(cfg.model).eval()
    out = tmp_path / "m.onnx"
    with pytest.raises(CheckpointError, match=r"differs from PyTorch: max \|diff\| of 'logits'"):
        export_onnx(model, cfg, out, atol=1e-15)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


def test_onnx_file_carries_the_run_config(tmp_path):
    cfg = tiny_cfg("tsm", "gru")
    export_onnx(create_spotter(cfg.model).eval(), cfg, tmp_path / "m.onnx", clip_len=12)
    loaded = OnnxSpotter(tmp_path / "m.onnx").config
    assert loaded.classes == cfg.classes
    assert loaded.model == cfg.model
    assert loaded.data.clip_len == 12  # the exported window length is what predict slides


def test_load_engine_errors_name_the_fix(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(CheckpointError, match="e2espot export-model"):
        load_engine(run, engine="onnxruntime")
    with pytest.raises(ConfigError, match="unknown engine 'tensorrt'"):
        load_engine(run, engine="tensorrt")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        load_engine(tmp_path / "junk.onnx")


@pytest.fixture(scope="module")
def run_and_video(tmp_path_factory):
    from e2espot.data.video.writer import write_video

    root = tmp_path_factory.mktemp("engines")
    cfg = RunConfig(
        model=ModelConfig(num_classes=2, backbone="test_tiny", temporal_module="gsm", head="gru",
                          clip_len=CLIP_LEN, displacement=True),
        data=DataConfig(height=32, clip_len=CLIP_LEN), classes=("pass", "shot"),
        train={"postprocess": {"nms": "hard", "nms_window": 1, "threshold": 0.2}},
    )
    run = root / "run"
    run.mkdir()
    cfg.save(run / "config.json")
    torch.manual_seed(0)
    model = create_spotter(cfg.model)
    torch.save({"model": model.state_dict(), "config": cfg.to_dict()}, run / "best.pt")
    rng = np.random.default_rng(0)
    video = write_video(root / "match.mp4", rng.integers(0, 255, (45, 32, 48, 3), dtype=np.uint8), fps=25.0)
    return run, video


def _events(path: Path) -> list[tuple[int, str]]:
    return [(e["frame"], e["label"]) for e in json.loads(path.read_text())[0]["events"]]


def test_predict_onnxruntime_gives_the_same_events_as_pytorch(run_and_video, tmp_path, capsys):
    run, video = run_and_video
    assert main(["export-model", str(run)]) == 0
    assert "max |ONNX Runtime - PyTorch|" in capsys.readouterr().out
    assert (run / "model.onnx").is_file()
    common = [str(video), "--model", str(run), "--precision", "fp32", "--device", "cpu"]
    assert main(["predict", *common, "-o", str(tmp_path / "torch")]) == 0
    assert main(["predict", *common, "--engine", "onnxruntime", "-o", str(tmp_path / "ort")]) == 0
    assert main(["predict", str(video), "--model", str(run / "model.onnx"), "-o", str(tmp_path / "file")]) == 0
    ref = np.load(tmp_path / "torch" / "match.npz")["scores"]
    for name in ("ort", "file"):
        got = np.load(tmp_path / name / "match.npz")["scores"]
        np.testing.assert_allclose(got, ref, atol=1e-5)
        assert _events(tmp_path / name / "match.json") == _events(tmp_path / "torch" / "match.json")
    assert _events(tmp_path / "torch" / "match.json")  # the comparison is not between two empty lists


def test_predict_compile_flag_is_refused_for_onnxruntime(run_and_video, tmp_path, capsys):
    run, video = run_and_video
    code = main(["predict", str(video), "--model", str(run), "--engine", "onnxruntime", "--compile",
                 "-o", str(tmp_path)])
    assert code == 2
    assert "--compile applies to the torch engine only" in capsys.readouterr().err

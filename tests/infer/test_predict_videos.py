"""One loop predicts a set of labelled videos (``infer.split.predict_videos``) for both ``e2espot test`` and
training's validation; ``infer`` imports nothing from ``train`` (issue 13 item 3)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import e2espot
import e2espot.infer.split as split_module
from e2espot.checkpoint import save_checkpoint
from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.sources import read_split
from e2espot.errors import ConfigError
from e2espot.infer.outputs import read_split_npz
from e2espot.infer.split import predict_split, predict_videos
from e2espot.train.loop import TrainOptions, validation_map

CLASSES = ("pass", "shot")
FPS = 25.0
SRC = Path(e2espot.__file__).parent


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    from e2espot.data.video.writer import write_video
    from e2espot.models import create_spotter

    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    for name, n in (("v1", 40), ("v2", 30)):
        write_video(root / "videos" / f"{name}.mp4", rng.integers(0, 255, (n, 32, 48, 3), dtype=np.uint8), fps=FPS)
    labels = root / "labels"
    labels.mkdir()
    (labels / "class.txt").write_text("pass\nshot\n")
    events = {"v1": [(10, "pass"), (30, "shot"), (33, "pass")], "v2": [(5, "pass"), (20, "shot")]}
    (labels / "val.json").write_text(json.dumps([
        {"video": v, "num_frames": n, "fps": FPS, "events": [{"frame": f, "label": c} for f, c in events[v]]}
        for v, n in (("v1", 40), ("v2", 30))
    ]))
    run_dir = root / "run"
    run_dir.mkdir()
    cfg = RunConfig(
        model=ModelConfig(num_classes=2, backbone="test_tiny", temporal_module="gsm", head="gru", clip_len=8),
        data=DataConfig(height=32, clip_len=8), classes=CLASSES,
        dataset={"labels": str(labels), "videos": str(root / "videos"), "format": "spot"},
    )
    cfg.save(run_dir / "config.json")
    torch.manual_seed(0)
    save_checkpoint({"model": create_spotter(cfg.model).state_dict(), "config": cfg.to_dict(), "epoch": 0},
                    run_dir / "best.pt")
    return run_dir


def _counting(monkeypatch) -> list[int]:
    """Count the videos that go through ``predict_videos`` (its ``predict_scores`` call)."""
    calls: list[int] = []
    real = split_module.predict_scores

    def counted(model, reader, cfg, **kw):
        calls.append(reader.num_frames)
        return real(model, reader, cfg, **kw)

    monkeypatch.setattr(split_module, "predict_scores", counted)
    return calls


def test_validation_and_test_predict_through_one_loop_and_agree(run, monkeypatch):
    from e2espot.infer.predict import load_run

    calls = _counting(monkeypatch)
    model, cfg = load_run(run, device="cpu")
    val = read_split(Path(cfg.dataset["labels"]), "val")
    opts = TrainOptions(val_overlap=4, val_tolerances=(1, 2, 4), device="cpu", precision="fp32")
    val_map = validation_map(model, cfg, val, opts, device=torch.device("cpu"), precision="fp32")
    assert calls == [40, 30]  # training's validation went through predict_videos, one call per video

    out = predict_split(run, "val", overlap=4, tolerances=(1, 2, 4), device="cpu", precision="fp32")
    assert calls == [40, 30, 40, 30]  # and so did `e2espot test`
    # the same scores, so the same mAP: validation's is test's high-recall (no NMS) mAP over its tolerances
    recall = out.recall_result.map_by_tolerance
    assert val_map == pytest.approx(sum(recall[t] for t in (1, 2, 4)) / 3, abs=1e-12)
    assert 0.0 < val_map < 1.0
    scores, _, fps = read_split_npz(run / "pred-val.scores.npz")
    direct = {d.video.video: d for d in predict_videos(model, cfg, val, overlap=4, precision="fp32")}
    assert sorted(direct) == ["v1", "v2"] and fps == {"v1": FPS, "v2": FPS}
    for video, matrix in scores.items():
        assert direct[video].scores.shape == (40 if video == "v1" else 30, 3) and direct[video].fps == FPS
        np.testing.assert_allclose(direct[video].scores, matrix, rtol=0, atol=1e-6)


def test_predict_videos_holds_one_video_at_a_time_and_calls_on_open_first(run):
    from e2espot.data.video import find_video, open_video
    from e2espot.infer.predict import load_run

    model, cfg = load_run(run, device="cpu")
    val = read_split(Path(cfg.dataset["labels"]), "val")
    trace: list[str] = []

    class Traced:
        def __init__(self, video):
            self.id = video.video
            self.reader = open_video(find_video(cfg.dataset["videos"], video.video), height=32)
            trace.append(f"open {self.id}")

        def __getattr__(self, name):
            return getattr(self.reader, name)

        def close(self):
            trace.append(f"close {self.id}")
            self.reader.close()

    def on_open(video, reader):
        trace.append(f"on_open {video.video} {reader.num_frames}")
        return lambda stage, fraction: trace.append(f"{stage} {video.video}")

    results = predict_videos(model, cfg, val, reader_factory=Traced, overlap=0, on_open=on_open, precision="fp32")
    first = next(results)
    assert first.video.video == "v1" and first.scores.shape == (40, 3)
    # the progress callback on_open returned reports while v1 is open; v2 is not opened yet
    assert trace[:2] == ["open v1", "on_open v1 40"] and trace[-1] == "close v1"
    assert {"decode v1", "predict v1"} == set(trace[2:-1])
    assert [r.video.video for r in results] == ["v2"]
    assert [t for t in trace if t.split()[0] in ("open", "on_open", "close")] == [
        "open v1", "on_open v1 40", "close v1", "open v2", "on_open v2 30", "close v2"]


def test_predict_videos_needs_a_videos_folder(run):
    from e2espot.infer.predict import load_run

    model, cfg = load_run(run, device="cpu")
    bare = RunConfig(cfg.model, cfg.data, cfg.classes)  # no dataset.videos
    with pytest.raises(ConfigError, match="run config has no dataset.videos folder; pass reader_factory"):
        next(predict_videos(model, bare, read_split(Path(cfg.dataset["labels"]), "val")))


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_infer_and_checkpoint_import_nothing_from_train():
    """Every import in infer/ and in e2espot/checkpoint.py, lazy ones included."""
    files = sorted((SRC / "infer").glob("*.py")) + [SRC / "checkpoint.py"]
    offending = {f.name: sorted(m for m in _imports(f) if m == "e2espot.train" or m.startswith("e2espot.train."))
                 for f in files}
    assert {k: v for k, v in offending.items() if v} == {}
    assert _imports(SRC / "checkpoint.py") & {m for m in _imports(SRC / "checkpoint.py") if m.startswith("e2espot")} \
        == {"e2espot.errors"}


def test_importing_infer_loads_no_train_module_and_train_imports_it_without_a_cycle():
    """In a fresh interpreter. With infer free of train imports (the test above, lazy ones included), train's
    module-level import of infer cannot cycle back; importing train after infer checks it loads."""
    code = ("import json, sys\n"
            "import e2espot.infer.predict, e2espot.infer.split, e2espot.checkpoint\n"
            "first = sorted(m for m in sys.modules if m.startswith('e2espot'))\n"
            "import e2espot.train.loop\n"
            "print(json.dumps([first, sorted(m for m in sys.modules if m.startswith('e2espot'))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    infer_only, with_train = json.loads(out.stdout.splitlines()[-1])
    assert "e2espot.infer.predict" in infer_only
    assert [m for m in infer_only if m == "e2espot.train" or m.startswith("e2espot.train.")] == []
    assert {"e2espot.train.loop", "e2espot.infer.split", "e2espot.checkpoint"} <= set(with_train)

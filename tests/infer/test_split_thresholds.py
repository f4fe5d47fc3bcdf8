"""`e2espot test` / `predict` apply the run's NMS and per-class thresholds (chosen on val), print them
with their source, keep the high-recall list for mAP, and print P/R/F1 at those thresholds (issue 18
item 2, issue 12 item 3)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from e2espot.cli import main
from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.eval.metrics import precision_recall_f1
from e2espot.infer.outputs import read_split_npz
from e2espot.infer.predict import applied_postprocess

CLASSES = ("pass", "shot")
FPS = 25.0


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    from e2espot.data.video.writer import write_video
    from e2espot.models import create_spotter

    root = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(0)
    for name, n in (("v1", 40), ("v2", 30)):
        write_video(root / "videos" / f"{name}.mp4", rng.integers(0, 255, (n, 32, 48, 3), dtype=np.uint8), fps=FPS)
    labels = root / "labels"
    labels.mkdir()
    (labels / "class.txt").write_text("pass\nshot\n")
    split = [
        {"video": "v1", "num_frames": 40, "fps": FPS, "events": [{"frame": 10, "label": "pass"},
                                                                 {"frame": 30, "label": "shot"}]},
        {"video": "v2", "num_frames": 30, "fps": FPS, "events": [{"frame": 5, "label": "pass"}]},
    ]
    (labels / "test.json").write_text(json.dumps(split))
    run_dir = root / "run"
    run_dir.mkdir()
    cfg = RunConfig(
        model=ModelConfig(num_classes=2, backbone="test_tiny", temporal_module="gsm", head="gru", clip_len=8),
        data=DataConfig(height=32, clip_len=8), classes=CLASSES,
        dataset={"labels": str(labels), "videos": str(root / "videos"), "format": "spot"},
    )
    cfg.save(run_dir / "config.json")
    torch.manual_seed(0)
    torch.save({"model": create_spotter(cfg.model).state_dict(), "config": cfg.to_dict(), "epoch": 0},
               run_dir / "best.pt")
    # first pass without recorded thresholds: the score matrices, to pick thresholds that select something
    assert main(["test", str(run_dir), "-s", "test", "--device", "cpu", "--precision", "fp32"]) == 0
    scores, _, _ = read_split_npz(run_dir / "pred-test.scores.npz")
    pass_scores = np.concatenate([s[:, 1] for s in scores.values()])
    thresholds = {"pass": float(np.quantile(pass_scores, 0.7)), "shot": 1.0}  # shot: nothing passes
    post = {"nms": "hard", "nms_window": 2, "thresholds": thresholds, "chosen_on": "val", "f1_tolerance_frames": 1}
    cfg = RunConfig(cfg.model, cfg.data, cfg.classes, train={"postprocess": post}, dataset=cfg.dataset)
    cfg.save(run_dir / "config.json")
    return run_dir


def _events(path: Path) -> dict[str, list[dict]]:
    text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return {e["video"]: e["events"] for e in json.loads(text)}


def test_test_writes_the_runs_thresholds_and_prints_prf(run, capsys):
    capsys.readouterr()
    assert main(["test", str(run), "-s", "test", "--device", "cpu", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    cfg = RunConfig.load(run / "config.json")
    thr = cfg.postprocess.thresholds
    scores, _, _ = read_split_npz(run / "pred-test.scores.npz")

    # pred-SPLIT.json: the run's per-class thresholds and its NMS (hard, window 2), nothing below
    events = _events(run / "pred-test.json")
    for video, evs in events.items():
        assert all(e["label"] == "pass" and e["score"] >= thr["pass"] for e in evs)  # shot's 1.0: none
        frames = sorted(e["frame"] for e in evs)
        assert all(b - a > 2 for a, b in zip(frames, frames[1:]))  # hard NMS, ±2 frames
    expected_pass = sum(int((s[:, 1] >= thr["pass"]).sum()) for s in scores.values())
    assert 0 < sum(len(v) for v in events.values()) <= expected_pass
    # the high-recall list keeps every score >= 0.01, without NMS, whatever the thresholds
    recall = _events(run / "pred-test.recall.json.gz")
    for video, evs in recall.items():
        assert len(evs) == int((scores[video][:, 1:] >= 0.01).sum())

    # both settings printed with their source
    assert "post-processing: hard NMS, window 2 frames (the run's config.json)" in out
    assert f"per-class thresholds pass {thr['pass']:.3f}, shot 1.000" in out
    assert "best F1 at 1 frame on val" in out
    # P/R/F1 of pred-test.json at those thresholds, at the tolerance they were chosen at
    truth = LabelSet(list(CLASSES), [
        VideoLabels("v1", FPS, 40, [Event(10, "pass"), Event(30, "shot")]),
        VideoLabels("v2", FPS, 30, [Event(5, "pass")]),
    ])
    pred = LabelSet(list(CLASSES), [VideoLabels(v, FPS, None, [Event(e["frame"], e["label"], e["score"])
                                                                for e in evs]) for v, evs in events.items()])
    prf = precision_recall_f1(truth, pred, threshold=0.0, tolerance=1)
    assert "pred-test.json, at the thresholds above (%):" in out and "(matched within 1 frame," in out
    row = next(line for line in out.splitlines() if line.split()[:1] == ["pass"] and len(line.split()) == 7)
    assert row.split()[1:] == [f"{100 * prf['pass'].precision:.2f}", f"{100 * prf['pass'].recall:.2f}",
                               f"{100 * prf['pass'].f1:.2f}", str(prf["pass"].tp), str(prf["pass"].num_pred), "2"]
    # the AP table scores the ranked list, reproducible from the written high-recall file
    assert "AP (%) of the ranked list (hard NMS window 2, every score >= 0.01)" in out
    assert "pred-test.recall.json.gz --split test --nms-window 2" in out


def test_threshold_flag_overrides_the_run(run, capsys):
    capsys.readouterr()
    assert main(["test", str(run), "-s", "test", "--device", "cpu", "--precision", "fp32",
                 "--threshold", "0.2", "--nms", "none"]) == 0
    out = capsys.readouterr().out
    assert "score thresholds: threshold 0.2 for every class (--threshold)" in out
    assert "post-processing: no NMS (--nms)" in out
    scores, _, _ = read_split_npz(run / "pred-test.scores.npz")
    events = _events(run / "pred-test.json")
    for video, evs in events.items():
        assert len(evs) == int((scores[video][:, 1:] >= 0.2).sum())


def test_predict_prints_thresholds_and_source(run, tmp_path, capsys):
    capsys.readouterr()
    video = RunConfig.load(run / "config.json").dataset["videos"] + "/v1.mp4"
    assert main(["predict", video, "--model", str(run), "-o", str(tmp_path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"post-processing: hard NMS, window 2 frames ({run}/config.json)" in out
    assert "score thresholds: per-class thresholds pass" in out and "--threshold T overrides" in out


def test_applied_postprocess_defaults_without_a_record():
    cfg = RunConfig(ModelConfig(num_classes=2, backbone="test_tiny"), DataConfig(), CLASSES)
    post = applied_postprocess(cfg)
    assert (post.nms, post.nms_window, post.threshold, post.thresholds) == ("hard", 1, 0.5, None)
    assert post.describe() == [
        "post-processing: hard NMS, window 1 frame (default)",
        "score thresholds: threshold 0.5 for every class (default 0.5: the run recorded no thresholds)",
    ]


def test_help_says_what_the_threshold_default_is(capsys):
    for command in ("predict", "test"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "the run's per-class thresholds chosen on val (printed), else 0.5" in text

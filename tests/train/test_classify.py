"""Clip classification (issue 16 item 4): the clip-label rule, tiled evaluation clips, the metrics, a
classifier that learns an easy case, `train --task classify` / `test` on a classify run, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from e2espot.cli import main
from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.data.synthetic import generate_dataset
from e2espot.eval.classify import average_precision, clip_metrics, format_clip_metrics
from e2espot.train.classify import classify_model_config, clip_labels, tiled_clips, train_classifier
from e2espot.train.loop import TrainOptions


def test_clip_label_is_the_event_nearest_the_centre():
    t = 8  # centre 3.5: positions 3 and 4 are equally near
    rows = torch.zeros(5, t, dtype=torch.int64)
    rows[0, [0, 6]] = torch.tensor([1, 2])  # 6 is nearer 3.5 than 0 -> 2
    rows[1, [3, 4]] = torch.tensor([3, 4])  # equal distance -> the earlier frame -> 3
    rows[2, 7] = 5  # one event at the edge -> 5
    rows[3, [2, 5]] = torch.tensor([1, 2])  # equal distance 1.5 -> earlier -> 1
    assert clip_labels(rows).tolist() == [2, 3, 5, 1, 0]  # row 4: no event -> background
    odd = torch.tensor([[0, 1, 0, 0, 2]])  # T = 5, centre 2: frame 1 (distance 1) beats frame 4 (2)
    assert clip_labels(odd).tolist() == [1]


def test_tiled_clips_cover_every_frame_once_but_the_aligned_last():
    clips = tiled_clips([20, 16, 5], 8)
    assert [(c.video_idx, c.start) for c in clips] == [(0, 0), (0, 8), (0, 12), (1, 0), (1, 8), (2, 0)]


def test_average_precision_and_metrics_by_hand():
    # ranked: P N P N -> AP = (1 * 1/2 + 2/3 * 1/2) = 0.8333
    assert average_precision(np.array([1, 0, 1, 0], bool), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(5 / 6)
    # a tie of one positive and one negative at the top counts as one threshold: P = 1/2 at R = 1
    assert average_precision(np.array([1, 0], bool), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert average_precision(np.zeros(3, bool), np.ones(3)) is None

    truth = np.array([0, 0, 1, 2, 2, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1],
                      [0.1, 0.2, 0.7], [0.5, 0.1, 0.4], [0.3, 0.6, 0.1]])
    m = clip_metrics(truth, probs, ["PASS", "SHOT"])
    assert m.classes == ("background", "PASS", "SHOT")
    assert m.confusion == ((1, 1, 0), (0, 2, 0), (1, 0, 1))  # rows true, columns predicted
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.support == {"background": 2, "PASS": 2, "SHOT": 2}
    assert m.per_class_ap["PASS"] == pytest.approx(5 / 6)  # ranked 0.8 P, 0.7 N, 0.6 P
    assert m.per_class_ap["SHOT"] == pytest.approx(1.0)  # scores 0.7, 0.4 are the two highest
    assert m.mean_ap == pytest.approx((m.per_class_ap["PASS"] + 1.0) / 2)
    text = format_clip_metrics(m)
    assert "accuracy 66.67 %" in text and "confusion (rows: true, columns: predicted)" in text
    assert json.loads(json.dumps(m.to_json()))["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


CLASSES = ["A", "B", "C"]
COLOURS = {0: (90, 90, 90), 1: (230, 30, 30), 2: (30, 230, 30), 3: (30, 30, 230)}


class ColourReader:
    """An easy case: frames within 2 of an event of class c have the colour of c, the rest grey."""

    def __init__(self, video: VideoLabels, size: int = 16) -> None:
        self.num_frames, self.fps, self.width, self.height = video.num_frames, 25.0, size, size
        self.frame_class = np.zeros(video.num_frames, np.int64)
        for e in video.events:
            self.frame_class[max(0, e.frame - 2): e.frame + 3] = CLASSES.index(e.label) + 1

    def read_clip(self, start: int, num: int) -> np.ndarray:
        colours = np.asarray([COLOURS[int(c)] for c in self.frame_class[start:start + num]], np.uint8)
        return np.broadcast_to(colours[:, None, None, :], (num, self.height, self.width, 3)).copy()

    def close(self) -> None:
        pass


def _colour_labels(seed: int, num_videos: int = 4) -> LabelSet:
    rng = np.random.default_rng(seed)
    videos = []
    for v in range(num_videos):
        frames = np.arange(12, 120, 24) + rng.integers(-3, 4, 5)  # one event per 24 frames
        events = [Event(int(f), CLASSES[int(rng.integers(0, 3))]) for f in frames]
        videos.append(VideoLabels(f"v{v}", 25.0, 128, events))
    return LabelSet(CLASSES, videos)


def test_classifier_learns_an_easy_case_above_chance(tmp_path):
    train_labels, val_labels = _colour_labels(0), _colour_labels(1, num_videos=2)
    model = classify_model_config(ModelConfig(num_classes=3, backbone="test_tiny", temporal_module=None,
                                              clip_len=8))
    cfg = RunConfig(model, DataConfig(height=16, clip_len=8), ("A", "B", "C"), task="classify")
    opts = TrainOptions(num_epochs=3, epoch_clips=96, batch_size=8, lr=1e-2, warmup_epochs=0, mixup=False,
                        fg_upsample=0.6, augment="none", num_workers=0, num_threads=1, device="cpu",
                        precision="fp32", seed=0)
    result = train_classifier(cfg, train_labels, val_labels, tmp_path, opts, reader_factory=ColourReader)
    m = result.val_metrics
    # val: 2 videos x 16 tiled clips of 8; a clip holds an event in 5 of the 8 frames around it
    assert m.num_clips == 32 and sum(m.support.values()) == 32
    majority = max(m.support.values()) / m.num_clips  # always answering the commonest class
    assert m.accuracy >= 0.9 > majority + 0.2, (m.accuracy, majority, m.confusion)
    saved = json.loads((tmp_path / "classify-val.json").read_text())
    assert saved["classes"] == ["background", "A", "B", "C"] and len(saved["confusion"]) == 4
    assert saved["accuracy"] == pytest.approx(m.accuracy) and saved["epoch"] == result.best_epoch
    assert json.loads((tmp_path / "config.json").read_text())["task"] == "classify"
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [0, 1, 2] and all(r["map_unit"] == "percent" for r in rows)
    # percent, as every run logs mAP (and the best epoch's row is the saved metrics)
    assert rows[result.best_epoch]["val_accuracy"] == pytest.approx(100 * m.accuracy)
    assert rows[result.best_epoch]["val_map"] == pytest.approx(100 * m.mean_ap)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_classify")
    generate_dataset(root, num_videos=4, seed=3, tiny=True, soccernet=False)
    return root


def _args(data: Path, run: Path, *extra: str) -> list[str]:
    return ["train", str(data), str(data / "videos"), "-s", str(run), "-m", "test_tiny", "--task", "classify",
            "--clip-len", "8", "--height", "48", "--epoch-clips", "4", "--batch-size", "2", "-j", "0",
            "--device", "cpu", "--precision", "fp32", "--warmup-epochs", "0", "--num-epochs", "1", *extra]


def test_train_and_test_a_classify_run_from_the_cli(tiny_data, tmp_path, capsys):
    run = tmp_path / "cls"
    assert main(_args(tiny_data, run, "--fg-upsample", "0.5")) == 0
    out = capsys.readouterr().out
    assert "confusion (rows: true, columns: predicted)" in out and "-> best.pt, classify-val.json" in out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["task"] == "classify" and cfg["model"]["head"] == "clip_pool" and cfg["train"]["mixup"] is False

    assert main(["test", str(run), "-s", "test", "--device", "cpu", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    saved = json.loads((run / "classify-test.json").read_text())
    test_videos = json.loads((tiny_data / "test.json").read_text())
    expected_clips = sum(len(tiled_clips([v["num_frames"]], 8)) for v in test_videos)
    assert saved["split"] == "test" and saved["num_clips"] == expected_clips
    assert saved["classes"] == ["background", "PASS", "RECEIVE", "SHOT", "OUT", "GOAL"]
    assert np.asarray(saved["confusion"]).shape == (6, 6) and np.asarray(saved["confusion"]).sum() == expected_clips
    assert f"clips {expected_clips}  accuracy" in out

    # predict refuses a classifier, naming the command that scores it
    video = tiny_data / "videos" / "synth_000.mp4"
    assert main(["predict", str(video), "-m", str(run), "-o", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert "clip classifier (train --task classify)" in captured.err
    assert "score thresholds" not in captured.out and not (tmp_path / "o").exists()  # refused before any work
    # no ONNX path for a classifier: export-model and the onnxruntime engine say so (not "unknown head")
    assert main(["export-model", str(run), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "export-model: ONNX is not supported for a clip classifier" in capsys.readouterr().err
    assert main(["predict", str(video), "-m", str(run), "--engine", "onnxruntime", "-o", str(tmp_path / "o")]) == 2
    assert "--engine onnxruntime: ONNX is not supported for a clip classifier" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (("--displacement", "2"), "--task classify does not take --displacement: drop it"),
    (("--mixup",), "--mixup: clip labels are hard; pass --no-mixup"),
    (("-t", "mstcn"), "-t mstcn: the classifier pools the clip's frames and has one linear layer"),
    (("--loss", "focal"), "--loss focal: the classifier trains with cross-entropy; drop --loss"),
    (("--team-head",), "--team-head / --team-joint: drop it"),
    (("--track-fusion", "concat"), "--track-fusion concat: the clip classifier takes frames only"),
    (("--joint-labels", "x", "--joint-videos", "y"), "drop --joint-labels / --joint-videos"),
])
def test_incompatible_options_name_the_fix(tiny_data, tmp_path, capsys, extra, message):
    assert main(_args(tiny_data, tmp_path / "r", *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_joint_training_with_track_fusion_is_refused_before_training(tiny_data, tmp_path, capsys):
    """The second head is validated without object tracks: the pair is refused up front, nothing written."""
    args = [a for a in _args(tiny_data, tmp_path / "r") if a not in ("--task", "classify")]
    args += ["--track-fusion", "concat", "--joint-labels", str(tiny_data), "--joint-videos", str(tiny_data / "videos")]
    assert main(args) == 2
    assert "--joint-labels with --track-fusion" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()

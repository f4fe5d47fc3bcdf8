"""predict_file / load_run / the predict and test commands, with a real (untrained) test_tiny model
and real H.264 videos."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from e2espot.cli import main
from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.errors import CheckpointError
from e2espot.infer.predict import HIGH_RECALL_THRESHOLD, load_run, predict_file, predict_scores
from e2espot.infer.sharding import Shard, parse_shard, resolve_shard, shard_from_env

CLASSES = ("pass", "shot")
FPS = 25.0


def save_run(
    run_dir: Path, *, clip_len: int = 8, dataset: dict | None = None, fps: float | None = None,
    displacement: bool = False,
) -> RunConfig:
    from e2espot.models import create_spotter

    cfg = RunConfig(
        model=ModelConfig(
            num_classes=2, backbone="test_tiny", temporal_module="gsm", head="gru", clip_len=clip_len,
            displacement=displacement,
        ),
        data=DataConfig(fps=fps, height=32, clip_len=clip_len),
        classes=CLASSES,
        dataset=dataset or {},
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / "config.json")
    torch.manual_seed(0)
    model = create_spotter(cfg.model)
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "epoch": 3}, run_dir / "best.pt")
    return cfg


def make_video(path: Path, num_frames: int, seed: int = 0) -> Path:
    from e2espot.data.video.writer import write_video

    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (num_frames, 32, 48, 3), dtype=np.uint8)  # (N, H, W, 3)
    return write_video(path, frames, fps=FPS)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict")
    videos = root / "videos"
    make_video(videos / "v1.mp4", 40, seed=1)
    make_video(videos / "v2.mp4", 29, seed=2)
    labels = root / "labels"
    labels.mkdir()
    (labels / "class.txt").write_text("pass\nshot\n")
    split = [
        {"video": "v1", "num_frames": 40, "fps": FPS, "events": [{"frame": 10, "label": "pass"},
                                                                 {"frame": 30, "label": "shot"}]},
        {"video": "v2", "num_frames": 29, "fps": FPS, "events": [{"frame": 5, "label": "shot"}]},
    ]
    (labels / "test.json").write_text(json.dumps(split))
    # the label file claims 40 frames, the real video has 29: frame 35 is past its end
    bad = [dict(split[1], num_frames=40, events=[{"frame": 35, "label": "shot"}])]
    (labels / "bad.json").write_text(json.dumps(bad))
    run = root / "run"
    save_run(run, dataset={"labels": str(labels), "videos": str(videos), "format": "spot"})
    return {"root": root, "videos": videos, "labels": labels, "run": run}


def test_predict_file_outputs_and_schema(workspace, tmp_path):
    video = workspace["videos"] / "v1.mp4"
    model, cfg = load_run(workspace["run"])
    seen: list[tuple[str, float]] = []
    files = predict_file(
        video, (model, cfg), tmp_path, device="cpu", threshold=0.3, nms="hard", nms_window=2,
        precision="fp32", progress=lambda stage, fraction: seen.append((stage, fraction)),
    )
    assert {p.name for p in tmp_path.iterdir()} >= {"v1.json", "v1.recall.json", "v1.csv", "v1.npz"}

    with np.load(files.scores_npz) as z:
        scores = z["scores"]
        assert list(z["classes"]) == list(CLASSES) and float(z["fps"]) == FPS
    assert scores.dtype == np.float32 and scores.shape == (40, 3)
    np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)  # averaged softmax (no displacement head)
    from e2espot.data.video import open_video

    with open_video(video, height=32) as reader:
        direct = predict_scores(model, reader, cfg, precision="fp32")
    np.testing.assert_allclose(scores, direct, atol=1e-6)

    entries = json.loads(files.events_json.read_text())
    assert len(entries) == 1
    entry = entries[0]
    assert entry["video"] == "v1" and entry["fps"] == FPS and entry["num_frames"] == 40
    assert entry["num_events"] == len(entry["events"]) == len(files.video_labels.events) > 0
    for e in entry["events"]:
        assert set(e) == {"frame", "label", "score", "time_s"}
        assert e["score"] >= 0.3 and e["label"] in CLASSES
        assert e["time_s"] == pytest.approx(e["frame"] / FPS)
        assert e["score"] == pytest.approx(scores[e["frame"], CLASSES.index(e["label"]) + 1], abs=1e-6)
    # hard NMS with window 2: no two kept events of a class within 2 frames
    for label in CLASSES:
        frames = sorted(e["frame"] for e in entry["events"] if e["label"] == label)
        assert all(b - a > 2 for a, b in zip(frames, frames[1:]))

    recall = json.loads(files.recall_json.read_text())[0]["events"]
    assert len(recall) == int((scores[:, 1:] >= HIGH_RECALL_THRESHOLD).sum())

    with open(files.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["video", "frame", "time_s", "label", "score"]
    expected_rows = [(e["frame"], e["label"]) for e in entry["events"]]
    assert [(int(r["frame"]), r["label"]) for r in rows] == expected_rows
    assert float(rows[0]["time_s"]) == pytest.approx(entry["events"][0]["time_s"])

    assert ("predict", 1.0) in seen and ("decode", 1.0) in seen
    assert all(0.0 <= f <= 1.0 for _, f in seen)


def test_predict_file_reads_back_as_spot_predictions(workspace, tmp_path):
    from e2espot.data.formats import read_labels

    files = predict_file(workspace["videos"] / "v2.mp4", workspace["run"], tmp_path, threshold=0.2)
    back = read_labels(files.events_json, "spot")
    assert back.classes == list(CLASSES)
    assert [(e.frame, e.label) for e in back.videos[0].events] == [
        (e.frame, e.label) for e in files.video_labels.events
    ]


def test_load_run_rebuilds_the_model(workspace):
    model, cfg = load_run(workspace["run"])
    assert cfg.classes == CLASSES and not model.training
    state = torch.load(workspace["run"] / "best.pt", weights_only=True)["model"]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, state[name])
    conv = next(p for p in model.parameters() if p.ndim == 4)
    # the memory format follows the backbone's preference: test_tiny runs faster in NCHW on CPU
    assert model.prefers_channels_last is False and conv.is_contiguous()


def test_load_run_uses_channels_last_for_timm_backbones(tmp_path):
    from e2espot.checkpoint import save_checkpoint
    from e2espot.config import DataConfig, ModelConfig, RunConfig
    from e2espot.models import create_spotter

    cfg = RunConfig(ModelConfig(num_classes=2, backbone="rny002", temporal_module="tsm", head="fc", clip_len=8),
                    DataConfig(height=32, clip_len=8), ("A", "B"))
    cfg.save(tmp_path / "config.json")
    save_checkpoint({"model": create_spotter(cfg.model).state_dict(), "config": cfg.to_dict()}, tmp_path / "best.pt")
    model, _ = load_run(tmp_path)
    conv = next(p for p in model.parameters() if p.ndim == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()


def test_load_run_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a run directory"):
        load_run(tmp_path / "nope")
    run = tmp_path / "run"
    save_run(run)
    (run / "best.pt").rename(run / "last.pt")
    with pytest.raises(CheckpointError, match=r"best\.pt: checkpoint not found; available: last\.pt"):
        load_run(run)
    load_run(run, checkpoint="last")  # the other one works
    (run / "best.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"best\.pt.*corrupt"):
        load_run(run)
    raw = (run / "last.pt").read_bytes()
    (run / "best.pt").write_bytes(raw[: len(raw) // 2])  # truncated
    with pytest.raises(CheckpointError, match=r"best\.pt"):
        load_run(run)
    cfg = RunConfig.load(run / "config.json")
    edited = RunConfig(model=ModelConfig(**{**cfg.model.to_dict(), "num_classes": 3}), data=cfg.data,
                       classes=("a", "b", "c"))
    edited.save(run / "config.json")
    with pytest.raises(CheckpointError, match="do not match"):
        load_run(run, checkpoint="last")


def test_cli_predict(workspace, tmp_path, capsys):
    out = tmp_path / "out"
    videos = [str(workspace["videos"] / "v1.mp4"), str(workspace["videos"] / "v2.mp4")]
    code = main(["predict", *videos, "--model", str(workspace["run"]), "-o", str(out), "--device", "cpu",
                 "--threshold", "0.3", "--nms-window", "2", "--overlap", "2", "--batch-size", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "v1.mp4: " in printed and "v2.mp4: " in printed and "frames/s" in printed
    assert {p.name for p in out.iterdir()} >= {"v1.json", "v2.json", "v1.npz", "v2.csv", "v2.recall.json"}
    code = main(["predict", videos[0], "--model", str(workspace["run"]), "-o", str(out),
                 "--checkpoint", "last"])
    assert code == 2 and "CheckpointError" in capsys.readouterr().err


def test_cli_test_end_to_end(workspace, capsys):
    run = workspace["run"]
    # labels and videos from config.json's dataset entry
    code = main(["test", str(run), "-s", "test", "--device", "cpu", "--precision", "fp32"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "mAP" in printed and "pass" in printed and "high-recall list" in printed
    entries = json.loads((run / "pred-test.json").read_text())
    assert sorted(e["video"] for e in entries) == ["v1", "v2"]
    assert {e["video"]: e["num_frames"] for e in entries} == {"v1": 40, "v2": 29}
    recall = json.loads(gzip.decompress((run / "pred-test.recall.json.gz").read_bytes()))
    from e2espot.infer.outputs import read_split_npz

    scores, classes, fps = read_split_npz(run / "pred-test.scores.npz")
    assert classes == list(CLASSES) and fps == {"v1": FPS, "v2": FPS}
    for entry in recall:
        assert len(entry["events"]) == int((scores[entry["video"]][:, 1:] >= 0.01).sum())


def test_cli_test_sharded_equals_unsharded(workspace, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(workspace["run"], run)
    for name in ("pred-test.json", "pred-test.recall.json.gz", "pred-test.scores.npz"):
        (run / name).unlink(missing_ok=True)
    args = ["test", str(run), str(workspace["videos"]), "-s", "test", "--labels", str(workspace["labels"]),
            "--format", "spot", "--device", "cpu", "--precision", "fp32"]
    assert main([*args, "--shard", "1/2"]) == 0
    assert "1/2 shards done" in capsys.readouterr().out
    assert not (run / "pred-test.json").exists()
    assert main([*args, "--shard", "0/2"]) == 0
    assert "mAP" in capsys.readouterr().out
    assert not (run / "pred-test.parts").exists()
    from e2espot.infer.outputs import read_split_npz

    sharded, _, _ = read_split_npz(run / "pred-test.scores.npz")
    whole, _, _ = read_split_npz(workspace["run"] / "pred-test.scores.npz") if (
        workspace["run"] / "pred-test.scores.npz").exists() else (None, None, None)
    assert sorted(sharded) == ["v1", "v2"]
    if whole is not None:
        for video in whole:
            np.testing.assert_allclose(sharded[video], whole[video], atol=1e-6)


def test_cli_test_rejects_events_past_the_end(workspace, capsys):
    code = main(["test", str(workspace["run"]), "-s", "bad", "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "LabelFormatError" in err and "bad.json" in err and "'v2'" in err and "event #0" in err
    assert "frame 35" in err and "29 frames" in err


def test_shard_parsing():
    assert parse_shard("1/4") == Shard(1, 4)
    assert Shard(1, 4).select(list(range(10))) == [1, 5, 9]
    for bad in ("4/4", "x/2", "1", "-1/3"):
        with pytest.raises(Exception, match="shard"):
            parse_shard(bad)
    assert shard_from_env({"RANK": "2", "WORLD_SIZE": "3"}) == Shard(2, 3, from_launcher=True)
    assert shard_from_env({"WORLD_SIZE": "1"}) is None and shard_from_env({}) is None
    assert resolve_shard(None, {}) == Shard()
    assert resolve_shard("0/2", {"RANK": "1", "WORLD_SIZE": "2"}) == Shard(0, 2)


def test_cli_test_soccernet_writes_results_spotting(tmp_path, capsys):
    root = tmp_path / "sn"
    game = root / "eng" / "2020" / "gameA"
    make_video(game / "1_224p.mp4", 50, seed=3)
    make_video(game / "2_224p.mp4", 30, seed=4)
    annotations = [
        {"gameTime": "1 - 00:01", "label": "pass", "position": "1000", "team": "home",
         "visibility": "visible"},
        {"gameTime": "2 - 00:00", "label": "shot", "position": "400", "team": "away",
         "visibility": "visible"},
    ]
    label_json = {"UrlLocal": "eng/2020/gameA/", "annotations": annotations}
    (game / "Labels-v2.json").write_text(json.dumps(label_json))
    (root / "splits.json").write_text(json.dumps({"test": ["eng/2020/gameA"]}))
    run = tmp_path / "run"
    save_run(run)
    code = main(["test", str(run), str(root), "-s", "test", "--labels", str(root), "--format", "soccernet",
                 "--splits", str(root / "splits.json"), "--label-file", "Labels-v2.json", "--device", "cpu",
                 "--threshold", "0.3"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "mAP" in out
    # Labels-v2 → the official SoccerNet-v2 setting is printed too, equal to `e2espot evaluate` on the files
    assert "official SoccerNet average-mAP, tight at 2 fps" in out
    results_file = run / "results-test" / "eng" / "2020" / "gameA" / "results_spotting.json"
    results = json.loads(results_file.read_text())
    preds = results["predictions"]
    entries = {e["video"]: e for e in json.loads((run / "pred-test.json").read_text())}
    assert set(entries) == {"eng/2020/gameA/1", "eng/2020/gameA/2"}
    assert len(preds) == sum(len(e["events"]) for e in entries.values()) > 0
    assert {int(p["half"]) for p in preds} == {1, 2}
    for p in preds:
        entry = entries[f"eng/2020/gameA/{int(p['half'])}"]
        frames = {ev["frame"] for ev in entry["events"]}
        assert int(int(p["position"]) / 1000 * FPS + 1e-6) in frames  # ms at 25 fps → frame
    official_line = next(line for line in out.splitlines() if line.startswith("mAP") and "." in line
                         and out.index(line) > out.index("official SoccerNet"))
    assert main(["evaluate", str(root), str(run / "results-test"), "--metric", "soccernet", "--split", "test",
                 "--classes", "pass", "shot"]) == 0
    assert official_line in capsys.readouterr().out


def test_frames_are_at_the_model_fps(workspace, tmp_path):
    run = tmp_path / "run"
    save_run(run, fps=12.5)
    files = predict_file(workspace["videos"] / "v1.mp4", run, tmp_path / "out", threshold=0.0, nms="none")
    entry = json.loads(files.events_json.read_text())[0]
    assert entry["fps"] == 12.5 and entry["num_frames"] == 20  # 40 frames at 25 fps → 20 at 12.5 fps
    assert len(entry["events"]) == 20 * len(CLASSES)
    assert all(e["time_s"] == pytest.approx(e["frame"] / 12.5) for e in entry["events"])


def test_cli_predict_shards_from_the_launcher_env(workspace, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    videos = [str(workspace["videos"] / "v1.mp4"), str(workspace["videos"] / "v2.mp4")]
    run = str(workspace["run"])
    assert main(["predict", *videos, "--model", run, "-o", str(tmp_path), "--device", "cpu"]) == 0
    assert "shard 1/2: 1 of 2 videos" in capsys.readouterr().out
    assert (tmp_path / "v2.json").exists() and not (tmp_path / "v1.json").exists()


def test_real_displacement_head_is_decoded(workspace, tmp_path):
    from e2espot.data.video import open_video
    from e2espot.infer.predict import decode_displacement

    run = tmp_path / "run"
    save_run(run, displacement=True)
    model, cfg = load_run(run)
    with open_video(workspace["videos"] / "v2.mp4", height=32) as reader:
        scores = predict_scores(model, reader, cfg, overlap=0, precision="fp32")  # windows [0, 8) ... [21, 29)
        clip = torch.from_numpy(reader.read_clip(0, 8)).permute(0, 3, 1, 2).float().div(255)[None]
    with torch.inference_mode():
        out = model(clip)  # the first window alone: it is the only one covering frames 0..7
    expected = decode_displacement(out.logits.float().softmax(-1), out.displacement)[0].numpy()
    np.testing.assert_allclose(scores[:8], expected, atol=1e-5)


def test_cli_test_drop_rarest(workspace, capsys):
    code = main(["test", str(workspace["run"]), "-s", "test", "--device", "cpu", "--precision", "fp32",
                 "--classes-drop-rarest", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "mAP over 1 classes without the 1 rarest [pass (1) GT events]: " in printed
    assert "(all 2 classes: " in printed


def test_run_without_config_json_says_which_thresholds_it_uses(tmp_path, caplog):
    """The per-class thresholds chosen on val live in config.json; without it, load_run falls back to the
    checkpoint's config and says so, naming the thresholds it will apply."""
    run = tmp_path / "run"
    save_run(run)
    (run / "config.json").unlink()
    with caplog.at_level("WARNING", logger="e2espot"):
        _, cfg = load_run(run)
    assert cfg.classes == CLASSES
    text = caplog.text
    assert "config.json: not found; using the config saved in best.pt" in text
    assert "threshold 0.5 for every class" in text and "pass --threshold" in text


def test_predict_csv_equals_export_csv_byte_for_byte(workspace, tmp_path):
    """One CSV writer (issue 13): ``predict``'s CSV and ``export --to csv`` of predict's JSON are the same
    bytes, and the web app's CSV (its fallback when a predictor gives none) too."""
    from e2espot.web.jobs import JobRunner

    files = predict_file(workspace["videos"] / "v1.mp4", workspace["run"], tmp_path / "p", threshold=0.05)
    assert len(files.video_labels.events) > 3
    assert main(["export", str(files.events_json), "--to", "csv", "-o", str(tmp_path / "e.csv")]) == 0
    assert (tmp_path / "e.csv").read_bytes() == files.csv.read_bytes()
    entry = json.loads(files.events_json.read_text())[0]
    assert [e["frame"] for e in entry["events"]] == sorted(e["frame"] for e in entry["events"])
    web = tmp_path / "web"
    web.mkdir()
    (web / "v1.json").write_bytes(files.events_json.read_bytes())
    got = JobRunner._collect({"events": web / "v1.json"}, web)
    assert (web / got["csv"]).read_bytes() == files.csv.read_bytes()


def test_prediction_json_unknown_fps_is_null(tmp_path):
    """Prediction JSON: ``fps`` null when unknown, never -1; the spot reader reads null and -1 alike."""
    from e2espot.data.formats import read_labels, write_prediction_json
    from e2espot.data.labels import Event, VideoLabels

    path = write_prediction_json(VideoLabels("v", None, 10, [Event(3, "pass", 0.5)]), tmp_path / "p.json")
    assert json.loads(path.read_text())[0]["fps"] is None
    assert read_labels(path, "spot").videos[0].fps is None
    path.write_text(path.read_text().replace("null", "-1"))
    assert read_labels(path, "spot").videos[0].fps is None

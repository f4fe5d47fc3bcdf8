"""Joint training on two label sets (T-DEED pretrain / joint_train): mixing, loss routing, both mAPs, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from e2espot.checkpoint import load_checkpoint
from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.data.sources import read_split
from e2espot.data.synthetic import generate_dataset
from e2espot.errors import ConfigError
from e2espot.models import create_spotter
from e2espot.models.losses import SpottingLoss
from e2espot.train.joint import (
    JointClipDataset,
    JointData,
    JointLoss,
    extra_run_config,
)
from e2espot.train.loop import TrainOptions, train

# the second dataset's own class set: the same matches labelled coarsely (3 classes, other names)
COARSE = {"PASS": "KICK", "SHOT": "KICK", "RECEIVE": "STOP", "OUT": "DEAD", "GOAL": "DEAD"}
COARSE_CLASSES = ["KICK", "STOP", "DEAD"]


def _coarse(labels: LabelSet) -> LabelSet:
    videos = [VideoLabels(v.video, v.fps, v.num_frames, [Event(e.frame, COARSE[e.label]) for e in v.events])
              for v in labels.videos]
    return LabelSet(list(COARSE_CLASSES), videos)


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory) -> tuple[Path, Path]:
    main = tmp_path_factory.mktemp("main")
    second = tmp_path_factory.mktemp("second")
    generate_dataset(main, num_videos=4, seed=3, tiny=True, soccernet=False)
    generate_dataset(second, num_videos=4, seed=4, tiny=True, soccernet=False)
    return main, second


def _setup(main: Path, second: Path, **opt_kw):
    tr, va = read_split(main, "train"), read_split(main, "val")
    classes = tuple(tr.classes)
    run_cfg = RunConfig(
        model=ModelConfig(num_classes=len(classes), backbone="test_tiny", temporal_module="tsm", head="gru",
                          clip_len=16),
        data=DataConfig(height=48, clip_len=16, crop=32),
        classes=classes, dataset={"videos": str(main / "videos")},
    )
    joint = JointData(_coarse(read_split(second, "train")), _coarse(read_split(second, "val")),
                      second / "videos", labels_path=str(second), fmt="spot")
    opts = TrainOptions(num_epochs=1, epoch_clips=8, batch_size=4, warmup_epochs=1, num_workers=0, num_threads=1,
                        device="cpu", precision="fp32", start_val_epoch=0, seed=5, **opt_kw)
    return run_cfg, tr, va, joint, opts


def test_joint_run_reports_both_maps_and_records_both_class_lists(two_datasets, tmp_path):
    main, second = two_datasets
    run_cfg, tr, va, joint, opts = _setup(main, second)
    result = train(run_cfg, tr, va, tmp_path / "run", opts, joint=joint)
    run = tmp_path / "run"
    rows = json.loads((run / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [0]
    assert all(0.0 <= r["val_map"] <= 100.0 and 0.0 <= r["val_map_joint"] <= 100.0 for r in rows)
    assert result.history[-1]["val_map_joint"] == rows[-1]["val_map_joint"]
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,val_loss,val_map,val_map_joint,lr,clips_per_s,map_unit"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["classes"] == list(tr.classes)
    assert cfg["model"]["extra_num_classes"] == 3
    assert cfg["train"]["joint"]["classes"] == COARSE_CLASSES and cfg["train"]["joint"]["ratio"] == 0.5
    # the checkpoint has the second head (K2 + 1 = 4 outputs) and predict's loader rebuilds it strictly
    state = load_checkpoint(run / "best.pt")["model"]
    assert state["extra_head.1.weight"].shape[0] == 4
    from e2espot.infer.predict import load_run

    model, loaded = load_run(run, "cpu")
    assert loaded.classes == tuple(tr.classes) and model.extra_head is not None


def test_mixing_rule_shifts_second_dataset_labels(two_datasets):
    from e2espot.data.datasets import ClipDataset

    main, second = two_datasets
    run_cfg, tr, _, joint, _ = _setup(main, second)
    kw = {"epoch_clips": 64, "fg_upsample": 1.0, "seed": 0}
    a = ClipDataset(tr, run_cfg.data, video_root=main / "videos", team=True, **kw)
    b = ClipDataset(joint.train, run_cfg.data, video_root=second / "videos", **kw)
    ds = JointClipDataset(a, b, ratio=0.5, seed=0)
    sources = [ds.source(i) for i in range(64)]
    expected = [int(np.random.default_rng([0, i, 7919]).random() < 0.5) for i in range(64)]
    assert sources == expected and 20 < sum(sources) < 44  # about half from each
    first_extra = sources.index(1)
    first_main = sources.index(0)
    item = ds[first_extra]
    raw = b[first_extra]
    assert int(item["dataset"]) == 1
    assert torch.equal(item["labels"], raw["labels"] + 6)  # K + 1 = 6 main columns before the second head's
    assert (item["team"] == -1).all()  # no team target on the second dataset
    assert int(ds[first_main]["dataset"]) == 0 and int(ds[first_main]["labels"].max()) <= 5


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a second OpenMP thread on a busy 2-core machine only stalls
    yield
    torch.set_num_threads(before)


def test_joint_loss_routes_each_clip_to_its_head(one_thread):
    torch.manual_seed(0)
    cfg = ModelConfig(num_classes=5, backbone="test_tiny", head="gru", clip_len=8, extra_num_classes=3)
    model = create_spotter(cfg)
    x = torch.rand(4, 8, 3, 32, 32)
    labels = torch.zeros(4, 8, 6 + 4)
    labels[:2, :, 0] = 1.0  # main clips: background
    labels[:2, 3, 0], labels[:2, 3, 2] = 0.0, 1.0
    labels[2:, :, 6] = 1.0  # second-dataset clips: its background column
    labels[2:, 5, 6], labels[2:, 5, 8] = 0.0, 1.0
    dataset = torch.tensor([0, 0, 1, 1])
    loss_fn = JointLoss(SpottingLoss(5), SpottingLoss(3, team_weight=0.0), 5)
    out = model(x)
    total = loss_fn(out, {"labels": labels, "dataset": dataset})
    with torch.no_grad():
        main_only = SpottingLoss(5)(out._replace(logits=out.logits[:2], stage_logits=[out.logits[:2]]), labels[:2, :, :6])
        extra_only = SpottingLoss(3)(out._replace(logits=out.extra_logits[2:], stage_logits=[out.extra_logits[2:]]),
                                 labels[2:, :, 6:])
    assert float(total.detach()) == pytest.approx(0.5 * float(main_only) + 0.5 * float(extra_only), rel=1e-6)
    assert set(loss_fn.last_parts) == {"main", "joint"}
    total.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["extra_head.1.weight"].abs().sum() > 0  # the second head learns from its clips
    head_grads = [g for n, g in grads.items() if n.startswith("head.") and g is not None]
    assert head_grads and any(g.abs().sum() > 0 for g in head_grads)  # and the main head from its own
    # a batch of main clips only still reaches the second head (zero gradient, but in the graph)
    model.zero_grad()
    out = model(x)
    loss_fn(out, {"labels": labels[:, :, :].clone(), "dataset": torch.zeros(4, dtype=torch.int64)}).backward()
    assert model.extra_head[1].weight.grad is not None
    assert float(model.extra_head[1].weight.grad.abs().sum()) == 0.0


def test_main_head_gets_no_gradient_from_second_dataset_clips(one_thread):
    torch.manual_seed(0)
    cfg = ModelConfig(num_classes=5, backbone="test_tiny", head="fc", clip_len=8, extra_num_classes=3)
    model = create_spotter(cfg).eval()  # no dropout: gradients are exact
    labels = torch.zeros(2, 8, 10)
    labels[:, :, 6] = 1.0
    loss_fn = JointLoss(SpottingLoss(5), SpottingLoss(3, team_weight=0.0), 5)
    loss_fn(model(torch.rand(2, 8, 3, 32, 32)), {"labels": labels, "dataset": torch.ones(2, dtype=torch.int64)}).backward()
    assert float(model.extra_head[1].weight.grad.abs().sum()) > 0
    head_grads = [p.grad for n, p in model.named_parameters() if n.startswith("head.")]
    assert all(g is not None and float(g.abs().sum()) == 0.0 for g in head_grads)


def test_errors_name_the_fix(two_datasets):
    main, second = two_datasets
    _, _, _, joint, _ = _setup(main, second)
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        JointData(joint.train, None, second / "videos", ratio=1.0)
    with pytest.raises(ConfigError, match="--joint-videos"):
        JointData(joint.train, None, None)
    run_cfg, *_ = _setup(main, second)
    from e2espot.train.joint import configure

    with pytest.raises(ConfigError, match="--team-joint"):
        configure(run_cfg, joint, team_joint=True)
    view = extra_run_config(configure(run_cfg, joint, team_joint=False), joint)
    assert view.classes == tuple(COARSE_CLASSES) and view.model.num_classes == 3
    assert view.model.extra_num_classes == 0 and view.dataset["videos"] == str(second / "videos")


@pytest.mark.slow  # a CLI run (imports, machine probe): ~15 s on a quiet machine
def test_cli_trains_jointly_and_prints_both_maps(two_datasets, tmp_path, caplog):
    import logging

    from e2espot.cli import main
    from e2espot.data.formats import write_labels

    main_root, second = two_datasets
    coarse = tmp_path / "coarse"  # the second dataset as a label dir of its own class set
    for split in ("train", "val"):
        write_labels(_coarse(read_split(second, split)), coarse, "spot", split=split)
    run = tmp_path / "run"
    args = ["train", str(main_root), str(main_root / "videos"), "-s", str(run), "-m", "test_tiny_tsm", "-t", "fc",
            "--clip-len", "16", "--height", "48", "--epoch-clips", "4", "--batch-size", "2", "-j", "0",
            "--threads", "1", "--device", "cpu", "--precision", "fp32", "--no-mixup", "--warmup-epochs", "0",
            "--num-epochs", "1", "--start-val-epoch", "0", "--joint-labels", str(coarse),
            "--joint-videos", str(second / "videos"), "--joint-ratio", "0.25"]
    with caplog.at_level(logging.INFO, logger="e2espot"):
        assert main(args) == 0
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 0 |"))
    assert " val_mAP " in line and " joint val_mAP " in line
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["joint"]["classes"] == COARSE_CLASSES and cfg["train"]["joint"]["ratio"] == 0.25
    assert cfg["train"]["joint"]["labels"] == str(coarse.resolve()) and cfg["model"]["extra_num_classes"] == 3
    # --joint-videos without --joint-labels, and a ratio outside (0, 1), are one error line each
    assert main(args[:-6] + ["--joint-videos", str(second / "videos")]) == 2
    assert main(args[:-1] + ["1.5"]) == 2


def test_errors_about_the_second_dataset_name_its_own_flags(tmp_path):
    """A reader error about the second dataset names --joint-splits / --joint-label-file, not the main flags."""
    from e2espot.data.synthetic import generate_dataset
    from e2espot.errors import E2ESpotError
    from e2espot.train.joint import load_joint_data

    generate_dataset(tmp_path / "d", num_videos=4, seed=1, tiny=True, soccernet=True)
    videos = tmp_path / "d" / "videos"
    record = {"labels": str(tmp_path / "d" / "soccernet"), "videos": str(videos), "format": "soccernet"}
    with pytest.raises(E2ESpotError) as err:
        load_joint_data(record, DataConfig(clip_len=8), label_file="Labels-v2.json",
                        splits=str(tmp_path / "d" / "soccernet" / "splits.json"))
    message = str(err.value)
    assert message.startswith(f"second dataset (--joint-labels {tmp_path / 'd' / 'soccernet'}): ")
    assert "Labels-v2.json" in message and "--joint-label-file picks the file" in message
    with pytest.raises(E2ESpotError) as err:  # the videos are not where the SoccerNet ids point
        load_joint_data(record, DataConfig(clip_len=8), label_file="Labels-ball.json")
    assert "--joint-videos" in str(err.value) and "Check --videos" not in str(err.value)
    (tmp_path / "d" / "soccernet" / "splits.json").unlink()
    with pytest.raises(E2ESpotError) as err:
        load_joint_data(record, DataConfig(clip_len=8), label_file="Labels-ball.json")
    assert "--joint-splits" in str(err.value) and " --splits" not in str(err.value)

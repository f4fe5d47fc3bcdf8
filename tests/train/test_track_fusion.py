"""Object-track fusion: the modules, the training batches, train + predict on a tiny synthetic set."""

from __future__ import annotations

import dataclasses
import shutil
import types

import numpy as np
import pytest
import torch

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.data.tracks import TrackConfig, TrackInputs, flip_features
from e2espot.errors import ConfigError
from e2espot.models import create_spotter


def _cfg(fusion: str | None, **kw) -> ModelConfig:
    extra = {"track_fusion": fusion, "track_dim": 20, "track_proj_dim": 8} if fusion else {}
    return ModelConfig(num_classes=3, backbone="test_tiny", temporal_module=None, head="gru", clip_len=6, **extra, **kw)


@pytest.mark.parametrize("fusion", ["concat", "gate"])
def test_fusion_feeds_the_head_and_needs_tracks(fusion):
    torch.manual_seed(0)
    model = create_spotter(_cfg(fusion)).eval()
    plain_dim = model.backbone.num_features
    expected_in = plain_dim + 8 if fusion == "concat" else plain_dim
    assert model.track_fusion.out_dim == expected_in
    assert f"track fusion {fusion} (F=20)" in model.summary()
    x = torch.rand(2, 6, 3, 32, 32)
    tracks = torch.rand(2, 6, 20)
    out = model(x, tracks=tracks)
    assert out.logits.shape == (2, 6, 4) and out.features.shape == (2, 6, plain_dim)
    assert not torch.allclose(model(x, tracks=torch.zeros_like(tracks)).logits, out.logits)  # tracks matter
    with pytest.raises(ConfigError, match="fuses object tracks.*give tracks"):
        model(x)
    with pytest.raises(ConfigError, match=r"tracks \(2, 6, 7\) do not match"):
        model(x, tracks=torch.rand(2, 6, 7))
    with pytest.raises(ConfigError, match="no track fusion"):
        create_spotter(_cfg(None)).eval()(x, tracks=tracks)


def test_unknown_fusion_and_config_round_trip():
    with pytest.raises(ConfigError, match="unknown track_fusion 'sum'; expected one of concat, gate"):
        create_spotter(_cfg("sum"))
    plain = _cfg(None)
    assert "track_fusion" not in plain.to_dict() and "tracks" not in DataConfig().to_dict()  # old files unchanged
    fused = _cfg("gate")
    assert ModelConfig.from_dict(fused.to_dict()) == fused


def test_batch_tracks_mix_and_flip():
    grid = (3, 4)
    inputs = object.__new__(TrackInputs)
    inputs.cfg = TrackConfig(grid=grid)
    rng = np.random.default_rng(0)
    video_a, video_b = rng.random((10, 20), dtype=np.float32), rng.random((7, 20), dtype=np.float32)
    inputs.train, inputs.val = [video_a, video_b], [video_b]
    batch = {"video_idx": torch.tensor([0, 1]), "start": torch.tensor([-2, 3]),
             "video_idx2": torch.tensor([1, 0]), "start2": torch.tensor([0, 8])}
    aug = types.SimpleNamespace(frames=torch.zeros(2, 4, 3, 8, 8), lam=torch.tensor([1.0, 0.25]),
                                flip=torch.tensor([False, True]))
    got = inputs.batch_tracks(batch, aug, train=True).numpy()
    first = np.stack([np.concatenate([np.zeros((2, 20)), video_a[:2]]), video_b[3:7]])
    second = np.stack([video_b[0:4], np.concatenate([video_a[8:10], np.zeros((2, 20))])])
    mixed = np.stack([first[0], 0.25 * first[1] + 0.75 * second[1]]).astype(np.float32)
    mixed[1] = flip_features(mixed[1], grid)
    np.testing.assert_allclose(got, mixed, rtol=1e-6, atol=1e-6)
    val = inputs.batch_tracks({"video_idx": torch.tensor([0]), "start": torch.tensor([5])},
                              types.SimpleNamespace(frames=torch.zeros(1, 4, 3, 8, 8), lam=None, flip=None), False)
    np.testing.assert_array_equal(val.numpy()[0], np.concatenate([video_b[5:7], np.zeros((2, 20))]))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from e2espot.data.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("synth"), num_videos=4, seed=3, tiny=True, soccernet=False)


# gate: slow only to keep the default suite short (the same code path; ~25 s CPU each on a loaded machine)
@pytest.mark.parametrize("fusion", ["concat", pytest.param("gate", marks=pytest.mark.slow)])
def test_train_and_predict_with_track_fusion(synth, tmp_path, fusion):
    from e2espot.cli import main
    from e2espot.data.video import open_video
    from e2espot.infer.predict import load_run, predict_file, predict_scores

    run, cache = tmp_path / "run", tmp_path / "cache"
    code = main(["train", str(synth.root), str(synth.root / "videos"), "-s", str(run), "-m", "test_tiny", "-t", "gru",
                 "--clip_len", "8", "--height", "32", "--crop-dim", "32", "--epoch-clips", "4", "--batch-size", "2",
                 "--num-epochs", "1", "-j", "0", "--device", "cpu", "--precision", "fp32", "--start-val-epoch", "0",
                 "--track-fusion", fusion, "--track-tracker", "given", "--track-cache", str(cache)])
    assert code == 0
    cfg = RunConfig.load(run / "config.json")
    assert (cfg.model.track_fusion, cfg.model.track_dim) == (fusion, 20)
    assert cfg.data.tracks["tracker"] == "given" and list(cfg.data.tracks["grid"]) == [3, 4]
    assert len(list(cache.glob("*.npy"))) == 3  # one entry per video of train (2) and val (1)

    # predict on a raw video elsewhere: its detections file beside it gives the same features
    test_video = synth.labels["test"].videos[0]
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(synth.videos[test_video.video], raw / "match.mp4")
    with pytest.raises(ConfigError, match="no detections were found"):
        predict_file(raw / "match.mp4", run, tmp_path / "out", track_cache=tmp_path / "cache2")
    shutil.copy(synth.tracks[test_video.video], raw / "match.tracks.json")
    files = predict_file(raw / "match.mp4", run, tmp_path / "out", track_cache=tmp_path / "cache2", overlap=4)
    raw_scores = np.load(files.scores_npz)["scores"]

    from e2espot.data.tracks import features_for_video

    model, cfg = load_run(run)
    feats = features_for_video(cfg, test_video)
    with open_video(synth.videos[test_video.video], fps=cfg.data.fps, height=cfg.data.height) as reader:
        ref = predict_scores(model, reader, cfg, overlap=4, tracks=feats)
        reader2 = open_video(synth.videos[test_video.video], fps=cfg.data.fps, height=cfg.data.height)
        no_tracks = predict_scores(model, reader2, cfg, overlap=4, tracks=np.zeros_like(feats))
        reader2.close()
    np.testing.assert_allclose(raw_scores, ref, atol=1e-6)  # same pipeline for a raw video
    assert np.abs(no_tracks - ref).max() > 1e-4  # and the tracks change the scores
    with pytest.raises(ConfigError, match="features have 3 rows but the video has"), \
            open_video(synth.videos[test_video.video], fps=cfg.data.fps, height=cfg.data.height) as reader:
        predict_scores(model, reader, cfg, overlap=4, tracks=feats[:3])


def test_run_tracks_checks_config():
    from e2espot.data.tracks import run_tracks

    model = _cfg("gate")
    data = DataConfig(clip_len=6, tracks=TrackConfig(grid=(2, 2)).to_dict())  # 12 features, model says 20
    with pytest.raises(ConfigError, match="model.track_dim 20 != 12"):
        run_tracks(RunConfig(model=model, data=data, classes=("a", "b", "c")))
    with pytest.raises(ConfigError, match="go together"):
        run_tracks(RunConfig(model=model, data=dataclasses.replace(data, tracks=None), classes=("a", "b", "c")))

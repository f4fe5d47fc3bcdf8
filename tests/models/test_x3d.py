"""X3D clip backbones: published parameter counts, per-frame (B, T, D) features for any T, freezing,
weight loading (PyTorchVideo checkpoint layout, offline error), 1-channel stems, and a tiny training run."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch

from e2espot.config import ModelConfig
from e2espot.errors import CheckpointError, ConfigError
from e2espot.models import create_backbone, create_spotter, list_backbones, parse_arch
from e2espot.models.x3d import X3D, round_width

X3D_NAMES = ["x3d_l", "x3d_m", "x3d_s", "x3d_xs"]


@pytest.fixture(autouse=True)
def one_thread():
    # Depthwise 3D convolutions on a shared 2-core machine: two intra-op threads run ~10x slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registered_and_plain_arch_names():
    assert set(X3D_NAMES) <= set(list_backbones())
    assert parse_arch("x3d_s") == ("x3d_s", None)  # "x3d" + "_s" is not read as a temporal module


@pytest.mark.parametrize(("depth_factor", "expected"), [(2.2, 3_794_274), (5.0, 6_153_384)])
def test_parameter_counts_equal_published(depth_factor, expected):
    # PyTorchVideo model zoo: X3D-XS/S/M 3.79 M, X3D-L 6.15 M (paper: 3.8 M / 6.1 M), with the 400-way
    # Kinetics classifier; figures also checked by loading PyTorchVideo 0.1.5's create_x3d.
    assert _count(X3D(depth_factor=depth_factor, num_classes=400)) == expected
    # without the 2048x400 classifier: the per-frame feature extractor a spotter uses
    assert _count(X3D(depth_factor=depth_factor)) == expected - 2048 * 400 - 400


def test_xs_s_m_share_the_network():
    counts = {name: _count(create_backbone(name)) for name in ("x3d_xs", "x3d_s", "x3d_m")}
    assert set(counts.values()) == {2_974_674}
    assert _count(create_backbone("x3d_l")) == 5_333_784


def test_stage_widths_and_depths():
    net = X3D()
    assert [len(stage.res_blocks) for stage in net.blocks[1:5]] == [3, 5, 11, 7]
    assert [stage.res_blocks[0].branch2.conv_c.out_channels for stage in net.blocks[1:5]] == [24, 48, 96, 192]
    assert round_width(432, 0.0625) == 32 and round_width(54, 0.0625) == 8  # SE widths


@pytest.mark.parametrize("num_frames", [1, 7, 11])
def test_per_frame_features_keep_time(num_frames):
    bb = create_backbone("x3d_xs", clip_len=num_frames).eval()
    x = torch.randn(2 * num_frames, 3, 40, 36)  # (B·T, 3, H, W), H and W not multiples of 32
    with torch.no_grad():
        out = bb(x, num_frames=num_frames)
    assert out.shape == (2 * num_frames, 2048)
    # frames are causal-free but local: changing the last frame of clip 0 leaves clip 1 unchanged
    x2 = x.clone()
    x2[num_frames - 1] += 1.0
    with torch.no_grad():
        out2 = bb(x2, num_frames=num_frames)
    torch.testing.assert_close(out2[num_frames:], out[num_frames:])
    assert not torch.allclose(out2[num_frames - 1], out[num_frames - 1])


def test_spotter_gives_b_t_d_and_logits():
    cfg = ModelConfig(num_classes=3, backbone="x3d_s", temporal_module=None, head="gru", clip_len=7)
    model = create_spotter(cfg).eval()
    assert not model.prefers_channels_last
    with torch.no_grad():
        out = model(torch.rand(2, 7, 3, 32, 32))
    assert out.features.shape == (2, 7, 2048)
    assert out.logits.shape == (2, 7, 4)


def test_temporal_module_and_unknown_option_refused():
    with pytest.raises(ConfigError, match="3D clip model; it takes no temporal module"):
        create_backbone("x3d_s", temporal_module="gsm")
    with pytest.raises(ConfigError, match=r"does not take option\(s\) \['trainable_stages'\]"):
        create_backbone("test_tiny", backbone_kwargs={"trainable_stages": 1})
    with pytest.raises(ConfigError, match="trainable_stages must be None"):
        create_backbone("x3d_s", backbone_kwargs={"trainable_stages": 5})


@pytest.mark.parametrize(("trainable", "frozen_blocks"), [(0, 5), (2, 3), (4, 1)])
def test_freeze_all_but_last_n_stages(trainable, frozen_blocks):
    bb = create_backbone("x3d_xs", backbone_kwargs={"trainable_stages": trainable})
    net = bb.model
    for i, block in enumerate(net.blocks):
        grads = {p.requires_grad for p in block.parameters()}
        assert grads == ({False} if i < frozen_blocks else {True}), i
    bb.train()
    assert not net.blocks[frozen_blocks - 1].training and net.blocks[frozen_blocks].training
    # frozen BatchNorm statistics stay put in a training forward
    before = net.blocks[0].norm.running_mean.clone()
    bb(torch.randn(6, 3, 32, 32), num_frames=3)
    torch.testing.assert_close(net.blocks[0].norm.running_mean, before)
    # the spotter counts only the trainable part
    model = create_spotter(ModelConfig(num_classes=2, backbone="x3d_xs", temporal_module=None, head="fc",
                                       clip_len=4, backbone_kwargs={"trainable_stages": trainable}))
    frozen = sum(_count(b) for b in net.blocks[:frozen_blocks])
    assert model.num_parameters(trainable_only=True) == model.num_parameters() - frozen


def _pytorchvideo_checkpoint(tmp_path, seed=0):
    """A file laid out as PyTorchVideo's X3D_*.pyth: {"model_state": full state dict with the classifier}."""
    torch.manual_seed(seed)
    ref = X3D(num_classes=400)
    path = tmp_path / "X3D_S.pyth"
    torch.save({"model_state": ref.state_dict(), "epoch": 1}, path)
    return ref, path


def test_local_pytorchvideo_checkpoint_loads(tmp_path):
    ref, path = _pytorchvideo_checkpoint(tmp_path)
    bb = create_backbone("x3d_s", pretrained=str(path))
    for key, value in bb.model.state_dict().items():
        torch.testing.assert_close(value, ref.state_dict()[key])
    assert not any(k.startswith("blocks.5.proj") for k in bb.model.state_dict())


def test_gray_stem_sums_rgb_weights(tmp_path):
    ref, path = _pytorchvideo_checkpoint(tmp_path)
    bb = create_backbone("x3d_s", pretrained=str(path), in_chans=1).eval()
    stem = bb.model.blocks[0].conv.conv_t.weight
    assert stem.shape == (24, 1, 1, 3, 3)
    torch.testing.assert_close(stem, ref.blocks[0].conv.conv_t.weight.sum(1, keepdim=True))
    # a gray frame repeated to RGB through the RGB model gives the same features as the gray model
    rgb = create_backbone("x3d_s", pretrained=str(path)).eval()
    gray = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(bb(gray, num_frames=4), rgb(gray.expand(-1, 3, -1, -1), num_frames=4))


def test_wrong_checkpoint_is_refused(tmp_path):
    path = tmp_path / "l.pyth"
    torch.save({"model_state": X3D(depth_factor=5.0).state_dict()}, path)
    with pytest.raises(CheckpointError, match="do not fit backbone 'x3d_s'.*unexpected keys"):
        create_backbone("x3d_s", pretrained=str(path))


def test_hub_weights_offline_error(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(CheckpointError) as info:
        create_backbone("x3d_m", pretrained=True)
    msg = str(info.value)
    assert "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_M.pyth" in msg
    assert "URLError" in msg and "--pretrained PATH" in msg


def test_hub_weights_through_the_cache(monkeypatch, tmp_path):
    ref, _ = _pytorchvideo_checkpoint(tmp_path, seed=1)
    seen = []

    def cached(url, **kwargs):
        seen.append((url, kwargs.get("weights_only")))
        return {"model_state": ref.state_dict()}

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", cached)
    bb = create_backbone("x3d_xs", pretrained=True)
    assert seen == [("https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_XS.pyth", True)]
    torch.testing.assert_close(bb.model.blocks[4].res_blocks[6].branch2.conv_c.weight,
                               ref.blocks[4].res_blocks[6].branch2.conv_c.weight)


def test_matches_pytorchvideo_when_installed():
    x3d_ref = pytest.importorskip("pytorchvideo.models.x3d", reason="pytorchvideo not installed (optional)")
    ref = x3d_ref.create_x3d(input_clip_length=5, input_crop_size=64).eval()
    ours = X3D(num_classes=400).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(1, 3, 5, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(torch.softmax(ours.classify(x), 1), ref(x))


def test_tiny_training_loss_goes_down():
    """A spotter on x3d_xs learns a synthetic rule (class = frames brighter than their neighbours)."""
    torch.manual_seed(0)
    num_frames, batch = 5, 2
    x = torch.rand(batch, num_frames, 3, 24, 24) * 0.3  # (B, T, 3, H, W)
    y = torch.zeros(batch, num_frames, dtype=torch.long)
    for b in range(batch):
        for f in (1 + b, num_frames - 1):
            x[b, f] += 0.6
            y[b, f] = 1
    model = create_spotter(ModelConfig(num_classes=1, backbone="x3d_xs", temporal_module=None, head="fc",
                                       clip_len=num_frames, backbone_kwargs={"trainable_stages": 2}))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(6):
        logits = model(x).logits  # (B, T, 2)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 2), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], losses  # measured: 0.67 -> 0.00 in 6 steps


@pytest.mark.slow  # ~40 s CPU: validation runs X3D over whole synthetic videos
def test_train_cli_and_predict_on_synthetic_videos(tmp_path):
    """`e2espot train -m x3d_xs --trainable-stages 1` on the synthetic generator, then predict a video."""
    from e2espot.cli import main
    from e2espot.config import RunConfig
    from e2espot.data.synthetic import generate_dataset
    from e2espot.data.video import open_video
    from e2espot.infer.predict import load_run, predict_scores

    root = tmp_path / "data"
    generate_dataset(root, num_videos=4, seed=3, tiny=True, soccernet=False)
    run = tmp_path / "run"
    code = main(["train", str(root), str(root / "videos"), "-s", str(run), "-m", "x3d_xs", "-t", "fc",
                 "--trainable-stages", "1", "--clip_len", "8", "--height", "32", "--crop-dim", "32",
                 "--epoch-clips", "2", "--batch-size", "2", "--num-epochs", "1", "-j", "0", "--device", "cpu",
                 "--precision", "fp32", "--start-val-epoch", "0", "--no-mixup"])
    assert code == 0
    cfg = RunConfig.load(run / "config.json")
    assert (cfg.model.backbone, cfg.model.temporal_module) == ("x3d_xs", None)
    assert cfg.model.backbone_kwargs == {"trainable_stages": 1}
    model, cfg = load_run(run, "cpu")
    assert model.num_parameters(trainable_only=True) < model.num_parameters()
    video = min((root / "videos").iterdir())
    with open_video(video, height=32) as reader:
        scores = predict_scores(model, reader, cfg, batch_size=2, device="cpu")
        num_frames = reader.num_frames
    assert scores.shape == (num_frames, len(cfg.classes) + 1)
    np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-4)

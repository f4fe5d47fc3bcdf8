"""Input modalities (issue 16 item 3): gray from any video, 2-channel flow from E2E-Spot flow JPEG folders,
the stem adapted to the channel count as timm does, and predict / test reading the run's modality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from e2espot.cli import main
from e2espot.data.modality import FLOW_DX_CHANNEL, LUMA_WEIGHTS, get_modality, luma
from e2espot.data.synthetic import generate_dataset
from e2espot.errors import VideoError


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_modality")
    generate_dataset(root, num_videos=4, seed=3, tiny=True, soccernet=False)
    return root


def write_flow_folders(videos: Path, out: Path) -> None:
    """E2E-Spot-style flow folders <out>/<id>/%06d.jpg: decoded RGB = (128, dy, dx), here dx = the frame
    difference of the luma and dy its vertical gradient (any 2-channel signal will do for training)."""
    from PIL import Image

    from e2espot.data.video import open_video

    for path in sorted(videos.glob("*.mp4")):
        with open_video(path) as reader:
            frames = reader.read_clip(0, reader.num_frames).astype(np.float32)  # (N, H, W, 3)
        gray = frames @ np.asarray(LUMA_WEIGHTS, np.float32)  # (N, H, W)
        dx = np.diff(gray, axis=0, prepend=gray[:1])
        dy = np.diff(gray, axis=1, prepend=gray[:, :1])
        folder = out / path.stem
        folder.mkdir(parents=True)
        for i in range(len(gray)):
            rgb = np.stack([np.full_like(dx[i], 128), 128 + dy[i] / 2, 128 + dx[i] / 2], axis=-1)
            Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=95)


def _train_args(data: Path, videos: Path, run: Path, *extra: str) -> list[str]:
    return ["train", str(data), str(videos), "-s", str(run), "-m", "test_tiny_tsm", "-t", "fc",
            "--clip-len", "16", "--height", "48", "--epoch-clips", "4", "--batch-size", "2", "-j", "0",
            "--device", "cpu", "--precision", "fp32", "--no-mixup", "--warmup-epochs", "0", "--num-epochs", "1",
            *extra]


def test_luma_is_torchvision_rgb_to_grayscale():
    from torchvision.transforms.functional import rgb_to_grayscale

    x = torch.rand(2, 3, 3, 5, 7)  # (B, T, 3, H, W)
    assert torch.allclose(luma(x), rgb_to_grayscale(x.reshape(6, 3, 5, 7)).reshape(2, 3, 1, 5, 7), atol=1e-7)
    gray, flow = get_modality("gray"), get_modality("flow")
    assert (gray.num_channels, gray.mean, gray.std) == (1, (0.5,), (0.5,))
    assert (flow.num_channels, flow.mean, flow.std) == (2, (0.5, 0.5), (0.5, 0.5))
    assert torch.equal(flow.from_rgb(x), x[:, :, 1:3])  # spot FrameReader: img[1:] = (dy, dx)


def test_device_augment_gray_and_flow_channels():
    from e2espot.data.transforms import DeviceAugment

    frames = torch.randint(0, 256, (2, 3, 8, 10, 3), dtype=torch.uint8)  # (B, T, H, W, 3)
    batch = {"frames": frames, "labels": torch.zeros(2, 3, dtype=torch.int64),
             "displacement": torch.zeros(2, 3), "valid": torch.ones(2, 3, dtype=torch.bool)}
    x01 = frames.permute(0, 1, 4, 2, 3).float() / 255  # (B, T, 3, H, W)

    gray = DeviceAugment(5, modality="gray")(batch, train=False).frames
    assert gray.shape == (2, 3, 1, 8, 10) and torch.allclose(gray, luma(x01), atol=1e-6)

    # flow: every clip flipped; photometric ops are off even at probability 1; dx = 1 - v, mirrored
    aug = DeviceAugment(5, modality="flow", flip_p=1.0, jitter_p=1.0, blur_p=1.0)
    flow = aug(batch, train=True).frames
    assert flow.shape == (2, 3, 2, 8, 10)
    mirrored = x01.flip(-1)
    assert torch.allclose(flow[:, :, 0], mirrored[:, :, 1], atol=1e-6)  # dy: mirrored only
    assert torch.allclose(flow[:, :, 1], 1 - mirrored[:, :, FLOW_DX_CHANNEL], atol=1e-6)  # dx: mirrored, negated
    # without a flip, eval gives G, B unchanged
    assert torch.allclose(aug(batch, train=False).frames, x01[:, :, 1:3], atol=1e-6)


@pytest.mark.parametrize(("name", "timm_name"), [("rny002", "regnety_002"), ("rn18", "resnet18")])
@pytest.mark.parametrize("in_chans", [1, 2])
def test_stem_from_rgb_weights_equals_timm_adapt_input_conv(tmp_path, name, timm_name, in_chans):
    import timm
    from timm.models import adapt_input_conv

    from e2espot.models.backbones import create_backbone

    torch.manual_seed(0)
    rgb = timm.create_model(timm_name, pretrained=False)  # an "ImageNet" file: RGB stem + classifier
    path = tmp_path / f"{timm_name}.pth"
    torch.save(rgb.state_dict(), path)
    stem = rgb.pretrained_cfg["first_conv"] + ".weight"
    backbone = create_backbone(name, pretrained=str(path), in_chans=in_chans)
    ours = backbone.model.state_dict()[stem]
    assert ours.shape[1] == in_chans
    assert torch.equal(ours, adapt_input_conv(in_chans, rgb.state_dict()[stem]))
    # every other weight is loaded as it is
    body = [k for k in rgb.state_dict() if k in backbone.model.state_dict() and k != stem]
    assert body and all(torch.equal(backbone.model.state_dict()[k], rgb.state_dict()[k]) for k in body)


def test_test_tiny_stem_adapts_a_local_rgb_file(tmp_path):
    from e2espot.models.backbones import adapt_stem, create_backbone

    rgb = create_backbone("test_tiny", in_chans=3).model.state_dict()
    torch.save(rgb, tmp_path / "tiny.pt")
    for chans in (1, 2):
        net = create_backbone("test_tiny", pretrained=str(tmp_path / "tiny.pt"), in_chans=chans).model
        assert torch.equal(net.state_dict()["stem.0.weight"], adapt_stem(rgb["stem.0.weight"], chans))
    assert torch.allclose(adapt_stem(rgb["stem.0.weight"], 1), rgb["stem.0.weight"].sum(1, keepdim=True))
    two = adapt_stem(rgb["stem.0.weight"], 2)
    assert torch.allclose(two, rgb["stem.0.weight"][:, :2] * 1.5)


def test_gray_trains_and_predicts_on_any_video(tiny_data, tmp_path, capsys):
    run = tmp_path / "gray"
    assert main(_train_args(tiny_data, tiny_data / "videos", run, "--modality", "gray")) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["modality"] == "gray"
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=True)["model"]
    assert state["backbone.model.stem.0.weight"].shape == (16, 1, 3, 3)

    video = tiny_data / "videos" / "synth_000.mp4"
    assert main(["predict", str(video), "-m", str(run), "-o", str(tmp_path / "out"), "--device", "cpu",
                 "--precision", "fp32", "--overlap", "0"]) == 0
    scores = np.load(tmp_path / "out" / "synth_000.npz")["scores"]
    assert scores.shape == (48, 6) and np.allclose(scores.sum(1), 1, atol=1e-4)

    # the same scores as the model run by hand on the BT.601 luma of the decoded frames
    from e2espot.data.video import open_video
    from e2espot.infer.predict import load_run

    model, _ = load_run(run, "cpu")
    with open_video(video, height=48) as reader:
        x = torch.from_numpy(reader.read_clip(0, 48)).permute(0, 3, 1, 2).float() / 255  # (48, 3, H, W)
    windows = [(0, 16), (16, 32), (32, 48)]  # aligned, no overlap: 3 windows of 16
    with torch.inference_mode():
        expected = torch.cat([model(luma(x[a:b])[None]).logits.softmax(-1)[0] for a, b in windows])
    assert np.allclose(scores, expected.numpy(), atol=1e-5)


def test_flow_trains_on_flow_folders_and_names_a_missing_one(tiny_data, tmp_path, capsys):
    flow_root = tmp_path / "flow"
    write_flow_folders(tiny_data / "videos", flow_root)
    run = tmp_path / "flowrun"
    assert main(_train_args(tiny_data, flow_root, run, "--modality", "flow")) == 0
    assert json.loads((run / "config.json").read_text())["model"]["modality"] == "flow"
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=True)["model"]
    assert state["backbone.model.stem.0.weight"].shape == (16, 2, 3, 3)

    out = tmp_path / "out"
    assert main(["predict", str(flow_root / "synth_001"), "-m", str(run), "-o", str(out), "--device", "cpu"]) == 0
    assert np.load(out / "synth_001.npz")["scores"].shape == (48, 6)
    # a raw video is refused for a flow model
    assert main(["predict", str(tiny_data / "videos" / "synth_001.mp4"), "-m", str(run), "-o", str(out)]) == 2
    assert "reads optical flow, not RGB video" in capsys.readouterr().err

    # a video without its flow folder: the error names the folder and the layout
    import shutil

    shutil.rmtree(flow_root / "synth_002")
    capsys.readouterr()
    assert main(_train_args(tiny_data, flow_root, tmp_path / "again", "--modality", "flow")) == 2
    err = capsys.readouterr().err
    assert f"no folder '{flow_root / 'synth_002'}'" in err and "<root>/<video id>/000000.jpg" in err
    # RGB videos given as flow: the same error says what was found instead
    with pytest.raises(VideoError, match=r"found synth_000.mp4: an RGB video, not flow"):
        from e2espot.data.modality import flow_folder

        flow_folder(tiny_data / "videos", "synth_000")


def test_modality_choices_come_from_the_registry_and_adaspot_refuses_gray(tiny_data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(_train_args(tiny_data, tiny_data / "videos", tmp_path / "r", "--modality", "depth"))
    err = capsys.readouterr().err
    assert "invalid choice: 'depth'" in err and all(m in err for m in ("rgb", "gray", "flow"))
    args = _train_args(tiny_data, tiny_data / "videos", tmp_path / "r", "--modality", "gray")
    args[args.index("test_tiny_tsm")] = "adaspot_small"
    assert main(args) == 2
    assert "--modality gray: -m adaspot_small (AdaSpot) reads RGB frames only" in capsys.readouterr().err


def test_spot_bw_config_imports_as_gray(tmp_path):
    """jhong93/spot --modality bw (Grayscale + Normalize(0.5, 0.5), a 1-channel stem) is our gray."""
    from e2espot.models.published.spot import _architecture
    from e2espot.models.spotter import create_spotter

    cfg = {"feature_arch": "rny002_gsm", "temporal_arch": "gru", "num_classes": 6, "clip_len": 8,
           "crop_dim": 224, "dataset": "tennis", "modality": "bw"}
    model_cfg = _architecture(cfg, tmp_path / "config.json")
    assert model_cfg.modality == "gray"
    stem = create_spotter(model_cfg).state_dict()["backbone.model.stem.conv.weight"]
    assert stem.shape == (32, 1, 3, 3)  # spot: nn.Conv2d(in_channels=1, 32, 3, stride 2) for bw

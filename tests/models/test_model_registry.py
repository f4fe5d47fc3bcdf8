"""Registries, legacy names, real backbones (tiny forward, random init) and local pretrained weights."""

import pytest
import torch

from e2espot.errors import CheckpointError, ConfigError, UnknownNameError
from e2espot.models import (
    create_backbone,
    create_head,
    create_temporal_module,
    list_backbones,
    list_heads,
    list_temporal_modules,
    parse_arch,
)

REAL_BACKBONES = ["rny002", "rny008", "rn18", "rn50", "effb0", "convnextt"]
FEATURES = {"rny002": 368, "rny008": 768, "rn18": 512, "rn50": 2048, "effb0": 1280, "convnextt": 768}


def test_registries_list_every_key():
    assert list_backbones() == sorted(REAL_BACKBONES + ["test_tiny", "x3d_xs", "x3d_s", "x3d_m", "x3d_l"])
    assert list_temporal_modules() == ["astrm", "gsf", "gsm", "tsm"]
    assert list_heads() == sorted(["fc", "gru", "deeper_gru", "lstm", "mstcn", "transformer", "asformer", "edsgp"])


@pytest.mark.parametrize(("arch", "expected"), [
    ("rny008_gsm", ("rny008", "gsm")), ("rn50", ("rn50", None)), ("rny002_tsm", ("rny002", "tsm")),
    ("test_tiny", ("test_tiny", None)), ("test_tiny_astrm", ("test_tiny", "astrm")), ("convnextt_gsf", ("convnextt", "gsf")),
])
def test_parse_arch(arch, expected):
    assert parse_arch(arch) == expected


def test_parse_arch_unknown_suffix_and_backbone():
    with pytest.raises(UnknownNameError, match="did you mean 'gsm'"):
        parse_arch("rny008_gsn")
    with pytest.raises(UnknownNameError, match="rny002"):
        parse_arch("rny02")


@pytest.mark.parametrize(("create", "bad", "hint"), [
    (lambda n: create_backbone(n), "rny02", "rny002"),
    (lambda n: create_backbone("test_tiny", temporal_module=n), "gsn", "gsm"),
    (lambda n: create_head(n, 32, 4), "gr", "gru"),
    (lambda n: create_temporal_module(n, 16), "tsn", "tsm"),
])
def test_unknown_names_have_hint(create, bad, hint):
    with pytest.raises(UnknownNameError) as info:
        create(bad)
    msg = str(info.value)
    assert f"'{bad}'" in msg and f"did you mean '{hint}'" in msg and "Available:" in msg


def test_bad_temporal_stages_and_head_kwargs():
    with pytest.raises(ConfigError, match="stages 1..2"):
        create_backbone("test_tiny", temporal_module="gsm", temporal_stages=(3,))
    with pytest.raises(ConfigError, match="head 'gru'"):
        create_head("gru", 32, 4, nope=1)


def test_temporal_stages_select_blocks():
    bb = create_backbone("test_tiny", temporal_module="tsm", temporal_stages=(2,))
    assert len(bb.temporal_modules()) == 2  # 2 blocks in stage 2
    assert len(create_backbone("test_tiny", temporal_module="tsm").temporal_modules()) == 4
    assert create_backbone("test_tiny").temporal_modules() == []


def test_test_tiny_is_tiny():
    bb = create_backbone("test_tiny", temporal_module="astrm")
    assert sum(p.numel() for p in bb.parameters()) < 100_000
    assert bb.num_features == 64  # mean and max pooled
    out = bb(torch.rand(4, 3, 32, 32), num_frames=2)
    assert out.shape == (4, 64)


@pytest.mark.parametrize("name", REAL_BACKBONES)
def test_real_backbone_forward_tiny(name):
    bb = create_backbone(name, pretrained=False, temporal_module="gsm", clip_len=2).eval()
    assert bb.num_features == FEATURES[name]
    assert len(bb.temporal_modules()) > 0
    with torch.no_grad():
        out = bb(torch.rand(2, 3, 32, 32), num_frames=2)
    assert out.shape == (2, FEATURES[name])
    assert torch.isfinite(out).all()


def _plain_tiny_state(seed: int = 0):
    torch.manual_seed(seed)
    return create_backbone("test_tiny").model.state_dict()


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_pretrained_path_loads_before_temporal_insertion(tmp_path, fmt):
    state = _plain_tiny_state(1)
    path = tmp_path / f"w.{fmt}"
    if fmt == "pt":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    torch.manual_seed(2)
    bb = create_backbone("test_tiny", pretrained=str(path), temporal_module="gsm")
    got = bb.model.state_dict()
    assert torch.equal(got["stem.0.weight"], state["stem.0.weight"])
    assert torch.equal(got["s1.0.conv1.conv.0.weight"], state["s1.0.conv1.0.weight"])  # conv moved into wrapper
    assert torch.equal(got["s2.1.conv3.1.running_var"], state["s2.1.conv3.1.running_var"])


def test_pretrained_path_drops_timm_classifier(tmp_path):
    import timm
    torch.manual_seed(0)
    full = timm.create_model("regnety_002", num_classes=1000).state_dict()
    assert "head.fc.weight" in full
    path = tmp_path / "rny002.pth"
    torch.save(full, path)
    bb = create_backbone("rny002", pretrained=str(path))
    assert torch.equal(bb.model.state_dict()["stem.conv.weight"], full["stem.conv.weight"])


def test_pretrained_path_mismatch_errors(tmp_path):
    state = _plain_tiny_state()
    state.pop("stem.0.weight")
    state["s1.0.conv2.0.weight"] = torch.zeros(1, 1, 1, 1)
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        create_backbone("test_tiny", pretrained=str(path))
    msg = str(info.value)
    assert "missing keys: stem.0.weight" in msg and "unexpected keys: extra.weight" in msg
    assert "shape mismatch: s1.0.conv2.0.weight" in msg
    with pytest.raises(CheckpointError, match="not found"):
        create_backbone("test_tiny", pretrained=str(tmp_path / "nope.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        create_backbone("test_tiny", pretrained=str(tmp_path / "junk.pt"))


def test_test_tiny_has_no_imagenet_weights():
    with pytest.raises(ConfigError, match="no ImageNet weights"):
        create_backbone("test_tiny", pretrained=True)

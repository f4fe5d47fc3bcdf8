"""AdaSpot (arturxe2/AdaSpot @ 6a46bbc): the RoI selector, the model and the checkpoint import equal the reference.

Golden data: ../shared/fixtures/published-models/adaspot_{SoccerNetBall,Tennis}_small (reference runs with
weights from materialize.py, seed 0). Tolerances as the fixtures' README: atol 1e-5, rtol 1e-4 on features,
logits and probabilities; exact on RoI centres, sizes and boxes. The full 2×100-frame forward at 448×796
takes about 2 minutes on 2 CPU threads, so it and the end-to-end run are marked slow; the default tests
check every stage on the reference's own intermediates (maps → RoIs, boxes → crops, features → logits).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from e2espot.errors import CheckpointError, ConfigError, UnknownNameError
from e2espot.models import create_spotter
from e2espot.models.adaspot import AdaSpot, crop_rois, preset_config, roi_boxes, select_rois
from e2espot.models.published import adaspot as published

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "published-models"
SNB, TENNIS = "adaspot_SoccerNetBall_small", "adaspot_Tennis_small"
NAMES = (SNB, TENNIS)
CROP = {SNB: (448, 796), TENNIS: (448, 448)}
THRESHOLD = {SNB: 0.0, TENNIS: 0.3}
ATOL, RTOL = 1e-5, 1e-4

pytestmark = pytest.mark.skipif(
    not all((ROOT / n / "io.npz").is_file() for n in NAMES), reason=f"AdaSpot fixtures not found at {ROOT}"
)


def _materialize(keys_json: Path, out: Path) -> None:
    spec = importlib.util.spec_from_file_location("materialize", ROOT / "materialize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.save(module.build(json.loads(keys_json.read_text())["keys"], 0), out)


def _io(name: str) -> dict[str, np.ndarray]:
    return dict(np.load(ROOT / name / "io.npz"))


def _close(ours: torch.Tensor, ref: np.ndarray, what: str) -> None:
    ours = ours.detach().cpu().numpy()
    assert ours.shape == ref.shape, (what, ours.shape, ref.shape)
    err = np.abs(ours - ref).max()
    assert np.allclose(ours, ref, atol=ATOL, rtol=RTOL), f"{what}: max abs diff {err:.3g}"


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Model folders as the reference's save layout: config.json + <model_name>-1/checkpoint_best.pt."""
    base = tmp_path_factory.mktemp("adaspot")
    out = {}
    for name in NAMES:
        folder = base / name
        (folder / f"{name.split('_', 1)[1]}-1").mkdir(parents=True)
        (folder / "config.json").write_text((ROOT / name / "config.json").read_text())
        _materialize(ROOT / name / "keys.json", folder / f"{name.split('_', 1)[1]}-1" / "checkpoint_best.pt")
        out[name] = folder
    return out


@pytest.fixture(scope="module")
def imported(folders) -> dict[str, published.ImportedModel]:
    return {name: published.convert(folder) for name, folder in folders.items()}


@pytest.fixture(scope="module")
def full_models(folders, imported) -> dict[str, AdaSpot]:
    """Our model with the auxiliary heads, the converted seed-0 checkpoint loaded strictly."""
    models = {}
    for name, folder in folders.items():
        cfg = imported[name].run_config.model
        cfg = dataclasses.replace(cfg, head_kwargs={**cfg.head_kwargs, "aux_heads": True})
        model = create_spotter(cfg)
        ckpt = published.find_checkpoint(folder, folder / "config.json", None)
        model.load_state_dict(published.convert_state_dict(torch.load(ckpt, weights_only=True)), strict=True)
        models[name] = model.eval()
    return models


# --------------------------------------------------------------------------- RoI selector


@pytest.mark.parametrize("name", NAMES)
def test_roi_selector_unit_case_exact(name):
    """ROISelector alone on the synthetic moving blob (flat frame at t=6): centres and sizes bit-equal.
    Tennis (threshold 0.3) exercises the size search: 168 → 224 as the blob widens."""
    io = _io(name)
    centers, sizes = select_rois(
        torch.from_numpy(io["roisel_unit_in"]), (112, 112), CROP[name], THRESHOLD[name]
    )
    np.testing.assert_array_equal(centers.numpy(), io["roisel_unit_centers"])
    np.testing.assert_array_equal(sizes.numpy(), io["roisel_unit_sizes"])
    if name == TENNIS:
        assert sizes[0, :, 0].tolist() == [168, 196, 196, 196, 224, 224, 224, 224]


@pytest.mark.parametrize("name", NAMES)
def test_roi_selector_on_reference_maps_gives_reference_boxes(name):
    """The reference's channel-mean maps (step 1) → centres, sizes and [top, left, h, w] boxes, all exact."""
    io = _io(name)
    maps = torch.from_numpy(io["lowres_maps_chmean"])[
        :, :, None
    ]  # the channel mean of a 1-channel map is itself
    centers, sizes = select_rois(maps, (112, 112), CROP[name], THRESHOLD[name])
    np.testing.assert_array_equal(centers.numpy(), io["roi_centers"])
    np.testing.assert_array_equal(sizes.numpy(), io["roi_sizes"])
    np.testing.assert_array_equal(roi_boxes(centers, sizes, CROP[name]).numpy(), io["roi_box"])
    if name == TENNIS:  # the resize path: 116 RoIs of 224 and 84 of 252
        assert sorted(np.unique(io["roi_sizes"][..., 0], return_counts=True)[1].tolist()) == [84, 116]


# --------------------------------------------------------------------------- conversion


def test_detect_and_param_counts(folders, imported, tmp_path):
    assert published.detect(folders[SNB]) and published.detect(folders[TENNIS] / "config.json")
    assert not published.detect(tmp_path)
    from e2espot.models.published import tdeed

    assert not tdeed.detect(folders[SNB])  # the T-DEED importer does not claim AdaSpot folders, nor we its
    (tmp_path / "config.json").write_text(
        json.dumps({"feature_arch": "rny002_gsf", "temporal_arch": "ed_sgp_mixer"})
    )
    assert tdeed.detect(tmp_path) and not published.detect(tmp_path)
    from e2espot.models.published import detect_reference

    assert detect_reference(folders[SNB]) == "adaspot"
    snb, tennis = imported[SNB], imported[TENNIS]
    assert (snb.num_parameters, snb.provenance["checkpoint_parameters"]) == (7_578_547, 10_853_769)
    assert (tennis.num_parameters, tennis.provenance["checkpoint_parameters"]) == (7_575_599, 10_844_925)
    assert snb.run_config.classes[0] == "PASS" and len(snb.run_config.classes) == 10
    assert (snb.run_config.data.fps, snb.run_config.data.height, snb.run_config.data.width) == (
        12.5,
        448,
        796,
    )
    assert tennis.run_config.data.fps is None and tennis.run_config.model.head_kwargs["hr_crop"] == (448, 448)
    assert snb.run_config.postprocess.nms_window == 12
    model = create_spotter(snb.run_config.model)
    model.load_state_dict(snb.state_dict, strict=True)  # inference model: no auxiliary heads
    assert model.num_parameters() == 7_578_547 and len(snb.state_dict) == 957 - 20


def test_keys_map_one_to_one_with_padded_conv_layout():
    keys = [k for k, _, _ in json.loads((ROOT / SNB / "keys.json").read_text())["keys"]]
    ours = [published.map_key(k) for k in keys]
    assert None not in ours and len(set(ours)) == 957
    model = AdaSpot(preset_config("adaspot_small", 10))
    assert sorted(model.state_dict()) == sorted(ours)  # the same names after the renames
    assert "lowres_backbone.model.stem.conv.1.weight" in ours  # Sequential(ReplicationPad2d, Conv2d)
    assert "highres_backbone.model.s4.b1.conv1.temporal.fuse_conv2.1.bias" in ours
    assert model.num_parameters() == 10_853_769


def test_wrong_files_are_refused(folders, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text((ROOT / SNB / "config.json").read_text())
    state = {k: torch.zeros(s) for k, s, _ in json.loads((ROOT / SNB / "keys.json").read_text())["keys"][:5]}
    state["module.extra"] = torch.zeros(1)
    torch.save(state, folder / "checkpoint_best.pt")
    with pytest.raises(CheckpointError, match=r"checkpoint_best.pt: 1 keys are not AdaSpot keys"):
        published.convert(folder)
    del state["module.extra"]
    torch.save(state, folder / "checkpoint_best.pt")
    with pytest.raises(CheckpointError, match=r"does not fit the model config.json describes \(missing"):
        published.convert(folder)
    with pytest.raises(ConfigError, match="10 but 2 class names"):
        published.convert(folders[SNB], classes=["a", "b"])
    (folder / "checkpoint_best.pt").unlink()
    with pytest.raises(CheckpointError, match="not found; an AdaSpot model folder holds checkpoint_best.pt"):
        published.convert(folder)
    config = json.loads((ROOT / SNB / "config.json").read_text())
    config["model"]["aggregation"] = "mean"
    with pytest.raises(ConfigError, match="aggregation 'mean' unsupported"):
        published.model_config(config)


# --------------------------------------------------------------------------- stages


@pytest.mark.parametrize("name", NAMES)
def test_inputs_and_crops_equal_reference(name, full_models):
    """One 0..1 tensor → normalised, then resized (antialiased) and centre-cropped to both resolutions;
    the reference's boxes cut from our high-res image give its RoIs bit for bit (Tennis: resized ones)."""
    io = _io(name)
    model = full_models[name]
    x = torch.from_numpy(io["x_u8"][:, :2]).float() / 255  # two frames: these steps are per frame
    with torch.no_grad():
        x_lr, x_hr = model.inputs(x)
    _close(x_lr[0], io["x_lr_b0t0"], "x_lr_b0t0")
    _close(x_lr.reshape(2, 2, 3, *x_lr.shape[-2:]).mean((3, 4)), io["x_lr_mean"][:, :2], "x_lr_mean")
    _close(x_hr.mean((3, 4)), io["x_hr_mean"][:, :2], "x_hr_mean")
    rois = crop_rois(x_hr, torch.from_numpy(io["roi_box"][:, :2]), (112, 112))
    _close(rois[0], io["rois_b0_t0_1"], "rois_b0_t0_1")
    _close(rois.mean((3, 4)), io["rois_mean"][:, :2], "rois_mean")


@pytest.mark.parametrize("name", NAMES)
def test_fusion_and_heads_equal_reference(name, full_models):
    """The reference's pooled features → projections, max fusion + temp_enc, BiGRU head and both auxiliary heads."""
    io = _io(name)
    with torch.no_grad():
        out = full_models[name].fuse(
            torch.from_numpy(io["lowres_feat"]), torch.from_numpy(io["highres_feat"])
        )
    _close(out["fused"], io["fused_plus_temp_enc"], "fused_plus_temp_enc")
    _close(out["logits"], io["logits"], "logits")
    _close(out["logits_aux_highres"], io["logits_aux_highres"], "logits_aux_highres")
    _close(out["logits_aux_lowres"], io["logits_aux_lowres"], "logits_aux_lowres")
    _close(out["logits"].softmax(-1), io["probs"], "probs")
    assert np.array_equal(out["logits"].argmax(-1).numpy(), io["probs"].argmax(-1))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_full_forward_equals_reference_io(name, full_models):
    """The whole forward on the fixed 2×100×32×56 input: LR maps, RoI boxes (exact), features and logits."""
    io = _io(name)
    model = full_models[name]
    with torch.no_grad():
        out = model.forward_stages(torch.from_numpy(io["x_u8"]).float() / 255)
    _close(out["lowres_maps"][:, 0], io["lowres_maps_t0"], "lowres_maps_t0")
    _close(out["lowres_maps"].mean(2), io["lowres_maps_chmean"], "lowres_maps_chmean")
    np.testing.assert_array_equal(out["roi_box"].numpy(), io["roi_box"])
    np.testing.assert_array_equal(out["roi_centers"].numpy(), io["roi_centers"])
    for key, ref in (
        ("lowres_feat", "lowres_feat"),
        ("highres_feat", "highres_feat"),
        ("fused", "fused_plus_temp_enc"),
        ("logits", "logits"),
        ("logits_aux_highres", "logits_aux_highres"),
        ("logits_aux_lowres", "logits_aux_lowres"),
    ):
        _close(out[key], io[ref], key)
    spotter_out = model(torch.from_numpy(io["x_u8"]).float() / 255)  # eval: the Spotter interface
    assert len(spotter_out.stage_logits) == 1 and spotter_out.displacement is None
    _close(spotter_out.logits.softmax(-1), io["probs"], "probs")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_predict_scores_equal_reference_e2e(name, imported, tmp_path):
    """frames/ (40 JPEGs at 796×448) → our reader and T-DEED-style windows (from -5 rows, overlap 50) →
    the converted model → per-row scores = the reference's test path (e2e.npz)."""
    from e2espot.data.video import open_video
    from e2espot.infer.predict import predict_scores

    imp = imported[name]
    model = create_spotter(imp.run_config.model)
    model.load_state_dict(imp.state_dict, strict=True)
    cfg = imp.run_config
    game = tmp_path / "synthetic_game"
    game.mkdir()
    for path in (ROOT / name / "frames").iterdir():
        (game / path.name).symlink_to(path)
    (game / "fps.txt").write_text("25\n")
    e2e = np.load(ROOT / name / "e2e.npz")
    with open_video(game, fps=cfg.data.fps, height=cfg.data.height, width=cfg.data.width) as reader:
        scores = predict_scores(model.eval(), reader, cfg, precision="fp32")
    assert scores.shape == e2e["scores"].shape
    assert np.allclose(scores, e2e["scores"], atol=ATOL, rtol=RTOL), np.abs(scores - e2e["scores"]).max()


# --------------------------------------------------------------------------- our own model


def test_tiny_adaspot_trains_one_step_and_predicts():
    """A tiny AdaSpot (RegNetY-200MF at 32×56 / 64×112, RoI 32, clip 8): auxiliary stages in training, a
    gradient step runs (gradients reach temp_enc and the auxiliary heads), eval gives (B, T, K+1) logits and
    RoIs inside the image; the clip length is enforced."""
    from e2espot.models.losses import SpottingLoss

    torch.manual_seed(0)
    cfg = preset_config(
        "adaspot_small",
        3,
        clip_len=8,
        hr_dim=(64, 112),
        hr_crop=(64, 112),
        lr_dim=(32, 56),
        lr_crop=(32, 56),
        roi_size=(32, 32),
        threshold=0.0,
    )
    model = create_spotter(cfg)
    assert isinstance(model, AdaSpot)
    x = torch.rand(1, 8, 3, 48, 80)
    labels = torch.zeros(1, 8, dtype=torch.long)
    labels[:, 3] = 2
    model.train()
    out = model(x)
    assert len(out.stage_logits) == 3 and out.logits.shape == (1, 8, 4) and out.features.shape == (1, 8, 368)
    loss_fn = SpottingLoss(3)
    loss = loss_fn(out, labels)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss.backward()
    assert model.temp_enc.grad is not None and model.aux_lowres.fc.weight.grad is not None
    opt.step()
    model.eval()
    with torch.no_grad():
        stages = model.forward_stages(x)
    assert stages["rois"].shape == (1, 8, 3, 32, 32) and stages["roi_box"].shape == (1, 8, 4)
    assert ((stages["roi_box"][..., 0] >= 0) & (stages["roi_box"][..., 0] + 32 <= 64)).all()
    with pytest.raises(ConfigError, match="clip_len=8"):
        model(torch.rand(1, 9, 3, 48, 80))
    with pytest.raises(ConfigError, match="unknown keys"):
        create_spotter(dataclasses.replace(cfg, head_kwargs={"roi": 3}))


@pytest.mark.slow
def test_train_cli_adaspot_small_tiny_then_predict(tmp_path):
    """``e2espot train -m adaspot_small`` at tiny size (64×112 frames, clip 8): a run directory whose
    config rebuilds AdaSpot, and ``load_run`` + ``predict_scores`` give per-frame scores."""
    from e2espot.cli import main
    from e2espot.data.synthetic import generate_dataset
    from e2espot.data.video import open_video
    from e2espot.infer.predict import load_run, predict_scores

    data = tmp_path / "data"
    generate_dataset(data, num_videos=3, seed=3, tiny=True, soccernet=False)
    run = tmp_path / "run"
    code = main(
        [
            "train",
            str(data),
            str(data / "videos"),
            "-s",
            str(run),
            "-m",
            "adaspot_small",
            "--clip_len",
            "8",
            "--height",
            "64",
            "--width",
            "112",
            "--epoch-clips",
            "2",
            "--batch-size",
            "2",
            "--num-epochs",
            "1",
            "-j",
            "0",
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--start-val-epoch",
            "5",
            "--no-mixup",
        ]
    )
    assert code == 0
    model, cfg = load_run(run, device="cpu")
    assert isinstance(model, AdaSpot) and cfg.model.head == "adaspot"
    assert tuple(cfg.model.head_kwargs["lr_dim"]) == (32, 56) and tuple(
        cfg.model.head_kwargs["roi_size"]
    ) == (16, 16)
    video = min((data / "videos").iterdir())
    with open_video(video, height=cfg.data.height, width=cfg.data.width) as reader:
        scores = predict_scores(model, reader, cfg, precision="fp32")
    assert scores.shape[1] == len(cfg.classes) + 1 and np.allclose(scores.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_events_from_reference_scores_equal_reference(name, imported):
    """From the reference's per-row scores (e2e.npz): high-recall events (threshold 0.01, no NMS), and after
    soft-NMS with the dataset's window (12 rows SoccerNet Ball, 2 Tennis) the reference's pred-test.json."""
    from e2espot.infer.postprocess import scores_to_events

    cfg = imported[name].run_config
    classes = list(cfg.classes)
    scores = np.load(ROOT / name / "e2e.npz")["scores"]
    ref = json.loads((ROOT / name / "e2e_events.json").read_text())["high_recall_events"][0]["events"]
    ours = scores_to_events(scores, classes, threshold=0.01, nms="none", window=0)
    assert {(e.frame, e.label, e.score) for e in ours} == {(r["frame"], r["label"], r["score"]) for r in ref}
    window = cfg.postprocess.nms_window
    ref = json.loads((ROOT / name / "e2e_pred_snms.json").read_text())[0]["events"]
    ours = scores_to_events(scores, classes, threshold=0.01, nms="soft", window=window)
    got = sorted((e.frame, e.label) for e in ours)
    assert got == sorted((r["frame"], r["label"]) for r in ref)
    by_key = {(r["frame"], r["label"]): r["score"] for r in ref}
    np.testing.assert_allclose([e.score for e in ours], [by_key[(e.frame, e.label)] for e in ours], rtol=1e-6)
    if name == SNB:  # results_spotting.json positions: int(row / 25 * 1000 * 2) ms
        results = json.loads((ROOT / name / "e2e_results_spotting.json").read_text())["predictions"]
        assert sorted((int(e.frame * 80), e.label) for e in ours) == sorted(
            (p["position"], p["label"]) for p in results
        )


def test_training_config_matches_reference_sizes_and_refuses_bad_ones():
    """``train -m adaspot_small --height 448`` gives the reference's 448×796 / 224×398 / RoI 112 sizes."""
    from e2espot.models.adaspot import center_crop, swap_padding, training_config

    cfg = training_config("adaspot_small", 10, 100, 448, None)
    kw = cfg.head_kwargs
    assert (kw["hr_dim"], kw["lr_dim"], kw["roi_size"], cfg.backbone) == (
        (448, 796),
        (224, 398),
        (112, 112),
        "rny002",
    )
    assert training_config("adaspot_big", 10, 100, 448, 796).backbone == "rny008"
    with pytest.raises(ConfigError, match="at least 64x64"):
        training_config("adaspot_small", 10, 100, 32, None)
    with pytest.raises(
        UnknownNameError, match="unknown AdaSpot preset 'adaspot_huge'; did you mean 'adaspot_big'"
    ):
        training_config("adaspot_huge", 10, 100, 448, None)
    with pytest.raises(ConfigError, match=r"crop \(10, 10\) is larger than the resized image \(8, 8\)"):
        center_crop(torch.zeros(1, 3, 8, 8), (10, 10))
    with pytest.raises(ConfigError, match="padding 'circular' unknown"):
        swap_padding(torch.nn.Conv2d(1, 1, 3, padding=1), "circular")

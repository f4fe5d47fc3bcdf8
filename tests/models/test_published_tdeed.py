"""T-DEED and Team-BAS baseline checkpoints: our model and our predict path equal the reference outputs.

Golden data: ../shared/fixtures/published-models/{tdeed_SoccerNetBall_challenge1,
teamspotting_SoccerNetBall_baseline} (reference runs of arturxe2/T-DEED @ ec1ad55 and SoccerNet/sn-teamspotting
@ 091fed2 with weights from materialize.py, seed 0). Tolerances as the fixtures' README: atol 1e-5, rtol 1e-4;
exact on argmax and rounded displacement.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from e2espot.config import RunConfig
from e2espot.errors import CheckpointError, ConfigError
from e2espot.infer import predict as predict_mod
from e2espot.infer.postprocess import scores_to_events, team_scores_to_events
from e2espot.infer.predict import decode_displacement, predict_scores, split_team, tdeed_window_starts
from e2espot.models import create_spotter
from e2espot.models.published import tdeed

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "published-models"
TDEED = "tdeed_SoccerNetBall_challenge1"
TEAM = "teamspotting_SoccerNetBall_baseline"
ATOL, RTOL = 1e-5, 1e-4

pytestmark = pytest.mark.skipif(
    not (ROOT / TDEED / "io.npz").is_file() or not (ROOT / TEAM / "io.npz").is_file(),
    reason=f"published-model fixtures not found at {ROOT}",
)


def _materialize(keys_json: Path, out: Path) -> None:
    spec = importlib.util.spec_from_file_location("materialize", ROOT / "materialize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    keys = json.loads(keys_json.read_text())["keys"]
    torch.save(module.build(keys, 0), out)


def _model_dir(base: Path, name: str, clip_len: int | None = None) -> Path:
    """A model folder as distributed: the config JSON + checkpoint_best.pt (seed-0 weights)."""
    folder = base / f"{name}_{clip_len or 'published'}"
    folder.mkdir()
    config = json.loads((ROOT / name / "config.json").read_text())
    keys = ROOT / name / "keys.json"
    if clip_len is not None:
        config["clip_len"] = clip_len
        keys = ROOT / name / f"e2e_keys_clip{clip_len}.json"
    (folder / "config.json").write_text(json.dumps(config))
    _materialize(keys, folder / tdeed.CHECKPOINT_NAME)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("tdeed")
    return {name: _model_dir(base, name) for name in (TDEED, TEAM)}


@pytest.fixture(scope="module")
def imported(folders) -> dict[str, tdeed.ImportedModel]:
    return {name: tdeed.convert(folder) for name, folder in folders.items()}


def _build(imp: tdeed.ImportedModel) -> torch.nn.Module:
    model = create_spotter(imp.run_config.model)
    model.load_state_dict(imp.state_dict, strict=True)
    return model.eval()


def _close(ours: torch.Tensor, ref: np.ndarray, what: str) -> None:
    ours = ours.detach().cpu().numpy()
    assert ours.shape == ref.shape, what
    err = np.abs(ours - ref).max()
    assert np.allclose(ours, ref, atol=ATOL, rtol=RTOL), f"{what}: max abs diff {err:.3g}"


# --------------------------------------------------------------------------- conversion


def test_detect_and_param_counts(folders, imported, tmp_path):
    assert tdeed.detect(folders[TDEED]) and tdeed.detect(folders[TEAM])
    assert not tdeed.detect(tmp_path)
    # the fixtures' READMEs: trainable parameters of the reference model
    assert imported[TDEED].num_parameters == 12_316_972
    assert imported[TEAM].num_parameters == 12_317_341
    model = imported[TEAM].run_config.model
    assert (model.backbone, model.temporal_module, model.temporal_stages) == ("rny002", "gsf", (3, 4))
    assert (model.head, model.clip_len, model.num_classes, model.extra_num_classes) == ("edsgp", 100, 12, 17)
    assert model.displacement and model.team_head and not imported[TDEED].run_config.model.team_head
    data = imported[TDEED].run_config.data
    assert (data.fps, data.width, data.height, data.windowing) == (12.5, 796, 448, "tdeed")
    assert imported[TDEED].run_config.classes[0] == "PASS" and len(imported[TDEED].run_config.classes) == 12
    assert imported[TDEED].run_config.dataset["extra_head"]["classes"][0] == "Penalty"
    # the run config survives config.json
    again = RunConfig.from_dict(json.loads(json.dumps(imported[TEAM].run_config.to_dict())))
    assert again == imported[TEAM].run_config


def test_state_dict_keys_map_one_to_one(imported):
    keys = json.loads((ROOT / TEAM / "keys.json").read_text())["keys"]
    ours = imported[TEAM].state_dict
    assert len(ours) == len(keys) == 600
    assert tdeed.map_key("_features.s3.b1.conv1.gs.channel_conv2.weight") == (
        "backbone.model.s3.b1.conv1.temporal.fuse_conv2.weight"
    )
    assert ours["backbone.model.s4.b2.conv1.temporal.conv3d.weight"].shape == (2, 46, 27)
    assert ours["team_head.1.weight"].shape == (1, 368) and ours["extra_head.1.weight"].shape == (18, 368)


def test_errors_name_file_and_fix(folders, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    config = json.loads((folders[TDEED] / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "clip_len": 50}))
    (bad / tdeed.CHECKPOINT_NAME).symlink_to(folders[TDEED] / tdeed.CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match=r"head.temp_enc \(100, 368\) != \(50, 368\).*clip_len"):
        tdeed.convert(bad)
    (bad / "config.json").write_text(json.dumps({**config, "feature_arch": "rn50_gsf"}))
    with pytest.raises(ConfigError, match="feature_arch 'rn50_gsf'"):
        tdeed.convert(bad)
    (bad / "config.json").write_text(json.dumps({**config, "dataset": "mine"}))
    with pytest.raises(ConfigError, match="pass --classes"):
        tdeed.convert(bad)
    imp = tdeed.convert(bad, classes=[f"c{i}" for i in range(12)])
    assert imp.run_config.classes[0] == "c0" and imp.run_config.data.fps is None
    (bad / tdeed.CHECKPOINT_NAME).unlink()
    with pytest.raises(CheckpointError, match="checkpoint_best.pt: not found"):
        tdeed.convert(bad, classes=[f"c{i}" for i in range(12)])


# --------------------------------------------------------------------------- forward


def test_forward_equals_reference_io(imported):
    """One forward of the team model (clip 0 of io.npz) checks every output of both fixtures: the team
    baseline's tensors before its team head are the T-DEED fixture's, bit for bit (fixture README)."""
    for key, value in imported[TDEED].state_dict.items():
        assert torch.equal(value, imported[TEAM].state_dict[key]), key
    io_team, io_tdeed = np.load(ROOT / TEAM / "io.npz"), np.load(ROOT / TDEED / "io.npz")
    x = torch.from_numpy(io_team["x_u8"][:1]).float() / 255  # T-DEED: Normalize(x_u8.float() / 255)
    torch.manual_seed(0)
    with torch.no_grad():
        out = _build(imported[TEAM])(x)
    for io in (io_team, io_tdeed):
        _close(out.features, io["backbone_feat"][:1], "backbone features")
        _close(out.logits, io["logits_head1"][:1], "head 1 logits")
        _close(out.extra_logits, io["logits_head2"][:1], "head 2 logits")
        _close(out.displacement, io["displ"][:1], "displacement")
        assert np.array_equal(out.logits.argmax(-1).numpy(), io["logits_head1"][:1].argmax(-1))
        assert np.array_equal(torch.round(out.displacement).numpy(), np.round(io["displ"][:1]))
    _close(out.team, io_team["team_logit"][:1], "team logit")
    probs = decode_displacement(out.logits.softmax(-1), out.displacement)
    _close(probs, io_tdeed["predict_out"][:1], "T-DEED predict()")
    _close(split_team(probs, out.team), io_team["predict_out"][:1], "Team-BAS predict()")


@pytest.mark.parametrize("name", [TDEED, TEAM])
def test_displacement_and_team_aggregation_unit(name):
    """process_double_head on the wide displacement field (shifts -5..5) and process_predictionTeam."""
    io = np.load(ROOT / name / "io.npz")
    probs = torch.from_numpy(io["logits_head1"]).softmax(-1)
    out = decode_displacement(probs, torch.from_numpy(io["agg_displ_in"]))
    _close(out, io["agg_out"], "max-combine")
    assert (out.sum(-1) == 0).any()  # rows nobody points to stay all zero
    if name == TEAM:
        _close(split_team(out, torch.from_numpy(io["team_logit"])), io["agg_out_team"], "team split")


# --------------------------------------------------------------------------- end to end


def _frames(tmp_path: Path) -> Path:
    """The fixture's frame0..39.jpg (25 fps raw indices) with an fps.txt: read at 12.5 fps = T-DEED's stride 2."""
    folder = tmp_path / "synthetic_game"
    folder.mkdir()
    for path in (ROOT / TDEED / "frames").iterdir():
        (folder / path.name).symlink_to(path)
    (folder / "fps.txt").write_text("25\n")
    return folder


def _e2e_cfg(imp: tdeed.ImportedModel) -> RunConfig:
    data = dataclasses.replace(imp.run_config.data, height=224, width=None)  # the fixture frames are 398x224
    return dataclasses.replace(imp.run_config, data=data)


class _ReplayModel(torch.nn.Module):
    """Records the clips it sees; the patched window output replays the reference's per-window output."""

    team_head = None

    def __init__(self) -> None:
        super().__init__()
        self.clips: list[np.ndarray] = []

    def forward(self, x):
        self.clips.append(x.numpy())
        return x


@pytest.mark.parametrize("name", [TDEED, TEAM])
@pytest.mark.parametrize("clip_len", [16, 100])
def test_windowing_and_aggregation_equal_reference(name, clip_len, imported, tmp_path, monkeypatch):
    """Our T-DEED windowing over the fixture frames: the same window starts, the same pixels (black padding),
    and, fed the reference's own per-window outputs, exactly its per-row scores (non-zero-row support)."""
    e2e = np.load(ROOT / name / "e2e.npz")
    ref_out = e2e[f"clip_out_clip{clip_len}"]
    starts = [int(s) // 2 for s in e2e[f"clip_starts_clip{clip_len}"]]  # raw 25 fps -> rows
    assert tdeed_window_starts(20, clip_len, clip_len // 4 * 3) == starts
    model = _ReplayModel()
    if name == TEAM:
        model.team_head = torch.nn.Identity()
    seen = iter(range(len(starts)))
    monkeypatch.setattr(predict_mod, "tdeed_window_output",
                        lambda out: torch.from_numpy(np.stack([ref_out[next(seen)] for _ in range(len(out))])))
    cfg = _e2e_cfg(imported[name])
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, clip_len=clip_len))
    from e2espot.data.video import open_video

    with open_video(_frames(tmp_path), fps=cfg.data.fps, height=cfg.data.height) as reader:
        assert (reader.num_frames, reader.fps) == (20, 12.5)
        scores = predict_scores(model, reader, cfg, precision="fp32")
    np.testing.assert_array_equal(scores, e2e[f"scores_clip{clip_len}"])
    clips = np.concatenate(model.clips)  # (n, L, 3, H, W) in [0, 1]
    for clip, start in zip(clips, starts):
        for r in range(clip_len):
            pixels = np.round(clip[r] * 255).astype(np.int64).sum()
            row = start + r
            expected = e2e["frames_decoded_sum"][2 * row] if 0 <= row < 20 else 0  # black outside the video
            assert pixels == expected, (start, r)


def test_events_and_results_equal_reference():
    """High-recall events (T-DEED challenge: no NMS) and Team-BAS events before / after its SNMS (window 12,
    grouping left and right of an action) from the reference per-row scores."""
    classes = list(tdeed.SOCCERNETBALL_CLASSES)
    for clip_len in (16, 100):
        scores = np.load(ROOT / TDEED / "e2e.npz")[f"scores_clip{clip_len}"]
        ref = json.loads((ROOT / TDEED / f"e2e_events_clip{clip_len}.json").read_text())[0]["events"]
        ours = scores_to_events(scores, classes, threshold=0.01, nms="none", window=0)
        assert {(e.frame, e.label, e.score) for e in ours} == {(r["frame"], r["label"], r["score"]) for r in ref}
        results = json.loads((ROOT / TDEED / f"e2e_results_spotting_clip{clip_len}.json").read_text())
        assert sorted((int(e.frame * 80), e.label) for e in ours) == sorted(
            (p["position"], p["label"]) for p in results["predictions"])  # int(row / 25 * 1000 * 2) ms

        scores = np.load(ROOT / TEAM / "e2e.npz")[f"scores_clip{clip_len}"]
        ref = json.loads((ROOT / TEAM / f"e2e_events_clip{clip_len}.json").read_text())[0]["events"]
        ours = team_scores_to_events(scores, classes, threshold=0.01, nms="none", window=0)
        assert {(e.frame, e.label, e.team, e.score) for e in ours} == {
            (r["frame"], r["label"], r["team"], r["score"]) for r in ref}
        results = json.loads((ROOT / TEAM / f"e2e_results_spotting_clip{clip_len}.json").read_text())
        ours = team_scores_to_events(scores, classes, threshold=0.01, nms="soft", window=12)
        assert len(ours) < len(ref)
        assert {(int(e.frame * 80), e.label, e.team, e.score) for e in ours} == {
            (p["position"], p["label"], p["team"], p["confidence"]) for p in results["predictions"]}


@pytest.mark.slow
@pytest.mark.parametrize("name", [TDEED, TEAM])
@pytest.mark.parametrize("clip_len", [16, 100])
def test_predict_scores_equal_reference_e2e(name, clip_len, tmp_path):
    """The whole path with the real network: frames → windows → model → T-DEED aggregation = e2e.npz."""
    from e2espot.data.video import open_video

    imp = tdeed.convert(_model_dir(tmp_path, name, None if clip_len == 100 else clip_len))
    cfg = _e2e_cfg(imp)
    with open_video(_frames(tmp_path), fps=cfg.data.fps, height=cfg.data.height) as reader:
        scores = predict_scores(_build(imp), reader, cfg, precision="fp32")
    ref = np.load(ROOT / name / "e2e.npz")[f"scores_clip{clip_len}"]
    assert np.allclose(scores, ref, atol=ATOL, rtol=RTOL), np.abs(scores - ref).max()
    assert np.array_equal(scores.sum(1) == 0, ref.sum(1) == 0)
    if name == TEAM:  # the written results_spotting.json: after SNMS, with teams
        results = json.loads((ROOT / TEAM / f"e2e_results_spotting_clip{clip_len}.json").read_text())
        ours = team_scores_to_events(scores, list(cfg.classes), threshold=0.01, nms="soft", window=12)
        got = sorted((int(e.frame * 80), e.label, e.team, e.score) for e in ours)
        want = sorted((p["position"], p["label"], p["team"], p["confidence"]) for p in results["predictions"])
        assert [g[:3] for g in got] == [w[:3] for w in want]
        np.testing.assert_allclose([g[3] for g in got], [w[3] for w in want], atol=ATOL, rtol=RTOL)


def test_pes_configs_crop_and_no_displacement():
    """T-DEED's Tennis / FineGym configs (config/*/…_small.json @ ec1ad55): crop_dim 224, stride 1, and
    radi_displacement 0 (no displacement head)."""
    tennis = {"dataset": "tennis", "clip_len": 100, "crop_dim": 224, "radi_displacement": 1, "num_classes": 6,
              "feature_arch": "rny002_gsf", "temporal_arch": "ed_sgp_mixer", "n_layers": 3, "sgp_ks": 11,
              "sgp_r": 4, "modality": "rgb"}
    cfg = tdeed.run_config(tennis, [f"c{i}" for i in range(6)])
    assert (cfg.data.crop, cfg.data.fps, cfg.data.height, cfg.data.width) == (224, None, 224, 398)
    assert cfg.model.head_kwargs == {"num_layers": 3, "kernel_size": 11, "r": 4} and cfg.model.displacement
    assert cfg.postprocess.to_dict() == {"nms": "soft", "nms_window": 3}
    finegym = {**tennis, "dataset": "finegym", "radi_displacement": 0, "sgp_ks": 9}
    assert not tdeed.model_config(finegym).displacement
    with pytest.raises(ConfigError, match="temporal_arch 'gru' unsupported"):
        tdeed.model_config({**tennis, "temporal_arch": "gru"})

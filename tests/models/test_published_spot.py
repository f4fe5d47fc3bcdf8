"""Published E2E-Spot and OpenSportsLib models load strictly and compute what the reference code computes.

Golden data: ../shared/fixtures/published-models (README there): for each model the key list, a seeded
checkpoint rebuilt by its ``materialize.py`` (seed 0), the reference forward on a fixed input (io.npz)
and, for the tennis RGB model, the reference's own test-time scores over 40 JPEG frames (e2e.npz).
Tolerances as the fixture README suggests: atol 1e-5, rtol 1e-4, argmax exact.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "published-models"  # as conftest
SPOT = {  # fixture folder -> published checkpoint name (keys.json checkpoint_file)
    "spot_tennis_rny002gsm_gru_rgb": "checkpoint_040.pt",
    "spot_soccer_rny008gsm_gru_rgb": "checkpoint_140.pt",
    "spot_tennis_rny002gsm_gru_flow": "checkpoint_046.pt",
}
PARAMS = {  # from the fixture READMEs
    "spot_tennis_rny002gsm_gru_rgb": 4_450_261,
    "spot_soccer_rny008gsm_gru_rgb": 12_636_574,
    "spot_tennis_rny002gsm_gru_flow": 4_449_973,
    "opensportslib_localization_e2e_rny008gsm_gru": 12_628_889,
}
OSL = "opensportslib_localization_e2e_rny008gsm_gru"


@pytest.fixture(scope="module")
def fixtures() -> Path:
    if not ROOT.is_dir():
        pytest.skip(f"published-model fixtures not found at {ROOT}")
    return ROOT


@pytest.fixture(scope="module")
def materialize(fixtures):
    """The fixtures' own ``materialize.build(keys, seed)`` (imported from the fixture folder)."""
    spec = importlib.util.spec_from_file_location("published_materialize", fixtures / "materialize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def build(name: str) -> dict[str, torch.Tensor]:
        keys = json.loads((fixtures / name / "keys.json").read_text())["keys"]
        return module.build(keys, 0)

    return build


@pytest.fixture(scope="module")
def spot_folders(fixtures, materialize, tmp_path_factory) -> dict[str, Path]:
    """Each E2E-Spot model as e2e-spot-models distributes it: config.json + checkpoint_NNN.pt."""
    root = tmp_path_factory.mktemp("spot_models")
    out = {}
    for name, ckpt in SPOT.items():
        folder = root / name
        folder.mkdir()
        shutil.copy(fixtures / name / "config.json", folder / "config.json")
        torch.save(materialize(name), folder / ckpt)
        out[name] = folder
    return out


@pytest.fixture(scope="module")
def osl_folder(fixtures, materialize, tmp_path_factory) -> Path:
    """An OpenSportsLib work_dir: best_checkpoint.pt (the trainer's wrapper dict) + config.yaml."""
    folder = tmp_path_factory.mktemp("osl") / "checkpoints"
    folder.mkdir()
    shutil.copy(fixtures / OSL / "config.yaml", folder / "config.yaml")
    torch.save({"epoch": 9, "model_state_dict": materialize(OSL), "optimizer_state_dict": {"state": {}},
                "best_epoch": 9, "best_criterion_valid": 0.25}, folder / "best_checkpoint.pt")
    return folder


def _forward(imported, x_u8: np.ndarray) -> torch.Tensor:
    from e2espot.models.published import build_model

    model = build_model(imported)
    x = torch.from_numpy(x_u8).float() / 255  # x01 as the reference's reader gives it
    with torch.inference_mode():
        return model(x).logits


# ---- forward pass equals io.npz -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SPOT))
def test_spot_forward_equals_reference(name, fixtures, spot_folders):
    from e2espot.models.published import detect_reference, import_reference

    folder = spot_folders[name]
    assert detect_reference(folder) == "spot"
    imported = import_reference(folder)
    assert imported.num_parameters == PARAMS[name]
    assert imported.provenance["checkpoint"] == SPOT[name]
    assert imported.provenance["reference"].startswith("jhong93/spot@edec420")
    io = np.load(fixtures / name / "io.npz")
    logits = _forward(imported, io["x_u8"])  # T = 16 < clip_len 100: padded inside the model
    np.testing.assert_allclose(logits.numpy(), io["logits"], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(logits.softmax(-1).numpy(), io["probs"], atol=1e-5, rtol=1e-4)
    assert (logits.argmax(-1).numpy() == io["argmax"]).all()


def test_osl_forward_equals_reference(fixtures, osl_folder):
    from e2espot.models.published import detect_reference, import_reference

    assert detect_reference(osl_folder) == "osl"
    assert detect_reference(osl_folder / "best_checkpoint.pt") == "osl"
    imported = import_reference(osl_folder)
    assert imported.num_parameters == PARAMS[OSL]
    assert imported.run_config.classes[0] == "PASS" and len(imported.run_config.classes) == 12
    assert imported.run_config.data.fps == pytest.approx(25 / 12)  # every int(25/2)-th frame
    assert (imported.run_config.data.width, imported.run_config.data.height) == (398, 224)
    io = np.load(fixtures / OSL / "io.npz")
    logits = _forward(imported, io["x_u8"])
    np.testing.assert_allclose(logits.numpy(), io["logits"], atol=1e-5, rtol=1e-4)
    assert (logits.softmax(-1).argmax(-1).numpy() == io["argmax"]).all()


def test_osl_key_map_matches_the_fixture_map(fixtures):
    """Our OSL -> spot renaming is the fixture's key_map_osl_to_spot.json, pair for pair."""
    from e2espot.models.published._common import rename
    from e2espot.models.published.osl import PREFIX_RULES

    pairs = json.loads((fixtures / OSL / "key_map_osl_to_spot.json").read_text())
    assert len(pairs) == 446
    assert all(rename(osl, PREFIX_RULES) == spot for osl, spot in pairs)


def test_osl_wrong_file_is_refused(spot_folders, tmp_path):
    """The reference loads with strict=False and accepts a mismatched file silently; we refuse it."""
    from e2espot.errors import CheckpointError
    from e2espot.models.published import import_reference

    state = torch.load(spot_folders["spot_tennis_rny002gsm_gru_rgb"] / "checkpoint_040.pt")
    state = {("backbone." if k.startswith("_features") else "head.") + k: v for k, v in state.items()}
    del state["head._pred_fine._gru.bias_hh_l0"]
    torch.save({"model_state_dict": state}, tmp_path / "best_checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"1 missing \(ours: head\.rnn\.bias_hh_l0\)"):
        import_reference(tmp_path / "best_checkpoint.pt", kind="osl", classes=list("abcdef"))
    torch.save({"optimizer_state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an OpenSportsLib checkpoint"):
        import_reference(tmp_path / "other.pt", kind="osl")


def test_spot_checkpoint_of_another_model_is_refused(fixtures, spot_folders, tmp_path):
    from e2espot.errors import CheckpointError
    from e2espot.models.published import import_reference

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(fixtures / "spot_soccer_rny008gsm_gru_rgb" / "config.json", folder / "config.json")
    shutil.copy(spot_folders["spot_tennis_rny002gsm_gru_rgb"] / "checkpoint_040.pt", folder / "checkpoint_001.pt")
    with pytest.raises(CheckpointError, match=r"do not fit rny008\+gsm\+gru with K=17 .*another shape"):
        import_reference(folder)


# ---- the reference's own test-time path equals ours ---------------------------------------------------


@pytest.mark.parametrize("clip_len", [100, 16])
def test_predict_over_jpeg_frames_equals_reference_scores(clip_len, fixtures, spot_folders):
    """e2e.npz: test_e2e.py over 40 frames (windows from -5, overlap clip_len // 2, mean of softmax)."""
    from e2espot.data.video import open_video
    from e2espot.infer.predict import predict_scores
    from e2espot.models.published import build_model, import_reference

    name = "spot_tennis_rny002gsm_gru_rgb"
    imported = import_reference(spot_folders[name])
    cfg = imported.run_config
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, clip_len=clip_len),
                              data=dataclasses.replace(cfg.data, clip_len=clip_len))
    model = build_model(dataclasses.replace(imported, run_config=cfg))
    e2e = np.load(fixtures / name / "e2e.npz")
    stats = {}
    with open_video(fixtures / name / "frames", fps=cfg.data.fps, height=cfg.data.height,
                    width=cfg.data.width) as reader:
        scores = predict_scores(model, reader, cfg, device="cpu", precision="fp32", stats=stats)
    assert stats["num_windows"] == len(e2e[f"clip_starts_clip{clip_len}"])
    reference = e2e[f"scores_clip{clip_len}"]
    np.testing.assert_allclose(scores, reference, atol=1e-5, rtol=1e-4)
    assert (scores.argmax(1) == reference.argmax(1)).all()


# ---- choosing files, classes, refusing what is not proven -----------------------------------------------


def _fake_spot_folder(path: Path, config: dict, epochs=(3, 12, 7)) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    for e in epochs:
        (path / f"checkpoint_{e:03d}.pt").write_bytes(b"")
    return path


TENNIS_CFG = {"feature_arch": "rny002_gsm", "temporal_arch": "gru", "num_classes": 6, "clip_len": 100,
              "crop_dim": 224, "dataset": "tennis", "modality": "rgb"}


def test_checkpoint_choice_follows_test_e2e(tmp_path):
    from e2espot.errors import CheckpointError
    from e2espot.models.published.spot import choose_checkpoint

    folder = _fake_spot_folder(tmp_path / "m", TENNIS_CFG)
    assert choose_checkpoint(folder, None)[0].name == "checkpoint_012.pt"  # highest NNN
    assert choose_checkpoint(folder, "3")[0].name == "checkpoint_003.pt"
    assert choose_checkpoint(folder, "checkpoint_007.pt")[1] == 7
    (folder / "loss.json").write_text(json.dumps([{"epoch": 3, "val_mAP": 0.4}, {"epoch": 7, "val_mAP": 0.6},
                                                  {"epoch": 12, "val_mAP": 0.5}]))
    file, epoch, how = choose_checkpoint(folder, None)
    assert (file.name, epoch, how) == ("checkpoint_007.pt", 7, "best val_mAP epoch in loss.json")
    with pytest.raises(CheckpointError, match="no checkpoint for epoch 5; available: checkpoint_003.pt"):
        choose_checkpoint(folder, "5")


def test_unsupported_or_inconsistent_configs_are_refused(tmp_path):
    from e2espot.errors import CheckpointError
    from e2espot.models.published import import_reference

    tsm = _fake_spot_folder(tmp_path / "tsm", {**TENNIS_CFG, "feature_arch": "rn50_tsm"})
    with pytest.raises(CheckpointError, match="feature_arch 'rn50_tsm' is not supported"):
        import_reference(tsm)
    mstcn = _fake_spot_folder(tmp_path / "mstcn", {**TENNIS_CFG, "temporal_arch": "mstcn"})
    with pytest.raises(CheckpointError, match="temporal_arch 'mstcn' is not supported"):
        import_reference(mstcn)
    odd = _fake_spot_folder(tmp_path / "odd", {**TENNIS_CFG, "dataset": "my_sport"})
    with pytest.raises(CheckpointError, match="no class names: no class.txt .* pass --classes"):
        import_reference(odd)
    with pytest.raises(CheckpointError, match="2 class names from --classes but config.json says num_classes 6"):
        import_reference(odd, classes=["a", "b"])


def test_detection_does_not_claim_our_runs_or_other_folders(tmp_path):
    from e2espot.config import DataConfig, ModelConfig, RunConfig
    from e2espot.models.published import detect_reference

    ours = tmp_path / "run"
    ours.mkdir()
    RunConfig(ModelConfig(num_classes=2), DataConfig(), ("a", "b")).save(ours / "config.json")
    assert detect_reference(ours) is None
    assert detect_reference(tmp_path / "absent") is None
    (tmp_path / "empty").mkdir()
    assert detect_reference(tmp_path / "empty") is None


def test_dataset_table_gives_fps_and_size(tmp_path):
    from e2espot.models.published.datasets import DATASETS

    assert (DATASETS["soccernetv2"].fps, DATASETS["soccernetv2"].width, DATASETS["soccernetv2"].height) == (2.0, 398, 224)
    assert DATASETS["tennis"].fps is None and DATASETS["tennis"].height == 224
    assert len(DATASETS["finegym"].classes) == 32 and len(DATASETS["soccernetv2"].classes) == 17


def test_flow_model_refuses_a_raw_video(tmp_path):
    from e2espot.config import DataConfig, ModelConfig, RunConfig
    from e2espot.errors import ConfigError
    from e2espot.infer.predict import predict_file

    cfg = RunConfig(ModelConfig(num_classes=6, modality="flow"), DataConfig(windowing="spot"), tuple("abcdef"))
    video = tmp_path / "match.mp4"
    video.write_bytes(b"")
    with pytest.raises(ConfigError, match="reads optical flow, not RGB video.*needs an optical-flow model"):
        predict_file(video, (None, cfg), tmp_path / "out")


# ---- Hugging Face Hub references (a cache layout built here; nothing downloads) -------------------------


def _hub_cache(root: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """The huggingface_hub cache layout: models--OWNER--REPO/{refs/main, snapshots/<commit>/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for rel, src in files.items():
        dst = repo / "snapshots" / commit / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    return root


def test_hf_reference_from_the_cache_offline(spot_folders, tmp_path, monkeypatch):
    from e2espot.infer.predict import load_run
    from e2espot.models.published.hub import parse_hf_ref

    folder = spot_folders["spot_tennis_rny002gsm_gru_rgb"]
    cache = _hub_cache(tmp_path / "hub", "jhong93/e2e-spot-models", {
        "tennis_rny002gsm_gru_rgb/config.json": folder / "config.json",
        "tennis_rny002gsm_gru_rgb/checkpoint_040.pt": folder / "checkpoint_040.pt",
    })
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert parse_hf_ref("hf://a/b/c/d@v1") == ("a/b", "c/d", "v1")
    assert parse_hf_ref(Path("hf://a/b")) == ("a/b", None, None)  # argparse type=Path collapses //
    assert parse_hf_ref("runs/x") is None
    from e2espot.commands.serve import parse_models

    served = parse_models(["hf://jhong93/e2e-spot-models/tennis_rny002gsm_gru_rgb"])
    assert list(served) == ["tennis_rny002gsm_gru_rgb"]
    assert (served["tennis_rny002gsm_gru_rgb"] / "checkpoint_040.pt").is_file()
    model, cfg = load_run("hf://jhong93/e2e-spot-models/tennis_rny002gsm_gru_rgb", device="cpu")
    assert cfg.classes[0] == "far_court_bounce" and cfg.data.windowing == "spot"
    assert model.num_parameters() == PARAMS["spot_tennis_rny002gsm_gru_rgb"]


def test_hf_reference_offline_and_not_cached_is_one_clear_error(tmp_path, monkeypatch):
    from e2espot.errors import CheckpointError
    from e2espot.infer.predict import load_run

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError) as info:
        load_run("hf://someone/missing-model@main", device="cpu")
    message = str(info.value)
    assert str(tmp_path / "empty-cache") in message and "HF_HUB_OFFLINE=1" in message


@pytest.mark.slow  # ~35 s of CPU: 5 windows twice; the flow forward itself is pinned by io.npz above
def test_flow_predict_reads_dy_dx_of_spot_flow_frames(fixtures, spot_folders):
    """Flow over a spot frame folder: the model gets channels (G, B) = (dy, dx) of each JPEG, windows as
    test_e2e.py (from -5, overlap clip_len // 2), frames outside the video = 0 after normalisation.
    Checked against windows built by hand from the decoded frames (the fixture's 40 JPEGs stand in
    for flow frames)."""
    from e2espot.data.video import open_video
    from e2espot.infer.predict import predict_scores
    from e2espot.models.published import build_model, import_reference

    imported = import_reference(spot_folders["spot_tennis_rny002gsm_gru_flow"])
    cfg = imported.run_config
    assert cfg.model.modality == "flow"
    clip_len, height = 16, 64  # small, to keep the test cheap
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, clip_len=clip_len),
                              data=dataclasses.replace(cfg.data, clip_len=clip_len, height=height, crop=None))
    model = build_model(dataclasses.replace(imported, run_config=cfg))
    frames_dir = fixtures / "spot_tennis_rny002gsm_gru_rgb" / "frames"
    with open_video(frames_dir, height=height) as reader:
        frames = reader.read_clip(0, reader.num_frames)  # (40, 64, 114, 3) uint8
        scores = predict_scores(model, reader, cfg, device="cpu", precision="fp32")
    num_frames = len(frames)
    flow = torch.from_numpy(frames[..., 1:3]).permute(0, 3, 1, 2).float() / 255  # (N, 2, H, W): dy, dx
    sums, support = np.zeros((num_frames, 7)), np.zeros(num_frames)
    for start in range(-5, num_frames - clip_len // 2, clip_len // 2):
        clip = torch.full((clip_len, *flow.shape[1:]), 0.5)  # 0.5 = the flow mean: 0 after normalisation
        lo, hi = max(0, start), min(num_frames, start + clip_len)
        clip[lo - start:hi - start] = flow[lo:hi]
        with torch.inference_mode():
            probs = model(clip[None]).logits.softmax(-1)[0].numpy()
        sums[lo:hi] += probs[lo - start:hi - start]
        support[lo:hi] += 1
    np.testing.assert_allclose(scores, sums / support[:, None], atol=1e-5, rtol=1e-4)


class _Recorder(torch.nn.Module):
    """Stands in for a spotter: records each batch of clips, returns uniform logits."""

    def __init__(self, num_outputs: int) -> None:
        super().__init__()
        self.num_outputs, self.clips = num_outputs, []

    def forward(self, x):
        from e2espot.models.spotter import SpotterOutput

        self.clips.extend(x.clone())
        logits = torch.zeros(*x.shape[:2], self.num_outputs)
        return SpotterOutput(logits, [logits], None, logits)


class _FrameNumbers:
    """A reader whose frame i is filled with the value i (uint8)."""

    def __init__(self, num_frames: int) -> None:
        self.num_frames, self.path = num_frames, "numbers"

    def iter_chunks(self, chunk_len, start=0, stop=None):
        for s in range(0, self.num_frames, chunk_len):
            n = min(chunk_len, self.num_frames - s)
            yield s, np.broadcast_to(np.arange(s, s + n, dtype=np.uint8)[:, None, None, None], (n, 4, 6, 3)).copy()


@pytest.mark.parametrize("num_frames", [3, 8, 40, 61])
def test_spot_windowing_places_and_pads_windows_as_test_e2e(num_frames):
    """ActionSpotVideoDataset: starts range(-5, max(0, N - overlap), clip_len - overlap); frames outside
    the video are the modality mean in [0, 1], i.e. exactly 0 after the model's normalisation."""
    from e2espot.config import DataConfig, ModelConfig, RunConfig
    from e2espot.infer.predict import predict_scores
    from e2espot.models.spotter import IMAGENET_MEAN

    clip_len, overlap = 16, 8
    cfg = RunConfig(ModelConfig(num_classes=2, clip_len=clip_len),
                    DataConfig(clip_len=clip_len, windowing="spot"), ("a", "b"))
    model = _Recorder(3)
    scores = predict_scores(model, _FrameNumbers(num_frames), cfg, overlap=overlap, batch_size=3,
                            precision="fp32")
    starts = list(range(-5, max(0, num_frames - overlap), clip_len - overlap))
    assert len(model.clips) == len(starts)
    mean = torch.tensor(IMAGENET_MEAN)
    for start, clip in zip(starts, model.clips):  # clip (T, 3, H, W)
        for t in range(clip_len):
            frame_idx = start + t
            expected = (torch.full((3,), frame_idx / 255.0) if 0 <= frame_idx < num_frames else mean)
            assert torch.equal(clip[t, :, 0, 0], expected.float()), (start, t)
    np.testing.assert_allclose(scores, 1 / 3, atol=1e-6)
    assert scores.shape == (num_frames, 3)

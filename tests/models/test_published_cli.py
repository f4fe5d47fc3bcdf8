"""``e2espot import-model`` on a published E2E-Spot folder, then predict and render a synthetic mp4 with it."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "published-models"  # as conftest
TENNIS = "spot_tennis_rny002gsm_gru_rgb"


@pytest.fixture(scope="module")
def tennis_folder(tmp_path_factory) -> Path:
    """jhong93/e2e-spot-models tennis_rny002gsm_gru_rgb/ with the fixture's seeded weights."""
    if not ROOT.is_dir():
        pytest.skip(f"published-model fixtures not found at {ROOT}")
    spec = importlib.util.spec_from_file_location("published_materialize", ROOT / "materialize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("zoo") / "tennis_rny002gsm_gru_rgb"
    folder.mkdir()
    shutil.copy(ROOT / TENNIS / "config.json", folder / "config.json")
    keys = json.loads((ROOT / TENNIS / "keys.json").read_text())["keys"]
    torch.save(module.build(keys, 0), folder / "checkpoint_040.pt")
    return folder


def synthetic_match(path: Path, num_frames: int = 30) -> Path:
    """A 25 fps mp4 (128x228) with a ball crossing a green court."""
    from e2espot.data.video.writer import write_video

    frames = np.zeros((num_frames, 128, 228, 3), np.uint8)
    frames[..., 1] = 120
    yy, xx = np.mgrid[:128, :228]
    for i in range(num_frames):
        ball = (yy - 64) ** 2 + (xx - 10 - 7 * i) ** 2 < 36
        frames[i][ball] = (255, 230, 0)
    return write_video(path, frames, fps=25)


def test_import_model_prints_the_reference_parameter_count(tennis_folder, tmp_path, capsys):
    from e2espot.cli import main
    from e2espot.infer.predict import load_run

    run = tmp_path / "tennis_run"
    assert main(["import-model", str(tennis_folder), "-o", str(run)]) == 0
    out = capsys.readouterr().out
    assert "parameters: 4,450,261" in out  # fixture README
    assert "checkpoint_040.pt (highest-numbered checkpoint (no loss.json))" in out
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "config.json", "provenance.json"]
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["kind"] == "spot" and provenance["reference"].startswith("jhong93/spot@edec420")
    model, cfg = load_run(run)  # our own run directory now
    state = torch.load(tennis_folder / "checkpoint_040.pt")
    assert torch.equal(model.state_dict()["head.fc.weight"], state["_pred_fine._fc_out._fc_out.weight"])
    assert (cfg.data.crop, cfg.data.height, cfg.data.windowing) == (224, 224, "spot")
    assert main(["import-model", str(tennis_folder), "-o", str(run)]) == 2  # refuses to overwrite
    assert "already holds a run" in capsys.readouterr().err


@pytest.fixture(scope="module")
def small_run(tennis_folder, tmp_path_factory) -> Path:
    """The tennis model imported with small frames (64 px high, no crop) to keep CPU tests cheap."""
    from e2espot.cli import main

    run = tmp_path_factory.mktemp("imported") / "run"
    assert main(["import-model", str(tennis_folder), "-o", str(run), "--height", "64", "--crop", "0"]) == 0
    return run


def test_imported_tennis_model_spots_a_synthetic_mp4(small_run, tmp_path, capsys):
    from e2espot.cli import main
    from e2espot.data.video import probe_video

    video = synthetic_match(tmp_path / "match.mp4")
    assert json.loads((small_run / "provenance.json").read_text())["overrides"] == {"height": 64, "crop": None}
    out = tmp_path / "pred"
    assert main(["predict", str(video), "--model", str(small_run), "-o", str(out), "--threshold", "0.2",
                 "--device", "cpu", "--precision", "fp32"]) == 0
    assert "match.mp4:" in capsys.readouterr().out
    pred = json.loads((out / "match.json").read_text())[0]
    assert pred["num_frames"] == 30 and pred["fps"] == pytest.approx(25.0)
    classes = {"far_court_bounce", "far_court_swing", "far_court_serve", "near_court_bounce",
               "near_court_swing", "near_court_serve"}
    assert pred["events"], "the seeded model spots no event above 0.2"
    assert all(e["label"] in classes and 0 <= e["frame"] < 30 and e["score"] >= 0.2 for e in pred["events"])
    scores = np.load(out / "match.npz")["scores"]
    assert scores.shape == (30, 7)
    np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)  # mean of softmax over windows

    rendered = tmp_path / "annotated.mp4"
    assert main(["render", str(video), "--events", str(out / "match.json"), "-o", str(rendered)]) == 0
    assert probe_video(rendered).num_frames == 30


def test_imported_tennis_model_in_the_web_app(small_run, tmp_path):
    """Upload a synthetic match to the web app serving the imported model; the real predictor runs."""
    import time

    from fastapi.testclient import TestClient

    from e2espot.web.app import create_app, default_predictor

    video = synthetic_match(tmp_path / "match.mp4")
    app = create_app({"tennis": small_run}, tmp_path / "data",
                     predictor=default_predictor(device="cpu", highlights=False))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:  # a loopback Host, as the browser
        client.headers["X-CSRF-Token"] = app.state.csrf_token  # the upload page sends the page's token
        r = client.post("/api/jobs", files={"file": ("match.mp4", video.read_bytes(), "video/mp4")})
        assert r.status_code == 201, r.text
        job_id, deadline = r.json()["id"], time.time() + 300
        while (job := client.get(f"/api/jobs/{job_id}").json())["status"] not in ("done", "failed"):
            assert time.time() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "done", job
        events = client.get(job["urls"]["api_events"]).json()
        assert events["num_frames"] == 30 and events["fps"] == 25.0
        assert "annotated" in job["files"]


@pytest.mark.parametrize("fixture,params", [("tdeed_SoccerNetBall_challenge1", "12,316,972"),
                                            ("teamspotting_SoccerNetBall_baseline", "12,317,341")])
def test_import_model_detects_tdeed_and_team_bas_folders(fixture, params, tmp_path, capsys):
    """T-DEED / Team-BAS folders (config JSON + checkpoint_best.pt) are detected among the reference kinds
    and import with the fixture README's parameter count."""
    from e2espot.cli import main
    from e2espot.models.published import detect_reference

    if not ROOT.is_dir():
        pytest.skip(f"published-model fixtures not found at {ROOT}")
    spec = importlib.util.spec_from_file_location("published_materialize", ROOT / "materialize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path / fixture
    folder.mkdir()
    shutil.copy(ROOT / fixture / "config.json", folder / "config.json")
    torch.save(module.build(json.loads((ROOT / fixture / "keys.json").read_text())["keys"], 0),
               folder / "checkpoint_best.pt")
    assert detect_reference(folder) == "tdeed"
    assert main(["import-model", str(folder), "-o", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert f"parameters: {params}" in out
    assert "12.5 fps, 796x448" in out
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert provenance["kind"] == "tdeed"

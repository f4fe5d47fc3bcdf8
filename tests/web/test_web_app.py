"""Web app through FastAPI's TestClient, with a fast fake predictor (no trained model needed)."""

import json
import threading
import time

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from e2espot.data.labels import Event, VideoLabels
from e2espot.data.video.writer import write_video
from e2espot.export.render import probe_video
from e2espot.export.writers import write_prediction_json
from e2espot.web.app import create_app
from e2espot.web.jobs import JobStore

FAKE_EVENTS = [(10, "goal", 0.9), (25, "shot", 0.4), (40, "goal", 0.7)]


def fake_predictor(video_path, model_dir, out_dir, progress):
    """Events at fixed frames, with the stage callbacks a real predictor makes."""
    info = probe_video(video_path)
    for stage in ("decode", "predict", "render"):
        progress(stage, 0.5)
    labels = VideoLabels(video_path.stem, info.fps, info.num_frames,
                         [Event(f, lab, s) for f, lab, s in FAKE_EVENTS if f < info.num_frames])
    (out_dir / "model.txt").write_text(str(model_dir))
    return {"events": write_prediction_json(labels, out_dir / f"{video_path.stem}.json")}


def failing_predictor(video_path, model_dir, out_dir, progress):
    raise RuntimeError("model exploded on purpose")


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory):
    frames = np.zeros((50, 48, 64, 3), np.uint8)
    frames[:, :, :, 1] = np.arange(50)[:, None, None] * 4
    return write_video(tmp_path_factory.mktemp("vid") / "clip.mp4", frames, 25.0).read_bytes()


@pytest.fixture()
def models(tmp_path):
    a, b = tmp_path / "run_a", tmp_path / "run_b"
    a.mkdir()
    b.mkdir()
    return {"alpha": a, "beta": b}


def web_client(app, **kwargs) -> TestClient:
    """A client on a loopback Host that sends the page's CSRF token, as the upload page does."""
    client = TestClient(app, base_url="http://127.0.0.1:8000", **kwargs)
    client.headers["X-CSRF-Token"] = app.state.csrf_token
    return client


def upload(client, data: bytes, name="clip.mp4", model=None):
    form = {"model": model} if model else {}
    return client.post("/api/jobs", files={"file": (name, data, "video/mp4")}, data=form)


def wait_done(client, job_id, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_upload_predict_and_read_results(tmp_path, models, video_bytes):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor)
    with web_client(app) as client:
        r = upload(client, video_bytes, model="beta")
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["status"] == "queued" and job["model"] == "beta" and job["video_name"] == "clip.mp4"
        job = wait_done(client, job["id"])
        assert job["status"] == "done" and job["num_events"] == 3 and job["progress"] == 1.0
        assert set(job["files"]) == {"events", "csv"}
        # the right model directory reached the predictor
        assert (tmp_path / "data" / "jobs" / job["id"] / "out" / "model.txt").read_text() == str(models["beta"])
        ev = client.get(job["urls"]["api_events"]).json()
        assert ev["fps"] == 25.0 and ev["num_frames"] == 50 and ev["duration_s"] == 2.0
        assert ev["classes"] == ["goal", "shot"] and ev["colors"]["goal"].startswith("#")
        assert [(e["frame"], e["label"], e["time_s"]) for e in ev["events"]] == [
            (10, "goal", 0.4), (25, "shot", 1.0), (40, "goal", 1.6)]
        csv = client.get(job["urls"]["files"]["csv"])
        assert csv.status_code == 200 and csv.text.splitlines()[1] == "clip,10,0.400000,goal,0.9"
        # the uploaded video, with range support for seeking
        v = client.get(job["urls"]["video"], headers={"Range": "bytes=0-99"})
        assert v.status_code == 206 and len(v.content) == 100 and v.headers["content-type"] == "video/mp4"
        assert client.get(job["urls"]["video"]).content == video_bytes
        listing = client.get("/api/jobs").json()
        assert [j["id"] for j in listing["jobs"]] == [job["id"]] and listing["models"] == ["alpha", "beta"]
        page = client.get("/")
        assert page.status_code == 200 and "clip.mp4" in page.text and "<select" in page.text
        jp = client.get(f"/jobs/{job['id']}")
        assert jp.status_code == 200 and job["id"] in jp.text and 'id="timeline"' in jp.text
        assert client.get("/static/app.js").status_code == 200


def test_bad_uploads(tmp_path, models, video_bytes):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor, max_upload_bytes=len(video_bytes) + 10)
    with web_client(app) as client:
        r = upload(client, b"hello, I am text, not a video\n" * 20, name="fake.mp4")
        assert r.status_code == 400 and "not a video" in r.json()["detail"]
        r = upload(client, video_bytes, name="clip.txt")
        assert r.status_code == 400 and "unsupported file type" in r.json()["detail"]
        r = upload(client, video_bytes, model="gamma")
        assert r.status_code == 400 and "unknown model 'gamma'" in r.json()["detail"]
        r = upload(client, video_bytes + b"\0" * 4096)  # over the cap by streaming
        assert r.status_code == 413
        r = client.post("/api/jobs", content=b"x" * 10, headers={"content-type": "text/plain"})
        assert r.status_code == 400
        # nothing left behind: no jobs, no partial uploads
        assert client.get("/api/jobs").json()["jobs"] == []
        assert list((tmp_path / "data" / "uploads").iterdir()) == []
        assert list((tmp_path / "data" / "jobs").iterdir()) == []


def test_oversize_by_content_length(tmp_path, models):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor, max_upload_bytes=1000)
    with web_client(app) as client:
        r = upload(client, b"\0" * (3 * 1024 * 1024))
        assert r.status_code == 413 and "too large" in r.json()["detail"]


def test_traversal_and_bad_ids(tmp_path, models, video_bytes):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor)
    (tmp_path / "data" / "secret.txt").write_text("secret")
    with web_client(app) as client:
        job = wait_done(client, upload(client, video_bytes).json()["id"])
        jid = job["id"]
        for url in (
            f"/api/jobs/{jid}/files/..%2F..%2F..%2Fsecret.txt",
            f"/api/jobs/{jid}/files/..%2F..%2Fjobs.db",
            f"/api/jobs/{jid}/files/%2E%2E%2Fvideo.mp4",
            f"/api/jobs/{jid}/files/%2E%2E",
            f"/api/jobs/{jid}/files/..%2Fvideo.mp4",  # the upload is not a result file
            f"/api/jobs/{jid}/files/../../../secret.txt",
            f"/api/jobs/{jid}/files/nope.json",
            "/api/jobs/..%2Fsecret.txt",
            "/api/jobs/..%2F..%2Fsecret.txt/files/x",
            "/api/jobs/ZZZ/events",
            "/api/jobs/" + "0" * 32,
            "/jobs/../../secret.txt",
            "/static/..%2F..%2Fapp.py",
            "/static/%2E%2E/app.py",
        ):
            r = client.get(url)
            assert r.status_code == 404, (url, r.status_code)
            assert "secret" not in r.text and "import" not in r.text


def test_failed_job_shows_error(tmp_path, models, video_bytes):
    app = create_app(models, tmp_path / "data", predictor=failing_predictor)
    with web_client(app) as client:
        job = wait_done(client, upload(client, video_bytes).json()["id"])
        assert job["status"] == "failed" and job["error"] == "RuntimeError: model exploded on purpose"
        assert client.get(job["urls"]["api_events"]).status_code == 409


def test_restart_keeps_results_and_requeues(tmp_path, models, video_bytes):
    data = tmp_path / "data"
    with web_client(create_app(models, data, predictor=fake_predictor)) as client:
        done = wait_done(client, upload(client, video_bytes).json()["id"])
    assert done["status"] == "done"
    # a server with no workers: the job stays queued; then "crash" mid-run
    with web_client(create_app(models, data, predictor=fake_predictor, workers=0)) as client:
        pending = upload(client, video_bytes, model="alpha").json()["id"]
        time.sleep(0.2)
        assert client.get(f"/api/jobs/{pending}").json()["status"] == "queued"
    JobStore(data).update(pending, status="running", stage="predict", progress=0.5)

    calls = []

    def counting(*args):
        calls.append(args[0])
        return fake_predictor(*args)

    with web_client(create_app(models, data, predictor=counting)) as client:
        assert client.get(f"/api/jobs/{done['id']}").json()["status"] == "done"
        assert client.get(f"/api/jobs/{done['id']}/events").status_code == 200
        job = wait_done(client, pending)
        assert job["status"] == "done" and job["num_events"] == 3
        assert len(calls) == 1  # only the unfinished job ran again
        assert {j["id"] for j in client.get("/api/jobs").json()["jobs"]} == {done["id"], pending}


def test_one_job_at_a_time(tmp_path, models, video_bytes):
    running = []
    peak = []
    lock = threading.Lock()

    def slow(*args):
        with lock:
            running.append(1)
            peak.append(len(running))
        time.sleep(0.15)
        with lock:
            running.pop()
        return fake_predictor(*args)

    with web_client(create_app(models, tmp_path / "data", predictor=slow)) as client:
        ids = [upload(client, video_bytes).json()["id"] for _ in range(3)]
        jobs = [wait_done(client, i) for i in ids]
    assert all(j["status"] == "done" for j in jobs) and max(peak) == 1


def test_serve_cli_parses_models(tmp_path, models):
    from e2espot.commands.serve import parse_models
    from e2espot.errors import ConfigError

    parsed = parse_models([f"x={models['alpha']}", str(models["beta"])])
    assert parsed == {"x": models["alpha"].resolve(), "run_b": models["beta"].resolve()}
    with pytest.raises(ConfigError):
        parse_models([str(tmp_path / "missing")])
    assert json.loads(json.dumps({k: str(v) for k, v in parsed.items()}))


def test_default_predictor_renders_video_and_reel(tmp_path, monkeypatch, video_bytes):
    import sys
    import types

    from e2espot.export.writers import write_csv
    from e2espot.web.app import default_predictor

    video = tmp_path / "video.mp4"
    video.write_bytes(video_bytes)
    seen = {}

    def predict_file(video_path, run_dir, out_dir, *, device="cpu", progress=None):
        seen.update(run_dir=run_dir, device=device)
        labels = VideoLabels("video", 25.0, 50, [Event(10, "goal", 0.9), Event(40, "shot", 0.6)])
        return types.SimpleNamespace(
            events_json=write_prediction_json(labels, out_dir / "video.json"),
            csv=write_csv([labels], out_dir / "video.csv"),
            scores_npz=(out_dir / "video.npz"), video_labels=labels)

    monkeypatch.setitem(sys.modules, "e2espot.infer.predict", types.SimpleNamespace(predict_file=predict_file))
    out = tmp_path / "out"
    out.mkdir()
    (out / "video.npz").write_bytes(b"npz")
    stages = []
    files = default_predictor(device="cuda:1", pad_s=0.2)(video, tmp_path / "run", out,
                                                            lambda s, f: stages.append(s))
    assert seen == {"run_dir": tmp_path / "run", "device": "cuda:1"}
    assert set(files) == {"events", "csv", "scores", "annotated", "highlights"}
    assert probe_video(files["annotated"]).num_frames == 50
    assert probe_video(files["highlights"]).num_frames == 2 * 25 + 2 * 11  # two 1 s cards + two cuts
    assert "render" in stages


def test_real_model_end_to_end(tmp_path):
    """No fakes: a real run directory, the default predictor (predict_file → render → reel), the API."""
    from e2espot.checkpoint import save_checkpoint
    from e2espot.config import DataConfig, ModelConfig, RunConfig
    from e2espot.data.synthetic import generate_dataset
    from e2espot.models import create_spotter

    ds = generate_dataset(tmp_path / "syn", num_videos=1, seconds=3.0, seed=1, width=64, height=48,
                          soccernet=False)
    classes = tuple(ds.classes)
    cfg = RunConfig(ModelConfig(num_classes=len(classes), backbone="test_tiny", temporal_module="tsm", head="gru",
                                clip_len=16), DataConfig(height=48, clip_len=16), classes)
    run = tmp_path / "run"
    run.mkdir()
    cfg.save(run / "config.json")
    torch_model = create_spotter(cfg.model)
    with torch.no_grad():  # a model that always sees a PASS, so the job has events to draw and cut
        torch_model.head.fc.bias.copy_(torch.tensor([0.0, 8.0] + [0.0] * (len(classes) - 1)))
    save_checkpoint({"model": torch_model.state_dict(), "config": cfg.to_dict()}, run / "best.pt")
    video_bytes = next((tmp_path / "syn" / "videos").glob("*.mp4")).read_bytes()
    with web_client(create_app({"tiny": run}, tmp_path / "data")) as client:
        job = wait_done(client, upload(client, video_bytes).json()["id"], timeout=120)
        assert job["status"] == "done", job
        assert {"events", "csv", "annotated", "highlights"} <= set(job["files"])
        events = client.get(job["urls"]["api_events"]).json()["events"]
        assert events and all(e["label"] == "PASS" for e in events)
        annotated = client.get(job["urls"]["files"]["annotated"])
        assert annotated.status_code == 200 and annotated.content[4:8] == b"ftyp"

"""Safety of the web app (issue "Web app safety"): each refused kind of request, and the own page's
requests that must keep working. TestClient with a fast fake predictor; the CLI in-process."""

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from e2espot.cli import main
from e2espot.data.labels import Event, VideoLabels
from e2espot.data.video.writer import write_video
from e2espot.errors import ConfigError, VideoError
from e2espot.export.render import probe_video
from e2espot.export.writers import write_prediction_json
from e2espot.web.app import create_app
from e2espot.web.jobs import JobStore
from e2espot.web.security import allowed_hosts_for, public_error

REPO = Path(__file__).resolve().parents[2]
TOKEN = "access-token-0123456789abcdef"


def fake_predictor(video_path, model_dir, out_dir, progress):
    info = probe_video(video_path)
    labels = VideoLabels("clip", info.fps, info.num_frames, [Event(10, "goal", 0.9)])
    return {"events": write_prediction_json(labels, out_dir / "clip.json")}


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory):
    frames = np.zeros((20, 48, 64, 3), np.uint8)
    frames[:, :, :, 1] = np.arange(20)[:, None, None] * 10
    return write_video(tmp_path_factory.mktemp("vid") / "clip.mp4", frames, 25.0).read_bytes()


@pytest.fixture()
def models(tmp_path):
    run = tmp_path / "run_a"
    run.mkdir()
    return {"alpha": run}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A complete, tiny run directory (config.json + best.pt) that ``load_run`` accepts."""
    from e2espot.checkpoint import save_checkpoint
    from e2espot.config import DataConfig, ModelConfig, RunConfig
    from e2espot.models import create_spotter

    run = tmp_path_factory.mktemp("run") / "tiny"
    run.mkdir()
    cfg = RunConfig(ModelConfig(num_classes=2, backbone="test_tiny", temporal_module="tsm", head="gru",
                                clip_len=16), DataConfig(height=48, clip_len=16), ("goal", "shot"))
    cfg.save(run / "config.json")
    save_checkpoint({"model": create_spotter(cfg.model).state_dict(), "config": cfg.to_dict()}, run / "best.pt")
    return run


def client_for(app, base_url="http://127.0.0.1:8000", csrf=True, **kwargs) -> TestClient:
    client = TestClient(app, base_url=base_url, **kwargs)
    if csrf:
        client.headers["X-CSRF-Token"] = app.state.csrf_token
    return client


def post_video(client, data, name="clip.mp4", headers=None):
    return client.post("/api/jobs", files={"file": (name, data, "video/mp4")}, headers=headers or {})


def wait_done(client, job_id, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def no_uvicorn(monkeypatch):
    """The CLI tests must fail before serving; starting uvicorn would hang the test."""
    import uvicorn

    def refuse(*args, **kwargs):
        raise AssertionError("uvicorn.run was reached")

    monkeypatch.setattr(uvicorn, "run", refuse)


# --------------------------------------------------------------------------- cross-origin writes


def test_cross_origin_posts_refused_own_page_upload_works(tmp_path, models, video_bytes):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor, workers=0)
    with client_for(app, csrf=False) as client:
        page = client.get("/").text
        token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
        assert token == client.get("/api/session").json()["csrf_token"] == app.state.csrf_token
        assert len(token) >= 40

        own = {"Origin": "http://127.0.0.1:8000", "Referer": "http://127.0.0.1:8000/", "X-CSRF-Token": token}
        refused = {
            "another port": {**own, "Origin": "http://127.0.0.1:9999"},
            "another site": {**own, "Origin": "https://evil.example"},
            "localhost is another origin": {**own, "Origin": "http://localhost:8000"},
            "null origin": {**own, "Origin": "null"},
            "foreign referer, no origin": {"Referer": "http://evil.example/page", "X-CSRF-Token": token},
            "no token": {"Origin": own["Origin"]},
            "wrong token": {**own, "X-CSRF-Token": token[:-1] + ("a" if token[-1] != "a" else "b")},
        }
        for why, headers in refused.items():
            r = post_video(client, video_bytes, headers=headers)
            assert r.status_code == 403, (why, r.status_code, r.text)
            expected = "CSRF token" if why.endswith("token") else "cross-origin request refused"
            assert expected in r.json()["detail"], (why, r.text)
        assert client.get("/api/jobs").json()["jobs"] == []
        assert list((tmp_path / "data" / "jobs").iterdir()) == []

        # the page's own request: same origin and the token from the page
        r = post_video(client, video_bytes, headers=own)
        assert r.status_code == 201, r.text
        # a script (no Origin, no Referer) with the token from /api/session works too
        assert post_video(client, video_bytes, headers={"X-CSRF-Token": token}).status_code == 201
        assert len(client.get("/api/jobs").json()["jobs"]) == 2
        # the token changes with every server
        assert create_app(models, tmp_path / "data2", predictor=fake_predictor).state.csrf_token != token


# --------------------------------------------------------------------------- Host allow-list


def test_foreign_host_refused_loopback_names_work(tmp_path, models):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor, workers=0)
    with client_for(app) as client:
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "192.168.1.20:8000", ""):
            for url in ("/", "/api/jobs", "/static/app.js"):
                r = client.get(url, headers={"Host": host})
                assert r.status_code == 400 and "job" not in r.text, (host, url, r.status_code)
        for host in ("127.0.0.1", "127.0.0.1:8000", "localhost", "localhost:8000", "LOCALHOST:8000", "[::1]:8000"):
            r = client.get("/api/jobs", headers={"Host": host})
            assert r.status_code == 200 and r.json()["jobs"] == [], host


def test_host_list_follows_bind_address(monkeypatch):
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "workstation")
    monkeypatch.setattr(socket, "getfqdn", lambda: "workstation.club.lan")
    monkeypatch.setattr(socket, "getaddrinfo", lambda name, port: [(2, 1, 6, "", ("10.0.0.7", 0))])
    assert allowed_hosts_for("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts_for("localhost", ["spot.lan"]) == ["127.0.0.1", "localhost", "[::1]", "spot.lan"]
    specific = allowed_hosts_for("10.0.0.7")
    assert specific == ["10.0.0.7", "workstation", "workstation.club.lan"]
    everywhere = allowed_hosts_for("0.0.0.0", ["Spot.LAN"])
    assert everywhere == ["127.0.0.1", "localhost", "[::1]", "10.0.0.7", "workstation", "workstation.club.lan",
                          "spot.lan"]
    assert "evil.example" not in everywhere


# --------------------------------------------------------------------------- access token


def test_non_loopback_needs_access_token_on_every_route(tmp_path, models, video_bytes):
    hosts = ["10.0.0.7", "workstation"]
    app = create_app(models, tmp_path / "data", predictor=fake_predictor, allowed_hosts=hosts, access_token=TOKEN)
    with client_for(app, base_url="http://10.0.0.7:8000", follow_redirects=False) as client:
        for url in ("/", "/api/jobs", "/api/session", "/static/app.js", "/docs", "/openapi.json",
                    "/jobs/" + "0" * 32, "/?token=wrong-token-0123456789"):
            r = client.get(url)
            assert r.status_code == 401 and "access token" in r.json()["detail"], (url, r.status_code)
            assert app.state.csrf_token not in r.text
        assert post_video(client, video_bytes).status_code == 401
        assert client.get("/", headers={"Host": "evil.example"}).status_code == 400

        # the printed address: sets an HttpOnly cookie and drops the token from the address bar
        r = client.get(f"/jobs/x?token={TOKEN}&t=1")
        assert r.status_code == 303 and r.headers["location"] == "/jobs/x?t=1"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"e2espot_token={TOKEN};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert client.get("/").status_code == 200  # the cookie from now on
        job = post_video(client, video_bytes)
        assert job.status_code == 201, job.text
        assert wait_done(client, job.json()["id"])["status"] == "done"
        assert client.get("/static/app.js").status_code == 200

    with client_for(app, base_url="http://workstation:8000") as script:  # a script: Bearer header
        assert script.get("/api/jobs").status_code == 401
        r = script.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and len(r.json()["jobs"]) == 1


def test_serve_token_rules(monkeypatch):
    from e2espot.commands.serve import TOKEN_ENV, resolve_token

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert resolve_token("127.0.0.1", None) == (None, False)
    token, generated = resolve_token("0.0.0.0", None)
    assert generated and len(token) == 32 and token != resolve_token("0.0.0.0", None)[0]
    assert resolve_token("0.0.0.0", TOKEN) == (TOKEN, False)
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-123")
    assert resolve_token("192.168.1.5", None) == ("from-the-environment-123", False)
    with pytest.raises(ConfigError, match="at least 16"):
        resolve_token("0.0.0.0", "short")
    with pytest.raises(ConfigError, match="at least 16 characters of"):
        resolve_token("0.0.0.0", "long-enough-but;has-a-semicolon")


# --------------------------------------------------------------------------- one server per data dir


def test_second_server_on_same_data_dir_exits_with_one_line(tmp_path, models, real_run, capsys, monkeypatch):
    no_uvicorn(monkeypatch)
    data = tmp_path / "data"
    app = create_app(models, data, predictor=fake_predictor, address="127.0.0.1:8000")
    with client_for(app):
        with pytest.raises(ConfigError, match=r"is in use by another e2espot server \(pid \d+, 127.0.0.1:8000\)"):
            create_app(models, data, predictor=fake_predictor)
        capsys.readouterr()
        rc = main(["serve", "--model", str(real_run), "--data-dir", str(data), "--port", "8123"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1, err
        assert err.startswith("error: ConfigError: data dir") and "in use by another e2espot server" in err
        assert f"pid {os.getpid()}" in err and "--data-dir" in err
    # the first server stopped: the data dir is free again
    with client_for(create_app(models, data, predictor=fake_predictor)) as client:
        assert client.get("/api/jobs").status_code == 200


def test_lock_of_a_killed_server_does_not_block(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    code = ("import sys, time; from e2espot.web.security import DataDirLock; "
            "lock = DataDirLock(sys.argv[1]); lock.acquire('0.0.0.0:1'); print('locked', flush=True); time.sleep(60)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", code, str(data)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        from e2espot.web.security import DataDirLock

        with pytest.raises(ConfigError, match=rf"pid {proc.pid}, 0.0.0.0:1"):
            DataDirLock(data).acquire()
        os.kill(proc.pid, signal.SIGKILL)  # no clean-up runs
        proc.wait(10)
        assert (data / "serve.lock").exists()  # the file stays; the OS lock went with the process
        start = time.monotonic()
        lock = DataDirLock(data)
        lock.acquire()
        assert lock.held and time.monotonic() - start < 1.0
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- serve start-up checks


def test_serve_checks_model_and_data_dir_at_start(tmp_path, real_run, capsys, monkeypatch):
    no_uvicorn(monkeypatch)
    empty = tmp_path / "empty_run"
    empty.mkdir()
    rc = main(["serve", "--model", str(empty), "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: CheckpointError: --model empty_run=")
    assert "checkpoint not found" in err and not (tmp_path / "data").exists()

    a_file = tmp_path / "data.txt"
    a_file.write_text("not a folder")
    rc = main(["serve", "--model", str(real_run), "--data-dir", str(a_file)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert err == (f"error: ConfigError: data dir '{a_file}' is a file, not a directory; pass a folder for "
                   "uploads, results and jobs.db (it is created when missing)\n")
    rc = main(["serve", "--model", str(real_run), "--data-dir", str(a_file / "sub")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "cannot create data dir" in err and "Traceback" not in err
    assert a_file.read_text() == "not a folder"


# --------------------------------------------------------------------------- request contents


def test_nul_and_control_characters_are_400(tmp_path, models, video_bytes):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor)
    with client_for(app, raise_server_exceptions=False) as client:
        jid = wait_done(client, post_video(client, video_bytes).json()["id"])["id"]
        for url in (f"/api/jobs/{jid}/files/clip%00.json", f"/api/jobs/{jid}/files/%00", f"/api/jobs/{jid}%00",
                    f"/api/jobs/{jid}/files/a%0Ab.csv", f"/api/jobs/{jid}/video?x=%00", "/jobs/%1b",
                    "/static/app.js%00", f"/api/jobs/{jid}/files/clip%7F.json"):
            r = client.get(url)
            assert r.status_code == 400 and "control character" in r.json()["detail"], (url, r.status_code)
        for name in ("cl\x00ip.mp4", "clip\x1b[31m.mp4", "a\x7f.mp4", "cl%00ip.mp4", "a%0ab.mp4"):
            r = post_video(client, video_bytes, name=name)
            assert r.status_code == 400 and "control character" in r.json()["detail"], (repr(name), r.text)
        r = client.post("/api/jobs", files={"file": ("clip.mp4", video_bytes, "video/mp4")}, data={"model": "al\x00pha"})
        assert r.status_code == 400 and "control character" in r.json()["detail"]
        assert [j["id"] for j in client.get("/api/jobs").json()["jobs"]] == [jid]


def test_still_images_and_single_frames_refused(tmp_path, models):
    def image_bytes(fmt):
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, fmt)
        return buf.getvalue()

    one_frame = write_video(tmp_path / "one.mp4", np.full((1, 48, 64, 3), 90, np.uint8), 25.0).read_bytes()
    app = create_app(models, tmp_path / "data", predictor=fake_predictor)
    with client_for(app) as client:
        for what, data, reason in (("png", image_bytes("PNG"), "still image (png)"),
                                   ("jpeg", image_bytes("JPEG"), "still image (jpeg)"),
                                   ("1-frame mp4", one_frame, "single frame")):
            r = post_video(client, data, name="match.mp4")
            assert r.status_code == 400, (what, r.status_code)
            assert r.json()["detail"].startswith("'match.mp4' is not a video file") and reason in r.json()["detail"]
        assert client.get("/api/jobs").json()["jobs"] == []


# --------------------------------------------------------------------------- errors people see


def test_user_facing_errors_carry_no_server_paths(tmp_path, models, video_bytes):
    import tempfile

    tmp_file = Path(tempfile.gettempdir()) / "tmpa1b2c3" / "scores.npz"

    def leaky(video_path, model_dir, out_dir, progress):
        raise VideoError(f"cannot decode '{video_path}' with {model_dir / 'best.pt'} into {out_dir}: "
                         f"[Errno 28] No space left on device: '{tmp_file}'; also /srv/private/cfg.json")

    data = tmp_path / "data"
    app = create_app(models, data, predictor=leaky)
    with client_for(app) as client:
        job = wait_done(client, post_video(client, video_bytes, name="final.mp4").json()["id"])
        assert job["status"] == "failed"
        assert job["error"] == ("VideoError: cannot decode 'final.mp4' with <model alpha>/best.pt into <job>/out: "
                                "No space left on device: '<tmp>/tmpa1b2c3/scores.npz'; also cfg.json")
        # a row written by an older server, with a raw path, is cleaned when shown
        JobStore(data).update(job["id"], error=f"OSError: [Errno 2] No such file: '{data}/jobs/x/video.mp4'")
        shown = client.get(f"/api/jobs/{job['id']}").json()["error"]
        assert shown == "OSError: No such file: '<data>/jobs/x/video.mp4'"
        page = client.get("/").text  # the failure reason is in the history
        assert "No such file: &#39;&lt;data&gt;/jobs/x/video.mp4&#39;" in page
        r = post_video(client, b"\x00\x01garbage" * 100)
        texts = [client.get(f"/api/jobs/{job['id']}").text, page, r.text,
                 client.get(f"/jobs/{job['id']}").text]
        for text in texts:
            assert str(tmp_path) not in text and "Errno" not in text and "/tmp" not in text
            assert "Traceback" not in text


def test_public_error_rules():
    assert public_error("x at /a/b/c.txt and C:\\u\\v.pt, not 1/2 or http://h/p/q") == \
        "x at c.txt and v.pt, not 1/2 or http://h/p/q"
    assert public_error("[Errno 13] Permission denied: '/data/run/best.pt'", {"/data/run": "<model m>"}) == \
        "Permission denied: '<model m>/best.pt'"


# --------------------------------------------------------------------------- headers, HEAD, 404, gone files


def test_security_headers_on_every_response(tmp_path, models):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor, workers=0)
    with client_for(app) as client:
        responses = [client.get(u) for u in ("/", "/api/jobs", "/static/app.js", "/static/nope.css",
                                             "/jobs/" + "0" * 32, "/api/jobs/%00")]
        responses += [client.get("/", headers={"Host": "evil.example"}), client.post("/api/jobs", headers={"X-CSRF-Token": ""})]
        assert [r.status_code for r in responses] == [200, 200, 200, 404, 404, 400, 400, 403]
        for r in responses:
            assert r.headers["x-content-type-options"] == "nosniff"
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "same-origin"
        # the CSP allows no inline script: the pages have none
        page = responses[0].text
        assert re.findall(r"<script(?![^>]*\bsrc=)", page) == [] and "/static/theme.js" in page


def test_head_on_file_routes(tmp_path, models, video_bytes):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor)
    with client_for(app) as client:
        job = wait_done(client, post_video(client, video_bytes).json()["id"])
        r = client.head(job["urls"]["video"])
        assert r.status_code == 200 and r.content == b"" and int(r.headers["content-length"]) == len(video_bytes)
        assert r.headers["content-type"] == "video/mp4" and r.headers["accept-ranges"] == "bytes"
        csv = client.get(job["urls"]["files"]["csv"])
        r = client.head(job["urls"]["files"]["csv"])
        assert r.status_code == 200 and r.content == b"" and int(r.headers["content-length"]) == len(csv.content)
        assert client.head(f"/api/jobs/{job['id']}/files/nope.csv").status_code == 404
        assert client.head("/static/app.js").status_code == 200
        for page in ("/", job["urls"]["page"]):
            r = client.head(page)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), page


def test_friendly_404_page(tmp_path, models):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor, workers=0)
    with client_for(app) as client:
        for url in ("/jobs/" + "0" * 32, "/jobs/not-a-job", "/no/such/page"):
            r = client.get(url, headers={"Accept": "text/html,application/xhtml+xml"})
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), url
            assert "<h1>Not found</h1>" in r.text and 'href="/"' in r.text and 'id="error-page"' in r.text
        r = client.get("/api/jobs/" + "0" * 32, headers={"Accept": "text/html"})
        assert r.status_code == 404 and r.json() == {"detail": "no such job"}


def test_done_job_whose_files_are_gone_says_so(tmp_path, models, video_bytes):
    import shutil

    data = tmp_path / "data"
    app = create_app(models, data, predictor=fake_predictor)
    with client_for(app) as client:
        job = wait_done(client, post_video(client, video_bytes).json()["id"])
        assert job["results_missing"] is False and job["missing_files"] == []
        shutil.rmtree(data / "jobs" / job["id"] / "out")
        job = client.get(f"/api/jobs/{job['id']}").json()
        assert job["status"] == "done" and job["results_missing"] is True
        assert sorted(job["missing_files"]) == ["csv", "events"]
        for url in (job["urls"]["api_events"], job["urls"]["files"]["csv"], job["urls"]["files"]["events"]):
            r = client.get(url)
            assert r.status_code == 410 and "gone from the server" in r.json()["detail"], url
        page = client.get(job["urls"]["page"])
        assert page.status_code == 200 and 'id="gone-view"' in page.text
        assert client.get(job["urls"]["video"]).status_code == 200
        (data / "jobs" / job["id"] / "clip.mp4").unlink()
        r = client.get(job["urls"]["video"])
        assert r.status_code == 410 and "uploaded video" in r.json()["detail"]
        assert "video" in client.get(f"/api/jobs/{job['id']}").json()["missing_files"]


def test_predict_stage_is_not_overwritten_by_decode(tmp_path, models, video_bytes):
    seen = []

    def interleaved(video_path, model_dir, out_dir, progress):
        store = JobStore(tmp_path / "data")
        for stage, frac in (("decode", 0.2), ("predict", 0.1), ("decode", 0.6), ("predict", 0.5), ("decode", 1.0)):
            progress(stage, frac)
            seen.append(store.get(out_dir.parent.name).stage)
        progress("render", 0.5)
        seen.append(store.get(out_dir.parent.name).stage)
        return fake_predictor(video_path, model_dir, out_dir, progress)

    app = create_app(models, tmp_path / "data", predictor=interleaved)
    with client_for(app) as client:
        assert wait_done(client, post_video(client, video_bytes).json()["id"])["status"] == "done"
    assert seen == ["decode", "predict", "predict", "predict", "predict", "render"]


def test_docs_are_served_locally(tmp_path, models):
    pytest.importorskip("fastapi_offline", reason="/docs needs the fastapi-offline package")
    app = create_app(models, tmp_path / "data", predictor=fake_predictor, workers=0)
    with client_for(app) as client:
        r = client.get("/docs")
        assert r.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in r.text and "/static/docs.js" in r.text
        assert "cdn" not in r.text.lower() and re.findall(r"<script(?![^>]*\bsrc=)", r.text) == []
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
        js = client.get("/docs-assets/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 500_000
        assert client.get("/openapi.json").json()["paths"]["/api/jobs"]["post"]
        assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN

"""One real browser run: upload in headless Chromium, wait for the job, click a timeline marker; a page of
another origin that tries to create a job is refused; the CSP blocks nothing of our own pages."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from e2espot.data.labels import Event, VideoLabels
from e2espot.data.video.writer import write_video
from e2espot.export.render import probe_video
from e2espot.export.writers import write_prediction_json

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.browser


def fake_predictor(video_path, model_dir, out_dir, progress):
    info = probe_video(video_path)
    progress("predict", 0.5)
    time.sleep(0.3)  # long enough for the progress page to show
    labels = VideoLabels("clip", info.fps, info.num_frames,
                         [Event(10, "goal", 0.9), Event(30, "shot", 0.45), Event(40, "goal", 0.7)])
    return {"events": write_prediction_json(labels, out_dir / "clip.json")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ATTACK_PAGE = """<!doctype html><html><body>
<form id="f" method="post" enctype="multipart/form-data" action="{server}/api/jobs">
  <input type="hidden" name="model" value="tiny"><input id="file" type="file" name="file">
</form>
<script>
(async function () {{
  const blob = await (await fetch("clip.mp4")).blob();  // a real video: only its origin is wrong
  const data = new FormData(); data.append("file", blob, "clip.mp4");
  try {{ await fetch("{server}/api/jobs", {{ method: "POST", mode: "no-cors", body: data }}); }} catch (e) {{}}
  const dt = new DataTransfer(); dt.items.add(new File([blob], "clip.mp4", {{ type: "video/mp4" }}));
  document.getElementById("file").files = dt.files;
  document.getElementById("f").submit();
}})();
</script></body></html>"""


@pytest.fixture()
def attacker(tmp_path):
    """Another origin (a different port) serving a page that posts to the e2espot server."""
    import functools
    import http.server

    root = tmp_path / "attacker"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture()
def server(tmp_path):
    import uvicorn

    from e2espot.web.app import create_app

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    app = create_app({"tiny": run_dir, "other": run_dir}, tmp_path / "data", predictor=fake_predictor)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.time() + 15
    while not srv.started and time.time() < end:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(10)


def test_upload_and_seek_in_browser(server, attacker, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found; install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    frames = np.zeros((50, 96, 160, 3), np.uint8)
    frames[..., 0] = np.linspace(0, 255, 160, dtype=np.uint8)[None, None, :]
    frames[..., 2] = (np.arange(50) * 5)[:, None, None]
    video = write_video(tmp_path / "clip.mp4", frames, 25.0, gop=5)
    server, app = server
    attack_dir, attack_origin = attacker
    shutil.copy(video, attack_dir / "clip.mp4")
    (attack_dir / "evil.html").write_text(ATTACK_PAGE.format(server=server))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            problems = []  # CSP violations and script errors on our pages
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            # another origin's page posts a real video (fetch, then a form): refused, no job made
            refused = []
            page.on("response", lambda r: refused.append((r.request.method, r.status))
                    if r.url == server + "/api/jobs" else None)
            with page.expect_navigation(url=server + "/api/jobs", timeout=15000) as nav:
                page.goto(attack_origin + "/evil.html")
            assert nav.value.status == 403 and "cross-origin request refused" in page.content()
            assert refused == [("POST", 403), ("POST", 403)], refused
            assert app.state.store.list() == []
            problems.clear()  # the attacker page is not ours

            page.goto(server + "/")
            assert page.locator("#model-select option").count() == 2
            page.select_option("#model-select", "other")
            page.set_input_files("#file-input", str(video))
            page.click("#start-btn")
            page.wait_for_url("**/jobs/*", timeout=15000)
            page.wait_for_selector("#job[data-ready='1']", timeout=20000)
            assert page.locator("#job-status").inner_text() == "done"
            assert page.evaluate("window.e2espotView.shown().length") == 3
            page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=10000)
            # the goal at 1.6 s on the canvas timeline: hover shows it, a click selects it and seeks there
            box = page.locator("#timeline").bounding_box()
            x, y = page.evaluate("[window.e2espotView.xOf(1.6), window.e2espotView.laneY('goal')]")
            page.mouse.move(box["x"] + x, box["y"] + y)
            assert "goal" in page.locator("#tooltip").inner_text() and "0.700" in page.locator("#tooltip").inner_text()
            page.mouse.click(box["x"] + x, box["y"] + y)
            page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 1.6) < 0.1",
                                   timeout=5000)
            current = page.evaluate("document.getElementById('player').currentTime")
            assert abs(current - 1.6) < 0.1
            # filters: hide 'shot', then raise the score threshold above 0.8
            page.locator("input[data-class='shot']").uncheck()
            assert page.evaluate("window.e2espotView.shown().length") == 2
            page.locator("#score-slider").fill("0.8")
            assert page.locator("#event-table tbody tr[data-id]").count() == 1
            page.locator("#score-slider").fill("0")
            page.locator("input[data-class='shot']").check()
            # a table row seeks too
            page.locator("#event-table tbody tr[data-id]").nth(0).click()
            page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 0.4) < 0.1",
                                   timeout=5000)
            page.wait_for_timeout(300)
            assert len(app.state.store.list()) == 1  # the page's own upload went through
            assert problems == [], problems
            shot = tmp_path / "result.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10000
            if os.environ.get("E2ESPOT_SCREENSHOT_DIR"):
                shutil.copy(shot, Path(os.environ["E2ESPOT_SCREENSHOT_DIR"]) / "result.png")
                page.locator("#theme-toggle").click()
                page.screenshot(path=str(Path(os.environ["E2ESPOT_SCREENSHOT_DIR"]) / "result_toggled.png"),
                                full_page=True)
                page.goto(server + "/")
                page.screenshot(path=str(Path(os.environ["E2ESPOT_SCREENSHOT_DIR"]) / "index.png"), full_page=True)

            # the server does not answer: the job page says so, and recovers when it answers again
            job_url = page.url if "/jobs/" in page.url else server + "/jobs/" + app.state.store.list()[0].id
            page.route("**/api/jobs/*", lambda route: route.abort())
            page.goto(job_url)
            page.wait_for_selector("#offline-notice:not([hidden])", timeout=10000)
            page.unroute("**/api/jobs/*")
            page.wait_for_selector("#offline-notice", state="hidden", timeout=10000)
            page.wait_for_selector("#job[data-ready='1']", timeout=10000)

            # the result files were deleted: the page says so instead of an empty player
            job_id = app.state.store.list()[0].id
            shutil.rmtree(app.state.store.job_dir(job_id) / "out")
            page.reload()
            page.wait_for_selector("#gone-view:not([hidden])", timeout=10000)
            assert "no longer on the server" in page.locator("#gone-text").inner_text()
            assert page.locator("#result-view").is_hidden()

            # a friendly 404 page
            r = page.goto(server + "/jobs/" + "0" * 32)
            assert r.status == 404 and page.locator("h1").inner_text() == "Not found"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
            problems = [p for p in problems if "404" not in p and "ERR_FAILED" not in p]
            assert problems == [], problems

            # /docs works offline: every request that leaves this server fails
            foreign = []
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server)
                       else (foreign.append(route.request.url), route.abort()))
            page.goto(server + "/docs")
            page.wait_for_selector(".opblock", timeout=15000)
            assert page.locator(".opblock").count() >= 6 and foreign == []
            assert problems == [], problems
        finally:
            browser.close()

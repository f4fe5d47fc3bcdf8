"""One real browser run: upload in headless Chromium, wait for the job, click a timeline marker."""

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
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_upload_and_seek_in_browser(server, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found; install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    frames = np.zeros((50, 96, 160, 3), np.uint8)
    frames[..., 0] = np.linspace(0, 255, 160, dtype=np.uint8)[None, None, :]
    frames[..., 2] = (np.arange(50) * 5)[:, None, None]
    video = write_video(tmp_path / "clip.mp4", frames, 25.0, gop=5)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(server + "/")
            assert page.locator("#model-select option").count() == 2
            page.select_option("#model-select", "other")
            page.set_input_files("#file-input", str(video))
            page.click("#start-btn")
            page.wait_for_url("**/jobs/*", timeout=15000)
            page.wait_for_selector("#job[data-ready='1']", timeout=20000)
            assert page.locator("#job-status").inner_text() == "done"
            markers = page.locator(".marker")
            assert markers.count() == 3
            page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=10000)
            markers.nth(2).hover()
            assert "goal" in page.locator("#tooltip").inner_text() and "0.700" in page.locator("#tooltip").inner_text()
            markers.nth(2).click()
            page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 1.6) < 0.1",
                                   timeout=5000)
            current = page.evaluate("document.getElementById('player').currentTime")
            assert abs(current - 1.6) < 0.1
            # filters: hide 'shot', then raise the score threshold above 0.8
            page.locator("input[data-class='shot']").uncheck()
            assert page.locator(".marker:not([hidden])").count() == 2
            page.locator("#score-slider").fill("0.8")
            assert page.locator("#event-table tbody tr").count() == 1
            page.locator("#score-slider").fill("0")
            page.locator("input[data-class='shot']").check()
            # a table row seeks too
            page.locator("#event-table tbody tr").nth(0).click()
            page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 0.4) < 0.1",
                                   timeout=5000)
            page.wait_for_timeout(300)
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
        finally:
            browser.close()

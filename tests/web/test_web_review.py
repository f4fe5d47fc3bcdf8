"""Review and correction through the API: edits saved in SQLite (with history), undo/redo, restart
survival, counts and precision, exports in every label format read back by e2espot's readers and the
training dataset; selection exports (CSV/JSON/clips/reel); jobs: delete, re-run, paging, retention."""

import json
import time
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient

from e2espot.data.labels import Event, VideoLabels
from e2espot.data.video.writer import write_video
from e2espot.export.render import probe_video
from e2espot.export.writers import write_prediction_json
from e2espot.web.app import create_app, model_info, safe_stem

EVENTS = [(10, "goal", 0.9), (25, "shot", 0.4), (40, "goal", 0.7), (45, "card", 0.2)]


def fake_predictor(video_path, model_dir, out_dir, progress, threshold=None):
    info = probe_video(video_path)
    keep = [(f, lab, s) for f, lab, s in EVENTS if threshold is None or s >= threshold]
    labels = VideoLabels(video_path.stem, info.fps, info.num_frames, [Event(f, lab, s) for f, lab, s in keep])
    (out_dir / "class.txt").write_text("card\ngoal\nshot\n")
    return {"events": write_prediction_json(labels, out_dir / f"{video_path.stem}.json")}


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory):
    frames = np.zeros((50, 48, 64, 3), np.uint8)
    frames[:, :, :, 1] = np.arange(50)[:, None, None] * 4
    return write_video(tmp_path_factory.mktemp("vid") / "clip.mp4", frames, 25.0).read_bytes()


@pytest.fixture(scope="module")
def audio_video_bytes(tmp_path_factory):
    """50 frames at 25 fps with a 16 kHz mono sine track (as tests/export/test_export_render.py makes)."""
    from fractions import Fraction

    import av

    path = tmp_path_factory.mktemp("av") / "a.mp4"
    c = av.open(str(path), "w")
    vs = c.add_stream("libx264", rate=Fraction(25))
    vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
    a = c.add_stream("aac", rate=16000, layout="mono")
    for i in range(50):
        f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60 + 2 * i, np.uint8), format="rgb24")
        f.pts = i
        for pkt in vs.encode(f):
            c.mux(pkt)
    for pkt in vs.encode(None):
        c.mux(pkt)
    sig = (0.3 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000)).astype(np.float32)[None]
    for k in range(0, 32000, 1024):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(sig[:, k:k + 1024]), format="fltp", layout="mono")
        fr.sample_rate, fr.pts = 16000, k
        for pkt in a.encode(fr):
            c.mux(pkt)
    for pkt in a.encode(None):
        c.mux(pkt)
    c.close()
    return path.read_bytes()


@pytest.fixture()
def models(tmp_path):
    a = tmp_path / "run_a"
    a.mkdir()
    (a / "model.json").write_text(json.dumps({"display": "Ball actions v2",
                                              "description": "goal/shot/card, trained on 12 matches"}))
    b = tmp_path / "run_b"
    b.mkdir()
    (b / "config.json").write_text(json.dumps({"display": {"name": "Tennis", "description": "swings"}}))
    return {"alpha": a, "beta": b}


def client_for(app) -> TestClient:
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    client.headers["X-CSRF-Token"] = app.state.csrf_token
    return client


def wait_done(client, job_id, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def new_job(client, video_bytes, name="Match 1 (home).mp4", **form):
    r = client.post("/api/jobs", files={"file": (name, video_bytes, "video/mp4")}, data=form)
    assert r.status_code == 201, r.text
    return wait_done(client, r.json()["id"])


def edit(client, job_id, **body):
    r = client.post(f"/api/jobs/{job_id}/edits", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_review_edits_undo_redo_restart_and_exports(tmp_path, models, video_bytes):
    from e2espot.data.formats import read_labels

    data = tmp_path / "data"
    app = create_app(models, data, predictor=fake_predictor)
    with client_for(app) as client:
        job = new_job(client, video_bytes)
        jid = job["id"]
        assert job["video_stem"] == "Match_1__home_" and job["files"]["events"] == "Match_1__home_.json"
        ev = client.get(f"/api/jobs/{jid}/events").json()
        assert ev["video"] == "Match_1__home_" and ev["classes"] == ["card", "goal", "shot"]
        assert [e["id"] for e in ev["events"]] == ["p0", "p1", "p2", "p3"]
        assert ev["summary"]["reviewed"] == 0 and ev["summary"]["unreviewed"] == 4
        assert ev["summary"]["precision"] is None and ev["can"] == {"undo": 0, "redo": 0}

        r = edit(client, jid, op="confirm", event_id="p0")
        assert r["event"]["review"] == "confirmed" and r["summary"]["precision"] == 1.0
        edit(client, jid, op="reject", event_id="p3")  # the card at 45
        r = edit(client, jid, op="relabel", event_id="p1", label="goal")  # shot -> goal
        assert r["event"]["label"] == "goal" and r["event"]["model_label"] == "shot"
        r = edit(client, jid, op="move", event_id="p2", frame=41)  # frame-exact
        assert r["event"]["frame"] == 41 and r["event"]["time_s"] == 1.64 and r["event"]["model_frame"] == 40
        r = edit(client, jid, op="add", frame=5, label="card", team="left", note="missed by the model")
        added = r["event"]["id"]
        assert added.startswith("a") and r["event"]["origin"] == "analyst" and r["event"]["team"] == "left"
        edit(client, jid, op="team", event_id="p0", team="right")
        edit(client, jid, op="note", event_id="p0", note="header")
        # reviewed: p0 (confirmed), p1 (relabelled), p2 (moved), p3 (rejected); correct: p0 and p2
        s = client.get(f"/api/jobs/{jid}/events").json()["summary"]
        assert (s["reviewed"], s["unreviewed"], s["true_positives"], s["precision"]) == (4, 0, 2, 0.5)
        assert (s["added"], s["rejected"], s["relabelled"], s["moved"]) == (1, 1, 1, 1)

        # refusals name the value
        r = client.post(f"/api/jobs/{jid}/edits", json={"op": "relabel", "event_id": "p0", "label": "dunk"})
        assert r.status_code == 400 and "'dunk' is not a class" in r.json()["detail"]
        r = client.post(f"/api/jobs/{jid}/edits", json={"op": "move", "event_id": "p0", "frame": 50})
        assert r.status_code == 400 and "frame 50 is outside the video (0..49)" in r.json()["detail"]
        r = client.post(f"/api/jobs/{jid}/edits", json={"op": "move", "event_id": "p0", "frame": 1.5})
        assert r.status_code == 400 and "must be an integer" in r.json()["detail"]
        r = client.post(f"/api/jobs/{jid}/edits", json={"op": "confirm", "event_id": "p99"})
        assert r.status_code == 400 and "no event 'p99'" in r.json()["detail"]
        r = client.post(f"/api/jobs/{jid}/edits", json={"op": "explode", "event_id": "p0"})
        assert r.status_code == 400 and "unknown edit op 'explode'" in r.json()["detail"]
        r = client.post(f"/api/jobs/{jid}/edits", json={"op": "confirm", "event_id": "p0"},
                        headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403

        # delete, undo, redo; a new edit after an undo drops the redo branch (kept as history)
        edit(client, jid, op="delete", event_id="p1")
        assert "p1" not in [e["id"] for e in client.get(f"/api/jobs/{jid}/events").json()["events"]]
        r = client.post(f"/api/jobs/{jid}/undo").json()
        assert r["event_id"] == "p1" and r["event"]["label"] == "goal" and r["can"] == {"undo": 7, "redo": 1}
        r = client.post(f"/api/jobs/{jid}/redo").json()
        assert r["event"] is None and r["can"] == {"undo": 8, "redo": 0}
        assert client.post(f"/api/jobs/{jid}/redo").status_code == 409
        client.post(f"/api/jobs/{jid}/undo")  # p1 back
        client.post(f"/api/jobs/{jid}/undo")  # p0's note gone
        r = edit(client, jid, op="note", event_id="p0", note="volley")
        assert r["event"]["note"] == "volley" and r["can"] == {"undo": 7, "redo": 0}
        hist = client.get(f"/api/jobs/{jid}/edits").json()["edits"]
        assert [h["state"] for h in hist].count("discarded") == 2 and len(hist) == 9
        before = client.get(f"/api/jobs/{jid}/events").json()

    # a restart (a new app on the same data dir) shows the same events, counts and undo stack
    app = create_app(models, data, predictor=fake_predictor)
    with client_for(app) as client:
        after = client.get(f"/api/jobs/{jid}/events").json()
        assert after["events"] == before["events"] and after["summary"] == before["summary"]
        assert after["can"] == {"undo": 7, "redo": 0}
        expected = [(5, "card", "left"), (10, "goal", "right"), (25, "goal", None), (41, "goal", None)]

        r = client.get(f"/api/jobs/{jid}/export", params={"fmt": "csv"})
        assert r.status_code == 200 and "Match_1__home_.corrected.csv" in r.headers["content-disposition"]
        out = tmp_path / "exp"
        out.mkdir()
        (out / "c.csv").write_bytes(r.content)
        labels = read_labels(out / "c.csv", "csv")
        assert [(e.frame, e.label, e.team) for e in labels.videos[0].events] == expected
        assert labels.videos[0].video == "Match_1__home_"

        r = client.get(f"/api/jobs/{jid}/export", params={"fmt": "spot"})
        assert r.status_code == 200
        (out / "s.zip").write_bytes(r.content)
        with zipfile.ZipFile(out / "s.zip") as zf:
            assert sorted(zf.namelist()) == ["class.txt", "train.json"]
            zf.extractall(out / "spot")
        spot = read_labels(out / "spot", "spot", split="train")
        v = spot.videos[0]
        assert spot.classes == ["card", "goal", "shot"] and v.video == "Match_1__home_"
        assert (v.fps, v.num_frames) == (25.0, 50)
        assert [(e.frame, e.label, e.comment) for e in v.events] == [
            (5, "card", "missed by the model"), (10, "goal", "volley"), (25, "goal", None), (41, "goal", None)]

        r = client.get(f"/api/jobs/{jid}/export", params={"fmt": "soccernet"})
        (out / "sn.zip").write_bytes(r.content)
        with zipfile.ZipFile(out / "sn.zip") as zf:
            assert zf.namelist() == ["Match_1__home_/Labels-ball.json"]
            zf.extractall(out / "sn")
        sn = read_labels(out / "sn", "soccernet", probe_videos=False)
        assert [(e.frame, e.label) for e in sn.videos[0].events] == [(f, lab) for f, lab, _ in expected]

        r = client.get(f"/api/jobs/{jid}/export", params={"fmt": "spot", "scope": "confirmed"})
        with zipfile.ZipFile(__import__("io").BytesIO(r.content)) as zf:
            conf = json.loads(zf.read("train.json"))[0]["events"]
        assert [e["frame"] for e in conf] == [5, 10, 25, 41]  # every kept event was confirmed
        assert client.get(f"/api/jobs/{jid}/export", params={"fmt": "xml"}).status_code == 400

        # the training data path accepts the export: read_split + ClipDataset over the uploaded video
        from e2espot.config import DataConfig
        from e2espot.data.datasets import ClipDataset
        from e2espot.data.sources import read_split

        videos = tmp_path / "videos"
        videos.mkdir()
        (videos / "Match_1__home_.mp4").write_bytes(video_bytes)
        train = read_split(out / "spot", "train")
        ds = ClipDataset(train, DataConfig(height=48, clip_len=16), epoch_clips=2, fg_upsample=1.0,
                         video_root=videos, seed=0)
        item = ds[0]
        assert item["frames"].shape[0] == 16 and int(item["labels"].max()) >= 1


def test_selection_exports(tmp_path, models, audio_video_bytes, monkeypatch):
    app = create_app(models, tmp_path / "data", predictor=fake_predictor)
    with client_for(app) as client:
        jid = new_job(client, audio_video_bytes, name="derby.mp4")["id"]
        edit(client, jid, op="relabel", event_id="p1", label="card")
        sel = {"event_ids": ["p2", "p1"], "pad_s": 0.2}
        r = client.post(f"/api/jobs/{jid}/selection", json={"kind": "csv", **sel})
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["name"].startswith("derby.selection-") and got["name"].endswith(".csv")
        assert "/files/exports/" in got["url"]
        for bad in ("exports%2F..%2F..%2Fderby.mp4", "exports/../../derby.mp4", "exports%2F..%2F..%2F..%2Fjobs.db"):
            assert client.get(f"/api/jobs/{jid}/files/{bad}").status_code == 404, bad
        rows = client.get(got["url"]).text.splitlines()
        assert rows[1:] == ["derby,25,1.000000,card,0.4", "derby,40,1.600000,goal,0.7"]
        r = client.post(f"/api/jobs/{jid}/selection", json={"kind": "json", **sel}).json()
        body = client.get(r["url"]).json()
        assert body[0]["video"] == "derby" and [e["frame"] for e in body[0]["events"]] == [25, 40]
        r = client.post(f"/api/jobs/{jid}/selection", json={"kind": "clips", **sel})
        assert r.status_code == 200, r.text
        z = tmp_path / "clips.zip"
        z.write_bytes(client.get(r.json()["url"]).content)
        with zipfile.ZipFile(z) as zf:
            names = sorted(zf.namelist())
            assert names == ["derby_card_00m01.00s_f25.mp4", "derby_goal_00m01.60s_f40.mp4"]
            zf.extractall(tmp_path / "clips")
        info = probe_video(tmp_path / "clips" / names[0])
        assert info.num_frames == 11 and info.has_audio  # 25 +- 5 frames, the sound kept
        r = client.post(f"/api/jobs/{jid}/selection", json={"kind": "reel", **sel}).json()
        reel = tmp_path / "reel.mp4"
        reel.write_bytes(client.get(r["url"]).content)
        info = probe_video(reel)
        assert r["name"].endswith(".reel.mp4") and info.num_frames == 2 * 25 + 2 * 11 and info.has_audio  # 1 s cards
        for bad, msg in (({"kind": "gif", **sel}, "kind 'gif'"), ({"kind": "csv", "event_ids": []}, "non-empty"),
                         ({"kind": "csv", "event_ids": ["p9"]}, "no event 'p9'"),
                         ({"kind": "csv", "event_ids": ["p1"], "pad_s": -1}, "pad_s -1"),
                         ({"kind": "reel", "event_ids": ["p1"] * 2 + [f"p{i}" for i in range(4)], "pad_s": "x"},
                          "pad_s 'x'")):
            r = client.post(f"/api/jobs/{jid}/selection", json=bad)
            assert r.status_code == 400 and msg in r.json()["detail"], (bad, r.text)
        monkeypatch.setattr("e2espot.web.app.MAX_CUT_EVENTS", 1)
        r = client.post(f"/api/jobs/{jid}/selection", json={"kind": "clips", **sel})
        assert r.status_code == 400 and "2 events selected; clips and reels take at most 1" in r.json()["detail"]


def test_jobs_delete_rerun_paging_retention(tmp_path, models, video_bytes):
    data = tmp_path / "data"
    app = create_app(models, data, predictor=fake_predictor)
    with client_for(app) as client:
        first = new_job(client, video_bytes, name="a.mp4")
        edit(client, first["id"], op="confirm", event_id="p0")
        r = client.post(f"/api/jobs/{first['id']}/rerun", json={"model": "beta", "threshold": 0.5})
        assert r.status_code == 201, r.text
        again = wait_done(client, r.json()["id"])
        assert again["model"] == "beta" and again["options"] == {"rerun_of": first["id"], "threshold": 0.5}
        assert again["num_events"] == 2 and again["video_name"] == "a.mp4"  # 0.9 and 0.7 pass 0.5
        assert client.post(f"/api/jobs/{first['id']}/rerun", json={"threshold": 2}).status_code == 400
        thr = new_job(client, video_bytes, name="t.mp4", threshold="0.8")  # a threshold at upload
        assert thr["options"] == {"threshold": 0.8} and thr["num_events"] == 1
        client.delete(f"/api/jobs/{thr['id']}")
        assert client.post(f"/api/jobs/{first['id']}/rerun", json={"model": "zeta"}).status_code == 400
        for name in ("b.mp4", "c.mp4"):
            new_job(client, video_bytes, name=name)
        listing = client.get("/api/jobs", params={"limit": 2}).json()
        assert listing["total"] == 4 and [j["video_name"] for j in listing["jobs"]] == ["c.mp4", "b.mp4"]
        listing = client.get("/api/jobs", params={"limit": 2, "offset": 2}).json()
        assert [j["video_name"] for j in listing["jobs"]] == ["a.mp4", "a.mp4"]
        assert client.get("/api/jobs", params={"q": "B.MP"}).json()["total"] == 1
        assert client.get("/api/jobs", params={"q": "beta"}).json()["total"] == 1
        assert client.get("/api/jobs", params={"q": "%"}).json()["total"] == 0
        assert [m["display"] for m in listing["model_info"]] == ["Ball actions v2", "Tennis"]
        page = client.get("/").text
        assert "Ball actions v2" in page and "trained on 12 matches" in page

        # a running job carries an ETA at its rate so far; it cannot be deleted while it runs
        running = listing["jobs"][0]["id"]
        app.state.store.update(running, status="running", stage="predict", started=time.time() - 10, progress=0.25)
        job = client.get(f"/api/jobs/{running}").json()
        assert 29.5 <= job["eta_s"] <= 30.5, job["eta_s"]
        r = client.delete(f"/api/jobs/{running}")
        assert r.status_code == 409 and "running" in r.json()["detail"]
        app.state.store.update(running, status="done", stage="done", progress=1.0)
        assert client.get(f"/api/jobs/{running}").json()["eta_s"] is None

        # delete: row, edits and files
        r = client.delete(f"/api/jobs/{first['id']}")
        assert r.status_code == 200 and not (data / "jobs" / first["id"]).exists()
        assert client.get(f"/api/jobs/{first['id']}").status_code == 404
        assert app.state.reviews.history(first["id"]) == []
        assert client.get(f"/api/jobs/{again['id']}/video").status_code == 200  # the re-run keeps its copy
        assert client.delete(f"/api/jobs/{first['id']}").status_code == 404
        assert client.delete(f"/api/jobs/{again['id']}", headers={"X-CSRF-Token": "x"}).status_code == 403

    # retention: finished jobs older than the setting go at start-up, files too
    store = app.state.store
    old = store.list()[-1]
    store.update(old.id, created=time.time() - 3 * 86400)
    app = create_app(models, data, predictor=fake_predictor, retention_days=2)
    with client_for(app) as client:
        names = [j["id"] for j in client.get("/api/jobs").json()["jobs"]]
        assert old.id not in names and len(names) == 2 and not (data / "jobs" / old.id).exists()
    with pytest.raises(Exception, match="positive number of days"):
        create_app(models, tmp_path / "d2", predictor=fake_predictor, retention_days=0)


def test_names_and_model_info(tmp_path):
    assert safe_stem("Match 1 (home).mp4") == "Match_1__home_"
    assert safe_stem("..hidden.mp4") == "hidden" and safe_stem("ÄÖ.mp4") == "video"
    assert len(safe_stem("x" * 300 + ".mp4")) == 80
    run = tmp_path / "run"
    run.mkdir()
    assert model_info("m", run) == {"name": "m", "display": "m", "description": ""}
    (run / "config.json").write_text(json.dumps({"display": "Passes"}))
    assert model_info("m", run)["display"] == "Passes"
    (run / "model.json").write_text("{not json")
    assert model_info("m", run)["display"] == "Passes"  # an unreadable model.json is skipped


@pytest.mark.slow
def test_e2espot_train_accepts_the_exported_label_dir(tmp_path, models, video_bytes):
    """The E2E-Spot export of a reviewed job, as an analyst would use it: unzip, add a val split (here the
    same match), run ``e2espot train`` for one tiny epoch."""
    from e2espot.cli import main

    app = create_app(models, tmp_path / "data", predictor=fake_predictor)
    with client_for(app) as client:
        jid = new_job(client, video_bytes, name="Match 1.mp4")["id"]
        edit(client, jid, op="reject", event_id="p3")
        edit(client, jid, op="add", frame=33, label="shot")
        r = client.get(f"/api/jobs/{jid}/export", params={"fmt": "spot"})
    labels = tmp_path / "labels"
    with zipfile.ZipFile(__import__("io").BytesIO(r.content)) as zf:
        zf.extractall(labels)
    (labels / "val.json").write_bytes((labels / "train.json").read_bytes())
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "Match_1.mp4").write_bytes(video_bytes)
    code = main(["train", str(labels), str(videos), "-s", str(tmp_path / "run"), "-m", "test_tiny_tsm", "-t", "fc",
                 "--clip_len", "16", "--height", "48", "--epoch-clips", "2", "--num-epochs", "1", "--batch-size", "2",
                 "-j", "0", "--device", "cpu", "--precision", "fp32", "--no-mixup", "--start-val-epoch", "0"])
    assert code == 0 and (tmp_path / "run" / "best.pt").is_file()
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["classes"] == ["card", "goal", "shot"]


def test_review_replay_and_summary_units():
    from e2espot.web.review import (
        EditError,
        ReviewEvent,
        apply_edit,
        base_events,
        check_edit,
        corrected_labels,
        summary,
    )

    video = VideoLabels("m", 25.0, 100, [Event(40, "goal", 0.5), Event(10, "shot", 0.9), Event(10, "card", 0.2)])
    events = {e.id: e for e in base_events(video)}
    assert [(e.id, e.frame, e.label) for e in events.values()] == [("p0", 10, "card"), ("p1", 10, "shot"),
                                                                   ("p2", 40, "goal")]
    assert summary(list(events.values()))["precision"] is None
    apply_edit(events, 1, "confirm", "p0", {})
    apply_edit(events, 2, "delete", "p1", {})
    apply_edit(events, 3, "add", "a3", {"frame": 99, "label": "goal", "team": "", "note": ""})
    s = summary(list(events.values()))
    assert (s["reviewed"], s["true_positives"], s["precision"], s["rejected"], s["total"]) == (2, 1, 0.5, 1, 3)
    assert events["a3"] == ReviewEvent("a3", 99, "goal", None, "analyst", review="confirmed")
    out = corrected_labels(video, ["card", "goal", "shot"], list(events.values()), scope="confirmed")
    assert [(e.frame, e.label) for e in out.videos[0].events] == [(10, "card"), (99, "goal")]
    out = corrected_labels(video, ["card", "goal", "shot"], list(events.values()))
    assert [(e.frame, e.label, e.score) for e in out.videos[0].events] == [(10, "card", None), (40, "goal", None),
                                                                           (99, "goal", None)]
    with pytest.raises(EditError, match="scope 'some' is not one of: all, confirmed"):
        corrected_labels(video, [], [], scope="some")
    with pytest.raises(EditError, match="note must be text of at most 2000 characters"):
        check_edit("note", {"note": "x" * 2001}, classes=[], num_frames=10)
    with pytest.raises(EditError, match="team holds a control character"):
        check_edit("team", {"team": "a\x00b"}, classes=[], num_frames=10)
    with pytest.raises(EditError, match="frame -1 is outside the video"):
        check_edit("add", {"frame": -1, "label": "goal"}, classes=["goal"], num_frames=10)

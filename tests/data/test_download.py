"""Downloads against a fake Hugging Face Hub on 127.0.0.1 (nothing reaches the internet), and the
SoccerNet password rules."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from e2espot.data import download
from e2espot.errors import ConfigError

SHA = "c0ffee" + "0" * 34
FILES = {"train.zip": b"TRAIN" * 4000, "valid.zip": b"VALID" * 300, "challenge.zip": b"CH", "README.md": b"#"}


class FakeHub:
    """Enough of the Hub API for ``snapshot_download``: revision info, tree, HEAD/GET resolve (with Range)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.cut: dict[str, int] = {}  # file -> how many GETs to break off halfway
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body=b"", headers=None, head=False):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _handle(self, head):
                path = self.path.split("?")[0]
                hub.log.append((self.command, path))
                if "/gated" in path:
                    return self._send(401, b"{}", {"X-Error-Code": "GatedRepo"}, head)
                if re.fullmatch(r"/api/datasets/[^/]+/[^/]+/revision/[^/]+", path):
                    body = json.dumps({"id": "x", "sha": SHA, "siblings": [{"rfilename": f} for f in FILES]})
                    return self._send(200, body.encode(), {"Content-Type": "application/json"}, head)
                if re.fullmatch(r"/api/datasets/[^/]+/[^/]+/tree/[^/]+(/.*)?", path):
                    body = json.dumps([{"type": "file", "path": f, "size": len(b),
                                        "oid": hashlib.sha1(b).hexdigest()} for f, b in FILES.items()])
                    return self._send(200, body.encode(), {"Content-Type": "application/json"}, head)
                m = re.fullmatch(r"/datasets/[^/]+/[^/]+/resolve/[^/]+/(.+)", path)
                if m and m.group(1) in FILES:
                    data = FILES[m.group(1)]
                    headers = {"X-Repo-Commit": SHA, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
                    if not head and hub.cut.get(m.group(1)):
                        hub.cut[m.group(1)] -= 1
                        self.send_response(200)
                        for k, v in headers.items():
                            self.send_header(k, v)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data[: len(data) // 2])
                        self.close_connection = True
                        return None
                    return self._send(200, data, headers, head)
                return self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"}, head)

            def do_GET(self):
                self._handle(False)

            def do_HEAD(self):
                self._handle(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def downloads(self) -> list[str]:
        return [p.rsplit("/", 1)[-1] for method, p in self.log if method == "GET" and "/resolve/" in p]


@pytest.fixture
def hub(monkeypatch):
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest sets HF_HUB_OFFLINE=1
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    real_getaddrinfo = socket.getaddrinfo

    def local_only(host, *args, **kwargs):  # nothing may reach the internet
        if host not in ("127.0.0.1", "localhost"):
            raise OSError(f"test tried to reach {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    fake = FakeHub()
    # the SoccerNet package passes no endpoint: point the library defaults at the fake hub
    monkeypatch.setattr(constants, "ENDPOINT", fake.url)
    template = fake.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    yield fake
    fake.server.shutdown()


def test_team_bas_download_is_complete_and_resumable(hub, tmp_path):
    out = download.download_team_bas(tmp_path / "bas", ["train", "valid"], endpoint=hub.url)
    assert (out / "train.zip").read_bytes() == FILES["train.zip"]
    assert (out / "valid.zip").read_bytes() == FILES["valid.zip"]
    assert not (out / "challenge.zip").exists() and not (out / "README.md").exists()
    assert sorted(hub.downloads()) == ["train.zip", "valid.zip"]
    hub.log.clear()
    download.download_team_bas(tmp_path / "bas", ["train", "valid", "challenge"], endpoint=hub.url)
    assert hub.downloads() == ["challenge.zip"]  # complete files are not fetched again


def test_interrupted_transfer_ends_with_the_right_bytes(hub, tmp_path):
    hub.cut["train.zip"] = 1
    out = download.download_hf("SoccerNet/SN-BAS-2025", tmp_path / "d", include=["train.zip"],
                               endpoint=hub.url)
    assert (out / "train.zip").read_bytes() == FILES["train.zip"]
    assert hub.downloads().count("train.zip") == 2


def test_gated_repo_gives_a_clear_error(hub, tmp_path):
    with pytest.raises(download.DownloadError, match=r"gated: request access .*huggingface-cli login"):
        download.download_hf("SoccerNet/gated", tmp_path / "g", endpoint=hub.url)


def test_soccernet_package_task_through_the_fake_hub(hub, tmp_path, monkeypatch):
    pytest.importorskip("SoccerNet.Downloader")
    monkeypatch.setenv(download.PASSWORD_ENV, "nda-secret")  # must not be used for task data
    path = download.download_soccernet_task(tmp_path / "sn", "spotting-ball-2025", ["valid"])
    assert path == tmp_path / "sn" / "spotting-ball-2025"
    assert (path / "valid.zip").read_bytes() == FILES["valid.zip"]


def test_cli_download_team_bas(hub, tmp_path, capsys):
    from e2espot.cli import main

    assert main(["download", "team-bas", str(tmp_path / "o"), "--split", "valid", "--endpoint", hub.url]) == 0
    assert "1 files, 0.0 MB" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse choices
        main(["download", "team-bas", str(tmp_path / "o"), "--split", "final"])


def test_nda_password_only_for_videos(monkeypatch, tmp_path):
    seen = {}

    class FakeDownloader:
        def __init__(self, root):
            self.password = None

        def downloadDataTask(self, task, split, password, source):
            seen["task"] = (task, split, password, source)

        def downloadGames(self, files, split, task, source):
            seen["games"] = (files, split, task, self.password)

    monkeypatch.setattr(download, "_downloader", lambda out: FakeDownloader(out))
    monkeypatch.setenv(download.PASSWORD_ENV, "nda-secret")
    download.download_soccernet_task(tmp_path, "spotting-2023", ["train"])
    assert seen["task"] == ("spotting-2023", ["train"], "SoccerNet", "HuggingFace")  # never the NDA one
    download.download_soccernet_videos(tmp_path, ["1_224p.mkv"], ["test"], password=download.nda_password())
    assert seen["games"] == (["1_224p.mkv"], ["test"], "spotting", "nda-secret")


def test_nda_password_sources(monkeypatch):
    monkeypatch.setenv(download.PASSWORD_ENV, "from-env")
    assert download.nda_password() == "from-env"
    monkeypatch.delenv(download.PASSWORD_ENV)
    assert download.nda_password(prompt=lambda text: "typed", interactive=True) == "typed"
    with pytest.raises(ConfigError, match="set SOCCERNET_PASSWORD in the environment"):
        download.nda_password(interactive=False)

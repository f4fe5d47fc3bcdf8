"""Getting the data: SoccerNet tasks through the ``SoccerNet`` package's downloader, and Hugging Face Hub
datasets (the 2025 Team-BAS set ``SoccerNet/SN-BAS-2025``) through ``huggingface_hub``.

* Hugging Face: ``huggingface_hub.snapshot_download`` into a plain folder (``local_dir``): files are
  checked against the Hub's commit, so running the same command again skips the complete files and
  fetches only what is missing or changed (an interrupted file is fetched again); progress bars come
  from ``huggingface_hub``. ``endpoint`` (or the ``HF_ENDPOINT`` environment variable) points it at a
  mirror; gated repos need ``huggingface-cli login`` (or ``HF_TOKEN``).
* SoccerNet: ``SoccerNet.Downloader.SoccerNetDownloader(out_dir).downloadDataTask(task, split, ...)``
  for a task's data, ``downloadGames(files, split, task)`` for per-game files (videos need the NDA
  password). The password is read from the ``SOCCERNET_PASSWORD`` environment variable or a prompt,
  never from the command line (shell history). It is passed **only** for NDA video downloads: the
  public task data takes the package's generic password, and passing the NDA password there is the
  known HTTP 401 trap (SoccerNet/sn-spotting#16). The SoccerNet package prints its own messages.

Nothing here runs at import; ``huggingface_hub`` and ``SoccerNet`` are imported inside the functions.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from e2espot.errors import ConfigError, E2ESpotError

__all__ = [
    "PASSWORD_ENV",
    "TEAM_BAS_REPO",
    "TEAM_BAS_SPLITS",
    "DownloadError",
    "download_hf",
    "download_soccernet_task",
    "download_soccernet_videos",
    "download_team_bas",
    "nda_password",
]

PASSWORD_ENV = "SOCCERNET_PASSWORD"
TEAM_BAS_REPO = "SoccerNet/SN-BAS-2025"
TEAM_BAS_SPLITS = ("train", "valid", "test", "challenge")
PUBLIC_PASSWORD = "SoccerNet"  # the SoccerNet package's generic password for public task data


class DownloadError(E2ESpotError):
    """A download failed (network, permissions, or a repo / file that does not exist)."""


def nda_password(
    env: str = PASSWORD_ENV,
    *,
    prompt: Callable[[str], str] | None = None,
    interactive: bool | None = None,
) -> str:
    """The SoccerNet NDA password: ``$SOCCERNET_PASSWORD``, else a prompt on a terminal (not echoed).

    Raises ConfigError when neither is available (a non-interactive run without the variable)."""
    value = os.environ.get(env)
    if value:
        return value
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        raise ConfigError(
            f"the SoccerNet videos need the NDA password: set {env} in the environment (it is never taken "
            "from the command line). Sign the NDA at https://www.soccer-net.org/data to get it"
        )
    if prompt is None:
        from getpass import getpass as prompt
    value = prompt("SoccerNet NDA password: ")
    if not value:
        raise ConfigError("empty SoccerNet NDA password")
    return value


def download_hf(
    repo_id: str,
    out_dir: str | os.PathLike[str],
    *,
    include: Sequence[str] | None = None,
    revision: str = "main",
    repo_type: str = "dataset",
    endpoint: str | None = None,
) -> Path:
    """Download (or complete) ``repo_id`` into ``out_dir``; ``include``: glob patterns of the files to get
    (default all). Returns ``out_dir``. Raises DownloadError with the reason and the fix."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        snapshot_download(
            repo_id, repo_type=repo_type, revision=revision, local_dir=out,
            allow_patterns=list(include) if include else None, endpoint=endpoint,
        )
    except OfflineModeIsEnabled:
        raise DownloadError(
            f"cannot download {repo_id}: huggingface_hub is in offline mode (HF_HUB_OFFLINE=1); unset it"
        ) from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        hint = (f" The repo may be gated: request access at https://huggingface.co/datasets/{repo_id} and "
                "log in (huggingface-cli login, or HF_TOKEN)" if status in (401, 403) else "")
        raise DownloadError(f"cannot download {repo_id} ({revision}): {exc}.{hint}") from None
    except (LocalEntryNotFoundError, OSError) as exc:
        raise DownloadError(f"cannot download {repo_id} ({revision}) into {out}: {exc}") from None
    return out


def download_team_bas(
    out_dir: str | os.PathLike[str],
    splits: Sequence[str] = TEAM_BAS_SPLITS,
    *,
    endpoint: str | None = None,
) -> Path:
    """The 2025 Team-BAS data (``SoccerNet/SN-BAS-2025``): ``<split>.zip`` files, the same patterns the
    SoccerNet package's ``spotting-ball-2025`` task asks for. Returns ``out_dir``."""
    unknown = sorted(set(splits) - set(TEAM_BAS_SPLITS))
    if unknown or not splits:
        raise ConfigError(
            f"Team-BAS splits {unknown or list(splits)}: expected some of {', '.join(TEAM_BAS_SPLITS)}"
        )
    return download_hf(TEAM_BAS_REPO, out_dir, include=[f"*{s}.zip" for s in splits], endpoint=endpoint)


def _downloader(out_dir: str | os.PathLike[str]):
    try:
        from SoccerNet.Downloader import SoccerNetDownloader
    except ImportError as exc:
        raise ConfigError(f"the SoccerNet package is needed for this download ({exc}); pip install SoccerNet"
                          ) from None
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return SoccerNetDownloader(str(out_dir))


def download_soccernet_task(
    out_dir: str | os.PathLike[str],
    task: str,
    splits: Sequence[str],
    *,
    source: str = "HuggingFace",
) -> Path:
    """A SoccerNet task's data (e.g. ``spotting-ball-2025``, ``spotting-2023``) for ``splits`` through the
    SoccerNet package; the public password only (see the module docstring). Returns ``out_dir/task``."""
    if not splits:
        raise ConfigError("no split to download; pass e.g. train valid test")
    downloader = _downloader(out_dir)
    try:
        downloader.downloadDataTask(task=task, split=list(splits), password=PUBLIC_PASSWORD, source=source)
    except PermissionError as exc:  # the package's message for gated Hugging Face repos
        raise DownloadError(str(exc)) from None
    return Path(out_dir) / task


def download_soccernet_videos(
    out_dir: str | os.PathLike[str],
    files: Sequence[str],
    splits: Sequence[str],
    *,
    task: str = "spotting",
    password: str,
    source: str = "HuggingFace",
) -> Path:
    """Per-game files (``1_224p.mkv``, ``Labels-v2.json``, ...) of every game of ``splits`` through the
    SoccerNet package's ``downloadGames``, with the NDA ``password`` (see :func:`nda_password`)."""
    if not files or not splits:
        raise ConfigError("name the files (e.g. 1_224p.mkv 2_224p.mkv) and the splits to download")
    downloader = _downloader(out_dir)
    downloader.password = password
    try:
        downloader.downloadGames(files=list(files), split=list(splits), task=task, source=source)
    except PermissionError as exc:
        raise DownloadError(str(exc)) from None
    return Path(out_dir)

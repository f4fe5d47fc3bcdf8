"""``hf://OWNER/REPO[/SUBDIR][@REV]`` model references, through ``huggingface_hub`` and its cache.

The snapshot is fetched with ``huggingface_hub.snapshot_download`` into the Hugging Face cache
(``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``), only the SUBDIR when one is
given. With ``HF_HUB_OFFLINE=1`` nothing is downloaded: a cached snapshot is used, and a missing one is
one ``CheckpointError`` that names the cache folder and the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from e2espot.errors import CheckpointError, ConfigError

SCHEME = "hf://"
_TRUE = {"1", "ON", "YES", "TRUE"}


def parse_hf_ref(ref: str | Path) -> tuple[str, str | None, str | None] | None:
    """``(repo_id, subdir, revision)`` of an ``hf://`` reference, or None for anything else.

    ``Path("hf://a/b")`` collapses the slashes to ``hf:/a/b``; that form is accepted too, so a CLI option
    parsed as a Path still works.
    """
    text = str(ref)
    if text.startswith(SCHEME):
        rest = text[len(SCHEME):]
    elif text.startswith("hf:/"):
        rest = text[len("hf:/"):]
    else:
        return None
    rest, _, revision = rest.partition("@")
    parts = [p for p in rest.split("/") if p]
    if len(parts) < 2 or any(p in (".", "..") for p in parts):
        raise ConfigError(f"'{text}': expected hf://OWNER/REPO[/SUBDIR][@REVISION], e.g. hf://jhong93/models/tennis")
    return "/".join(parts[:2]), "/".join(parts[2:]) or None, revision or None


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def hf_snapshot(repo_id: str, subdir: str | None = None, revision: str | None = None) -> Path:
    """Local folder of ``repo_id`` at ``revision`` (default branch when None), SUBDIR inside it."""
    from huggingface_hub import snapshot_download

    ref = f"{SCHEME}{repo_id}{'/' + subdir if subdir else ''}{'@' + revision if revision else ''}"
    cache = hub_cache_dir()
    offline = is_offline()
    try:
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=str(cache), local_files_only=offline,
            allow_patterns=[f"{subdir}/*"] if subdir else None,
        )
    except Exception as exc:  # huggingface_hub raises its own errors (offline, not found, HTTP) and OSError
        if offline:
            raise CheckpointError(
                f"{ref}: not in the Hugging Face cache {cache} and HF_HUB_OFFLINE=1 forbids downloading it. "
                "Unset HF_HUB_OFFLINE and run once online, or point HF_HUB_CACHE at a cache that holds it"
            ) from None
        raise CheckpointError(
            f"{ref}: cannot get it from the Hugging Face Hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Check the repository name and revision, "
            f"your network, or use a local copy (cache: {cache})"
        ) from None
    path = Path(folder) / subdir if subdir else Path(folder)
    if not path.exists():
        raise CheckpointError(f"{ref}: the snapshot in {folder} has no '{subdir}'; check the SUBDIR")
    return path


def resolve_model_ref(ref: str | Path) -> Path:
    """A local path for ``ref``: an ``hf://`` reference is resolved through the hub cache, else ``Path(ref)``."""
    parsed = parse_hf_ref(ref)
    if parsed is None:
        return Path(ref)
    return hf_snapshot(*parsed)

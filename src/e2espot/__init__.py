"""e2espot: precise event spotting in sports videos.

Public facade (loaded on first use, so ``import e2espot`` stays light)::

    from e2espot import open_video, load_model, predict, evaluate

See ``e2espot.api`` for what each one is.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "evaluate", "load_model", "open_video", "predict"]

_FACADE = ("evaluate", "load_model", "open_video", "predict")


def __getattr__(name: str) -> Any:
    if name in _FACADE:
        from e2espot import api

        return getattr(api, name)
    raise AttributeError(f"module 'e2espot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FACADE))

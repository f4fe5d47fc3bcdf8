"""timm-style registries for backbones, temporal modules and heads.

Every component is a small factory registered under a short, frozen key::

    @register_backbone("rny002")
    def rny002(pretrained: bool = False) -> BackboneParts: ...

Callers never dispatch on name fragments; they ask a registry (``create_backbone``, ``create_head``,
``create_temporal_module``) and get an :class:`~e2espot.errors.UnknownNameError` with a did-you-mean hint
for a bad key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from e2espot.errors import unknown_name

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry:
    """One registered factory plus its metadata (e.g. where a temporal module goes)."""

    name: str
    factory: Callable[..., Any]
    meta: dict[str, Any] = field(default_factory=dict)


class Registry:
    """A name → factory table for one kind of component."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, **meta: Any) -> Callable[[F], F]:
        """Decorator: register ``fn`` under ``name`` (keys are frozen once released)."""

        def deco(fn: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")  # programming error, not user input
            self._entries[name] = Entry(name, fn, dict(meta))
            return fn

        return deco

    def get(self, name: str) -> Entry:
        """The entry for ``name``; UnknownNameError (with did-you-mean) when absent."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise unknown_name(self.kind, str(name), self._entries) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


BACKBONES = Registry("backbone")
TEMPORAL_MODULES = Registry("temporal module")
HEADS = Registry("head")


def register_backbone(name: str, **meta: Any) -> Callable[[F], F]:
    return BACKBONES.register(name, **meta)


def register_temporal_module(name: str, **meta: Any) -> Callable[[F], F]:
    return TEMPORAL_MODULES.register(name, **meta)


def register_head(name: str, **meta: Any) -> Callable[[F], F]:
    return HEADS.register(name, **meta)


def _ensure_registered() -> None:
    # Importing the implementation modules fills the registries (decorators run at import).
    from e2espot.models import backbones, heads, temporal, x3d  # noqa: F401


def list_backbones() -> list[str]:
    _ensure_registered()
    return BACKBONES.names()


def list_temporal_modules() -> list[str]:
    _ensure_registered()
    return TEMPORAL_MODULES.names()


def list_heads() -> list[str]:
    _ensure_registered()
    return HEADS.names()


def parse_arch(arch: str) -> tuple[str, str | None]:
    """Split a legacy E2E-Spot architecture name into (backbone, temporal module).

    ``parse_arch("rny008_gsm") == ("rny008", "gsm")``, ``parse_arch("rn50") == ("rn50", None)``.
    Both parts are looked up in the registries; a bad name raises UnknownNameError.
    """
    _ensure_registered()
    if arch in BACKBONES:
        return arch, None
    backbone, sep, module = arch.rpartition("_")
    if sep and backbone in BACKBONES:
        TEMPORAL_MODULES.get(module)  # raises with a hint when the suffix is unknown
        return backbone, module
    legacy = [f"{b}_{m}" for b in BACKBONES.names() for m in TEMPORAL_MODULES.names()]
    raise unknown_name("architecture", arch, BACKBONES.names() + legacy)

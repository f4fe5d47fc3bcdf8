"""One exception family. Messages say what, where, the value, what was expected, and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class E2ESpotError(Exception):
    """Base class of every error the library raises on bad input or state."""


class ConfigError(E2ESpotError):
    """An option or configuration value is invalid."""


class LabelFormatError(E2ESpotError):
    """A label or prediction file is malformed or inconsistent."""


class VideoError(E2ESpotError):
    """A video file or frame folder cannot be read as asked."""


class CheckpointError(E2ESpotError):
    """A checkpoint or run directory is missing, corrupt or incompatible."""


class UnknownNameError(E2ESpotError, KeyError):
    """A registry key (backbone, head, format, ...) does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def unknown_name(kind: str, name: str, available: Iterable[str]) -> UnknownNameError:
    """Build an UnknownNameError with a 'did you mean' hint."""
    names = sorted(available)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return UnknownNameError(f"unknown {kind} '{name}'{hint} Available: {', '.join(names)}")

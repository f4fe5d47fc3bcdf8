"""Label formats: read any supported format into a ``LabelSet`` and write it back.

Registry keys (frozen): ``spot``, ``futsal``, ``soccernet``, ``soccernet-results``, ``csv``. Each module's
docstring documents its layout and options; options are passed as keyword arguments::

    labels = read_labels("data/tennis", split="val")            # format detected from the layout
    write_labels(labels, "out/events.csv", "csv")

This package is the only reader and writer of event and label files: ``predictions`` holds the writers of
prediction files (JSON, CSV, results_spotting.json) that ``predict``, ``test``, ``export`` and the web app
share.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from e2espot.data.formats import csvfile, futsal, soccernet, soccernet_results, spot
from e2espot.data.formats._common import LabelFormat, check_options, load_json
from e2espot.data.formats.predictions import read_predictions, write_prediction_csv, write_prediction_json
from e2espot.data.labels import LabelSet
from e2espot.errors import LabelFormatError, unknown_name

_FORMATS: dict[str, LabelFormat] = {
    f.name: f
    for f in (spot.FORMAT, futsal.FORMAT, soccernet.FORMAT, soccernet_results.FORMAT, csvfile.FORMAT)
}

__all__ = [
    "LabelFormat",
    "detect_format",
    "get_format",
    "list_formats",
    "read_labels",
    "read_predictions",
    "write_labels",
    "write_prediction_csv",
    "write_prediction_json",
]


def list_formats() -> list[str]:
    """Registered format keys."""
    return list(_FORMATS)


def get_format(name: str) -> LabelFormat:
    """The format object for a key; UnknownNameError with a hint otherwise."""
    try:
        return _FORMATS[name]
    except KeyError:
        raise unknown_name("label format", name, _FORMATS) from None


def _options(func: Any) -> list[str]:
    return [p.name for p in inspect.signature(func).parameters.values() if p.kind is p.KEYWORD_ONLY]


def detect_format(path: str | Path, *, option: str = "fmt=") -> str:
    """Guess the format of a file or folder from its name, layout and content.

    ``option`` is how the caller lets a user name the format (a CLI passes its flag, e.g. ``--from``);
    error messages point to it.
    """
    path = Path(path)
    if not path.exists():
        raise LabelFormatError(f"{path}: no such file or folder")
    data = None
    if path.is_file() and (path.name.endswith(".json") or path.name.endswith(".json.gz")):
        data = load_json(path)
    matches = [name for name, fmt in _FORMATS.items() if fmt.sniff(path, data)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise LabelFormatError(
            f"{path}: cannot tell its label format; pass it explicitly ({option}), one of: "
            f"{', '.join(_FORMATS)}"
        )
    raise LabelFormatError(
        f"{path}: ambiguous label format, looks like {' and '.join(matches)}; "
        f"pass it explicitly ({option})"
    )


def read_labels(path: str | Path, fmt: str | None = None, **opts: Any) -> LabelSet:
    """Read labels or predictions; ``fmt=None`` detects the format. Raises LabelFormatError on bad data."""
    name = detect_format(path) if fmt is None else fmt
    format_ = get_format(name)
    check_options(name, opts, _options(format_.read), "reading")
    return format_.read(path, **opts)


def write_labels(labels: LabelSet, path: str | Path, fmt: str, **opts: Any) -> list[Path]:
    """Write ``labels`` in format ``fmt``; returns the files written."""
    format_ = get_format(fmt)
    check_options(fmt, opts, _options(format_.write), "writing")
    return [Path(p) for p in format_.write(labels, path, **opts)]

"""Helpers shared by the label format modules: JSON and class-file I/O, strict field checks."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2espot.data.labels import LabelSet, VideoLabels, infer_classes, validate_labels
from e2espot.errors import ConfigError, LabelFormatError

ClassesOpt = Sequence[str] | str | Path | None

log = logging.getLogger("e2espot.data.formats")
EXAMPLES = 3  # how many examples a once-per-file warning names


@dataclass(frozen=True)
class LabelFormat:
    """A registered label format: ``read(path, **opts)``, ``write(labels, path, **opts)``, a sniffer."""

    name: str
    description: str
    read: Callable[..., LabelSet]
    write: Callable[..., list[Path]]
    # sniff(path, data): data is the parsed JSON of a .json/.json.gz file, None otherwise
    sniff: Callable[[Path, Any], bool]


def load_json(path: Path) -> Any:
    """Parse a JSON (or gzipped JSON) file; raise LabelFormatError with the line number on bad JSON."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fp:
                text = fp.read()
        else:
            text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelFormatError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelFormatError(f"{path}: cannot read: {exc}") from None
    return loads_json(text, str(path))


def loads_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelFormatError(
            f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def dump_json(obj: Any, path: Path, *, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """Write JSON (gzipped, deterministic, when the name ends in .gz). No trailing newline, as E2E-Spot."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fp:
            fp.write(text.encode("utf-8"))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read_class_file(path: Path) -> list[str]:
    """E2E-Spot ``class.txt``: one class per line, blank lines skipped; line i is class id i + 1."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelFormatError(f"{path}: class file not found") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def write_class_file(classes: Sequence[str], path: Path) -> Path:
    """Write ``class.txt`` as E2E-Spot ships it (one per line, no trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(classes), encoding="utf-8")
    return path


def resolve_classes(classes: ClassesOpt, videos: Iterable[VideoLabels]) -> list[str]:
    """``classes`` option: a list, a path to a class.txt, or None (sorted labels used by ``videos``)."""
    if classes is None:
        return infer_classes(videos)
    if isinstance(classes, (str, Path)):
        return read_class_file(Path(classes))
    return [str(c) for c in classes]


def finish(
    classes: list[str],
    videos: list[VideoLabels],
    sources: Sequence[str],
    root: str,
    *,
    strict: bool = False,
) -> LabelSet:
    """Validate each video against the file it came from, then the whole set (duplicate ids).

    Events at or after ``num_frames`` are moved to the last frame (``num_frames - 1``) with one
    warning per file naming the count and the first examples, as the reference tools keep them
    (jhong93/spot's parsers keep them; the SoccerNet evaluator clips positions to the last cell of
    its grid). ``strict=True`` makes them a LabelFormatError instead.
    """
    if not strict:
        clamp_past_end(videos, sources)
    for video, source in zip(videos, sources):
        validate_labels(LabelSet(classes, [video]), source)
    return validate_labels(LabelSet(classes, videos), root)


def warn_file(source: str, count: int, what: str, examples: Sequence[str], action: str) -> None:
    """One warning for one file: ``count`` events ``what``, the first examples, and what was done."""
    shown = "; ".join(examples[:EXAMPLES]) + (f"; ... ({count - EXAMPLES} more)" if count > EXAMPLES else "")
    log.warning("%s: %d event%s %s (%s): %s", source, count, "" if count == 1 else "s", what, shown, action)


def clamp_past_end(videos: Sequence[VideoLabels], sources: Sequence[str]) -> int:
    """Move events at frame >= num_frames to the last frame; warn once per file. Returns the count."""
    by_source: dict[str, list[str]] = {}
    for video, source in zip(videos, sources):
        n = video.num_frames
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            continue  # unknown or invalid num_frames: validate_labels reports it
        for i, e in enumerate(video.events):
            if isinstance(e.frame, int) and not isinstance(e.frame, bool) and e.frame >= n:
                by_source.setdefault(source, []).append(
                    f"video '{video.video}' event #{i} ({e.label}) frame {e.frame} >= num_frames {n}"
                )
                e.frame = n - 1
    for source, examples in by_source.items():
        warn_file(source, len(examples), "at or after the last frame", examples,
                  "moved to the last frame, as the reference evaluators do; "
                  "pass strict=True (convert / evaluate: --strict) to make this an error")
    return sum(len(x) for x in by_source.values())


def require(obj: dict[str, Any], key: str, where: str) -> Any:
    """``obj[key]`` or a LabelFormatError naming where and the key."""
    if key not in obj:
        raise LabelFormatError(f"{where}: missing key '{key}'; present keys: {sorted(obj)}")
    return obj[key]


def expect_type(value: Any, kind: type | tuple[type, ...], what: str, where: str) -> Any:
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise LabelFormatError(f"{where}: {what} must be a JSON {_json_name(expected)}, got {value!r:.80}")
    return value


def _json_name(py: str) -> str:
    return py.replace("list", "array").replace("dict", "object").replace("str", "string")


def as_int(value: Any, what: str, where: str) -> int:
    """A non-negative integer from an int, an integral float or an integer string ("754000")."""
    if isinstance(value, bool):
        raise LabelFormatError(f"{where}: {what} {value!r} is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    else:
        raise LabelFormatError(f"{where}: {what} {value!r} is not an integer")
    if number < 0:
        raise LabelFormatError(f"{where}: {what} {number} is negative")
    return number


def as_float(value: Any, what: str, where: str) -> float:
    """A float from a number or a numeric string ("0.0066")."""
    if isinstance(value, bool):
        raise LabelFormatError(f"{where}: {what} {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LabelFormatError(f"{where}: {what} {value!r} is not a number") from None


def check_options(fmt: str, given: dict[str, Any], accepted: Iterable[str], action: str) -> None:
    """Raise ConfigError for options a format does not take."""
    accepted = sorted(accepted)
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ConfigError(
            f"label format '{fmt}' does not take option(s) {unknown} when {action}; "
            f"it takes: {', '.join(accepted) or 'none'}"
        )

"""The unit of the validation mAP a run logs: percent, and old runs' fractions read back as percent.

Runs written before this module logged ``val_map`` as a fraction (0..1) in ``metrics.json``,
``metrics.csv``, TensorBoard and the checkpoints' ``best_score``; every table printed percent. Runs
now log percent everywhere and mark each metrics row with ``map_unit: "percent"``. A row without the
marker is an old run's row: its ``val_map`` is a fraction. The marker, not the value, decides (an
early epoch can score 0.8 %, which a magnitude test would take for a fraction).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAP_UNIT_KEY = "map_unit"
PERCENT = "percent"


def map_percent(fraction: float) -> float:
    """A mAP in 0..1 (``e2espot.eval.metrics``) as the percent a run logs."""
    return 100.0 * float(fraction)


def is_percent(row: Mapping[str, Any]) -> bool:
    """Whether ``row`` (one epoch of metrics.json / metrics.csv) logs its mAP in percent."""
    return row.get(MAP_UNIT_KEY) == PERCENT


def row_in_percent(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with ``val_map`` in percent and the unit marker set (old fraction rows converted)."""
    out = dict(row)
    value = out.get("val_map")
    if not is_percent(row) and isinstance(value, (int, float)) and not isinstance(value, bool):
        out["val_map"] = map_percent(value)
    out[MAP_UNIT_KEY] = PERCENT
    return out


def history_in_percent(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every row of a metrics log with ``val_map`` in percent (see :func:`row_in_percent`)."""
    return [row_in_percent(r) for r in rows]


def resumed_in_percent(history: list[dict[str, Any]], best_score: float | None, criterion: str
                       ) -> tuple[list[dict[str, Any]], float | None]:
    """A checkpoint's history and best score in percent, for resuming a run written in either unit.

    ``best_score`` is a mAP only for ``criterion == "map"`` (for ``loss`` it is minus the val loss and
    stays). It is taken as a fraction when a validated row of ``history`` lacks the unit marker (an
    old run), so a resumed run compares its new percent scores with a percent best.
    """
    old = any("val_map" in r and not is_percent(r) for r in history)
    if old and criterion == "map" and best_score is not None:
        best_score = map_percent(best_score)
    return history_in_percent(history), best_score

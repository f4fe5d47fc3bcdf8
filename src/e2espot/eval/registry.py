"""Metrics registry: ``e2espot evaluate --metric`` choices and help come from here.

Each entry's factory returns the scoring function (imported on call, so this module stays light):

* ``e2e``: ``e2espot.eval.metrics.e2e_map`` (E2E-Spot mAP at frame tolerances).
* ``soccernet``: ``e2espot.eval.soccernet.soccernet_map`` (official average-mAP, tight / loose / at1..5).
* ``team``: ``e2espot.eval.team.team_map`` (Team-BAS mAP: action and team must both match).

To add a metric: register it here and dispatch on its key in ``commands/evaluate.py`` ``run``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from e2espot.models.registry import Registry

METRICS = Registry("metric")


@METRICS.register("e2e", help="E2E-Spot mAP at frame tolerances")
def _e2e() -> Callable[..., Any]:
    from e2espot.eval.metrics import e2e_map

    return e2e_map


@METRICS.register("soccernet", help="official average-mAP")
def _soccernet() -> Callable[..., Any]:
    from e2espot.eval.soccernet import soccernet_map

    return soccernet_map


@METRICS.register("team", help="Team-mAP@1 and the no-team mAP@1 of Team-BAS")
def _team() -> Callable[..., Any]:
    from e2espot.eval.team import team_map

    return team_map


def metric_help() -> str:
    """``key (what it is), ...`` for CLI help."""
    return "; ".join(f"{n}: {METRICS.get(n).meta['help']}" for n in METRICS.names())

"""Text tables and JSON for metric results. Metric functions return data; formatting lives here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from e2espot.errors import ConfigError
from e2espot.eval.metrics import PRF, ClassConfusion, MapResult

__all__ = ["format_confusion", "format_map", "format_prf", "format_soccernet", "format_subset", "format_table",
           "to_json"]


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, digits: int = 2) -> str:
    """Plain aligned text table; floats are shown with ``digits`` decimals."""
    def cell(v: Any) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    text = [[cell(v) for v in header]] + [[cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(header))]
    lines = []
    for n, r in enumerate(text):
        parts = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, len(r))]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_map(result: MapResult, *, percent: bool = True) -> str:
    """Per-class AP by tolerance (frames), an mAP row and the means, as spot's ``eval.py`` shows."""
    scale = 100.0 if percent else 1.0
    header = ["AP @ tol"] + [str(d) for d in result.tolerances]
    rows: list[list[Any]] = [
        [c] + [result.ap[d][c] * scale for d in result.tolerances] for c in result.classes
    ]
    rows.append(["mAP"] + [result.map_by_tolerance[d] * scale for d in result.tolerances])
    text = format_table(header, rows)
    text += f"\nAvg mAP (across tolerances): {result.mean * scale:.2f}"
    if any(d > 0 for d in result.tolerances) and 0 in result.tolerances:
        text += f"\nAvg mAP (tolerances > 0, spot's criterion): {result.spot_mean * scale:.2f}"
    return text


def format_soccernet(result: Mapping[str, Any], *, percent: bool = True) -> str:
    """Per-class average-mAP (all / visible / unshown) and the totals of a ``soccernet_map`` dict."""
    scale = 100.0 if percent else 1.0
    header = ["class", "a_mAP", "visible", "unshown"]
    rows: list[list[Any]] = [
        [c, result["per_class"][c] * scale, result["per_class_visible"][c] * scale,
         result["per_class_unshown"][c] * scale]
        for c in result["classes"]
    ]
    rows.append(["mAP", result["a_mAP"] * scale, result["a_mAP_visible"] * scale,
                 result["a_mAP_unshown"] * scale])
    title = f"SoccerNet {result.get('metric', '')} average-mAP (framerate {result.get('framerate', '')})"
    return title + "\n" + format_table(header, rows)


def format_prf(prf: Mapping[str, PRF], *, threshold: float, tolerance: int) -> str:
    rows = [[c, r.precision * 100, r.recall * 100, r.f1 * 100, r.tp, r.num_pred, r.num_gt]
            for c, r in prf.items()]
    head = f"precision / recall / F1 at score >= {threshold:g}, tolerance {tolerance} frames"
    return head + "\n" + format_table(["class", "P", "R", "F1", "TP", "pred", "GT"], rows)


def format_confusion(conf: Mapping[str, ClassConfusion]) -> str:
    rows = [[c, r.matched, r.missed, r.duplicate, r.spurious, r.wrong_class] for c, r in conf.items()]
    return format_table(["class", "matched", "missed", "duplicate", "spurious", "wrong class"], rows)


def to_json(result: MapResult | Mapping[str, Any]) -> dict[str, Any]:
    """``{"metric", "mAP", "per_class": {class: AP}, "by_tolerance": {...}}`` (fractions in [0, 1]).

    For an E2E-Spot ``MapResult``: ``mAP`` is the mean over tolerances, ``per_class`` the mean AP
    over tolerances, ``by_tolerance[str(δ)] = {"mAP", "per_class"}``; ``spot_mean`` is added.
    For a SoccerNet dict: ``mAP`` is ``a_mAP``, ``per_class`` the per-class average-mAP,
    ``by_tolerance`` holds the visible and unshown splits, and the official keys are kept.
    """
    if isinstance(result, MapResult):
        tols = result.tolerances
        per_class = {c: sum(result.ap[d][c] for d in tols) / len(tols) for c in result.classes}
        return {
            "metric": "e2e",
            "mAP": result.mean,
            "spot_mean": result.spot_mean,
            "per_class": per_class,
            "by_tolerance": {
                str(d): {"mAP": result.map_by_tolerance[d], "per_class": dict(result.ap[d])} for d in tols
            },
            "num_gt": dict(result.num_gt),
            "num_pred": dict(result.num_pred),
        }
    if isinstance(result, Mapping) and "a_mAP" in result:
        out = {
            "metric": f"soccernet-{result.get('metric', '')}",
            "mAP": float(result["a_mAP"]),
            "per_class": {k: float(v) for k, v in result["per_class"].items()},
            "by_tolerance": {
                "deltas_s": list(result.get("deltas_s", [])),
                "visible": {"mAP": float(result["a_mAP_visible"]),
                            "per_class": dict(result["per_class_visible"])},
                "unshown": {"mAP": float(result["a_mAP_unshown"]),
                            "per_class": dict(result["per_class_unshown"])},
            },
        }
        for k in ("a_mAP", "a_mAP_per_class", "a_mAP_visible", "a_mAP_per_class_visible",
                  "a_mAP_unshown", "a_mAP_per_class_unshown", "framerate", "classes"):
            if k in result:
                v = result[k]
                out[k] = [float(x) for x in v] if k.startswith("a_mAP_per") else v
        return out
    raise ConfigError(f"to_json expects a MapResult or a soccernet_map dict, not {type(result).__name__}")


def format_subset(score: Any, full_map: float, *, percent: bool = True) -> str:
    """One line: the mAP without the N rarest classes beside the full mAP (a ``subsets.SubsetScore``).

    E2E-Spot results show the mean over tolerances (and each tolerance), SoccerNet the average-mAP.
    """
    scale = 100.0 if percent else 1.0
    dropped = ", ".join(f"{c} ({score.counts[c]})" for c in score.dropped) or "none"
    text = (f"mAP over {len(score.classes)} classes without the {score.drop_rarest} rarest [{dropped} GT events]: "
            f"{score.mAP * scale:.2f} (all {len(score.counts)} classes: {full_map * scale:.2f})")
    per_tol = [f"{k} {v * scale:.2f}" for k, v in score.detail.items() if k.startswith("mAP@")]
    if per_tol:
        text += "\n  by tolerance: " + ", ".join(per_tol)
    return text

"""Export targets registry: ``e2espot export --to`` choices and help come from here.

Each entry's factory returns the writer (imported on call, so this module stays light):

* ``csv``: ``e2espot.data.formats.write_prediction_csv`` (the one events CSV).
* ``soccernet``: ``e2espot.export.writers.write_soccernet_results`` (one game's results_spotting.json).
* ``chapters``: ``e2espot.export.writers.write_webvtt_chapters`` (``.vtt``) /
  ``write_ffmetadata_chapters`` (anything else); the factory returns both as a pair.
* ``highlights``: ``e2espot.export.highlights.write_highlight_reel`` (an .mp4 reel).

To add a target: register it here and dispatch on its key in ``commands/export.py`` ``run``.
"""

from __future__ import annotations

from typing import Any

from e2espot.models.registry import Registry

EXPORT_TARGETS = Registry("export target")


@EXPORT_TARGETS.register("csv", help="events CSV (the same bytes predict writes)")
def _csv() -> Any:
    from e2espot.data.formats import write_prediction_csv

    return write_prediction_csv


@EXPORT_TARGETS.register("soccernet", help="SoccerNet results_spotting.json of one game")
def _soccernet() -> Any:
    from e2espot.export.writers import write_soccernet_results

    return write_soccernet_results


@EXPORT_TARGETS.register("chapters", help="chapters: WebVTT (.vtt) or an ffmetadata file")
def _chapters() -> Any:
    from e2espot.export.writers import write_ffmetadata_chapters, write_webvtt_chapters

    return write_webvtt_chapters, write_ffmetadata_chapters


@EXPORT_TARGETS.register("highlights", help="highlight reel .mp4 (needs --video)")
def _highlights() -> Any:
    from e2espot.export.highlights import write_highlight_reel

    return write_highlight_reel


def target_help() -> str:
    """``key: what it writes; ...`` for CLI help."""
    return "; ".join(f"{n}: {EXPORT_TARGETS.get(n).meta['help']}" for n in EXPORT_TARGETS.names())

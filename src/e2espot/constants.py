"""Defaults shared by the library and the CLI, defined once (import-light: the CLI reads them to build
its parsers without importing numpy or torch).

* ``DEFAULT_TOLERANCES``: mAP tolerances in frames for ``test`` / ``evaluate`` (E2E-Spot reports 0-4).
* ``DEFAULT_SOCCERNET_LABEL_FILE``: the SoccerNet label file read when none is named (action spotting,
  ``Labels-v2.json``; ball action spotting uses ``Labels-ball.json``).
* ``VIDEO_EXTENSIONS`` lives in ``e2espot.data.video`` (the decoders' own list).
"""

from __future__ import annotations

DEFAULT_TOLERANCES: tuple[int, ...] = (0, 1, 2, 4)
DEFAULT_SOCCERNET_LABEL_FILE = "Labels-v2.json"

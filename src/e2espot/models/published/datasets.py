"""The input each published model was trained on, per reference dataset name.

A published checkpoint says its architecture but not the frame rate or frame size of its training
frames: those come from how the reference project extracted its dataset. This table holds them, with
the document each value comes from, so ``predict`` can resample a user's video to what the model saw.
Every value can be overridden at import time (``e2espot import-model --fps/--height/--width``).

Sources (jhong93/spot @ edec420 unless said otherwise):

* ``frames_as_jpg.py`` (tennis, fs): frames at the video's own rate, resized to ``--max_height 224``
  keeping the aspect ratio (1080p -> 398x224).
* ``data/tennis/README.md``: 1080p, Wimbledon 25 fps, US Open 30 fps (so: native rate).
* ``data/fs_comp/README.md``: 1920x1080 at 25 fps (fs_perf: same videos).
* ``frames_as_jpg_finegym.py``: stride 1 or 2 to the label file's fps, ``--max_height 224``.
* ``copy_frames_finediving.py``: the FineDiving authors' frames copied as they are (optional
  ``--resize_height``); the rate is not stated, so it stays the source's.
* ``frames_as_jpg_soccernet.py``: ``--sample_fps 2`` (stride ``int(fps / 2)``), ``cv2.resize`` to a
  fixed 398x224; ``data/soccernetv2/README.md`` "Extract frames at 2 FPS".
* ``data/soccernet_ball/README.md``: ``--sample_fps 25``, 398x224.
* OpenSportsLab/opensportslib @ c5286dd ``config/localization.yaml``: ``target_height 224``,
  ``target_width 398``, ``extract_fps 2`` (every ``int(25 / 2) = 12``-th frame of a 25 fps video).

Class lists: ``data/<dataset>/class.txt`` of jhong93/spot (index = line + 1). SoccerNet-v2's
``class.txt`` is not in the repository; ``parse_soccernet.py`` writes the sorted label names, listed
here from the fixture README of ``spot_soccer_rny008gsm_gru_rgb``.
"""

from __future__ import annotations

from dataclasses import dataclass

from e2espot.errors import unknown_name

TENNIS_CLASSES = (
    "far_court_bounce", "far_court_swing", "far_court_serve",
    "near_court_bounce", "near_court_swing", "near_court_serve",
)
FS_CLASSES = ("jump_landing", "jump_takeoff", "spin_landing", "spin_takeoff")
FINEDIVING_CLASSES = ("Entry", "Som(s).Pike", "Som(s).Tuck", "Twist(s)")
FINEGYM_CLASSES = tuple(
    f"{event}_{edge}"
    for event in (
        "BB_dismounts", "BB_flight_handspring", "BB_flight_salto", "BB_leap_jump_hop", "BB_turns",
        "FX_back_salto", "FX_front_salto", "FX_leap_jump_hop", "FX_side_salto", "FX_turns",
        "UB_circles", "UB_dismounts", "UB_fligh_same_bar", "UB_transition_flight",
    )
    for edge in ("end", "start")
) + ("VT_0", "VT_1", "VT_2", "VT_3")
SOCCERNETV2_CLASSES = (
    "Ball out of play", "Clearance", "Corner", "Direct free-kick", "Foul", "Goal", "Indirect free-kick",
    "Kick-off", "Offside", "Penalty", "Red card", "Shots off target", "Shots on target", "Substitution",
    "Throw-in", "Yellow card", "Yellow->red card",
)


@dataclass(frozen=True)
class ReferenceDataset:
    """How one reference dataset's frames were made (what its published models expect)."""

    name: str
    fps: float | None  # frames per second the model saw; None = the video's own rate
    height: int  # frame height in pixels
    width: int | None  # fixed width; None = keep the aspect ratio
    classes: tuple[str, ...] | None  # index i = class i + 1; None = not published with the code
    spots: str  # what the events are, for people
    source: str  # where fps / size / classes come from


DATASETS: dict[str, ReferenceDataset] = {
    d.name: d
    for d in (
        ReferenceDataset("tennis", None, 224, None, TENNIS_CLASSES,
                         "ball bounces, swings and serves, near and far court (broadcast tennis)",
                         "jhong93/spot data/tennis/README.md (1080p, 25 or 30 fps), frames_as_jpg.py "
                         "--max_height 224, data/tennis/class.txt"),
        ReferenceDataset("fs_comp", 25.0, 224, None, FS_CLASSES,
                         "figure skating jump and spin take-offs and landings",
                         "jhong93/spot data/fs_comp/README.md (1920x1080, 25 fps), frames_as_jpg.py "
                         "--max_height 224, data/fs_comp/class.txt"),
        ReferenceDataset("fs_perf", 25.0, 224, None, FS_CLASSES,
                         "figure skating jump and spin take-offs and landings",
                         "jhong93/spot data/fs_perf/README.md (= fs_comp videos), data/fs_perf/class.txt"),
        ReferenceDataset("finediving", None, 224, None, FINEDIVING_CLASSES,
                         "diving: entry, somersault pike / tuck, twist transitions",
                         "jhong93/spot copy_frames_finediving.py (authors' frames; fps not stated), "
                         "data/finediving/class.txt"),
        ReferenceDataset("finegym", None, 224, None, FINEGYM_CLASSES,
                         "gymnastics element starts and ends (beam, floor, bars, vault)",
                         "jhong93/spot frames_as_jpg_finegym.py (label fps, --max_height 224), "
                         "data/finegym/class.txt"),
        ReferenceDataset("soccernetv2", 2.0, 224, 398, SOCCERNETV2_CLASSES,
                         "the 17 SoccerNet-v2 actions (goal, corner, card, substitution, ...)",
                         "jhong93/spot frames_as_jpg_soccernet.py (--sample_fps 2, 398x224), "
                         "parse_soccernet.py (sorted labels)"),
        ReferenceDataset("soccernetv2_challenge", 2.0, 224, 398, SOCCERNETV2_CLASSES,
                         "the 17 SoccerNet-v2 actions (trained on train+val+test for the challenge)",
                         "jhong93/e2e-spot-models soccer_challenge_rny008gsm_gru_rgb/README.md, "
                         "frames_as_jpg_soccernet.py"),
        ReferenceDataset("soccernet_ball", 25.0, 224, 398, None,
                         "SoccerNet ball actions",
                         "jhong93/spot data/soccernet_ball/README.md (--sample_fps 25, 398x224)"),
        ReferenceDataset("osl_localization", 2.0, 224, 398, None,
                         "OpenSportsLib E2E localization (classes from its config.yaml)",
                         "OpenSportsLab/opensportslib config/localization.yaml (224x398, extract_fps 2)"),
    )
}


def get_dataset(name: str) -> ReferenceDataset:
    """The table row for a reference dataset name; UnknownNameError with the known names otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise unknown_name("reference dataset", str(name), DATASETS) from None

"""The one internal label model every format reads into and writes from.

Frames are 0-based. ``LabelSet.classes`` lists foreground classes; class id ``i + 1`` is
``classes[i]`` and id 0 is background, as in E2E-Spot's ``class.txt``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from e2espot.errors import ConfigError, LabelFormatError

VISIBLE = "visible"
NOT_SHOWN = "not shown"
# VideoLabels.extra key: the split file a video was read from (spot label folders); writers never write it
SPLIT_KEY = "_split"

# Teams are the side of the frame a team plays on (SoccerNet-Ball, Team-BAS): "left" / "right";
# "not applicable" (SoccerNet) or None when an event has no team. ``Event.extra[TEAM_SCORE_KEY]`` is the
# model's probability of the team it names (predictions with a team head).
LEFT, RIGHT, NO_TEAM = "left", "right", "not applicable"
TEAMS: tuple[str, str] = (LEFT, RIGHT)
TEAM_SCORE_KEY = "team_score"
HOME_AWAY = ("home", "away")


def parse_team(value: object, where: str, *, home_side: str | None = None) -> str | None:
    """A label file's team field: None / "" -> None; "left" / "right" / "not applicable" as they are;
    "home" / "away" mapped to a side when ``home_side`` ("left" or "right": the side the home team
    plays on) is given, else kept as written (SoccerNet-v2 files use them; Team-mAP and the team head
    then reject them). Other strings are kept (free team names). A non-string raises LabelFormatError."""
    if home_side is not None and home_side not in TEAMS:
        raise ConfigError(
            f"home_side must be 'left' or 'right' (the home team's side), not {home_side!r}"
        )
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise LabelFormatError(
            f"{where}: team {value!r} is not a string; expected 'left', 'right' or 'not applicable'"
        )
    if home_side is not None and value in HOME_AWAY:
        away_side = RIGHT if home_side == LEFT else LEFT
        return home_side if value == "home" else away_side
    return value


@dataclass
class Event:
    """One event at a 0-based frame of its video."""

    frame: int
    label: str
    score: float | None = None  # predictions only
    team: str | None = None  # "left" / "right" / "not applicable" (SoccerNet), or a free string
    visibility: str | None = None  # VISIBLE / NOT_SHOWN (SoccerNet)
    comment: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown per-event keys, kept for round trips


@dataclass
class VideoLabels:
    """Events of one video (or one half of a game)."""

    video: str
    fps: float | None  # None: unknown (E2E-Spot writes -1, e.g. FineDiving)
    num_frames: int | None  # None: unknown (e.g. SoccerNet labels read without their videos)
    events: list[Event] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown per-video keys (e.g. FineGym _source_info)

    def copy(self) -> VideoLabels:
        return copy.deepcopy(self)


@dataclass
class LabelSet:
    """Videos plus the ordered foreground class list."""

    classes: list[str]
    videos: list[VideoLabels] = field(default_factory=list)

    def __iter__(self) -> Iterator[VideoLabels]:
        return iter(self.videos)

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def num_classes(self) -> int:
        """Number of foreground classes (K); models predict K + 1."""
        return len(self.classes)

    def class_id(self, label: str) -> int:
        """1-based class id (0 is background)."""
        try:
            return self.classes.index(label) + 1
        except ValueError:
            raise LabelFormatError(
                f"unknown class '{label}'; expected one of: {', '.join(self.classes)}"
            ) from None

    def by_video(self) -> dict[str, VideoLabels]:
        return {v.video: v for v in self.videos}

    def get(self, video: str) -> VideoLabels:
        for v in self.videos:
            if v.video == video:
                return v
        raise LabelFormatError(f"no video '{video}' in the labels")

    def subset(self, video_ids: Iterable[str]) -> LabelSet:
        index = self.by_video()
        return LabelSet(list(self.classes), [index[v] for v in video_ids])


def infer_classes(videos: Iterable[VideoLabels]) -> list[str]:
    """Sorted set of labels used by ``videos`` (E2E-Spot sorts generated class lists)."""
    return sorted({e.label for v in videos for e in v.events})


def validate_labels(
    labels: LabelSet,
    source: str,
    *,
    require_frames_in_range: bool = True,
    require_known_classes: bool = True,
) -> LabelSet:
    """Check ids, classes and frames; raise a LabelFormatError naming file, video, event and field."""
    seen: set[str] = set()
    known = set(labels.classes)
    if len(known) != len(labels.classes):
        dup = sorted({c for c in labels.classes if labels.classes.count(c) > 1})
        raise LabelFormatError(f"{source}: duplicate class names {dup} in the class list")
    for v in labels.videos:
        if v.video in seen:
            raise LabelFormatError(f"{source}: duplicate video id '{v.video}' (each video must appear once)")
        seen.add(v.video)
        if v.num_frames is not None and (
            isinstance(v.num_frames, bool) or not isinstance(v.num_frames, int) or v.num_frames < 0
        ):
            raise LabelFormatError(
                f"{source}: video '{v.video}': num_frames {v.num_frames!r} is not a non-negative integer"
            )
        for i, e in enumerate(v.events):
            where = f"{source}: video '{v.video}', event #{i}"
            if isinstance(e.frame, bool) or not isinstance(e.frame, int):
                raise LabelFormatError(f"{where}: frame {e.frame!r} is not an integer (frames are 0-based ints)")
            if e.frame < 0:
                raise LabelFormatError(f"{where}: frame {e.frame} is negative (frames are 0-based)")
            if require_frames_in_range and v.num_frames is not None and e.frame >= v.num_frames:
                raise LabelFormatError(
                    f"{where}: frame {e.frame} >= num_frames {v.num_frames} (frames are 0-based)"
                )
            if require_known_classes and e.label not in known:
                raise LabelFormatError(
                    f"{where}: unknown class '{e.label}'; expected one of: {', '.join(labels.classes)}. "
                    "Add it to the class list or fix the label"
                )
    return labels

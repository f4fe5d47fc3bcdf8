"""Team-BAS training modes: the baseline's team head, or one joint head over 2K action-team classes.

``--team-head`` (``ModelConfig.team_head``, sn-teamspotting's baseline): the class head stays over the K
actions and a team head gives one logit per frame (sigmoid = P(right)), trained with the team BCE on event
frames. ``--team-joint`` (the 2025 winner's alternative, "a single joint head for action and team"): the
class head has 2K classes ``<action>-left, <action>-right`` per action, in this order, so its softmax is
already the Team-BAS score matrix ``(N, 1 + 2K)`` that ``predict.split_team`` builds for a team head:
column ``2i+1`` = action ``i`` left, ``2i+2`` = right. The run records the K actions in ``classes``, the
2K head in ``model.num_classes`` and ``train["team_joint"] = True``; predictions go back to action + team.
"""

from __future__ import annotations

from e2espot.config import TEAM_MODES, RunConfig
from e2espot.data.labels import TEAMS, LabelSet
from e2espot.errors import ConfigError, LabelFormatError
from e2espot.infer.postprocess import action_scores  # lives with the other score maps


def team_mode(cfg: RunConfig) -> str | None:
    """``"head"``, ``"joint"`` or None: how the run's model predicts teams (``RunConfig.team_mode``, where
    inference reads it without importing ``train``)."""
    return cfg.team_mode()


def joint_classes(actions: list[str] | tuple[str, ...]) -> list[str]:
    """``[a-left, a-right for a in actions]``: the 2K classes of a joint head, in Team-BAS column order
    (sn-teamspotting's 24-class dict; ``eval.team.split_joint_labels`` reads them back)."""
    return [f"{a}-{t}" for a in actions for t in TEAMS]


def join_team_labels(labels: LabelSet) -> LabelSet:
    """The inverse of ``eval.team.split_joint_labels``: ``PASS`` with team ``left`` -> ``PASS-left``, over
    the classes ``joint_classes(labels.classes)``. Every event needs a left / right team (a joint head has no
    class for "no team"): one without raises ``LabelFormatError`` naming the video and event."""
    out = LabelSet(joint_classes(list(labels.classes)), [])
    for v in labels.videos:
        video = v.copy()
        for i, e in enumerate(video.events):
            if e.team not in TEAMS:
                raise LabelFormatError(
                    f"--team-joint: video '{v.video}', event #{i} ({e.label} at frame {e.frame}) has team "
                    f"{e.team!r}, not 'left' or 'right'; a joint action-team head needs the team of every event. "
                    "Add the teams, drop such events, or train with --team-head (events without a team are "
                    "then only skipped by the team loss)"
                )
            e.label = f"{e.label}-{e.team}"
        out.videos.append(video)
    return out


def flip_class_map(num_actions: int) -> list[int]:
    """Class ids (2K + 1, background 0) of a joint head after a horizontal flip: ``a-left`` <-> ``a-right``
    (ids 2i+1 <-> 2i+2), since a flip swaps the sides of the frame."""
    if num_actions < 1:
        raise ConfigError(f"flip_class_map: num_actions {num_actions} must be >= 1")
    perm = [0]
    for i in range(num_actions):
        perm += [2 * i + 2, 2 * i + 1]
    return perm


__all__ = ["TEAM_MODES", "action_scores", "flip_class_map", "join_team_labels", "joint_classes", "team_mode"]

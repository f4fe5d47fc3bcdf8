"""Team-mAP@1 and the no-team mAP@1 of SoccerNet Team Ball Action Spotting (2025), exactly as the
official evaluator computes them.

Reference: SoccerNet/sn-teamspotting @ 091fed2 ``util/eval.py: mAPevaluateCodabench(..., event_team=True,
metric="at1")`` with ``util/score.py: compute_amAP`` on top of ``SoccerNet.Evaluation.ActionSpotting.
average_mAP`` (whose sparse re-implementation lives in :mod:`e2espot.eval.soccernet`; this module reuses
its matching and AP code). Checked against the golden cases in ``shared/fixtures/team-map`` (equal to
1e-12, in practice bit for bit). The algorithm, per game (one timeline of 120*60*25 = 180 000 frames):

1. ground truth: the class key is ``label + "-" + team`` (24 classes ``PASS-left, PASS-right, ...``);
   ``frame = int(25 * (int(position) / 1000))`` (float division, truncation; without ``position`` it is
   ``25 * (SS + 60*MM)`` from the ``gameTime`` characters ``[-5:-3]`` and ``[-2:]``); value -1 for
   ``visibility == "not shown"`` else +1; kept **only when gameTime starts with "1"**, frame capped at
   179 999; a later annotation in the same cell overwrites an earlier one;
2. predictions: same key and frame (``gameTime`` / ``half`` are not read), ``confidence`` written into the
   cell, the **last one in file order wins**; a cell with a value >= 0 is a detection;
3. per class and game, GT frames in time order each take the highest-confidence unused detection with
   ``|f - g| <= 12`` (δ = 1 s, ``|f - g| <= δ*25/2``; ties: the lowest frame);
4. pooled over games: precision / recall at ``linspace(0, 1, 200)``, 11-point interpolated AP;
5. team combination: the weight of a (action, team) is the **signed** GT sum (visible - "not shown");
   ``AP_action = (AP_left*w_left + AP_right*w_right) / (w_left + w_right)`` (0/0 = NaN when an action has
   no GT at all); Team-mAP@1 = ``np.mean`` of the 12 (NaN propagates);
6. visible / unshown variants as in :mod:`e2espot.eval.soccernet`, combined with the same weights;
7. no-team mAP@1: steps 1-4 with the key ``label`` (team ignored), plain mean of 12 (no GT -> AP 0).

Differences from the official code, on purpose (each raises :class:`LabelFormatError` naming the file,
the annotation/prediction index and the value, where the official code raises a bare KeyError,
ValueError or FileNotFoundError or silently misplaces an event):

* an unknown label or team (also ``"not applicable"`` and a missing ``team``) raises; with
  ``missing_team="ignore"`` (opt-in leniency, CLI ``--missing-team ignore``) events without a left/right
  team (no ``team`` key, ``null`` or ``"not applicable"``) are left out of the team evaluation and still
  scored in the no-team one; they are counted in :attr:`TeamMapResult.num_without_team`;
* a negative position raises (the official code writes the cell counted from the end of the grid);
* a game without a prediction file raises (as the official FileNotFoundError, with the path);
* predictions for games not in the game list are ignored in file mode (as the official code); in
  :func:`team_map` (label sets) they raise, since the game list is the ground truth's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from e2espot.data.labels import NO_TEAM, NOT_SHOWN, TEAMS, LabelSet
from e2espot.errors import ConfigError, LabelFormatError
from e2espot.eval.soccernet import BALL_CLASSES, _Cells, _class_aps, _position_ms, _Tree, closest_map_values

__all__ = [
    "FRAMERATE",
    "GRID_FRAMES",
    "MISSING_TEAM_MODES",
    "TEAMS",
    "TeamMapResult",
    "evaluate_team_files",
    "format_team_map",
    "has_team_labels",
    "split_joint_labels",
    "team_accuracy",
    "team_class_names",
    "team_map",
]

FRAMERATE = 25  # FPS_SN of the official evaluator
GRID_FRAMES = 120 * 60 * FRAMERATE  # one 2 h timeline per game
DELTA_S = 1  # metric "at1"
RADIUS_FRAMES = DELTA_S * FRAMERATE / 2  # |f - g| <= 12.5  <=>  |f - g| <= 12
MISSING_TEAM_MODES = ("raise", "ignore")
LABEL_FILE = "Labels-ball.json"
PREDICTION_FILE = "results_spotting.json"


def team_class_names(actions: Sequence[str] = BALL_CLASSES) -> list[str]:
    """The 24 team classes in the official order: ``PASS-left, PASS-right, DRIVE-left, ...`` (column
    2i is left, 2i + 1 right)."""
    return [f"{a}-{t}" for a in actions for t in TEAMS]


# ----------------------------------------------------------------------------- records


NO_TEAM_INDEX = -1  # an event without a left/right team (kept only with missing_team="ignore")
_TEAM_INDEX = {t: i for i, t in enumerate(TEAMS)}


@dataclass
class _Game:
    """One game's events in file order, columnar: action index, team (0 left, 1 right, -1 none), grid
    frame (already capped at GRID_FRAMES - 1), value (GT +1 / -1, or the confidence) and, for GT, whether
    it passes the official half filter (gameTime starting with "1")."""

    name: str
    truth: list[tuple[int, int, int, float, bool]] = field(default_factory=list)
    preds: list[tuple[int, int, int, float]] = field(default_factory=list)
    gt_dropped: int = 0


class _Keys:
    """Label / team lookup with the official strictness and our messages."""

    def __init__(self, actions: Sequence[str], missing_team: str) -> None:
        if missing_team not in MISSING_TEAM_MODES:
            raise ConfigError(f"missing_team must be one of {MISSING_TEAM_MODES}, not {missing_team!r}")
        if not actions or len(set(actions)) != len(actions):
            raise ConfigError(f"actions must be a non-empty list of distinct names; got {list(actions)}")
        self.actions = list(actions)
        self.index = {a: i for i, a in enumerate(actions)}
        self.missing_team = missing_team
        self.without_team = {"truth": 0, "predictions": 0}

    def action(self, label: Any, where: str) -> int:
        i = self.index.get(label) if isinstance(label, str) else None
        if i is None:
            raise LabelFormatError(
                f"{where}: label {label!r} is not a Team-BAS action; expected one of "
                f"{', '.join(self.actions)} (exact spelling and case; the official evaluator stops with a "
                "KeyError here). Other action lists: actions= (CLI: --classes)"
            )
        return i

    def team(self, has_key: bool, team: Any, where: str, side: str) -> int:
        if team in TEAMS:
            return TEAMS.index(team)
        missing = not has_key or team is None or team == NO_TEAM
        if missing and self.missing_team == "ignore":
            self.without_team[side] += 1
            return NO_TEAM_INDEX
        if missing:
            what = "has no 'team'" if not has_key else f"has team {team!r}"
            raise LabelFormatError(
                f"{where}: {what}; Team-mAP needs 'left' or 'right' on every event (the official evaluator "
                "stops with a KeyError here). Add the team, or pass missing_team='ignore' (CLI: "
                "--missing-team ignore) to leave events without a team out of the team metric (they still "
                "count in the no-team mAP)"
            )
        hint = (" Read SoccerNet-v2 labels with home_side='left' or 'right' to map home/away to a side"
                if team in ("home", "away") else "")
        raise LabelFormatError(
            f"{where}: team {team!r} is not 'left' or 'right' (the side of the frame; the official "
            f"evaluator stops with a KeyError here).{hint}"
        )


def _official_int(value: Any, what: str, where: str) -> int:
    """Python's ``int(value)`` as the official code applies it (digit strings, truncated floats); >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LabelFormatError(f"{where}: {what} {value!r} is not a number of milliseconds")
    try:
        number = int(value)
    except (ValueError, OverflowError):
        raise LabelFormatError(
            f"{where}: {what} {value!r} is not an integer number of milliseconds (the official evaluator "
            "applies int(); a string with a decimal point fails there too)"
        ) from None
    if number < 0:
        raise LabelFormatError(
            f"{where}: {what} {number} is negative (the official evaluator would write it into the cell "
            "counted from the end of the 2 h grid); fix the position"
        )
    return number


def _grid_frame(position_ms: int) -> int:
    """``min(int(25 * (position / 1000)), 179999)``: the official float arithmetic, not exact ms -> frame."""
    position_ms = min(position_ms, 10**12)  # past 2 h anyway; keeps int / 1000 from overflowing a float
    return min(int(FRAMERATE * (position_ms / 1000)), GRID_FRAMES - 1)


def _game_time(value: Any, where: str) -> tuple[int, int, int]:
    """(half, minutes, seconds) with the official slicing: ``[0]``, ``[-5:-3]`` and ``[-2:]``."""
    if not isinstance(value, str):
        raise LabelFormatError(f"{where}: gameTime {value!r} is not a string like '1 - 12:34'")
    try:
        return int(value[0]), int(value[-5:-3]), int(value[-2:])
    except (ValueError, IndexError):
        raise LabelFormatError(
            f"{where}: gameTime {value!r} is malformed; expected 'H - MM:SS' like '1 - 12:34'"
        ) from None


def _confidence(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LabelFormatError(f"{where}: confidence {value!r} is not a number")
    try:
        return float(value)
    except ValueError:
        raise LabelFormatError(f"{where}: confidence {value!r} is not a number") from None


# ----------------------------------------------------------------------------- file parsing


def _require(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise LabelFormatError(
            f"{where}: missing '{key}' (the official evaluator stops with KeyError '{key}')"
        )
    return obj[key]


def _parse_label_file(data: Any, where: str, keys: _Keys, game: _Game) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise LabelFormatError(f"{where}: expected an object with an 'annotations' list")
    for i, ann in enumerate(data["annotations"]):
        w = f"{where}: annotation #{i}"
        if not isinstance(ann, dict):
            raise LabelFormatError(f"{w}: expected an object, got {ann!r:.60}")
        half, minutes, seconds = _game_time(_require(ann, "gameTime", w), w)
        action = keys.action(_require(ann, "label", w), w)
        if "position" in ann:
            frame = _grid_frame(_official_int(ann["position"], "position", w))
        else:
            frame = min(FRAMERATE * (seconds + 60 * minutes), GRID_FRAMES - 1)
        team = keys.team("team" in ann, ann.get("team"), w, "truth")
        value = -1.0 if ann.get("visibility") == NOT_SHOWN else 1.0
        game.truth.append((action, team, frame, value, half == 1))
        game.gt_dropped += half != 1


def _parse_prediction(pred: Any, w: str, keys: _Keys) -> tuple[int, int, int, float]:
    """One prediction with full checks and messages."""
    if not isinstance(pred, dict):
        raise LabelFormatError(f"{w}: expected an object, got {pred!r:.60}")
    frame = _grid_frame(_official_int(_require(pred, "position", w), "position", w))
    action = keys.action(_require(pred, "label", w), w)
    team = keys.team("team" in pred, pred.get("team"), w, "predictions")
    return action, team, frame, _confidence(_require(pred, "confidence", w), w)


def _parse_prediction_file(data: Any, where: str, keys: _Keys, game: _Game) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("predictions"), list):
        raise LabelFormatError(f"{where}: expected an object with a 'predictions' list")
    # fast path for well-formed entries (a prediction file can hold 10^4-10^5 of them); anything
    # unusual goes through _parse_prediction, which applies the same rules with full messages
    index, teams, out = keys.index, _TEAM_INDEX, game.preds
    for i, pred in enumerate(data["predictions"]):
        try:
            position, conf = pred["position"], pred["confidence"]
            record = (index[pred["label"]], teams[pred["team"]], position, conf)
        except (KeyError, TypeError):
            record = None
        if record is None or type(position) is not int or position < 0 or type(conf) is not float:
            out.append(_parse_prediction(pred, f"{where}: prediction #{i}", keys))
        else:
            out.append((record[0], record[1], _grid_frame(position), conf))


# ----------------------------------------------------------------------------- scoring


@dataclass
class TeamMapResult:
    """Everything ``mAPevaluateCodabench`` returns, plus what it computes and discards.

    Fractions in [0, 1] (a combined team AP can leave [0, 1] when "not shown" GT makes a weight
    negative); NaN where the official code gives NaN. Per-class dicts are in the official order.
    """

    actions: list[str]
    games: list[str]
    team_map: float  # Team-mAP@1, the challenge's ranking metric (official "mAP")
    per_class: dict[str, float]  # 12 combined team-APs ("mAP_per_class")
    per_class_team: dict[str, float]  # 24 raw (action, team) APs, "PASS-left", ...
    gt_weight_team: dict[str, float]  # signed GT sums used as weights
    team_map_visible: float
    per_class_visible: dict[str, float]
    per_class_team_visible: dict[str, float]
    team_map_unshown: float
    per_class_unshown: dict[str, float]
    per_class_team_unshown: dict[str, float]
    no_team_map: float  # "mAP_no_team", the challenge's secondary mAP@1
    per_class_no_team: dict[str, float]
    no_team_map_visible: float
    per_class_no_team_visible: dict[str, float]
    gt_count_no_team: dict[str, float]  # signed GT sums of the no-team classes
    mean_of_24_team_class_aps: float  # computed by nobody officially; diagnosis only
    num_gt: int  # annotations read (including dropped ones)
    num_predictions: int
    num_gt_dropped: int  # GT whose gameTime does not start with "1": dropped, as officially
    num_without_team: dict[str, int]  # events left out with missing_team="ignore" ("truth", "predictions")

    def official(self) -> dict[str, Any]:
        """The dict ``mAPevaluateCodabench`` returns (keys and value kinds as there)."""
        return {
            "mAP": self.team_map,
            "mAP_per_class": list(self.per_class.values()),
            "mAP_visible": self.team_map_visible,
            "mAP_per_class_visible": list(self.per_class_visible.values()),
            "mAP_unshown": self.team_map_unshown,
            "mAP_per_class_unshown": list(self.per_class_unshown.values()),
            "mAP_no_team": self.no_team_map,
            "mAP_per_class_no_team": list(self.per_class_no_team.values()),
            "mAP_visible_no_team": self.no_team_map_visible,
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict: NaN written as the string "NaN" (as the golden fixtures do)."""
        def clean(v: Any) -> Any:
            if isinstance(v, float) and math.isnan(v):
                return "NaN"
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return {"metric": "team-map@1", **{k: clean(v) for k, v in vars(self).items()}}


def _last_write(classes: np.ndarray, frames: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Official grid writes in file order: the last value per (class, frame) wins. Returns class,
    frame and value of every written cell, sorted by class then frame."""
    key = classes.astype(np.int64) * GRID_FRAMES + frames.astype(np.int64)
    cells, first_from_end = np.unique(key[::-1], return_index=True)
    return cells // GRID_FRAMES, cells % GRID_FRAMES, values[::-1][first_from_end]


def _class_cells(
    games: Sequence[_Game], num_classes: int, with_team: bool
) -> tuple[list[list[_Cells]], np.ndarray]:
    """Per class, one ``_Cells`` per game, and the signed GT sum per class (the official weights).

    ``with_team``: class ``2*action + team`` (events without a team left out), else ``action``."""
    per_class: list[list[_Cells]] = [[] for _ in range(num_classes)]
    weights = np.zeros(num_classes)
    for game in games:
        t = np.array(game.truth, dtype=np.float64).reshape(-1, 5)
        p = np.array(game.preds, dtype=np.float64).reshape(-1, 4)
        t = t[t[:, 4] > 0]  # the half filter
        if with_team:
            t, p = t[t[:, 1] >= 0], p[p[:, 1] >= 0]
            t_cls, p_cls = 2 * t[:, 0] + t[:, 1], 2 * p[:, 0] + p[:, 1]
        else:
            t_cls, p_cls = t[:, 0], p[:, 0]
        g_cls, g_frames, g_vals = _last_write(t_cls, t[:, 2], t[:, 3])
        d_cls, d_frames, d_vals = _last_write(p_cls, p[:, 2], p[:, 3])
        det = d_vals >= 0  # a detection; negative (and NaN) values only overwrite
        d_cls, d_frames, d_vals = d_cls[det], d_frames[det], d_vals[det]
        g_bounds = np.searchsorted(g_cls, np.arange(num_classes + 1))
        d_bounds = np.searchsorted(d_cls, np.arange(num_classes + 1))
        for c in range(num_classes):
            gs, ds = slice(g_bounds[c], g_bounds[c + 1]), slice(d_bounds[c], d_bounds[c + 1])
            frames = d_frames[ds]
            per_class[c].append(_Cells(g_frames[gs], g_vals[gs], frames, d_vals[ds],
                                       closest_map_values(g_frames[gs], g_vals[gs], frames)))
            weights[c] += float(g_vals[gs].sum())  # integers: exact in any order
    return per_class, weights


def _aps(per_class: list[list[_Cells]]) -> np.ndarray:
    """(3, C): AP, AP visible, AP unshown of every class at δ = 1 s."""
    out = np.zeros((3, len(per_class)))
    for c, cells in enumerate(per_class):
        out[:, c] = _class_aps(cells, RADIUS_FRAMES)
    return out


def _combine(aps: np.ndarray, weights: np.ndarray) -> list[np.float64]:
    """``compute_amAP``'s left/right mix, same operations:
    ``((ap*n)[2i] + (ap*n)[2i+1]) / (n[2i] + n[2i+1])``."""
    weighted = aps * weights
    with np.errstate(divide="ignore", invalid="ignore"):
        return [(weighted[2 * i] + weighted[2 * i + 1]) / (weights[2 * i] + weights[2 * i + 1])
                for i in range(len(aps) // 2)]


def _score(games: Sequence[_Game], keys: _Keys) -> TeamMapResult:
    actions = keys.actions
    a = len(actions)
    team_names = team_class_names(actions)

    team_cells, team_w = _class_cells(games, 2 * a, with_team=True)
    team_aps = _aps(team_cells)
    combined = [_combine(team_aps[k], team_w) for k in range(3)]
    with np.errstate(invalid="ignore"):
        team_maps = [float(np.mean(c)) for c in combined]

    plain_cells, plain_w = _class_cells(games, a, with_team=False)
    plain_aps = _aps(plain_cells)

    def named(names: Sequence[str], values: Sequence[Any]) -> dict[str, float]:
        return {n: float(v) for n, v in zip(names, values)}

    return TeamMapResult(
        actions=list(actions),
        games=[g.name for g in games],
        team_map=team_maps[0],
        per_class=named(actions, combined[0]),
        per_class_team=named(team_names, team_aps[0]),
        gt_weight_team=named(team_names, team_w),
        team_map_visible=team_maps[1],
        per_class_visible=named(actions, combined[1]),
        per_class_team_visible=named(team_names, team_aps[1]),
        team_map_unshown=team_maps[2],
        per_class_unshown=named(actions, combined[2]),
        per_class_team_unshown=named(team_names, team_aps[2]),
        no_team_map=float(np.mean(plain_aps[0])),
        per_class_no_team=named(actions, plain_aps[0]),
        no_team_map_visible=float(np.mean(plain_aps[1])),
        per_class_no_team_visible=named(actions, plain_aps[1]),
        gt_count_no_team=named(actions, plain_w),
        mean_of_24_team_class_aps=float(np.mean(team_aps[0])),
        num_gt=sum(len(g.truth) for g in games),
        num_predictions=sum(len(g.preds) for g in games),
        num_gt_dropped=sum(g.gt_dropped for g in games),
        num_without_team=dict(keys.without_team),
    )


# ----------------------------------------------------------------------------- entry points


def evaluate_team_files(
    labels_root: str | os.PathLike[str],
    preds_root: str | os.PathLike[str],
    games: Sequence[str] | None = None,
    *,
    actions: Sequence[str] = BALL_CLASSES,
    label_file: str = LABEL_FILE,
    prediction_file: str = PREDICTION_FILE,
    missing_team: str = "raise",
) -> TeamMapResult:
    """Team-mAP@1 of a prediction tree against a label tree, as ``mAPevaluateCodabench`` computes it.

    ``labels_root`` / ``preds_root``: folders or zip files holding ``<league>/<season>/<game>/<file>``.
    ``games``: the game list (default: every folder of ``labels_root`` holding ``label_file``, sorted;
    the official code takes it from ``getListGames(split)``). Every listed game needs a prediction file
    (an empty ``predictions`` list is fine); prediction files of other games are not read. Files are
    parsed with the official field rules (see the module docstring), not with the stricter label
    format readers. Raises :class:`LabelFormatError` where the official code stops, and for negative
    positions; :class:`ConfigError` for bad options.
    """
    keys = _Keys(actions, missing_team)
    label_tree, pred_tree = _Tree(labels_root), _Tree(preds_root)
    game_list = list(games) if games is not None else label_tree.games_with(label_file)
    if not game_list:
        raise LabelFormatError(
            f"{labels_root}: no '{label_file}' found (expected league/season/game/{label_file})"
        )
    with_preds = set(pred_tree.games_with(prediction_file))
    parsed = []
    for name in game_list:
        game = _Game(name)
        _parse_label_file(label_tree.load(name, label_file), f"{labels_root}/{name}/{label_file}", keys, game)
        if name not in with_preds:
            raise LabelFormatError(
                f"{preds_root}: no '{name}/{prediction_file}'; every game of the list needs a prediction "
                "file "
                "(the official evaluator stops with FileNotFoundError). Write an empty one "
                '({"predictions": []}) for a game without predictions'
            )
        pred_where = f"{preds_root}/{name}/{prediction_file}"
        _parse_prediction_file(pred_tree.load(name, prediction_file), pred_where, keys, game)
        parsed.append(game)
    return _score(parsed, keys)


def team_map(
    truth: LabelSet,
    pred: LabelSet,
    *,
    actions: Sequence[str] = BALL_CLASSES,
    missing_team: str = "raise",
) -> TeamMapResult:
    """Team-mAP@1 of label sets (e.g. read by the ``soccernet`` / ``soccernet-results`` formats, or the
    events ``e2espot test`` predicts), with the same arithmetic as :func:`evaluate_team_files`.

    Games: ``video.extra["game"]`` (default the video id; a prediction video with the id of a truth
    video takes that video's game); several videos of one game share its single 2 h timeline, as in the
    official code. GT in a video with ``extra["half"]`` other than 1 is dropped
    (the official half filter); prediction halves are not read. Positions: ``event.extra["position_ms"]``
    when present, else from the frame and the video fps. Predictions need ``score``; a game of the truth
    without prediction videos, or a prediction game not in the truth, raises ``LabelFormatError``.
    """
    keys = _Keys(actions, missing_team)
    games: dict[str, _Game] = {}
    for v in truth.videos:
        name = str(v.extra.get("game", v.video))
        game = games.setdefault(name, _Game(name))
        half = v.extra.get("half", 1)
        for i, e in enumerate(v.events):
            w = f"ground truth: video '{v.video}', event #{i}"
            action = keys.action(e.label, w)
            frame = _grid_frame(_official_int(_position_ms(v, e, i, "ground truth"), "position", w))
            team = keys.team(e.team is not None, e.team, w, "truth")
            value = -1.0 if e.visibility == NOT_SHOWN else 1.0
            game.truth.append((action, team, frame, value, str(half) == "1"))
            game.gt_dropped += str(half) != "1"
    seen: set[str] = set()
    truth_game = {v.video: str(v.extra.get("game", v.video)) for v in truth.videos}
    for v in pred.videos:
        # a prediction video with the id of a truth video belongs to that video's game
        name = truth_game.get(v.video, str(v.extra.get("game", v.video)))
        if name not in games:
            raise LabelFormatError(
                f"predictions: video '{v.video}' (game '{name}') is not in the ground truth; evaluate it "
                "against labels that hold this game, or leave it out"
            )
        seen.add(name)
        for i, e in enumerate(v.events):
            w = f"predictions: video '{v.video}', event #{i}"
            if e.score is None:
                raise LabelFormatError(f"{w}: prediction has no score")
            action = keys.action(e.label, w)
            frame = _grid_frame(_official_int(_position_ms(v, e, i, "predictions"), "position", w))
            team = keys.team(e.team is not None, e.team, w, "predictions")
            games[name].preds.append((action, team, frame, float(e.score)))
    missing = sorted(set(games) - seen)
    if missing:
        raise LabelFormatError(
            f"no predictions for {len(missing)} game(s) of the ground truth, e.g. {missing[:3]}; the "
            "official evaluator needs a prediction file for every game (an empty one is fine)"
        )
    return _score([games[n] for n in sorted(games)], keys)


def split_joint_labels(labels: LabelSet, actions: Sequence[str] = BALL_CLASSES) -> LabelSet:
    """Events of a joint action-team head (labels ``"PASS-left"``, ``"PASS-right"``, ... as in
    sn-teamspotting's 24-class dict and the winner's joint head) as action + ``team``: ``"PASS"`` with
    ``team="left"``. Events whose label is already an action are kept; anything else raises
    ``LabelFormatError``. Returns a copy with ``classes = actions``."""
    joint = {f"{a}-{t}": (a, t) for a in actions for t in TEAMS}
    out = LabelSet(list(actions), [])
    for v in labels.videos:
        video = v.copy()
        for i, e in enumerate(video.events):
            if e.label in joint:
                e.label, team = joint[e.label]
                if e.team not in (None, team):
                    raise LabelFormatError(
                        f"video '{v.video}', event #{i}: label '{e.label}-{team}' but team {e.team!r}"
                    )
                e.team = team
            elif e.label not in actions:
                raise LabelFormatError(
                    f"video '{v.video}', event #{i}: label {e.label!r} is neither an action nor "
                    f"'<action>-left/right' of {', '.join(actions)}"
                )
        out.videos.append(video)
    return out


@dataclass
class TeamAccuracy:
    """How often the team is right on the events that were spotted (a diagnosis of the team head)."""

    correct: int  # matched pairs whose predicted team equals the GT team
    total: int  # matched pairs whose GT event has a left / right team
    per_class: dict[str, tuple[int, int]]  # class -> (correct, total)
    tolerance: int  # frames
    threshold: float  # predictions with score >= threshold took part

    @property
    def accuracy(self) -> float:
        """correct / total (NaN without matched pairs)."""
        return self.correct / self.total if self.total else float("nan")


def team_accuracy(
    truth: LabelSet, pred: LabelSet, *, tolerance: int = 1, threshold: float = 0.0
) -> TeamAccuracy:
    """Team accuracy on correctly spotted events: per video and class, predictions with ``score >=
    threshold`` in descending score order each take the nearest unmatched GT event of their class within
    ``±tolerance`` frames (E2E-Spot's matching; ties: the earlier GT frame); over the matched pairs whose
    GT has a left / right team, the fraction whose predicted team is the same (a prediction without a
    team counts as wrong). Videos are matched by id; frames are compared as they are (same fps)."""
    import bisect

    if tolerance < 0:
        raise ConfigError(f"tolerance {tolerance} must be >= 0 frames")
    gt_by_video = {v.video: v for v in truth.videos}
    per_class: dict[str, list[int]] = {}
    for v in pred.videos:
        t = gt_by_video.get(v.video)
        if t is None:
            raise LabelFormatError(f"predictions: video '{v.video}' is not in the ground truth")
        for label in {e.label for e in v.events}:
            gts = sorted((e.frame, i) for i, e in enumerate(t.events) if e.label == label)
            frames = [f for f, _ in gts]
            used = [False] * len(gts)
            preds = sorted((e for e in v.events if e.label == label and e.score is not None
                            and e.score >= threshold), key=lambda e: -float(e.score))
            counts = per_class.setdefault(label, [0, 0])
            for p in preds:
                lo = bisect.bisect_left(frames, p.frame - tolerance)
                hi = bisect.bisect_right(frames, p.frame + tolerance)
                best = min((k for k in range(lo, hi) if not used[k]),
                           key=lambda k: (abs(frames[k] - p.frame), frames[k]), default=None)
                if best is None:
                    continue
                used[best] = True
                gt_team = t.events[gts[best][1]].team
                if gt_team in TEAMS:
                    counts[1] += 1
                    counts[0] += p.team == gt_team
    correct = sum(c for c, _ in per_class.values())
    total = sum(n for _, n in per_class.values())
    return TeamAccuracy(correct, total, {k: (c, n) for k, (c, n) in sorted(per_class.items())},
                        tolerance, threshold)


def has_team_labels(labels: LabelSet) -> bool:
    """True when some event carries a left / right team."""
    return any(e.team in TEAMS for v in labels.videos for e in v.events)


def format_team_map(result: TeamMapResult, *, percent: bool = True) -> str:
    """The official printout (``print_results``) as a table: per action the team-AP, left / right raw APs
    and weights, and the no-team AP; then Team-mAP@1 and the no-team mAP@1."""
    from e2espot.eval.report import format_table

    scale = 100.0 if percent else 1.0
    rows: list[list[Any]] = []
    for a in result.actions:
        left, right = f"{a}-left", f"{a}-right"
        rows.append([a, result.per_class[a] * scale, result.per_class_team[left] * scale,
                     result.per_class_team[right] * scale, int(result.gt_weight_team[left]),
                     int(result.gt_weight_team[right]), result.per_class_no_team[a] * scale])
    rows.append(["mAP", result.team_map * scale, "", "", "", "", result.no_team_map * scale])
    header = ["action", "team-AP", "left", "right", "w_left", "w_right", "no-team AP"]
    text = (f"Team-BAS at1 (25 fps, ±12 frames), {len(result.games)} games, {result.num_gt} GT, "
            f"{result.num_predictions} predictions\n" + format_table(header, rows))
    text += (f"\nTeam-mAP@1: {result.team_map * scale:.2f}   "
             f"mAP@1 without team: {result.no_team_map * scale:.2f}")
    if math.isnan(result.team_map):
        text += "\n(NaN: an action has no ground truth for either team; the official metric is NaN too)"
    if result.num_gt_dropped:
        text += (f"\nnote: {result.num_gt_dropped} GT annotations with a gameTime not starting with '1' were "
                 "dropped, as the official evaluator does")
    if any(result.num_without_team.values()):
        text += (f"\nnote: left out of the team metric (no team): {result.num_without_team['truth']} GT, "
                 f"{result.num_without_team['predictions']} predictions (missing_team='ignore')")
    return text

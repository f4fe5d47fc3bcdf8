"""Frame-exact match simulation on a futsal-sized pitch (metres, 0-based frames).

Coordinates: ``x`` runs along the pitch from the left goal line (0) to the right one (``length_m``), ``y``
from the top touch line (0) to the bottom one (``width_m``), so ``y`` grows downwards as image rows do.
Team 0 ("left") defends the left goal and attacks the right one; team 1 ("right") the opposite.

Event frames (``b[f]`` is the ball centre at frame ``f``):

* ``PASS`` / ``SHOT`` at ``f``: the ball is at the kicker's centre at ``f`` and ``b[f+1] = b[f] + v`` with the
  new velocity ``v``, constant until the flight ends. The old velocity (the kicker's dribble,
  ``b[f] - b[f-1]``) is either ~0 (kick from rest, below 0.3 m/s) or at least 30 degrees away from ``v``.
  Passes fly at >= 9 m/s (only a restart to a teammate closer than 3.5 m can be slower), shots at >= 17 m/s,
  dribbles at <= 2.8 m/s, so the second difference of ``b`` peaks at ``f``. A SHOT is a faster kick aimed at
  (or near) the goal mouth; it is told from a PASS by what follows (GOAL, OUT or a save).
* ``RECEIVE`` at ``f``: the flying ball reaches a player's centre exactly at ``f`` (the last step of the
  flight is a full step) and stays there: ``b[f+1] = b[f]`` while the player controls it. Interceptions and
  keeper saves are RECEIVEs too (``team`` = the receiver's team).
* ``OUT`` at ``f``: first frame at which the ball centre is strictly outside the pitch rectangle (touch or
  goal line), not between the posts.
* ``GOAL`` at ``f``: first frame at which the ball centre is strictly beyond a goal line with ``y`` strictly
  between the posts. ``team`` = the team that scores.

After OUT the ball slides to a stop (after GOAL the net stops it); after a pause (kick-in, goal clearance,
corner or kick-off) it is placed at the restart spot, where a player of the restarting team kicks it (a PASS)
from rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PASS, RECEIVE, SHOT, OUT, GOAL = "PASS", "RECEIVE", "SHOT", "OUT", "GOAL"
CLASSES: tuple[str, ...] = (PASS, RECEIVE, SHOT, OUT, GOAL)
TEAM_SIDES: tuple[str, str] = ("left", "right")

PLAYERS_PER_TEAM = 5  # index 0 of each team is the goalkeeper
MIN_TURN_DEG = 30.0  # a kick turns a moving ball by at least this much
REST_SPEED_MPS = 0.3  # below this the ball counts as at rest before a kick


@dataclass(frozen=True)
class Pitch:
    """Futsal-like pitch geometry in metres."""

    length_m: float = 40.0
    width_m: float = 20.0
    goal_width_m: float = 3.0
    goal_depth_m: float = 1.0
    margin_m: float = 1.6  # visible ground outside the lines
    centre_circle_m: float = 3.0
    box_depth_m: float = 6.0
    box_width_m: float = 12.0

    @property
    def posts_y_m(self) -> tuple[float, float]:
        half = self.goal_width_m / 2
        return (self.width_m / 2 - half, self.width_m / 2 + half)

    def goal_centre_m(self, side: int) -> np.ndarray:
        """Centre of goal ``side`` (0 = left goal at x=0, 1 = right goal)."""
        return np.array([0.0 if side == 0 else self.length_m, self.width_m / 2])

    def inside(self, xy: np.ndarray) -> bool:
        return bool(0.0 <= xy[0] <= self.length_m and 0.0 <= xy[1] <= self.width_m)

    def between_posts(self, y_m: float) -> bool:
        lo, hi = self.posts_y_m
        return lo < y_m < hi


@dataclass
class SimEvent:
    frame: int
    label: str
    team: int  # 0 = left, 1 = right

    @property
    def side(self) -> str:
        return TEAM_SIDES[self.team]


@dataclass
class Match:
    """Result of :func:`simulate_match`: per-frame positions (metres) and the events."""

    pitch: Pitch
    fps: float
    num_frames: int
    ball_m: np.ndarray  # (N, 2) float64
    players_m: np.ndarray  # (N, P, 2) float32
    holder: np.ndarray  # (N,) int16, player holding the ball or -1
    player_team: np.ndarray  # (P,) int8
    player_is_keeper: np.ndarray  # (P,) bool
    events: list[SimEvent] = field(default_factory=list)


@dataclass
class _Flight:
    start_frame: int
    start_m: np.ndarray
    vel_m: np.ndarray  # metres per frame
    end_frame: int
    end_kind: str  # RECEIVE / OUT / GOAL
    receiver: int  # -1 unless RECEIVE
    kicker_team: int
    is_shot: bool


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 1e-12 else np.zeros(2)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    ua, ub = _unit(a), _unit(b)
    return math.degrees(math.acos(float(np.clip(ua @ ub, -1.0, 1.0))))


class _Sim:
    def __init__(self, rng: np.random.Generator, fps: float, num_frames: int, pitch: Pitch) -> None:
        self.rng, self.fps, self.n, self.pitch = rng, fps, num_frames, pitch
        self.dt = 1.0 / fps
        P = 2 * PLAYERS_PER_TEAM
        self.team = np.repeat(np.arange(2, dtype=np.int8), PLAYERS_PER_TEAM)
        self.keeper = np.zeros(P, bool)
        self.keeper[[0, PLAYERS_PER_TEAM]] = True
        # per-frame physics constants (metres per frame, metres per frame^2)
        self.run_max = 5.5 * self.dt
        self.dribble_max = 3.5 * self.dt
        self.accel = 5.0 * self.dt * self.dt
        self.pass_speed = (9.0 * self.dt, 14.0 * self.dt)
        self.shot_speed = (17.0 * self.dt, 24.0 * self.dt)
        # game tendencies, drawn per match
        self.p_misplaced = rng.uniform(0.08, 0.16)
        self.p_intercept = rng.uniform(0.15, 0.3)
        self.p_save = rng.uniform(0.25, 0.4)
        self.shoot_range_m = rng.uniform(20.0, 26.0)
        self.p_shoot = rng.uniform(0.6, 0.9)
        self.pos = self._formation_positions() + rng.normal(0, 0.8, (P, 2))
        self.vel = np.zeros((P, 2))
        self.targets = self.pos.copy()
        self.override: dict[int, np.ndarray] = {}  # player -> fixed velocity (m/frame) until released

    # -- formation and movement ---------------------------------------------------------------------------
    def _formation_positions(self, ball: np.ndarray | None = None,
                             possession: int | None = None) -> np.ndarray:
        """Formation spots: the team in possession pushes up, both teams follow the ball along the pitch."""
        L, W = self.pitch.length_m, self.pitch.width_m
        # team 0 attacking +x, as fractions of (L, W); row 0 is the keeper
        base = np.array([[0.04, 0.5], [0.2, 0.27], [0.2, 0.73], [0.4, 0.4], [0.48, 0.62]])
        follow = 0.0 if ball is None else (ball[0] / L - 0.5) * 0.35
        pos = np.zeros((2 * PLAYERS_PER_TEAM, 2))
        for t in range(2):
            b = base.copy()
            push = 0.0 if possession is None else (0.25 if possession == t else -0.04)
            b[1:, 0] += push
            if t == 1:
                b[:, 0] = 1.0 - b[:, 0]
            b[1:, 0] += follow
            pos[t * PLAYERS_PER_TEAM:(t + 1) * PLAYERS_PER_TEAM] = b * [L, W]
        return pos

    def _update_targets(self, ball: np.ndarray, possession: int) -> None:
        """Now and then a field player picks a new spot near its formation place; keepers follow the ball."""
        form = self._formation_positions(ball, possession)
        change = self.rng.random(len(self.pos)) < 0.04
        jitter = self.rng.normal(0.0, [3.0, 2.5], (len(self.pos), 2))
        self.targets[change] = form[change] + jitter[change]
        pull = 0.25  # drift towards the ball side
        self.targets[change, 1] += pull * (ball[1] - self.targets[change, 1])
        for side in (0, 1):
            k = side * PLAYERS_PER_TEAM
            lo, hi = self.pitch.posts_y_m
            x = 0.6 if side == 0 else self.pitch.length_m - 0.6
            self.targets[k] = [x, np.clip(ball[1], lo - 0.5, hi + 0.5)]
        self.targets[:, 0] = np.clip(self.targets[:, 0], 0.5, self.pitch.length_m - 0.5)
        self.targets[:, 1] = np.clip(self.targets[:, 1], 0.5, self.pitch.width_m - 0.5)

    def _steer(self, i: int, desired_vel: np.ndarray) -> None:
        dv = desired_vel - self.vel[i]
        n = float(np.hypot(*dv))
        if n > self.accel:
            dv *= self.accel / n
        self.vel[i] += dv

    def _move_players(self, holder: int) -> None:
        for i in range(len(self.pos)):
            if i in self.override:
                self.vel[i] = self.override[i]
            elif i != holder:
                d = self.targets[i] - self.pos[i]
                dist = float(np.hypot(*d))
                speed = min(self.run_max * 0.7, dist * 0.08)
                self._steer(i, _unit(d) * speed)
        self.pos += self.vel

    # -- kicks --------------------------------------------------------------------------------------------
    def _turn_ok(self, old_vel: np.ndarray, new_dir: np.ndarray) -> bool:
        if np.hypot(*old_vel) < REST_SPEED_MPS * self.dt:
            return True
        return _angle_deg(old_vel, new_dir) >= MIN_TURN_DEG

    def _exit(self, start: np.ndarray, vel: np.ndarray) -> tuple[int, str]:
        """First step k >= 1 at which the ball leaves the pitch, and whether that is a GOAL or OUT."""
        L, W = self.pitch.length_m, self.pitch.width_m
        t_exit = math.inf
        for axis, hi in ((0, L), (1, W)):
            v = vel[axis]
            if v > 1e-12:
                t_exit = min(t_exit, (hi - start[axis]) / v)
            elif v < -1e-12:
                t_exit = min(t_exit, (0.0 - start[axis]) / v)
        k = max(1, int(math.floor(t_exit)) + 1)
        while self.pitch.inside(start + k * vel):  # guard rounding exactly on the line
            k += 1
        while k > 1 and not self.pitch.inside(start + (k - 1) * vel):
            k -= 1
        p = start + k * vel
        beyond_goal_line = p[0] < 0.0 or p[0] > L
        inside_touch = 0.0 <= p[1] <= W
        if beyond_goal_line and inside_touch:
            # the crossing point of the goal line decides: between the posts is a goal
            x_line = 0.0 if p[0] < 0.0 else L
            s = (x_line - start[0]) / vel[0]
            if self.pitch.between_posts(start[1] + s * vel[1]) and self.pitch.between_posts(p[1]):
                return k, GOAL
        return k, OUT

    def _interception(self, start: np.ndarray, vel: np.ndarray, last_k: int, kicker: int,
                      exclude: set[int], shot_on_target: bool, misplaced: bool) -> tuple[int, int] | None:
        """Pick (player, k) who meets the ball at step k < last_k, or None."""
        kteam = int(self.team[kicker])
        ks = np.arange(3, last_k)
        if len(ks) == 0:
            return None
        ball_k = start[None, :] + ks[:, None] * vel[None, :]  # (K, 2)
        inside = (ball_k[:, 0] >= 0.3) & (ball_k[:, 0] <= self.pitch.length_m - 0.3) & \
                 (ball_k[:, 1] >= 0.3) & (ball_k[:, 1] <= self.pitch.width_m - 0.3)
        cands = []
        for i in range(len(self.pos)):
            if i == kicker or i in exclude:
                continue
            opponent = self.team[i] != kteam
            if not opponent and not misplaced:
                continue
            if self.keeper[i]:
                if not (opponent and shot_on_target):
                    continue
                reach, p = 1.3, self.p_save
            else:
                reach, p = 0.6, self.p_intercept
            d = np.hypot(*(ball_k - self.pos[i]).T)
            ok = inside & (d <= reach + ks * self.run_max)
            if ok.any():
                cands.append((int(ks[np.argmax(ok)]), i, p))
        cands.sort()
        for k, i, p in cands:
            if self.rng.random() < p:
                return i, k
        return None

    def _try_kick(self, f: int, holder: int, old_vel: np.ndarray, set_piece: bool,
                  intent: str | None) -> tuple[_Flight | None, str | None]:
        """Kick now if the ball can turn enough; else return the intention (SHOT / PASS) to slow down for."""
        rng, pitch = self.rng, self.pitch
        start = self.pos[holder].copy()
        t = int(self.team[holder])
        goal = pitch.goal_centre_m(1 - t)
        dist_goal = float(np.hypot(*(goal - start)))
        if intent is None:
            shoot = (not set_piece and not self.keeper[holder] and dist_goal < self.shoot_range_m
                     and rng.random() < self.p_shoot)
            intent = SHOT if shoot else PASS
        if intent == SHOT:
            half = pitch.goal_width_m / 2 + 0.7
            aim = goal + [0.0, rng.uniform(-half, half)]
            d = _unit(aim - start)
            if not self._turn_ok(old_vel, d):
                return None, SHOT
            vel = d * rng.uniform(*self.shot_speed)
            k_end, kind = self._exit(start, vel)
            return self._plan(f, holder, start, vel, k_end, kind, -1, is_shot=True,
                              on_target=kind == GOAL, misplaced=False), None
        mates = [i for i in range(len(self.pos)) if self.team[i] == t and i != holder]
        dists = np.array([np.hypot(*(self.pos[i] - start)) for i in mates])
        fwd = np.array([(self.pos[i][0] - start[0]) * (1 if t == 0 else -1) for i in mates])
        ok = (dists >= 3.5) & (dists <= 18.0)
        if not ok.any():
            ok = dists >= 1.0  # nobody at a good distance: anyone
        w = np.where(ok, np.exp(np.clip(fwd, -10, 10) / 2.5), 0.0)
        w *= np.where([self.keeper[i] for i in mates], 0.1, 1.0)
        target = mates[int(rng.choice(len(mates), p=w / w.sum()))]
        tpos = self.pos[target]
        speed = rng.uniform(*self.pass_speed)
        d = _unit(tpos - start)
        misplaced = not set_piece and rng.random() < self.p_misplaced
        if misplaced:
            ang = math.radians(rng.uniform(20, 45)) * rng.choice([-1, 1])
            c, s = math.cos(ang), math.sin(ang)
            d = np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])
        if not self._turn_ok(old_vel, d):
            return None, PASS
        if misplaced:
            vel = d * speed
            k_end, kind = self._exit(start, vel)
            return self._plan(f, holder, start, vel, k_end, kind, -1, is_shot=False, on_target=False,
                              misplaced=True), None
        meet = tpos + rng.uniform(0.0, 0.2) * (start - tpos)
        meet = np.clip(meet, [0.5, 0.5], [pitch.length_m - 0.5, pitch.width_m - 0.5])
        dist = float(np.hypot(*(meet - start)))
        n = max(4, int(dist / speed))  # floor: the ball is never slower than the drawn speed
        vel = (meet - start) / n
        if not self._turn_ok(old_vel, vel):
            return None, PASS
        return self._plan(f, holder, start, vel, n, RECEIVE, target, is_shot=False, on_target=False,
                          misplaced=False), None

    def _plan(self, f: int, kicker: int, start: np.ndarray, vel: np.ndarray, k_end: int, kind: str,
              receiver: int, *, is_shot: bool, on_target: bool, misplaced: bool) -> _Flight:
        hit = self._interception(start, vel, k_end, kicker, {receiver}, on_target, misplaced)
        if hit is not None:
            receiver, k_end = hit
            kind = RECEIVE
        if receiver >= 0:
            meet = start + k_end * vel
            self.override[receiver] = (meet - self.pos[receiver]) / k_end
        return _Flight(f, start, vel, f + k_end, kind, receiver, int(self.team[kicker]), is_shot)

    # -- main loop ----------------------------------------------------------------------------------------
    def run(self) -> Match:
        rng, pitch, N = self.rng, self.pitch, self.n
        P = len(self.pos)
        ball_out = np.zeros((N, 2))
        players_out = np.zeros((N, P, 2), np.float32)
        holder_out = np.full(N, -1, np.int16)
        events: list[SimEvent] = []

        # start: a kick-off, ball already at a player near the centre spot
        t0 = int(rng.integers(2))
        centre = np.array([pitch.length_m / 2, pitch.width_m / 2])
        holder = t0 * PLAYERS_PER_TEAM + 3
        self.pos[holder] = centre
        ball = centre.copy()
        ball_vel = np.zeros(2)
        control_until = int(rng.integers(2, 8))
        set_piece = True
        kick_after = control_until
        give_up = control_until + int(2.5 * self.fps)
        intent: str | None = None  # latched SHOT / PASS the holder slows down for
        flight: _Flight | None = None
        dead_until = -1
        restart: tuple[np.ndarray, int] | None = None
        last_team = t0

        for f in range(N):
            if f > 0:
                self._move_players(holder)
                if holder >= 0:
                    ball = self.pos[holder].copy()
                elif flight is not None:
                    ball = flight.start_m + (f - flight.start_frame) * flight.vel_m
                else:  # dead ball sliding to a stop
                    ball = ball + ball_vel
                    ball_vel *= 0.8
                    edge = pitch.margin_m - 0.4  # stays in view
                    ball = np.clip(ball, [-edge, -edge], [pitch.length_m + edge, pitch.width_m + edge])
            # -- events that happen at f
            if flight is not None and f == flight.end_frame:
                if flight.end_kind == RECEIVE:
                    holder = flight.receiver
                    self.override.pop(holder, None)
                    self.pos[holder] = ball  # exact meeting point (same value up to rounding)
                    self.vel[holder] = 0.0
                    events.append(SimEvent(f, RECEIVE, int(self.team[holder])))
                    control_until = f + max(2, int(rng.uniform(0.15, 0.5) * self.fps))
                    kick_after = control_until + int(rng.uniform(0.0, 1.6) * self.fps)
                    give_up = kick_after + int(1.0 * self.fps)
                    set_piece, intent = False, None
                    last_team = int(self.team[holder])
                else:
                    scorer = flight.kicker_team
                    if flight.end_kind == GOAL:
                        scorer = 0 if ball[0] > pitch.length_m else 1
                    events.append(SimEvent(f, flight.end_kind, scorer if flight.end_kind == GOAL
                                           else flight.kicker_team))
                    # the net stops a goal where it is; an OUT ball slides on
                    ball_vel = np.zeros(2) if flight.end_kind == GOAL else flight.vel_m.copy()
                    restart = self._restart(ball, flight)
                    pause_s = rng.uniform(2.0, 3.0) if flight.end_kind == GOAL else rng.uniform(1.2, 2.0)
                    dead_until = f + int(pause_s * self.fps)
                    spot, taker = restart
                    self.override[taker] = (spot - self.pos[taker]) / (dead_until - f)
                flight = None
            if holder < 0 and flight is None and f == dead_until and restart is not None:
                spot, taker = restart
                self.override.pop(taker, None)
                self.pos[taker] = spot
                self.vel[taker] = 0.0
                holder, ball, ball_vel = taker, spot.copy(), np.zeros(2)
                control_until = f + int(rng.uniform(0.2, 0.5) * self.fps)
                kick_after, give_up, set_piece, intent = control_until, control_until, True, None
                restart = None
            ball_out[f] = ball
            players_out[f] = self.pos
            holder_out[f] = holder
            # -- decisions for f -> f+1
            self._update_targets(ball, last_team)
            if holder >= 0:
                if f < control_until or set_piece:
                    self.vel[holder] = 0.0
                else:
                    tgoal = pitch.goal_centre_m(1 - int(self.team[holder]))
                    d = _unit(tgoal - self.pos[holder]) + rng.normal(0, 0.6, 2)
                    want = _unit(d) * self.dribble_max * (0.0 if f >= give_up or intent else 0.8)
                    margin = 1.5
                    p = self.pos[holder] + self.vel[holder] * 10
                    near_line = not (margin < p[0] < pitch.length_m - margin
                                     and margin < p[1] < pitch.width_m - margin)
                    if near_line:
                        want = _unit(np.array([pitch.length_m / 2, pitch.width_m / 2]) - self.pos[holder]) \
                            * self.dribble_max * 0.6
                    self._steer(holder, want)
                if f >= kick_after and f + 1 < N:
                    old_vel = ball - ball_out[f - 1] if f > 0 else np.zeros(2)
                    fl, intent = self._try_kick(f, holder, old_vel, set_piece, intent)
                    if fl is not None:
                        events.append(SimEvent(f, SHOT if fl.is_shot else PASS, int(self.team[holder])))
                        last_team = int(self.team[holder])
                        flight, holder = fl, -1
        return Match(pitch, self.fps, N, ball_out, players_out, holder_out, self.team.copy(),
                     self.keeper.copy(), [e for e in events if e.frame < N])

    def _restart(self, ball: np.ndarray, flight: _Flight) -> tuple[np.ndarray, int]:
        """Restart spot and taker after the ball went out at ``ball`` (or into a goal)."""
        pitch = self.pitch
        L, W = pitch.length_m, pitch.width_m
        other = 1 - flight.kicker_team
        if flight.end_kind == GOAL:
            conceding = 0 if ball[0] < 0 else 1
            spot, team = np.array([L / 2, W / 2]), conceding
        elif 0.0 <= ball[0] <= L:  # touch line: kick-in where it crossed
            y = 0.0 if ball[1] < 0 else W
            s = (y - flight.start_m[1]) / flight.vel_m[1]
            x = float(np.clip(flight.start_m[0] + s * flight.vel_m[0], 0.5, L - 0.5))
            spot, team = np.array([x, y]), other
        else:  # goal line
            side = 0 if ball[0] < 0 else 1  # goal of that side
            if flight.kicker_team != side:  # attackers put it out: goal clearance by the keeper
                k = side * PLAYERS_PER_TEAM
                return np.array([1.0 if side == 0 else L - 1.0, W / 2]), k
            spot = np.array([0.0 if side == 0 else L, 0.0 if ball[1] < W / 2 else W])  # corner
            team = other
        field_players = [i for i in range(len(self.pos)) if self.team[i] == team and not self.keeper[i]]
        taker = min(field_players, key=lambda i: float(np.hypot(*(self.pos[i] - spot))))
        return spot, taker


def simulate_match(seed: int | np.random.SeedSequence | np.random.Generator, num_frames: int,
                   fps: float = 25.0, pitch: Pitch | None = None) -> Match:
    """Simulate ``num_frames`` frames of play at ``fps``; deterministic for a given seed."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return _Sim(rng, float(fps), int(num_frames), pitch or Pitch()).run()

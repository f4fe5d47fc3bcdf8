"""Draw a simulated match as RGB frames: a static pitch per video, then players and ball per frame.

Pixel convention: the centre of pixel (row ``i``, column ``j``) is at image coordinates ``(x=j, y=i)``. A
pitch point ``(x_m, y_m)`` maps to ``origin_px + scale_px_per_m * (x_m, y_m)`` before the camera offset; a
frame with camera offset ``(dx, dy)`` shows it at that point plus ``(dx, dy)`` (integer pixels).
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from e2espot.data.synthetic.physics import Match, Pitch
from e2espot.errors import ConfigError

BALL_RADIUS_M = 0.33
PLAYER_RADIUS_M = 0.6
# team shirts; none of them is yellow, so the ball stays the only yellow object (min(R, G) - B small)
SHIRT_COLOURS = np.array([
    (215, 35, 45), (35, 70, 215), (95, 170, 240), (235, 235, 240), (25, 25, 35),
    (135, 45, 165), (120, 20, 45), (235, 105, 175), (20, 135, 140), (240, 120, 110),
], np.float32)
KEEPER_COLOURS = np.array([(60, 60, 70), (150, 150, 155), (200, 90, 220), (40, 170, 90)], np.float32)
# run-off area around the court (not yellow, not green): terracotta, slate blue, grey-brown
SURROUND_COLOURS = np.array([(170, 85, 60), (70, 95, 140), (120, 105, 95)], np.float64)
# the optional team cue (``team_cue``): how each team can be told apart in a frame without colours
TEAM_CUES: dict[str, str] = {
    "none": "no cue beyond the play (shirt colours are drawn per video; the default, as before)",
    "sleeve": "every player wears a sleeve band in a contrasting colour (white, or black on light shirts) "
              "on the side of the pitch its team defends: the left team's on the left of the body, the "
              "right team's on the right. A horizontal flip moves it to the other side exactly as it swaps "
              "the team labels, so the cue holds under the flip augmentation",
    "possession": "a broadcast-style possession graphic at the top centre of every frame: a white arrow on a "
                  "dark box pointing the way the team in possession (the team of the latest event) attacks, "
                  "right for the left team, left for the right team. It gives the team away by design; a "
                  "horizontal flip mirrors the arrow exactly as it swaps the team labels",
}
SLEEVE_OFFSET = 0.75  # sleeve centre, in player radii from the body centre along x (towards the own goal)
SLEEVE_RADIUS = 0.42  # sleeve disc radius in player radii
SLEEVE_LIGHT_SHIRT = 150.0  # shirts with a luma (0.299 R + 0.587 G + 0.114 B) above this get a black sleeve
SHOT_SWING = 1.4  # a shot's kicking leg reaches this much further than a pass's
FOLLOW_GAIN = 0.3  # camera pan: fraction of the remaining distance to the ball closed per frame


@dataclass(frozen=True)
class Camera:
    """Pitch-to-pixel mapping of one video."""

    width: int
    height: int
    scale_px_per_m: float
    origin_px: tuple[float, float]

    @classmethod
    def fit(cls, pitch: Pitch, width: int, height: int, *, zoom: float = 1.0) -> Camera:
        """The whole pitch fits the frame at ``zoom`` 1; ``zoom`` > 1 magnifies around the centre."""
        scale = zoom * min(width / (pitch.length_m + 2 * pitch.margin_m),
                           height / (pitch.width_m + 2 * pitch.margin_m))
        origin = ((width - 1 - pitch.length_m * scale) / 2, (height - 1 - pitch.width_m * scale) / 2)
        return cls(width, height, float(scale), (float(origin[0]), float(origin[1])))

    def to_px(self, xy_m: np.ndarray) -> np.ndarray:
        """Pitch metres (..., 2) to pixel coordinates (..., 2), without the camera offset."""
        return np.asarray(xy_m, np.float64) * self.scale_px_per_m + np.asarray(self.origin_px)


def _coverage(dist_px: np.ndarray, half_width_px: float) -> np.ndarray:
    """Anti-aliased coverage of a stroke/disc edge given the distance to its centre line/point."""
    return np.clip(half_width_px + 0.5 - dist_px, 0.0, 1.0)


def _segment_dist(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.hypot(px - (a[0] + t * ab[0]), py - (a[1] + t * ab[1]))


class Renderer:
    """Per-video look (colours, lighting, noise, jitter) and the frame drawing."""

    def __init__(self, match: Match, width: int, height: int, rng: np.random.Generator, *,
                 zoom: float = 1.0, team_cue: str = "none") -> None:
        if team_cue not in TEAM_CUES:
            raise ConfigError(f"synthetic data: unknown team cue {team_cue!r}; choose one of {', '.join(TEAM_CUES)}")
        self.match, self.width, self.height = match, width, height
        self.team_cue = team_cue
        self.cam = Camera.fit(match.pitch, width, height, zoom=zoom)
        s = self.cam.scale_px_per_m
        self.jitter_pad = max(1, int(round(0.3 * s)))
        # a zoomed camera pans to follow the ball (broadcast style) over a larger static canvas
        pitch = match.pitch
        span = (np.array([pitch.length_m, pitch.width_m]) + 2 * pitch.margin_m) * s
        self.pan_limit = np.maximum(0, np.ceil((span - [width, height]) / 2)).astype(np.int64)  # (2,) x, y
        self.pad = int(self.pan_limit.max()) + self.jitter_pad
        self.ball_r_px = max(1.5, BALL_RADIUS_M * s)  # at least a 3-pixel ball at low resolution
        self.player_r_px = max(1.5, PLAYER_RADIUS_M * s)
        self.head_r_px = max(0.6, 0.25 * s)
        # colours that vary per video
        shirts = rng.choice(len(SHIRT_COLOURS), 2, replace=False)
        keepers = rng.choice(len(KEEPER_COLOURS), 2, replace=False)
        self.team_colours = (SHIRT_COLOURS[shirts] + rng.normal(0, 8, (2, 3))).astype(np.float32)
        self.keeper_colours = (KEEPER_COLOURS[keepers] + rng.normal(0, 8, (2, 3))).astype(np.float32)
        # sleeve (team_cue "sleeve") per team and for keepers: white, or black on a light shirt
        self.sleeve_colours = self._sleeve_colours(self.team_colours)
        self.keeper_sleeve_colours = self._sleeve_colours(self.keeper_colours)
        self.head_colour = (np.array([40, 30, 25]) + rng.normal(0, 6, 3)).astype(np.float32)
        self.ball_colour = (np.array([252, 222, 40]) + rng.uniform(-6, 3, 3)).astype(np.float32)
        self.static = self._draw_pitch(rng).astype(np.float32)  # (H + 2 pad, W + 2 pad, 3), 0..255
        self._buf = np.empty((height, width, 3), np.float32)
        # distractors
        n = match.num_frames
        noise_sigma = rng.uniform(2.0, 5.0)
        self.noise = rng.normal(0, noise_sigma, (4, height + 2, width + 2, 3)).astype(np.float32)
        self.noise_pick = rng.integers(0, 4, n)
        self.noise_shift = rng.integers(0, 3, (n, 2))
        t_s = np.arange(n) / match.fps
        period_s = rng.uniform(6.0, 20.0)
        amp = rng.uniform(0.04, 0.12)
        phase = rng.uniform(0, 2 * math.pi, 3)
        wave = np.sin(2 * math.pi * t_s[:, None] / period_s + phase[None, :]) * [1, 0.8, 0.6]
        self.gain = (1.0 + amp * wave + rng.uniform(-0.06, 0.06)).astype(np.float32)  # (N, 3)
        self.offset_px = self._follow_ball() + self._camera_jitter(rng, n)  # (N, 2) int
        self.kicks = self._kick_poses()
        self.possession = self._possession()  # (N,) int8: team of the latest event at or before each frame
        self._arrows = self._draw_arrows() if team_cue == "possession" else None

    @staticmethod
    def _sleeve_colours(shirts: np.ndarray) -> np.ndarray:
        """(2, 3) float32 sleeve colour per shirt: white (240), or black (15) when the shirt's luma > 150."""
        luma = shirts @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.where((luma > SLEEVE_LIGHT_SHIRT)[:, None], 15.0, 240.0).repeat(3, 1).astype(np.float32)

    def _possession(self) -> np.ndarray:
        """(N,) int8 team (0 left, 1 right) of the latest event at or before each frame (the first event's
        team before it): at every event frame, the event's own team."""
        n = self.match.num_frames
        events = sorted(self.match.events, key=lambda e: e.frame)
        out = np.full(n, events[0].team if events else 0, np.int8)
        for e in events:
            out[e.frame:] = e.team
        return out

    def arrow_box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) pixel box (exclusive ends) of the possession graphic, top centre of the frame."""
        half_h = max(3, round(0.08 * self.height))
        half_w = max(3, round(0.7 * half_h))
        cx = self.width // 2
        return cx - half_w - 2, 1, cx + half_w + 2, 2 * half_h + 6

    def _draw_arrows(self) -> tuple[np.ndarray, np.ndarray]:
        """The possession graphic for team 0 (arrow pointing right) and team 1 (its mirror image), (h, w, 3)."""
        x0, y0, x1, y1 = self.arrow_box()
        box = np.full((y1 - y0, x1 - x0, 3), 28.0, np.float32)
        h, w = box.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        cy, half_h = (h - 1) / 2, (h - 5) / 2
        base, apex = 2.0, w - 3.0  # the triangle's base column and apex column
        inside = (xs >= base) & (xs <= apex) & (np.abs(ys - cy) <= half_h * (apex - xs) / (apex - base) + 0.25)
        box[inside] = 245.0
        return box, box[:, ::-1].copy()

    def sleeve_dx_px(self, team: int) -> float:
        """Horizontal offset (px) of a player's sleeve from its centre: towards the goal ``team`` defends
        (team 0 = left: negative). Only drawn with ``team_cue="sleeve"``."""
        return (-1.0 if team == 0 else 1.0) * SLEEVE_OFFSET * self.player_r_px

    def _kick_poses(self) -> dict[int, list[tuple[int, np.ndarray]]]:
        """Frame -> [(player, unit direction in px)] for the leg drawn around each PASS / SHOT / RECEIVE.

        A kick is visible as in real footage: the leg swings back at ``f - 1`` (opposite to the new ball
        direction) and follows through at ``f`` and ``f + 1`` (along it); ``f`` is the labelled frame.
        A RECEIVE shows the receiver's foot reaching towards the incoming ball at ``f - 1`` and ``f``.
        A SHOT is struck with a fuller swing: its leg reaches ``SHOT_SWING`` times as far from the body.
        The vector's length is that reach factor.
        """
        m = self.match
        poses: dict[int, list[tuple[int, np.ndarray]]] = {}
        for ev in m.events:
            f = ev.frame
            if ev.label == "RECEIVE" and f >= 1 and m.holder[f] >= 0:
                incoming = m.ball_m[f - 1] - m.ball_m[f]
                norm = float(np.linalg.norm(incoming))
                if norm > 0.0:
                    for frame in (f - 1, f):
                        poses.setdefault(frame, []).append((int(m.holder[f]), incoming / norm))
                continue
            if ev.label not in ("PASS", "SHOT") or f + 1 >= m.num_frames:
                continue
            kicker = int(np.argmin(np.linalg.norm(m.players_m[f] - m.ball_m[f], axis=1)))
            direction = m.ball_m[f + 1] - m.ball_m[f]
            norm = float(np.linalg.norm(direction))
            if norm == 0.0:
                continue
            unit = direction / norm * (SHOT_SWING if ev.label == "SHOT" else 1.0)
            for frame, sign in ((f - 1, -1.0), (f, 1.0), (f + 1, 1.0)):
                if 0 <= frame < m.num_frames:
                    poses.setdefault(frame, []).append((kicker, sign * unit))
        return poses

    # -- static pitch -------------------------------------------------------------------------------------
    def _draw_pitch(self, rng: np.random.Generator) -> np.ndarray:
        pitch, cam, pad = self.match.pitch, self.cam, self.pad
        H, W = self.height + 2 * pad, self.width + 2 * pad
        py, px = np.mgrid[0:H, 0:W].astype(np.float64)
        px -= pad
        py -= pad
        xm = (px - cam.origin_px[0]) / cam.scale_px_per_m
        ym = (py - cam.origin_px[1]) / cam.scale_px_per_m
        hue = rng.uniform(0.26, 0.36)
        green = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 0.7), rng.uniform(0.45, 0.62))) * 255
        stripe = rng.uniform(6, 18)
        n_stripes = int(rng.integers(8, 14))
        band = np.floor(xm / (pitch.length_m / n_stripes)).astype(int) % 2
        img = green[None, None, :] + (band[..., None] * 2 - 1) * stripe / 2
        # soft large-scale unevenness of the grass
        k = rng.uniform(0.1, 0.3, 2)
        img += (6 * np.sin(k[0] * xm + rng.uniform(0, 6)) * np.cos(k[1] * ym + rng.uniform(0, 6)))[..., None]
        # the run-off area around the court has its own colour (as on indoor courts), so a ball that
        # leaves the court is seen on a different ground, not only past a thin line
        outside = (xm < 0) | (xm > pitch.length_m) | (ym < 0) | (ym > pitch.width_m)
        surround = SURROUND_COLOURS[int(rng.integers(len(SURROUND_COLOURS)))] + rng.normal(0, 6, 3)
        img[outside] = surround + (img[outside] - green) * 0.3
        # lines (pixel space)
        hw = max(0.55, 0.06 * cam.scale_px_per_m)
        L, Wm = pitch.length_m, pitch.width_m

        def p(x: float, y: float) -> np.ndarray:
            return cam.to_px(np.array([x, y]))

        segs = [((0, 0), (L, 0)), ((L, 0), (L, Wm)), ((L, Wm), (0, Wm)), ((0, Wm), (0, 0)),
                ((L / 2, 0), (L / 2, Wm))]
        bd, bw = pitch.box_depth_m, pitch.box_width_m
        y0, y1 = (Wm - bw) / 2, (Wm + bw) / 2
        for x_line, x_in in ((0.0, bd), (L, L - bd)):
            segs += [((x_line, y0), (x_in, y0)), ((x_in, y0), (x_in, y1)), ((x_in, y1), (x_line, y1))]
        cover = np.zeros((H, W))
        for a, b in segs:
            cover = np.maximum(cover, _coverage(_segment_dist(px, py, p(*a), p(*b)), hw))
        c = p(L / 2, Wm / 2)
        r_px = pitch.centre_circle_m * cam.scale_px_per_m
        d_c = np.hypot(px - c[0], py - c[1])
        cover = np.maximum(cover, _coverage(np.abs(d_c - r_px), hw))
        cover = np.maximum(cover, _coverage(d_c, hw * 1.8))
        line_colour = np.full(3, rng.uniform(215, 250))
        img = img * (1 - cover[..., None]) + line_colour * cover[..., None]
        # goals: net (light hatch) behind each goal line, white frame
        lo, hi = pitch.posts_y_m
        gd = pitch.goal_depth_m
        mesh_m = 0.25
        for x_line, x_back in ((0.0, -gd), (L, L + gd)):
            x_a, x_b = min(x_line, x_back), max(x_line, x_back)
            inside = (xm >= x_a) & (xm <= x_b) & (ym >= lo) & (ym <= hi)
            mesh = ((np.abs((xm / mesh_m) - np.round(xm / mesh_m)) < 0.12)
                    | (np.abs((ym / mesh_m) - np.round(ym / mesh_m)) < 0.12)) & inside
            img[inside] = img[inside] * 0.8 + 40
            img[mesh] = img[mesh] * 0.5 + 110
            frame = np.zeros((H, W))
            posts = (((x_line, lo), (x_back, lo)), ((x_back, lo), (x_back, hi)), ((x_back, hi), (x_line, hi)))
            for a, b in posts:
                frame = np.maximum(frame, _coverage(_segment_dist(px, py, p(*a), p(*b)), hw * 1.4))
            img = img * (1 - frame[..., None]) + 245 * frame[..., None]
        return np.clip(img, 0, 255).astype(np.uint8)

    def _follow_ball(self) -> np.ndarray:
        """(N, 2) integer pan offsets that keep the ball near the centre, with a smooth camera lag."""
        n = self.match.num_frames
        if not self.pan_limit.any():
            return np.zeros((n, 2), np.int64)
        centre = np.array([(self.width - 1) / 2, (self.height - 1) / 2])
        wanted = np.clip(centre - self.cam.to_px(self.match.ball_m), -self.pan_limit, self.pan_limit)  # (N, 2)
        out = np.empty((n, 2), np.int64)
        cur = wanted[0].copy()
        for f in range(n):
            cur += FOLLOW_GAIN * (wanted[f] - cur)  # first-order lag: the operator follows, never jumps
            out[f] = np.round(cur)
        return out

    def _camera_jitter(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Small integer camera shake: a mean-reverting random walk within +-pad pixels."""
        off = np.zeros((n, 2), np.int64)
        cur = np.zeros(2, np.int64)
        steps = rng.random((n, 2))
        signs = rng.integers(0, 2, (n, 2)) * 2 - 1
        for f in range(n):
            move = steps[f] < 0.08
            step = np.where(rng.random(2) < 0.3 + 0.2 * np.abs(cur), -np.sign(cur), signs[f])
            cur = np.where(move, cur + step, cur)
            cur = np.clip(cur, -self.jitter_pad, self.jitter_pad)
            off[f] = cur
        return off

    # -- frames -------------------------------------------------------------------------------------------
    def ball_px(self) -> np.ndarray:
        """(N, 2) ball centre in each frame's pixel coordinates (camera offset included)."""
        return self.cam.to_px(self.match.ball_m) + self.offset_px

    @staticmethod
    def _sprite(img: np.ndarray, cx: float, cy: float,
                layers: list[tuple[float, float, float, np.ndarray, float]]) -> None:
        """Alpha-blend concentric-ish discs ``(dx, dy, radius, colour, alpha)`` around (cx, cy), in order."""
        H, W = img.shape[:2]
        ext = max(abs(dx) + abs(dy) + r for dx, dy, r, _, _ in layers) + 1.5
        x0, x1 = max(0, int(cx - ext)), min(W, int(cx + ext) + 2)
        y0, y1 = max(0, int(cy - ext)), min(H, int(cy + ext) + 2)
        if x0 >= x1 or y0 >= y1:
            return
        xs = np.arange(x0, x1, dtype=np.float32) - np.float32(cx)
        ys = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy))[:, None]
        box = img[y0:y1, x0:x1]
        for dx, dy, r, colour, alpha in layers:
            d = np.sqrt((xs - dx) ** 2 + (ys - dy) ** 2)
            a = np.clip(r + 0.5 - d, 0.0, 1.0)
            if alpha != 1.0:
                a *= alpha
            box += (colour - box) * a[..., None]

    def frame(self, frame_idx: int) -> np.ndarray:
        """RGB uint8 frame (H, W, 3)."""
        m, pad = self.match, self.pad
        gain = self.gain[frame_idx]
        dx, dy = (int(v) for v in self.offset_px[frame_idx])
        img = self._buf
        crop = self.static[pad - dy:pad - dy + self.height, pad - dx:pad - dx + self.width]
        np.multiply(crop, gain, out=img)
        shift = np.array([dx, dy], np.float64)
        shadow = np.zeros(3, np.float32)
        sh = 0.18 * self.cam.scale_px_per_m
        pr, hr, br = self.player_r_px, self.head_r_px, self.ball_r_px
        players = self.cam.to_px(m.players_m[frame_idx]) + shift
        team_colours, keeper_colours = self.team_colours * gain, self.keeper_colours * gain
        head = self.head_colour * gain
        legs = dict(self.kicks.get(frame_idx, []))
        leg_colour = np.array([235, 235, 235], np.float32) * gain
        sleeves = self.keeper_sleeve_colours * gain, self.sleeve_colours * gain
        for i, (x, y) in enumerate(players):
            team = int(m.player_team[i])
            keeper = bool(m.player_is_keeper[i])
            colour = keeper_colours[team] if keeper else team_colours[team]
            layers = [(sh, sh, pr, shadow, 0.3), (0.0, 0.0, pr, colour, 1.0), (0.0, 0.0, hr, head, 1.0)]
            if self.team_cue == "sleeve":
                layers.insert(2, (self.sleeve_dx_px(team), 0.0, max(1.0, SLEEVE_RADIUS * pr),
                                  sleeves[0 if keeper else 1][team], 1.0))
            if i in legs:  # the kicking leg, a light sock/boot just outside the body (further for a shot)
                ux, uy = legs[i]
                reach = pr + 0.6 * br
                layers.insert(1, (float(ux * reach), float(uy * reach), max(1.0, 0.5 * pr), leg_colour, 1.0))
            self._sprite(img, x, y, layers)
        bx, by = self.cam.to_px(m.ball_m[frame_idx]) + shift
        self._sprite(img, bx, by, [(sh * 0.6, sh * 0.6, br, shadow, 0.35),
                                   (0.0, 0.0, br, self.ball_colour * gain, 1.0)])
        if self._arrows is not None:  # team_cue "possession": an overlay, not lit like the pitch
            x0, y0, x1, y1 = self.arrow_box()
            img[y0:y1, x0:x1] = self._arrows[int(self.possession[frame_idx])]
        ox, oy = (int(v) for v in self.noise_shift[frame_idx])
        img += self.noise[self.noise_pick[frame_idx], oy:oy + self.height, ox:ox + self.width]
        np.clip(img, 0, 255, out=img)
        return img.astype(np.uint8)

    def frames(self) -> Iterator[np.ndarray]:
        for f in range(self.match.num_frames):
            yield self.frame(f)

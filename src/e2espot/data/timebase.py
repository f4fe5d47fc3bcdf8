"""Every conversion between frame index, seconds and milliseconds lives here.

Frames are 0-based. Times are seconds (float) in the API and milliseconds in SoccerNet files.
"""

from __future__ import annotations

import math


def frame_to_time_s(frame_idx: int, fps: float) -> float:
    """Start time of frame ``frame_idx`` in seconds."""
    return frame_idx / fps


def time_s_to_frame(time_s: float, fps: float) -> int:
    """Frame that is showing at ``time_s`` (floor, as SoccerNet and E2E-Spot do)."""
    # a tiny epsilon keeps exact multiples (e.g. 0.28 s * 25 fps = 6.999999) on their frame
    return int(math.floor(time_s * fps + 1e-6))


def frame_to_position_ms(frame_idx: int, fps: float) -> int:
    """SoccerNet ``position`` (integer ms) of a frame."""
    return int(frame_idx * 1000.0 / fps + 1e-6)


def position_ms_to_frame(position_ms: float, fps: float) -> int:
    """Frame of a SoccerNet ``position`` in ms: ``int(position / 1000 * fps)`` as the official evaluator."""
    return int(position_ms / 1000.0 * fps + 1e-6)


def position_ms_to_game_time(half: int, position_ms: float) -> str:
    """SoccerNet ``gameTime`` string ``"H - mm:ss"`` for a position within a half."""
    total_s = int(position_ms // 1000)
    return f"{half} - {total_s // 60:02d}:{total_s % 60:02d}"


def resample_frame(frame_idx: int, src_fps: float, dst_fps: float) -> int:
    """Map a frame index at ``src_fps`` to the frame showing at the same time at ``dst_fps``."""
    if src_fps == dst_fps:
        return frame_idx
    return time_s_to_frame(frame_to_time_s(frame_idx, src_fps), dst_fps)


def num_frames_at(num_frames: int, src_fps: float, dst_fps: float) -> int:
    """How many frames a video of ``num_frames`` at ``src_fps`` has when resampled to ``dst_fps``."""
    if src_fps == dst_fps:
        return num_frames
    return int(math.ceil(num_frames * dst_fps / src_fps - 1e-6))

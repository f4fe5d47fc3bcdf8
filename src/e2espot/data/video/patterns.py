"""Frames whose content encodes their own index: test fixtures and decode benchmarks.

The top half holds ``num_digits`` vertical stripes, one base-8 digit each as a flat grey level
(32 * digit + 16), coarse enough to survive lossy H.264 and JPEG. The bottom half holds a moving
square so encoders use real motion prediction (and B-frames) on it.
"""

from __future__ import annotations

import numpy as np

_BASE = 8
_STEP = 256 // _BASE


def index_pattern(frame_idx: int, width: int = 64, height: int = 48, num_digits: int = 4) -> np.ndarray:
    """An (height, width, 3) uint8 RGB frame that shows ``frame_idx`` (0 <= frame_idx < 8**num_digits)."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    stripe_px = width // num_digits
    value = int(frame_idx)
    for d in range(num_digits):
        digit = (value // _BASE ** (num_digits - 1 - d)) % _BASE
        frame[: height // 2, d * stripe_px:(d + 1) * stripe_px] = digit * _STEP + _STEP // 2
    side = max(2, height // 6)
    x = (3 * frame_idx) % max(1, width - side)
    y = height // 2 + (frame_idx % max(1, height // 2 - side))
    frame[height // 2:, :, 2] = 60
    frame[y:y + side, x:x + side] = (250, 200, 30)
    return frame


def decode_index_pattern(frame: np.ndarray, num_digits: int = 4) -> int:
    """The index shown by a (possibly lossy, resized) ``index_pattern`` frame."""
    height, width = frame.shape[:2]
    stripe_px = width / num_digits
    value = 0
    for d in range(num_digits):
        x0 = int(d * stripe_px + stripe_px / 4)
        x1 = max(x0 + 1, int((d + 1) * stripe_px - stripe_px / 4))
        level = float(np.median(frame[height // 8: height * 3 // 8, x0:x1]))
        digit = int(np.clip(round((level - _STEP // 2) / _STEP), 0, _BASE - 1))
        value = value * _BASE + digit
    return value

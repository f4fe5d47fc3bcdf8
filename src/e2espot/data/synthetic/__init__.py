"""Synthetic futsal-like matches with frame-exact events: the demo's data and the test fixtures.

``generate_dataset(out_dir, ...)`` simulates and renders videos and writes their labels in the E2E-Spot and
SoccerNet-Ball layouts. Event frame definitions live in :mod:`e2espot.data.synthetic.physics`.
"""

from e2espot.data.synthetic.dataset import (
    SPLITS,
    SyntheticDataset,
    generate_dataset,
    render_video,
    split_counts,
)
from e2espot.data.synthetic.physics import CLASSES, Match, Pitch, SimEvent, simulate_match
from e2espot.data.synthetic.render import Camera, Renderer

__all__ = [
    "CLASSES", "SPLITS", "Camera", "Match", "Pitch", "Renderer", "SimEvent", "SyntheticDataset",
    "generate_dataset", "render_video", "simulate_match", "split_counts",
]

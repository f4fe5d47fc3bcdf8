"""Read videos straight from files (PyAV, exact seeks) or frame folders, resampled and resized.

    with open_video("match.mp4", fps=25, height=224) as reader:
        clip = reader.read_clip(1000, 64)   # (64, 224, W, 3) uint8 RGB
"""

from e2espot.data.video.base import (
    VIDEO_EXTENSIONS,
    VideoInfo,
    VideoReader,
    list_backends,
    open_video,
    probe_video,
    register_backend,
)
from e2espot.data.video.find import find_video
from e2espot.data.video.writer import VideoWriter, write_video

__all__ = [
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "find_video",
    "list_backends",
    "open_video",
    "probe_video",
    "register_backend",
    "write_video",
]

"""AdaSpot on a raw video (issue 19 item 2): one decode feeds both resolutions, and frames stream.

``predict_file`` opens the video once, at the run's high-res size (the decoder scales each native frame
once); the model receives exactly those frames and builds its low-res image and RoI crops from them
(``AdaSpot.inputs``); the frame ring holds a bounded number of frames whatever the video's length.
"""

from __future__ import annotations

import numpy as np
import torch

import e2espot.data.video as video_mod
from e2espot.config import DataConfig, RunConfig
from e2espot.data.video.writer import write_video
from e2espot.infer.predict import CHUNK_LEN, predict_file, predict_scores
from e2espot.models import create_spotter
from e2espot.models.adaspot import AdaSpot, training_config

CLASSES = ("PASS", "SHOT")
CLIP = 8


def _run() -> tuple[AdaSpot, RunConfig]:
    torch.manual_seed(0)
    model_cfg = training_config("adaspot_small", len(CLASSES), CLIP, 64, None)  # high-res 64x114, low-res 32x57
    cfg = RunConfig(model=model_cfg, data=DataConfig(fps=12.5, height=64, width=114, clip_len=CLIP), classes=CLASSES)
    model = create_spotter(model_cfg).eval()
    return model, cfg


def _video(path, num_frames: int, width: int = 256, height: int = 144):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8)
    return write_video(path, frames, 12.5)


def test_predict_decodes_once_at_the_highres_size_and_the_model_resizes(tmp_path, monkeypatch):
    model, cfg = _run()
    video = _video(tmp_path / "match.mp4", 20)
    opened, yielded, inputs = [], [], []
    real_open = video_mod.open_video

    def counting_open(path, **kwargs):
        reader = real_open(path, **kwargs)
        opened.append(kwargs)
        real_iter = reader.iter_chunks

        def iter_chunks(*a, **k):
            for start, chunk in real_iter(*a, **k):
                yielded.append((start, chunk.shape))
                yield start, chunk

        reader.iter_chunks = iter_chunks
        return reader

    real_forward = model.forward

    def recording_forward(x):
        inputs.append(tuple(x.shape))
        return real_forward(x)

    monkeypatch.setattr(video_mod, "open_video", counting_open)
    monkeypatch.setattr(model, "forward", recording_forward)
    files = predict_file(video, (model, cfg), tmp_path / "out", precision="fp32")

    assert len(opened) == 1 and (opened[0]["height"], opened[0]["width"]) == (64, 114)
    assert [s for s, _ in yielded] == list(range(0, 20, CHUNK_LEN))  # one pass over the file
    assert sum(shape[0] for _, shape in yielded) == 20 and {shape[1:] for _, shape in yielded} == {(64, 114, 3)}
    assert inputs and {shape[1:] for shape in inputs} == {(CLIP, 3, 64, 114)}  # the decoded frames, as they are
    low, high = model.inputs(torch.rand(1, CLIP, 3, 64, 114))
    assert low.shape == (CLIP, 3, 32, 57) and high.shape == (1, CLIP, 3, 64, 114)
    scores = np.load(files.scores_npz)["scores"]
    assert scores.shape == (20, len(CLASSES) + 1)


def test_adaspot_scores_stream_in_a_bounded_ring(tmp_path):
    """48 frames, windows of 8 every 4, batch 2, chunks of 8: the ring never holds more than
    clip + batch x step + chunk = 24 frames, half the video."""
    model, cfg = _run()
    video = _video(tmp_path / "long.mp4", 48, 160, 90)
    stats: dict[str, int] = {}
    with video_mod.open_video(video, fps=cfg.data.fps, height=cfg.data.height, width=cfg.data.width) as reader:
        scores = predict_scores(model, reader, cfg, batch_size=2, chunk_len=8, precision="fp32", stats=stats)
    assert scores.shape == (48, 3) and np.allclose(scores.sum(1), 1, atol=1e-5)
    assert stats["num_frames"] == 48 and stats["num_windows"] == 11
    assert stats["peak_frames"] <= CLIP + 2 * 4 + 8 < 48

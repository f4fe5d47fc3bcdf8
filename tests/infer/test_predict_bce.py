"""Scores follow the training loss: softmax for CE/focal, sigmoid one-vs-rest for BCE."""

import torch

from e2espot.config import DataConfig, ModelConfig, RunConfig
from e2espot.infer.predict import frame_probabilities


def _cfg(loss: str) -> RunConfig:
    return RunConfig(ModelConfig(num_classes=2, backbone="test_tiny"), DataConfig(), ("A", "B"), train={"loss": loss})


def test_ce_uses_softmax():
    logits = torch.tensor([[[0.0, 1.0, 2.0]]])
    torch.testing.assert_close(frame_probabilities(logits, _cfg("ce")), logits.softmax(-1))


def test_bce_uses_sigmoid_per_class_and_background_is_complement():
    logits = torch.tensor([[[5.0, 0.0, 2.0]]])  # background logit is untrained under BCE: ignored
    probs = frame_probabilities(logits, _cfg("bce"))
    fg = torch.tensor([0.0, 2.0]).sigmoid()
    torch.testing.assert_close(probs[0, 0, 1:], fg)
    torch.testing.assert_close(probs[0, 0, 0], 1 - fg.max())


def test_predict_file_applies_per_class_thresholds_from_the_run(tmp_path):
    """Thresholds recorded in config.json (chosen on val) filter events per class unless --threshold."""
    import numpy as np

    from e2espot.checkpoint import save_checkpoint
    from e2espot.data.video.writer import write_video
    from e2espot.infer.predict import predict_file
    from e2espot.models import create_spotter

    cfg = RunConfig(ModelConfig(num_classes=2, backbone="test_tiny", head="fc", clip_len=8),
                    DataConfig(height=32, clip_len=8), ("A", "B"),
                    train={"postprocess": {"nms": "none", "thresholds": {"A": 0.0, "B": 1.0}}})
    cfg.save(tmp_path / "config.json")
    model = create_spotter(cfg.model)
    with torch.no_grad():
        model.head.fc.bias.copy_(torch.tensor([0.0, 1.0, 1.0]))  # A and B score about 0.4 everywhere
    save_checkpoint({"model": model.state_dict(), "config": cfg.to_dict()}, tmp_path / "best.pt")
    video = write_video(tmp_path / "v.mp4", np.zeros((12, 32, 48, 3), np.uint8), 25.0)
    files = predict_file(video, tmp_path, tmp_path / "out", device="cpu", precision="fp32")
    labels = {e.label for e in files.video_labels.events}
    assert labels == {"A"} and len(files.video_labels.events) == 12  # B's threshold 1.0 drops all of B
    explicit = predict_file(video, tmp_path, tmp_path / "out2", device="cpu", precision="fp32", threshold=0.1)
    assert {e.label for e in explicit.video_labels.events} == {"A", "B"}

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

"""Typed post-processing and score activation in RunConfig; clip_len agreement (issue 13 item 2)."""

from __future__ import annotations

import json

import pytest

from e2espot.config import DataConfig, ModelConfig, PostprocessConfig, RunConfig
from e2espot.errors import ConfigError
from e2espot.infer.predict import applied_postprocess, resolve_postprocess

CLASSES = ("a", "b")


def _cfg(**train) -> RunConfig:
    return RunConfig(ModelConfig(num_classes=2, clip_len=8), DataConfig(clip_len=8), CLASSES, train=train)


def test_old_config_json_reads_into_the_typed_view(tmp_path):
    old = {"model": {"num_classes": 2, "clip_len": 8}, "data": {"clip_len": 8}, "classes": list(CLASSES),
           "train": {"loss": "bce", "postprocess": {"nms": "hard", "nms_window": 2, "thresholds": {"a": 0.25, "b": 0.5},
                                                    "chosen_on": "val", "f1_tolerance_frames": 1}}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = RunConfig.load(tmp_path / "config.json")
    assert cfg.postprocess == PostprocessConfig("hard", 2, None, {"a": 0.25, "b": 0.5}, "val", 1)
    assert cfg.activation() == "sigmoid" and cfg.score_activation is None
    assert "score_activation" not in cfg.to_dict()  # an old file saves back unchanged
    assert cfg.to_dict()["train"] == old["train"]
    assert resolve_postprocess(cfg) == ("hard", 2, 0.5)
    post = applied_postprocess(cfg)
    assert post.thresholds == {"a": 0.25, "b": 0.5}
    assert "best F1 at 1 frame on val" in post.threshold_source


def test_explicit_score_activation_round_trips(tmp_path):
    cfg = RunConfig(ModelConfig(num_classes=2), DataConfig(), CLASSES, train={"loss": "bce"},
                    score_activation="softmax")
    assert cfg.activation() == "softmax"
    cfg.save(tmp_path / "c.json")
    back = RunConfig.load(tmp_path / "c.json")
    assert back == cfg and back.to_dict()["score_activation"] == "softmax"
    assert _cfg(loss="ce").activation() == "softmax"
    with pytest.raises(ConfigError, match="score_activation 'tanh' must be one of softmax, sigmoid"):
        RunConfig(ModelConfig(num_classes=2), DataConfig(), CLASSES, score_activation="tanh")


@pytest.mark.parametrize("post, message", [
    ({"nms": "greedy"}, "unknown NMS 'greedy'; expected one of hard, soft, none"),
    ({"nms_window": -1}, "nms_window -1 must be a non-negative integer"),
    ({"thresholds": {"a": 1.5}}, "threshold of class 'a' 1.5 must be a number in"),
    ({"window": 3}, r"unknown keys \['window'\]"),
])
def test_bad_recorded_postprocess_is_named(post, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(postprocess=post).postprocess  # noqa: B018


def test_recorded_window_applies_only_to_its_nms():
    cfg = _cfg(postprocess={"nms": "soft", "nms_window": 12})
    assert resolve_postprocess(cfg) == ("soft", 12, 0.5)
    assert resolve_postprocess(cfg, nms="hard") == ("hard", 1, 0.5)
    assert resolve_postprocess(_cfg(postprocess={"threshold": 0.3})) == ("hard", 1, 0.3)


def test_clip_len_must_agree_when_the_model_pads():
    model = ModelConfig(num_classes=2, clip_len=64, pad_to_clip_len=True)
    with pytest.raises(ConfigError, match="model.clip_len 64 and data.clip_len 100 differ"):
        RunConfig(model, DataConfig(clip_len=100), CLASSES)
    assert RunConfig(model, DataConfig(clip_len=64), CLASSES).data.clip_len == 64
    # without in-model padding data.clip_len wins (the windows); the model's is what it was built for
    assert RunConfig(ModelConfig(num_classes=2, clip_len=8), DataConfig(clip_len=16), CLASSES).data.clip_len == 16

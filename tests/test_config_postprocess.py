"""Typed post-processing and score activation in RunConfig; clip_len agreement (issue 13 item 2)."""

from __future__ import annotations

import json
from dataclasses import replace

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
    # saved back in today's layout: the same settings, in the postprocess section
    assert cfg.to_dict()["train"] == {"loss": "bce"} and cfg.to_dict()["postprocess"] == old["train"]["postprocess"]
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


def test_postprocess_is_its_own_config_json_section(tmp_path):
    post = PostprocessConfig("hard", 1, None, {"a": 0.25, "b": 0.75}, "val", 2)
    cfg = RunConfig(ModelConfig(num_classes=2, clip_len=8), DataConfig(clip_len=8), CLASSES, train={"loss": "ce"},
                    postprocess=post)
    cfg.save(tmp_path / "config.json")
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["postprocess"] == {"nms": "hard", "nms_window": 1, "thresholds": {"a": 0.25, "b": 0.75},
                                      "chosen_on": "val", "f1_tolerance_frames": 2}
    assert written["train"] == {"loss": "ce"}  # one place: the section, not train.postprocess
    back = RunConfig.load(tmp_path / "config.json")
    assert back == cfg and back.postprocess == post
    # nothing recorded: no section, so config.json of runs that never chose one compares as before
    assert "postprocess" not in _cfg(loss="ce").to_dict() and "postprocess" not in _cfg().to_dict()["train"]


def test_replacing_the_field_and_older_code_setting_train_postprocess():
    cfg = _cfg(loss="ce", postprocess={"nms": "soft", "nms_window": 12})
    assert cfg.postprocess == PostprocessConfig(nms="soft", nms_window=12)
    new = replace(cfg, postprocess=PostprocessConfig(nms="hard", threshold=0.4))
    assert new.postprocess.to_dict() == {"nms": "hard", "threshold": 0.4} and new.train == {"loss": "ce"}
    assert resolve_postprocess(new) == ("hard", 1, 0.4)
    # a replace of other fields keeps it
    assert replace(new, train={**new.train, "team_joint": True}).postprocess == new.postprocess
    # older code set train["postprocess"] itself: that still wins
    old_style = replace(new, train={**new.train, "postprocess": {"nms": "none", "threshold": 0.2}})
    assert old_style.postprocess == PostprocessConfig(nms="none", threshold=0.2)
    assert "postprocess" not in old_style.train  # moved into the field


def test_a_file_whose_two_postprocess_records_differ_is_refused(tmp_path):
    data = {"model": {"num_classes": 2, "clip_len": 8}, "data": {"clip_len": 8}, "classes": list(CLASSES),
            "train": {"postprocess": {"nms": "hard", "threshold": 0.5}}, "postprocess": {"nms": "hard", "threshold": 0.3}}
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"postprocess \{'nms': 'hard', 'threshold': 0.3\} and train.postprocess "
                                          r"\{'nms': 'hard', 'threshold': 0.5\} differ; .*keep the postprocess section"):
        RunConfig.load(tmp_path / "config.json")
    data["train"]["postprocess"]["threshold"] = 0.3  # equal: fine
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert RunConfig.load(tmp_path / "config.json").postprocess.threshold == 0.3
    with pytest.raises(ConfigError, match="config.json postprocess: unknown NMS 'greedy'"):
        RunConfig.from_dict({**data, "postprocess": {"nms": "greedy"}, "train": {}})


def test_an_old_layout_run_directory_loads_and_predicts_with_its_thresholds(tmp_path):
    """A run directory written before ``postprocess`` had its own section (thresholds in train.postprocess)."""
    import torch

    from e2espot.checkpoint import save_checkpoint
    from e2espot.infer.predict import load_run
    from e2espot.models import create_spotter

    model_cfg = {"num_classes": 2, "backbone": "test_tiny", "temporal_module": None, "head": "fc", "clip_len": 8}
    old = {"model": model_cfg, "data": {"height": 32, "clip_len": 8}, "classes": list(CLASSES),
           "train": {"loss": "ce", "postprocess": {"nms": "hard", "nms_window": 2, "thresholds": {"a": 0.3, "b": 0.6},
                                                   "chosen_on": "val", "f1_tolerance_frames": 1}},
           "dataset": {}}
    (tmp_path / "config.json").write_text(json.dumps(old, indent=2))
    torch.manual_seed(0)
    save_checkpoint({"model": create_spotter(ModelConfig.from_dict(model_cfg)).state_dict(), "config": old,
                     "epoch": 0}, tmp_path / "best.pt")
    _, cfg = load_run(tmp_path, device="cpu")
    assert cfg.postprocess == PostprocessConfig("hard", 2, None, {"a": 0.3, "b": 0.6}, "val", 1)
    post = applied_postprocess(cfg)
    assert (post.nms, post.nms_window, post.thresholds) == ("hard", 2, {"a": 0.3, "b": 0.6})
    assert post.describe()[1] == ("score thresholds: per-class thresholds a 0.300, b 0.600 (the run's config.json: "
                                  "best F1 at 1 frame on val, chosen at the end of training; --threshold T overrides)")


def test_configs_with_a_postprocess_save_into_safe_checkpoints_and_pickle(tmp_path):
    import copy
    import pickle

    import torch

    cfg = _cfg(loss="ce", postprocess={"nms": "hard", "thresholds": {"a": 0.3}})
    torch.save({"model": {}, "config": cfg.to_dict()}, tmp_path / "c.pt")
    loaded = torch.load(tmp_path / "c.pt", weights_only=True)  # plain dicts only
    assert RunConfig.from_dict(loaded["config"]) == cfg
    for other in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):
        assert other == cfg and other.postprocess.thresholds == {"a": 0.3}
        assert replace(other, postprocess=PostprocessConfig(threshold=0.9)).postprocess.threshold == 0.9

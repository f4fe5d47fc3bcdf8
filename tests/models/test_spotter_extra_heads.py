"""The Spotter's optional second class head and Team-BAS team head, and the T-DEED SGP mixer order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from e2espot.config import ModelConfig
from e2espot.errors import ConfigError
from e2espot.infer.postprocess import team_scores_to_events
from e2espot.infer.predict import split_team
from e2espot.models import create_spotter
from e2espot.models.heads import SGPMixer


def _cfg(**kw) -> ModelConfig:
    base = dict(num_classes=3, backbone="test_tiny", temporal_module=None, head="edsgp", clip_len=8,
                head_kwargs={"num_layers": 1, "kernel_size": 3, "r": 2})
    return ModelConfig(**{**base, **kw})


def test_team_and_second_head_outputs_and_keys():
    torch.manual_seed(0)
    plain = create_spotter(_cfg(displacement=True))
    model = create_spotter(_cfg(displacement=True, extra_num_classes=5, team_head=True)).eval()
    out = model(torch.rand(2, 8, 3, 32, 32))
    assert out.logits.shape == (2, 8, 4)
    assert out.extra_logits.shape == (2, 8, 6)
    assert out.team.shape == (2, 8) and out.displacement.shape == (2, 8)
    state = model.state_dict()
    assert state["team_head.1.weight"].shape == (1, 64) and state["extra_head.1.weight"].shape == (6, 64)
    # Linear(64, 1) + Linear(64, 6) on top of the same model
    assert model.num_parameters() - plain.num_parameters() == 65 + 6 * 65
    assert "team head" in model.summary() and "second class head (K2+1=6)" in model.summary()


def test_heads_are_off_by_default_and_old_configs_load():
    old = {"num_classes": 3, "backbone": "test_tiny", "temporal_module": None, "head": "gru", "clip_len": 8}
    cfg = ModelConfig.from_dict(old)
    assert (cfg.extra_num_classes, cfg.team_head) == (0, False)
    model = create_spotter(cfg).eval()
    out = model(torch.rand(1, 8, 3, 32, 32))
    assert out.team is None and out.extra_logits is None
    assert not any(k.startswith(("team_head", "extra_head")) for k in model.state_dict())
    # a team head works on any temporal head: the GRU's hidden sequence is 2H wide
    team = create_spotter(ModelConfig.from_dict({**old, "team_head": True})).eval()
    assert team(torch.rand(1, 8, 3, 32, 32)).team.shape == (1, 8)
    assert team.state_dict()["team_head.1.weight"].shape == (1, 128)


def test_bad_extra_num_classes():
    with pytest.raises(ConfigError, match="extra_num_classes must be an int >= 0"):
        create_spotter(_cfg(extra_num_classes=-1))


def test_sgp_mixer_normalises_before_upsampling():
    """T-DEED SGPMixer: x = upsample(LN2(x)); LayerNorm after the upsampling gives other numbers."""
    torch.manual_seed(0)
    mixer = SGPMixer(32, 3, 2).eval()
    with torch.no_grad():
        mixer.ln2.weight.normal_()
        mixer.ln2.bias.normal_()
    x, z = torch.randn(2, 32, 5), torch.randn(2, 32, 10)
    got = mixer(x, z)
    seen = {}
    mixer.psi2.register_forward_hook(lambda m, args, out: seen.setdefault("x", args[0]))
    mixer(x, z)
    before = F.interpolate(mixer.ln2(x), size=10, mode="linear", align_corners=True)
    after = mixer.ln2(F.interpolate(x, size=10, mode="linear", align_corners=True))
    torch.testing.assert_close(seen["x"], before)
    assert not torch.allclose(before, after, atol=1e-3)
    assert got.shape == (2, 32, 10)


def test_split_team_columns():
    probs = torch.tensor([[[0.5, 0.2, 0.3], [1.0, 0.0, 0.0]]])  # (1, 2, K+1), K = 2
    team = torch.tensor([[0.0, 100.0]])  # sigmoid 0.5 and 1.0
    out = split_team(probs, team)
    expected = torch.tensor([[[0.5, 0.1, 0.1, 0.15, 0.15], [1.0, 0.0, 0.0, 0.0, 0.0]]])
    torch.testing.assert_close(out, expected)


def test_team_events_group_left_and_right_in_soft_nms():
    import numpy as np

    scores = np.zeros((30, 5), dtype=np.float32)  # classes A, B: columns A-left, A-right, B-left, B-right
    scores[10, 1], scores[10, 2] = 0.6, 0.3  # A left and right on one frame: the weaker drops to 0
    scores[16, 2] = 0.8  # A right 6 frames away: decayed by (6/12)^2 = 0.25 after the first take
    scores[10, 4] = 0.5  # B is its own group
    events = team_scores_to_events(scores, ["A", "B"], threshold=0.01, nms="soft", window=12)
    got = [(e.frame, e.label, e.team, round(e.score, 6)) for e in events]
    assert got == [(10, "A", "left", 0.15), (10, "B", "right", 0.5), (16, "A", "right", 0.8)]
    raw = team_scores_to_events(scores, ["A", "B"], threshold=0.01, nms="none", window=0)
    assert len(raw) == 4
    hard = team_scores_to_events(scores, ["A", "B"], threshold=0.01, nms="hard", window=12)
    assert [(e.frame, e.label, e.team) for e in hard] == [(10, "B", "right"), (16, "A", "right")]
    with pytest.raises(ConfigError, match=r"team scores must be \(num_frames, 5\)"):
        team_scores_to_events(scores[:, :3], ["A", "B"])

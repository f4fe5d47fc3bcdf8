"""Team targets for the team head: clip_team_targets, ClipDataset(team=True) and the team BCE."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from e2espot.config import DataConfig
from e2espot.data.datasets import ClipDataset, clip_team_targets
from e2espot.data.labels import Event, LabelSet, VideoLabels
from e2espot.errors import ConfigError, LabelFormatError
from e2espot.models.losses import SpottingLoss, team_bce


class _Reader:
    def __init__(self, n: int) -> None:
        self.num_frames, self.fps, self.height, self.width = n, 25.0, 4, 4

    def read_clip(self, start: int, num: int) -> np.ndarray:
        return np.zeros((num, 4, 4, 3), dtype=np.uint8)

    def close(self) -> None:
        pass


class _Factory:
    def __call__(self, video: VideoLabels) -> _Reader:
        return _Reader(video.num_frames)


def test_clip_team_targets_dilation_overwrite_and_padding():
    # events: frame 3 right, frame 5 left (dilated by 1 they share frame 4: the later event wins),
    # frame 9 without team; clip starts at -2 (two padding frames), 12 frames, video of 10 frames
    out = clip_team_targets([5, 3, 9], [0, 1, -1], -2, 12, 10, dilate_len=1)
    expected = [-1, -1, -1, -1, 1, 1, 0, 0, 0, -1, -1, -1]
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.float32))
    with pytest.raises(ConfigError, match="2 event frames but 1 event teams"):
        clip_team_targets([1, 2], [0], 0, 4, 10)


def _labels(*teams):
    events = [Event(4 + 6 * i, "PASS", team=t) for i, t in enumerate(teams)]
    return LabelSet(["PASS"], [VideoLabels("v", 25.0, 40, events)])


def test_clip_dataset_team_item():
    cfg = DataConfig(fps=25.0, height=4, clip_len=40)
    ds = ClipDataset(_labels("left", "right", "not applicable"), cfg, epoch_clips=4,
                     reader_factory=_Factory(), team=True, pad=0)
    item = ds[0]
    assert item["team"].dtype == torch.float32 and item["team"].shape == (40,)
    start = int(item["start"])
    team = item["team"].numpy()
    for frame, expected in ((4, 0.0), (10, 1.0), (16, -1.0)):
        assert team[frame - start] == expected
    assert (team >= 0).sum() == 2  # only the event frames (dilate_len 0) with a team
    assert "team" not in ClipDataset(_labels("left"), cfg, epoch_clips=1, reader_factory=_Factory())[0]
    with pytest.raises(ConfigError, match="no event has a 'left' or 'right' team"):
        ClipDataset(_labels(None), cfg, epoch_clips=1, reader_factory=_Factory(), team=True)
    with pytest.raises(LabelFormatError, match=r"event #0: team 'home' .*home_side"):
        ClipDataset(_labels("home"), cfg, epoch_clips=1, reader_factory=_Factory(), team=True)


def test_team_bce_is_the_baseline_masked_mean():
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0]], requires_grad=True)  # (B, T)
    target = torch.tensor([[1.0, -1.0, 0.0, 1.0]])
    valid = torch.tensor([[True, True, True, False]])
    loss = team_bce(logits, target, valid)
    expected = F.binary_cross_entropy_with_logits(torch.tensor([0.5, 2.0]), torch.tensor([1.0, 0.0]))
    assert torch.allclose(loss, expected)
    loss.backward()
    assert logits.grad[0, 1] == 0 and logits.grad[0, 3] == 0 and logits.grad[0, 0] < 0
    none = team_bce(logits, torch.full((1, 4), -1.0))
    assert none.item() == 0.0 and none.requires_grad
    with pytest.raises(ConfigError, match=r"team loss: logits \(1, 4\) and team targets \(4,\)"):
        team_bce(logits, target[0])


def test_spotting_loss_adds_the_team_term():
    logits = torch.zeros(1, 4, 2)
    out = SimpleNamespace(logits=logits, stage_logits=[], displacement=None, features=None,
                          team=torch.tensor([[3.0, 0.0, 0.0, 0.0]]))
    target = {"labels": torch.tensor([[1, 0, 0, 0]]), "team": torch.tensor([[0.0, -1.0, -1.0, -1.0]])}
    loss_fn = SpottingLoss(1, "ce", team_weight=2.0)
    total = loss_fn(out, target)
    team = 2.0 * F.binary_cross_entropy_with_logits(torch.tensor(3.0), torch.tensor(0.0))
    assert loss_fn.last_parts["team"] == pytest.approx(float(team))
    assert float(total) == pytest.approx(loss_fn.last_parts["ce"] + float(team))
    with pytest.raises(ConfigError, match="no team head"):
        loss_fn(SimpleNamespace(**{**vars(out), "team": None}), target)
    loss_fn(out, {"labels": target["labels"]})
    assert "team" not in loss_fn.last_parts

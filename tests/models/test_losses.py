"""Losses on hand-worked cases."""

import math

import pytest
import torch
import torch.nn.functional as F

from e2espot.errors import ConfigError, UnknownNameError
from e2espot.models.losses import (
    SoftICLoss,
    SpottingLoss,
    binary_cross_entropy,
    cross_entropy,
    displacement_mse,
    focal,
    soft_ic,
)
from e2espot.models.spotter import SpotterOutput

LN2 = math.log(2)
# two frames, K = 1: frame 0 logits [0, 0] (p = .5, .5); frame 1 logits [ln 3, 0] (p = .75, .25)
LOGITS = torch.tensor([[[0.0, 0.0], [math.log(3), 0.0]]])  # (1, 2, 2)


def test_ce_hard_labels_hand_case():
    labels = torch.tensor([[0, 1]])
    # (1·ln 2 + 5·ln 4) / (1 + 5) = 11/6 ln 2
    assert cross_entropy(LOGITS, labels, fg_weight=5).item() == pytest.approx(11 / 6 * LN2, rel=1e-6)
    ref = F.cross_entropy(LOGITS[0], labels[0], weight=torch.tensor([1.0, 5.0]))
    assert cross_entropy(LOGITS, labels).item() == pytest.approx(ref.item(), rel=1e-6)


def test_ce_soft_targets_hand_case():
    soft = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])
    # frame 0: 0.5·ln2 + 5·0.5·ln2 = 3 ln2; frame 1: ln(4/3); mean over 2 frames
    expected = (3 * LN2 + math.log(4 / 3)) / 2
    assert cross_entropy(LOGITS, soft, fg_weight=5).item() == pytest.approx(expected, rel=1e-6)
    ref = F.cross_entropy(LOGITS[0], soft[0], weight=torch.tensor([1.0, 5.0]))
    assert cross_entropy(LOGITS, soft).item() == pytest.approx(ref.item(), rel=1e-6)


def test_valid_mask_drops_frames():
    labels = torch.tensor([[0, 1]])
    only_first = cross_entropy(LOGITS, labels, valid=torch.tensor([[1, 0]]))
    assert only_first.item() == pytest.approx(LN2, rel=1e-6)


def test_focal_hand_case_and_gamma_zero():
    labels = torch.tensor([[1, 1]])
    # frame 0: 5·0.5²·ln2; frame 1: p = .25: 5·0.75²·ln4; mean
    expected = (5 * 0.25 * LN2 + 5 * 0.5625 * 2 * LN2) / 2
    assert focal(LOGITS, labels, gamma=2.0).item() == pytest.approx(expected, rel=1e-6)
    soft = torch.tensor([[[0.3, 0.7], [0.9, 0.1]]])
    assert focal(LOGITS, soft, gamma=0.0).item() == pytest.approx(cross_entropy(LOGITS, soft).item(), rel=1e-6)


def test_bce_hand_case():
    # fg logits are 0 on both frames: label 1 → 5·ln2 (pos_weight), label 0 → ln2
    logits = torch.zeros(1, 2, 2)
    assert binary_cross_entropy(logits, torch.tensor([[1, 0]])).item() == pytest.approx(3 * LN2, rel=1e-6)


def test_displacement_mse_all_frames():
    pred, target = torch.tensor([[1.0, 0.0, -2.0]]), torch.tensor([[0.0, 0.0, 0.0]])
    assert displacement_mse(pred, target).item() == pytest.approx(5 / 3)
    assert displacement_mse(pred, target, valid=torch.tensor([[1, 1, 0]])).item() == pytest.approx(0.5)


def _onehot(ids, k=2):
    return F.one_hot(torch.tensor(ids), k).float()


def test_soft_ic_hand_case():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # a, b (class 1), c (background)
    y = _onehot([1, 1, 0])
    empty_z, empty_y = torch.zeros(0, 2), torch.zeros(0, 2)
    # a: positives {b}, s = (0, 1) over {b, c} → log(1 + e); b: s = (0, 0) → log 2; c: no positive
    expected = (math.log(1 + math.e) + LN2) / 2
    assert soft_ic(z, y, empty_z, empty_y, 1.0).item() == pytest.approx(expected, rel=1e-6)
    # with a bank entry d = (0, 1) of class 1: a sees s = (0, 1, 0) with positives b and d
    bank_z, bank_y = torch.tensor([[0.0, 1.0]]), _onehot([1])
    la = math.log(2 + math.e)
    lb = math.log(2 + math.e) - 0.5  # b: s = (0, 0, 1) over a, c, d; positives a (s 0) and d (s 1)
    assert soft_ic(z, y, bank_z, bank_y, 1.0).item() == pytest.approx((la + lb) / 2, rel=1e-6)
    # temperature scales the similarities
    t = 0.5
    expected_t = (math.log(1 + math.exp(1 / t)) + LN2) / 2
    assert soft_ic(z, y, empty_z, empty_y, t).item() == pytest.approx(expected_t, rel=1e-6)
    # soft (mixup) labels: a half background still has b as its only (normalised) positive
    y_soft = torch.tensor([[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])
    assert soft_ic(z, y_soft, empty_z, empty_y, 1.0).item() == pytest.approx(expected, rel=1e-6)
    assert soft_ic(z, _onehot([0, 0, 0]), empty_z, empty_y, 1.0).item() == 0.0


def test_soft_ic_module_bank_and_gradients():
    torch.manual_seed(0)
    loss = SoftICLoss(8, 3, bank_size=4, enqueue=3)
    feats = torch.randn(1, 6, 8, requires_grad=True)
    labels = torch.tensor([[0, 1, 0, 2, 1, 0]])
    value = loss(feats, labels)
    value.backward()
    assert feats.grad.abs().sum() > 0 and loss.proj.weight.grad.abs().sum() > 0
    assert int(loss.bank_filled.sum()) == 3 and int(loss.bank_ptr) == 3
    assert (loss.bank_y[:3, 1:].sum(1) > 0).all()  # foreground frames are pushed first
    loss(feats.detach(), labels)
    assert int(loss.bank_filled.sum()) == 4 and int(loss.bank_ptr) == 2  # FIFO wraps
    assert {"bank_z", "bank_y", "bank_filled", "bank_ptr"} <= set(loss.state_dict())
    loss.eval()
    before = loss.bank_z.clone()
    loss(feats.detach(), labels)
    assert torch.equal(before, loss.bank_z)  # no push in eval


def _output(stages, disp=None, feats=None):
    return SpotterOutput(stages[-1], stages, disp, feats if feats is not None else torch.zeros(1, 2, 4))


def test_spotting_loss_sums_stages_and_terms():
    labels = torch.tensor([[0, 1]])
    single = SpottingLoss(1)(_output([LOGITS]), {"labels": labels})
    double = SpottingLoss(1)(_output([LOGITS, LOGITS]), {"labels": labels})
    assert double.item() == pytest.approx(2 * single.item())
    fn = SpottingLoss(1, displacement_weight=2.0)
    total = fn(_output([LOGITS], disp=torch.tensor([[1.0, 1.0]])),
               {"labels": labels, "displacement": torch.zeros(1, 2)})
    assert total.item() == pytest.approx(single.item() + 2.0)
    assert set(fn.last_parts) == {"ce", "displacement"}
    with pytest.raises(ConfigError, match="no displacement head"):
        fn(_output([LOGITS]), {"labels": labels, "displacement": torch.zeros(1, 2)})
    assert SpottingLoss(1)(_output([LOGITS]), labels).item() == pytest.approx(single.item())  # bare tensor


def test_spotting_loss_options():
    with pytest.raises(UnknownNameError, match="did you mean 'focal'"):
        SpottingLoss(1, kind="focl")
    with pytest.raises(ConfigError, match="feature_dim"):
        SpottingLoss(1, softic_weight=0.001)
    fn = SpottingLoss(1, kind="focal", softic_weight=0.001, feature_dim=4)
    assert sum(p.numel() for p in fn.parameters()) == 4 * 128 + 128
    feats = torch.randn(1, 2, 4, requires_grad=True)
    total = fn(_output([LOGITS], feats=feats), {"labels": torch.tensor([[1, 1]])})
    total.backward()
    assert set(fn.last_parts) == {"focal", "softic"} and feats.grad is not None
    with pytest.raises(ConfigError, match="do not match"):
        cross_entropy(LOGITS, torch.tensor([[0, 1, 1]]))


def test_spotting_loss_reads_augmented_batches():
    from types import SimpleNamespace
    labels = torch.tensor([[0, 1]])
    soft = F.one_hot(labels, 2).float() * 0.8 + 0.1
    batch = SimpleNamespace(targets=soft, labels=labels, displacement=torch.zeros(1, 2),
                            valid=torch.tensor([[True, True]]), lam=None)
    fn = SpottingLoss(1, displacement_weight=0.0)
    assert fn(_output([LOGITS]), batch).item() == pytest.approx(cross_entropy(LOGITS, labels).item())
    batch.lam = torch.tensor([0.8])  # mixed: the soft targets are used
    assert fn(_output([LOGITS]), batch).item() == pytest.approx(cross_entropy(LOGITS, soft).item())

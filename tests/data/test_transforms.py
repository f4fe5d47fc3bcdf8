import pytest
import torch
import torchvision.transforms.v2.functional as TF

from e2espot.config import DataConfig
from e2espot.data.transforms import (
    DeviceAugment,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    crop_clips,
    gaussian_blur,
    soft_targets,
)
from e2espot.errors import ConfigError

NO_JITTER = {"jitter_p": 0.0, "blur_p": 0.0, "flip_p": 0.0}


def batch_of(frames: torch.Tensor, labels=None, frames2=None, labels2=None) -> dict[str, torch.Tensor]:
    bsz, t = frames.shape[:2]
    g = torch.Generator().manual_seed(0)
    batch = {
        "frames": frames,
        "labels": torch.randint(0, 3, (bsz, t), generator=g) if labels is None else labels,
        "displacement": torch.randint(-2, 3, (bsz, t), generator=g).float(),
        "valid": torch.ones(bsz, t, dtype=torch.bool),
    }
    if frames2 is not None:
        batch["frames2"] = frames2
        batch["labels2"] = torch.randint(0, 3, (bsz, t), generator=g) if labels2 is None else labels2
        batch["displacement2"] = torch.randint(-2, 3, (bsz, t), generator=g).float()
        valid2 = torch.ones(bsz, t, dtype=torch.bool)
        valid2[:, 0] = False
        batch["valid2"] = valid2
    return batch


def coord_frames(bsz: int, t: int, h: int, w: int) -> torch.Tensor:
    """Pixels (row, col, frame): where a crop came from is readable from its values."""
    rows = torch.arange(h).view(1, 1, h, 1).expand(bsz, t, h, w)
    cols = torch.arange(w).view(1, 1, 1, w).expand(bsz, t, h, w)
    frame = torch.arange(t).view(1, t, 1, 1).expand(bsz, t, h, w)
    return torch.stack([rows, cols, frame], dim=-1).to(torch.uint8)  # (B, T, H, W, 3)


def test_output_shape_dtype_range():
    frames = torch.randint(0, 256, (3, 5, 20, 30, 3), dtype=torch.uint8)
    out = DeviceAugment(num_classes=3, crop=16, jitter_p=1.0, blur_p=1.0, seed=0).train_batch(
        batch_of(frames)
    )
    assert out.frames.shape == (3, 5, 3, 16, 16) and out.frames.dtype == torch.float32
    assert 0.0 <= float(out.frames.min()) and float(out.frames.max()) <= 1.0
    assert out.targets.shape == (3, 5, 4) and out.lam is None
    torch.testing.assert_close(out.targets.argmax(-1), out.labels)


def test_mixup_is_a_convex_combination_with_soft_targets():
    bsz, t = 6, 4
    frames1 = torch.full((bsz, t, 8, 8, 3), 200, dtype=torch.uint8)
    frames2 = torch.full((bsz, t, 8, 8, 3), 50, dtype=torch.uint8)
    batch = batch_of(frames1, frames2=frames2)
    out = DeviceAugment(num_classes=3, seed=1, **NO_JITTER).train_batch(batch)
    lam = out.lam
    assert lam.shape == (bsz,) and bool(((lam >= 0) & (lam <= 1)).all())
    assert len(set(lam.tolist())) == bsz  # one λ per sample
    expected = (lam * 200 + (1 - lam) * 50) / 255  # (B,)
    torch.testing.assert_close(out.frames, expected.view(-1, 1, 1, 1, 1).expand_as(out.frames))
    torch.testing.assert_close(out.targets.sum(-1), torch.ones(bsz, t))
    onehot1 = torch.nn.functional.one_hot(batch["labels"], 4).float()
    onehot2 = torch.nn.functional.one_hot(batch["labels2"], 4).float()
    torch.testing.assert_close(out.targets, lam.view(-1, 1, 1) * onehot1 + (1 - lam.view(-1, 1, 1)) * onehot2)
    torch.testing.assert_close(
        out.displacement, lam[:, None] * batch["displacement"] + (1 - lam[:, None]) * batch["displacement2"]
    )
    assert out.valid[:, 0].sum() == 0 and bool(out.valid[:, 1:].all())  # frame 0 of clip 2 is padding
    assert torch.equal(out.labels, batch["labels"])


def test_mixup_happens_before_photometric_augmentation():
    # brightness x1.2 always, no other change: mixing first gives clamp(1.2·λ); augmenting first would give λ
    aug = DeviceAugment(
        num_classes=2,
        flip_p=0.0,
        blur_p=0.0,
        jitter_p=1.0,
        hue=0.0,
        saturation=(1.0, 1.0),
        contrast=(1.0, 1.0),
        brightness=(1.2, 1.2),
        seed=2,
    )
    white = torch.full((8, 2, 4, 4, 3), 255, dtype=torch.uint8)
    out = aug.train_batch(batch_of(white, frames2=torch.zeros_like(white)))
    expected = (1.2 * out.lam).clamp(max=1.0)
    torch.testing.assert_close(out.frames[:, 0, 0, 0, 0], expected)
    assert bool(((out.lam > 0.05) & (out.lam < 0.8)).any())  # the two orders differ on these samples


def test_crop_is_identical_across_frames_and_differs_across_clips():
    bsz, t = 8, 5
    frames = coord_frames(bsz, t, 40, 48)
    out = DeviceAugment(num_classes=2, crop=16, seed=3, **NO_JITTER).train_batch(batch_of(frames))
    pix = torch.round(out.frames * 255).long()  # (B, T, 3, 16, 16): rows, cols, frame
    tops, lefts = set(), set()
    for b in range(bsz):
        for f in range(t):
            assert torch.equal(pix[b, f, 0], pix[b, 0, 0]) and torch.equal(pix[b, f, 1], pix[b, 0, 1])
            assert bool((pix[b, f, 2] == f).all())  # frames stay in order
        top, left = int(pix[b, 0, 0, 0, 0]), int(pix[b, 0, 1, 0, 0])
        assert torch.equal(pix[b, 0, 0, :, 0], torch.arange(top, top + 16))  # a contiguous square
        assert torch.equal(pix[b, 0, 1, 0, :], torch.arange(left, left + 16))
        assert 0 <= top <= 40 - 16 and 0 <= left <= 48 - 16
        tops.add(top)
        lefts.add(left)
    assert len(tops) > 1 and len(lefts) > 1


def test_crop_clips_matches_slicing():
    frames = torch.randint(0, 256, (3, 2, 10, 12, 3), dtype=torch.uint8)
    top, left = torch.tensor([0, 3, 6]), torch.tensor([5, 0, 8])
    out = crop_clips(frames, top, left, 4)
    for b in range(3):
        t0, l0 = int(top[b]), int(left[b])
        assert torch.equal(out[b], frames[b, :, t0 : t0 + 4, l0 : l0 + 4])


def test_flip_actually_flips_whole_clips():
    frames = torch.randint(0, 256, (2, 3, 6, 7, 3), dtype=torch.uint8)
    out = DeviceAugment(num_classes=2, jitter_p=0.0, blur_p=0.0, flip_p=1.0).train_batch(batch_of(frames))
    expected = frames.permute(0, 1, 4, 2, 3).float().flip(-1) / 255
    torch.testing.assert_close(out.frames, expected)
    # p = 0.5: each clip is flipped as a whole or not at all, and both happen
    frames = torch.randint(0, 256, (32, 3, 6, 7, 3), dtype=torch.uint8)
    out = DeviceAugment(num_classes=2, jitter_p=0.0, blur_p=0.0, seed=4).train_batch(batch_of(frames))
    plain = frames.permute(0, 1, 4, 2, 3).float() / 255
    flipped = [torch.allclose(out.frames[b], plain[b].flip(-1)) for b in range(32)]
    kept = [torch.allclose(out.frames[b], plain[b]) for b in range(32)]
    assert all(f != k for f, k in zip(flipped, kept))
    assert 6 <= sum(flipped) <= 26


def test_jitter_probability_per_clip():
    # only brightness x0.5 can change anything; it is applied to ~25% of clips
    aug = DeviceAugment(
        num_classes=2,
        flip_p=0.0,
        blur_p=0.0,
        hue=0.0,
        saturation=(1.0, 1.0),
        contrast=(1.0, 1.0),
        brightness=(0.5, 0.5),
        seed=5,
    )
    frames = torch.full((800, 2, 2, 2, 3), 100, dtype=torch.uint8)
    out = aug.train_batch(batch_of(frames))
    darkened = torch.isclose(out.frames[:, :, 0, 0, 0], torch.tensor(50 / 255)).all(dim=1)
    same = torch.isclose(out.frames[:, :, 0, 0, 0], torch.tensor(100 / 255)).all(dim=1)
    assert bool((darkened | same).all())  # whole clips
    assert abs(darkened.float().mean().item() - 0.25) < 0.05


def test_colour_ops_match_torchvision():
    g = torch.Generator().manual_seed(6)
    x = torch.rand(3, 2, 3, 9, 11, generator=g)  # (N, T, 3, H, W)
    factors = torch.tensor([0.7, 1.0, 1.2], dtype=torch.float64)
    hues = torch.tensor([-0.2, 0.05, 0.2], dtype=torch.float64)
    sigmas = torch.tensor([0.1, 0.8, 2.0], dtype=torch.float64)
    b_out = adjust_brightness(x.clone(), factors)
    s_out = adjust_saturation(x.clone(), factors)
    c_out = adjust_contrast(x.clone(), factors)
    h_out = adjust_hue(x.clone(), hues)
    g_out = gaussian_blur(x.clone(), sigmas, 5)
    for n in range(3):
        f, h, s = float(factors[n]), float(hues[n]), float(sigmas[n])
        torch.testing.assert_close(b_out[n], TF.adjust_brightness(x[n], f))
        torch.testing.assert_close(s_out[n], TF.adjust_saturation(x[n], f))
        torch.testing.assert_close(c_out[n], TF.adjust_contrast(x[n], f))
        torch.testing.assert_close(h_out[n], TF.adjust_hue(x[n], h), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(g_out[n], TF.gaussian_blur(x[n], [5, 5], [s, s]), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(h_out[0], x[0])


def test_soft_targets_one_hot_without_mixup():
    labels = torch.tensor([[0, 2, 1]])
    torch.testing.assert_close(soft_targets(labels, 2), torch.eye(3)[[0, 2, 1]].unsqueeze(0))


def test_eval_path_is_a_deterministic_centre_crop():
    frames = torch.randint(0, 256, (2, 3, 20, 31, 3), dtype=torch.uint8)
    batch = batch_of(frames)
    aug = DeviceAugment(num_classes=3, crop=16, seed=7)
    a = aug.eval_batch(batch)
    aug.train_batch(batch)  # moves the generator
    b = aug(batch, train=False)
    assert torch.equal(a.frames, b.frames)
    expected = TF.center_crop(frames.permute(0, 1, 4, 2, 3), [16, 16]).float() / 255
    torch.testing.assert_close(a.frames, expected)
    torch.testing.assert_close(a.targets.sum(-1), torch.ones(2, 3))
    with pytest.raises(ConfigError, match="mixup"):
        aug.eval_batch(batch_of(frames, frames2=frames))


def test_train_path_is_deterministic_given_a_generator():
    frames = torch.randint(0, 256, (4, 3, 20, 24, 3), dtype=torch.uint8)
    batch = batch_of(frames, frames2=torch.randint(0, 256, (4, 3, 20, 24, 3), dtype=torch.uint8))
    kwargs = {"num_classes": 3, "crop": 16, "jitter_p": 0.5, "blur_p": 0.5}
    a = DeviceAugment(**kwargs, seed=8).train_batch(batch)
    b = DeviceAugment(**kwargs, seed=8).train_batch(batch)
    c = DeviceAugment(**kwargs, seed=9).train_batch(batch)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.lam, b.lam)
    assert not torch.equal(a.frames, c.frames)
    # an explicit generator, and exact resume through state_dict
    aug = DeviceAugment(**kwargs, seed=0)
    d = aug.train_batch(batch, generator=torch.Generator().manual_seed(123))
    e = aug.train_batch(batch, generator=torch.Generator().manual_seed(123))
    assert torch.equal(d.frames, e.frames)
    state = aug.state_dict()
    f = aug.train_batch(batch)
    aug.load_state_dict(state)
    assert torch.equal(aug.train_batch(batch).frames, f.frames)


def test_from_config_uses_the_data_crop():
    aug = DeviceAugment.from_config(DataConfig(height=20, crop=12), num_classes=4, flip_p=0.0)
    out = aug.train_batch(batch_of(torch.zeros(2, 3, 20, 30, 3, dtype=torch.uint8)))
    assert out.frames.shape == (2, 3, 3, 12, 12) and out.targets.shape == (2, 3, 5)


def test_config_errors():
    frames = torch.zeros(1, 2, 10, 12, 3, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="larger than"):
        DeviceAugment(num_classes=2, crop=11).train_batch(batch_of(frames))
    with pytest.raises(ConfigError, match="uint8"):
        DeviceAugment(num_classes=2).train_batch(batch_of(frames.float()))
    with pytest.raises(ConfigError):
        DeviceAugment(num_classes=2, blur_kernel=4)
    with pytest.raises(ConfigError):
        DeviceAugment(num_classes=2, flip_p=1.5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_augmentation_on_cuda_and_cpu():
    frames = torch.randint(0, 256, (4, 3, 20, 24, 3), dtype=torch.uint8)
    batch = batch_of(frames, frames2=torch.randint(0, 256, (4, 3, 20, 24, 3), dtype=torch.uint8))
    kwargs = {"num_classes": 3, "crop": 16, "jitter_p": 0.5, "blur_p": 0.5, "seed": 10}
    cpu = DeviceAugment(**kwargs).train_batch(batch)
    gpu = DeviceAugment(**kwargs).train_batch({k: v.cuda() for k, v in batch.items()})
    assert gpu.frames.is_cuda and gpu.targets.is_cuda
    torch.testing.assert_close(gpu.frames.cpu(), cpu.frames, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gpu.targets.cpu(), cpu.targets)


# --- Team-BAS: a flip swaps the sides of the frame --------------------------------------------------


def _team_batch(bsz: int = 4, t: int = 3) -> dict[str, torch.Tensor]:
    frames = coord_frames(bsz, t, 6, 8)
    batch = batch_of(frames, labels=torch.tensor([[1, 0, 2]] * bsz))
    batch["team"] = torch.tensor([[0.0, -1.0, 1.0]] * bsz)  # event 1 left, background, event 2 right
    return batch


def test_flipped_clip_has_swapped_team_targets():
    aug = DeviceAugment(num_classes=2, crop=None, jitter_p=0.0, blur_p=0.0, flip_p=0.5, seed=1)
    batch = _team_batch(bsz=8)
    out = aug.train_batch(batch, generator=torch.Generator().manual_seed(3))
    flipped = (out.frames[:, 0, 1, 0, 0] * 255).round().long() == 7  # column 7 of 8 moved to the left edge
    assert 0 < int(flipped.sum()) < 8  # both kinds in the batch
    for b in range(8):
        want = [1.0, -1.0, 0.0] if flipped[b] else [0.0, -1.0, 1.0]
        assert out.team[b].tolist() == want
    torch.testing.assert_close(out.labels, batch["labels"])  # a team head's classes do not move
    assert out.team.dtype == torch.float32


def test_no_flip_keeps_team_and_eval_passes_team_through():
    batch = _team_batch()
    out = DeviceAugment(num_classes=2, **NO_JITTER).train_batch(batch)
    assert out.team.tolist() == batch["team"].tolist()
    ev = DeviceAugment(num_classes=2).eval_batch(batch)
    assert ev.team.tolist() == batch["team"].tolist()
    assert DeviceAugment(num_classes=2).eval_batch(batch_of(coord_frames(2, 3, 6, 8))).team is None


def test_joint_head_flip_swaps_left_and_right_classes():
    # joint head over actions a, b: 1 a-left, 2 a-right, 3 b-left, 4 b-right
    aug = DeviceAugment(num_classes=4, flip_p=1.0, jitter_p=0.0, blur_p=0.0, flip_class_map=[0, 2, 1, 4, 3])
    labels = torch.tensor([[1, 0, 4], [2, 3, 0]])
    out = aug.train_batch(batch_of(coord_frames(2, 3, 6, 8), labels=labels))
    assert out.labels.tolist() == [[2, 0, 3], [1, 4, 0]]
    assert out.targets.argmax(-1).tolist() == [[2, 0, 3], [1, 4, 0]]
    keep = DeviceAugment(num_classes=4, **NO_JITTER, flip_class_map=[0, 2, 1, 4, 3])
    assert keep.train_batch(batch_of(coord_frames(2, 3, 6, 8), labels=labels)).labels.tolist() == labels.tolist()


def test_joint_flip_moves_soft_mixup_targets_column_by_column():
    frames = coord_frames(2, 3, 6, 8)
    batch = batch_of(frames, labels=torch.tensor([[1, 0, 0]] * 2), frames2=frames,
                     labels2=torch.tensor([[3, 0, 0]] * 2))
    plain = DeviceAugment(num_classes=4, **NO_JITTER, seed=4).train_batch(batch)
    flipped = DeviceAugment(num_classes=4, flip_p=1.0, jitter_p=0.0, blur_p=0.0, seed=4,
                            flip_class_map=[0, 2, 1, 4, 3]).train_batch(batch)
    torch.testing.assert_close(flipped.targets, plain.targets[..., [0, 2, 1, 4, 3]])
    torch.testing.assert_close(flipped.lam, plain.lam)


def test_mixup_team_follows_the_heavier_clip_then_flips():
    frames = coord_frames(2, 4, 6, 8)
    batch = batch_of(frames, frames2=frames)
    batch["team"] = torch.tensor([[0.0, -1.0, 0.0, -1.0]] * 2)
    batch["team2"] = torch.tensor([[1.0, 1.0, -1.0, -1.0]] * 2)
    out = DeviceAugment(num_classes=2, **NO_JITTER, seed=0).train_batch(batch)
    for b in range(2):
        major, minor = (batch["team"][b], batch["team2"][b]) if out.lam[b] >= 0.5 else (
            batch["team2"][b], batch["team"][b])
        want = torch.where(major >= 0, major, minor)
        assert out.team[b].tolist() == want.tolist()
    assert out.team[:, 3].tolist() == [-1.0, -1.0]


def test_flip_class_map_must_be_a_permutation_fixing_background():
    with pytest.raises(ConfigError, match=r"flip_class_map \[1, 0, 2\] must be a permutation of 0..2"):
        DeviceAugment(num_classes=2, flip_class_map=[1, 0, 2])
    with pytest.raises(ConfigError, match="must be a permutation"):
        DeviceAugment(num_classes=2, flip_class_map=[0, 1, 1])

"""Batched uint8 augmentation: shapes, dtypes, and that each transform does what it says."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from runner.data.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ChunkedRandAugment,
    ColorJitter,
    Cutout,
    RandomFlip,
    cutmix,
    normalize,
    randaugment_train,
    simple_augment_test,
    simple_augment_train,
    train_augment,
)
from runner.data.config import DataConfig


@pytest.fixture
def batch() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randint(0, 256, (20, 3, 24, 24), dtype=torch.uint8)


@pytest.mark.parametrize(
    "policy",
    [
        simple_augment_train(),
        randaugment_train(2, None),
        randaugment_train(3, 20),
        simple_augment_test(),
    ],
)
def test_policies_keep_shape_and_dtype(policy: torch.nn.Module, batch: torch.Tensor) -> None:
    out = policy(batch)
    assert out.shape == batch.shape and out.dtype == torch.uint8


def test_train_policies_change_the_images(batch: torch.Tensor) -> None:
    torch.manual_seed(1)
    assert not torch.equal(simple_augment_train()(batch), batch)
    assert not torch.equal(randaugment_train(2, 15)(batch), batch)
    assert torch.equal(simple_augment_test()(batch), batch)


def test_flip_mirrors_some_images_and_keeps_others(batch: torch.Tensor) -> None:
    torch.manual_seed(0)
    out = RandomFlip()(batch)
    flipped = [torch.equal(o, b.flip(-1)) for o, b in zip(out, batch, strict=True)]
    kept = [torch.equal(o, b) for o, b in zip(out, batch, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)


@pytest.mark.parametrize(("fraction", "side"), [(0.5, 10), (0.25, 5), (0.01, 1), (1.0, 20)])
def test_cutout_box_side_is_the_fraction_of_the_image_side(fraction: float, side: int) -> None:
    """A box that does not touch the border is exactly side x side pixels (not side - 1)."""
    torch.manual_seed(0)
    images = torch.zeros((400, 3, 20, 20), dtype=torch.uint8)
    out = Cutout(fraction, fill=255)(images)
    assert torch.equal(out[:, 0], out[:, 2]), "the same box in every channel"
    assert set(out.unique().tolist()) <= {0, 255}
    inner = 0
    for mask in out[:, 0] == 255:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        height, width = len(rows), len(cols)
        assert int(mask.sum()) == height * width, "one filled rectangle"
        assert height <= side and width <= side
        if rows.min() > 0 and rows.max() < 19:
            assert height == side
        if cols.min() > 0 and cols.max() < 19:
            assert width == side
        inner += rows.min() > 0 and rows.max() < 19 and cols.min() > 0 and cols.max() < 19
    assert side == 20 or inner > 0, "some boxes lie wholly inside the image"


def test_cutout_box_is_centred_on_a_pixel_and_clipped_by_the_border() -> None:
    """Centre (cy, cx) drawn uniformly; the box spans cy - side // 2 to cy + (side - 1) // 2."""
    torch.manual_seed(5)
    ys, xs = (torch.randint(0, 9, (64,)) for _ in range(2))  # what Cutout draws, same seed
    torch.manual_seed(5)
    out = Cutout(4 / 9, fill=1)(torch.zeros((64, 1, 9, 9), dtype=torch.uint8))
    for cy, cx, image in zip(ys, xs, out[:, 0], strict=True):
        expected = torch.zeros(9, 9, dtype=torch.uint8)
        expected[max(cy - 2, 0) : cy + 2, max(cx - 2, 0) : cx + 2] = 1
        assert torch.equal(image, expected)


def _gray(v: int, n: int = 1, size: int = 4) -> torch.Tensor:
    return torch.full((n, 3, size, size), v, dtype=torch.uint8)


def test_colour_jitter_is_brightness_saturation_contrast_in_turn() -> None:
    """The folded multiply-add equals the three torchvision-style steps applied one by one."""
    torch.manual_seed(2)
    images = torch.randint(0, 256, (6, 3, 5, 7), dtype=torch.uint8)
    torch.manual_seed(11)
    factors = [torch.empty(6, 1, 1, 1).uniform_(0.7, 1.3) for _ in range(3)]
    torch.manual_seed(11)
    out = ColorJitter(0.3)(images)
    b, s, c = factors
    x = images.double() * b.double()  # brightness
    gray = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]
    x = s.double() * x + (1 - s.double()) * gray  # saturation: blend with the grey image
    gray = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]
    x = c.double() * x + (1 - c.double()) * gray.mean((2, 3), keepdim=True)  # contrast
    expected = (x + 0.5).floor().clamp(0, 255)
    assert out.dtype == torch.uint8
    assert (out.double() - expected).abs().max() <= 1, "rounding may differ by one level"
    assert (out.double() == expected).double().mean() > 0.95


def test_colour_jitter_scales_a_grey_image_by_its_brightness_within_the_strength() -> None:
    """On a grey image saturation and contrast change nothing: out = round(b * v)."""
    torch.manual_seed(0)
    out = ColorJitter(0.2)(_gray(100, n=200))
    values = out[:, 0, 0, 0]
    assert torch.equal(out, values.view(-1, 1, 1, 1).expand_as(out)), "one level per image"
    assert values.min() >= 80 and values.max() <= 120
    assert values.min() < 85 and values.max() > 115, "factors spread over [1 - s, 1 + s]"
    assert torch.equal(ColorJitter(0.0)(_gray(77, n=3)), _gray(77, n=3)), "strength 0: unchanged"
    assert int(ColorJitter(0.5)(_gray(250, n=50)).max()) == 255, "clamped, not wrapped"


def test_colour_jitter_is_seeded() -> None:
    images = torch.randint(0, 256, (4, 3, 6, 6), dtype=torch.uint8)
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        runs.append(ColorJitter(0.1)(images))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_cutmix_pastes_a_box_and_weights_labels_by_area() -> None:
    torch.manual_seed(3)
    images = torch.arange(4).view(4, 1, 1, 1).expand(4, 3, 16, 16).to(torch.uint8).clone()
    labels = torch.arange(4)
    mixed, a, b, weight_a = cutmix(images, labels, alpha=1.0)
    assert torch.equal(a, labels) and sorted(b.tolist()) == [0, 1, 2, 3]
    own = (mixed[:, 0] == labels.view(4, 1, 1)).float().mean((1, 2))
    moved = a != b
    assert torch.allclose(own[moved], torch.full_like(own[moved], weight_a))


def test_normalize_centres_the_imagenet_mean() -> None:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    out = normalize(mean.round().to(torch.uint8).expand(2, 3, 4, 4))
    assert out.dtype == torch.float32 and out.abs().max() < 0.01


def test_train_augment_follows_the_config(batch: torch.Tensor) -> None:
    cfg = DataConfig(
        data_path=".",
        aug_train="randaugment_train",
        aug_train_params={"n_select": 1, "level": 5},
        cutout=0.25,
    )
    out = train_augment(cfg)(batch)
    assert out.shape == batch.shape and out.dtype == torch.uint8
    plain = train_augment(
        dataclasses.replace(cfg, aug_train="simple_augment_train", aug_train_params={}, cutout=0.0)
    )
    assert "Cutout" not in repr(plain) and "Cutout" in repr(train_augment(cfg))


def test_normalize_is_imagenet_standardisation_exactly() -> None:
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 2, 2)
    out = normalize(images)
    for c, (mean, std) in enumerate(zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)):
        assert out[0, c].flatten().tolist() == pytest.approx([-mean / std] * 4, abs=1e-6)
        assert out[1, c].flatten().tolist() == pytest.approx([(1 - mean) / std] * 4, abs=1e-6)


def test_cutmix_box_follows_its_draws() -> None:
    """lam ~ Beta(a, a), a centre, a permutation; the box is cut_h x cut_w around the centre,
    clipped by the image, and weight_a is one minus its true area share."""
    images = torch.arange(5).view(5, 1, 1, 1).expand(5, 1, 20, 30).to(torch.uint8).clone()
    for seed in range(12):
        torch.manual_seed(seed)
        lam = float(torch.distributions.Beta(0.7, 0.7).sample())
        cy, cx = int(torch.randint(0, 20, ())), int(torch.randint(0, 30, ()))
        order = torch.randperm(5)
        cut_h, cut_w = round(20 * (1 - lam) ** 0.5), round(30 * (1 - lam) ** 0.5)
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, 20)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, 30)
        expected = images.clone()
        expected[..., y0:y1, x0:x1] = images[order][..., y0:y1, x0:x1]
        torch.manual_seed(seed)
        mixed, a, b, weight_a = cutmix(images, torch.arange(5), alpha=0.7)
        assert torch.equal(mixed, expected) and torch.equal(b, order), f"seed {seed}"
        assert weight_a == pytest.approx(1 - (y1 - y0) * (x1 - x0) / 600)


def test_train_augment_builds_the_policy_the_config_names() -> None:
    cfg = DataConfig(
        data_path=".",
        aug_train="randaugment_train",
        aug_train_params={"n_select": 3, "level": 7},
        cutout=0.3,
    )
    policy, cutout = train_augment(cfg)
    rand = policy[0]
    assert isinstance(rand, ChunkedRandAugment) and (rand.n_select, rand.level) == (3, 7)
    assert isinstance(cutout, Cutout) and cutout.fraction == 0.3
    default = train_augment(dataclasses.replace(cfg, aug_train_params={}, cutout=0.0))[0]
    assert (default.n_select, default.level) == (2, None), "2 ops at a random level"
    simple = train_augment(
        dataclasses.replace(cfg, aug_train="simple_augment_train", aug_train_params={}, cutout=0.0)
    )
    assert [type(m) for m in simple] == [RandomFlip, ColorJitter]


def test_policies_are_made_of_the_documented_parts() -> None:
    flip, jitter = simple_augment_train()
    assert isinstance(flip, RandomFlip) and jitter.strength == 0.1
    rand, flip = randaugment_train(3, 7)
    assert isinstance(rand, ChunkedRandAugment) and isinstance(flip, RandomFlip)
    assert len(rand.ops) == 31, "one RandAugment per level 0..30"
    assert all(
        (op.num_ops, op.magnitude, op.num_magnitude_bins) == (3, m, 31)
        for m, op in enumerate(rand.ops)
    )


def test_fixed_level_uses_that_levels_randaugment() -> None:
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    chunked = ChunkedRandAugment(2, level=9)
    torch.manual_seed(4)
    out = chunked(images)
    torch.manual_seed(4)
    assert torch.equal(out, chunked.ops[9](images))


def test_flip_draws_per_image_and_black_stays_black() -> None:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (200, 3, 4, 4), dtype=torch.uint8)
    out = RandomFlip()(images)
    flipped = sum(
        torch.equal(o, i.flip(-1)) and not torch.equal(o, i)
        for o, i in zip(out, images, strict=True)
    )
    assert 70 < flipped < 130, "about half of 200"
    assert int(ColorJitter(0.3)(_gray(0, n=20)).max()) == 0

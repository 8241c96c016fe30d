"""Batched uint8 augmentation: shapes, dtypes, and that each transform does what it says."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from runner.data.augment import (
    IMAGENET_MEAN,
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
    ],  # fmt: skip
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


def test_cutout_fills_one_square_per_image() -> None:
    images = torch.zeros((8, 3, 20, 20), dtype=torch.uint8)
    out = Cutout(0.5, fill=255)(images)
    filled = (out[:, 0] == 255).sum((1, 2))
    assert filled.min() >= 1 and filled.max() <= 10 * 10
    assert torch.equal(out[:, 0], out[:, 2]), "the same box in every channel"


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
    cfg = DataConfig(data_path=".", aug_train="randaugment_train",
                     aug_train_params={"n_select": 1, "level": 5}, cutout=0.25)  # fmt: skip
    out = train_augment(cfg)(batch)
    assert out.shape == batch.shape and out.dtype == torch.uint8
    plain = train_augment(dataclasses.replace(cfg, aug_train="simple_augment_train",
                                              aug_train_params={}, cutout=0.0))  # fmt: skip
    assert "Cutout" not in repr(plain) and "Cutout" in repr(train_augment(cfg))

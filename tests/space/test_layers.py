"""make_divisible follows the competition's formula; activation names resolve or explain."""

from __future__ import annotations

import pytest
from torch import nn

from space.layers import ChannelShuffle, autopad, get_act, make_divisible


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (9, 16),  # 8 would drop more than 10%: the old "Conv [9]" head became 16
        (16, 16),
        (20, 24),
        (12, 16),
        (10, 16),
        (3, 8),
        (576, 576),
        (88.0008, 88),
        (17.6, 16),
        (17.99, 24),
    ],
)
def test_make_divisible_matches_the_competition_formula(value: float, expected: int) -> None:
    assert make_divisible(value) == expected


def test_make_divisible_is_idempotent_so_written_back_channels_stay() -> None:
    for c in range(1, 400):
        once = make_divisible(c * 0.75)
        assert make_divisible(once) == once


def test_autopad_is_same_padding_when_null() -> None:
    assert (autopad(3), autopad(5), autopad(1), autopad(3, 0)) == (1, 2, 0, 0)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("ReLU", nn.ReLU),
        ("ReLU6", nn.ReLU6),
        ("Hardswish", nn.Hardswish),
        ("HardSwish", nn.Hardswish),
        ("Swish", nn.SiLU),
        ("SiLU", nn.SiLU),
        ("HardSigmoid", nn.Hardsigmoid),
        ("Sigmoid", nn.Sigmoid),
        (None, nn.Identity),
    ],
)
def test_get_act_knows_the_competition_names(name: str | None, cls: type[nn.Module]) -> None:
    assert get_act(name) is cls


def test_get_act_suggests_the_closest_name() -> None:
    with pytest.raises(ValueError, match=r"activation 'Hardswsh'.*Did you mean 'Hardswish'"):
        get_act("Hardswsh")


def test_channel_shuffle_interleaves_the_two_halves() -> None:
    import torch

    x = torch.arange(4.0).view(1, 4, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0.0, 2.0, 1.0, 3.0]

"""Learning-rate schedules and optimisers: exact values at chosen points of training.

The expected rates are written out from the schedules' definitions (OneCycle: a cosine rise from
peak / 25 to the peak over the first 30%, then a cosine fall to peak / 25 / 1e4; cosine: a linear
warm-up over the first 5%, then a cosine fall to 0), not computed by the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from runner.data.config import DataConfig
from runner.training.schedule import build_optimizer, lr_at, set_lr

PEAK = 0.2
START, END = PEAK / 25, PEAK / 25 / 1e4


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (0.0, START),
        (0.15, (START + PEAK) / 2),  # half-way up the cosine rise
        (0.075, PEAK + (START - PEAK) * (1 + math.cos(math.pi / 4)) / 2),
        (0.3, PEAK),
        (0.65, (PEAK + END) / 2),  # half-way down
        (0.3 + 0.7 / 4, END + (PEAK - END) * (1 + math.cos(math.pi / 4)) / 2),
        (1.0, END),
        (1.5, END),  # past the end (a seconds budget overrun) the rate stays at the floor
    ],
)
def test_onecycle_values(progress: float, expected: float) -> None:
    assert lr_at(progress, PEAK, "onecycle") == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (0.0, PEAK * 0.001 / 0.05),  # the warm-up starts just above zero
        (0.025, PEAK * 0.026 / 0.05),
        (0.0499, PEAK * 0.0509 / 0.05),
        (0.05, PEAK),
        (0.525, PEAK / 2),
        (0.05 + 0.95 / 4, PEAK * (1 + math.cos(math.pi / 4)) / 2),
        (1.0, 0.0),
    ],
)
def test_cosine_values(progress: float, expected: float) -> None:
    assert lr_at(progress, PEAK, "cosine") == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_onecycle_and_cosine_differ_where_their_warm_ups_do() -> None:
    """OneCycle still climbs at 10% (cosine has peaked) and ends above cosine's zero."""
    assert lr_at(0.1, PEAK, "onecycle") < lr_at(0.1, PEAK, "cosine")
    assert lr_at(1.0, PEAK, "onecycle") > lr_at(1.0, PEAK, "cosine") == 0.0
    rates = [lr_at(i / 100, PEAK, "onecycle") for i in range(101)]
    assert max(rates) == pytest.approx(PEAK) and rates.index(max(rates)) == 30


def test_unknown_scheduler_is_refused() -> None:
    with pytest.raises(ValueError, match="scheduler must be 'onecycle' or 'cosine', got 'step'"):
        lr_at(0.5, PEAK, "step")


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))


def test_sgd_decays_weights_only_with_nesterov_momentum() -> None:
    cfg = DataConfig(data_path=".", init_lr=0.03, momentum=0.8, weight_decay=0.01)
    model = _model()
    optimizer = build_optimizer(model, cfg)
    assert type(optimizer) is torch.optim.SGD
    decay, no_decay = optimizer.param_groups
    weights = [model[0].weight, model[3].weight]
    assert [id(p) for p in decay["params"]] == [id(p) for p in weights]
    assert len(no_decay["params"]) == 4, "conv bias, BN weight and bias, linear bias"
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.01, 0.0)
    for group in (decay, no_decay):
        assert (group["lr"], group["momentum"], group["nesterov"]) == (0.03, 0.8, True)
    plain = build_optimizer(model, DataConfig(data_path=".", momentum=0.0))
    assert not plain.param_groups[0]["nesterov"], "Nesterov needs momentum"


def test_adamw_and_frozen_parameters() -> None:
    model = _model()
    model[0].requires_grad_(False)
    optimizer = build_optimizer(model, DataConfig(data_path=".", optimizer="adamw", init_lr=0.002))
    assert type(optimizer) is torch.optim.AdamW
    decay, no_decay = optimizer.param_groups
    assert [id(p) for p in decay["params"]] == [id(model[3].weight)], "frozen conv left out"
    assert len(no_decay["params"]) == 3 and decay["lr"] == no_decay["lr"] == 0.002
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (5e-4, 0.0), "not AdamW's 0.01"


def test_set_lr_reaches_every_group() -> None:
    optimizer = build_optimizer(_model(), DataConfig(data_path="."))
    set_lr(optimizer, 0.123)
    assert [g["lr"] for g in optimizer.param_groups] == [0.123, 0.123]

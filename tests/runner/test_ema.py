"""The EMA's warm-up: after n updates the average moves by 1 - min(decay, (1 + n) / (10 + n)).

The expected averages are run out by hand from that formula, update by update, on weights the
test sets; BatchNorm's step counter is copied, not averaged.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from runner.training.ema import make_ema


def _set(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def test_average_follows_the_warm_up_formula_step_by_step() -> None:
    """decay 0.5: the warm-up decay (1 + n) / (10 + n) is smaller up to n = 8, then 0.5 rules."""
    model = nn.Linear(1, 1, bias=False)
    ema = make_ema(model, decay=0.5)
    values = [float(v) for v in range(0, 130, 10)]  # the weight at each update
    expected = values[0]  # the first update copies the weights
    for n, value in enumerate(values):
        _set(model, value)
        ema.update_parameters(model)
        if n > 0:
            d = min(0.5, (1 + n) / (10 + n))
            expected = d * expected + (1 - d) * value
        average = float(ema.module.weight.detach())
        assert average == pytest.approx(expected, rel=1e-6), f"update {n}"


@pytest.mark.parametrize(("n", "decay"), [(1, 2 / 11), (4, 5 / 14), (60, 61 / 70), (100, 0.9)])
def test_exact_decay_at_update_n(n: int, decay: float) -> None:
    """From an average of 0, one update to weight 1 at step n moves it by exactly 1 - decay."""
    model = nn.Linear(1, 1, bias=False)
    ema = make_ema(model, decay=0.9)
    _set(model, 0.0)
    for _ in range(n):
        ema.update_parameters(model)
    _set(model, 1.0)
    ema.update_parameters(model)
    assert float(ema.module.weight.detach()) == pytest.approx(1 - decay, rel=1e-6)


def test_batchnorm_statistics_are_averaged_and_its_counter_copied() -> None:
    model = nn.BatchNorm1d(2)
    ema = make_ema(model, decay=0.9)
    ema.update_parameters(model)  # n = 0: a copy
    with torch.no_grad():
        model.running_mean.fill_(11.0)
        model.num_batches_tracked.fill_(7)
    ema.update_parameters(model)  # n = 1: decay 2 / 11
    assert ema.module.running_mean.tolist() == pytest.approx([11.0 * 9 / 11] * 2)
    assert int(ema.module.num_batches_tracked) == 7


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1, 1.5])
def test_decay_outside_the_open_unit_interval_is_refused(decay: float) -> None:
    with pytest.raises(ValueError, match="EMA_DECAY must be in"):
        make_ema(nn.Linear(1, 1), decay)

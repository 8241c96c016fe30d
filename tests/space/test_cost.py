"""MAC counting: repeatable, side-effect free, and cross-checked against torch's flop_counter."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch

from space import build_model, count_cost, flop_counter_macs, thop_conv_linear_macs
from tests.conftest import REPO

with warnings.catch_warnings():  # thop imports the deprecated distutils
    warnings.simplefilter("ignore", DeprecationWarning)
    import thop

# The full EfficientNet-B0 is left to the build tests: it alone would double this file's time.
CONFIGS = sorted(p for p in (REPO / "configs" / "model").glob("*.yaml")
                 if p.name != "efficientnet_b0.yaml")
MOBILENET = REPO / "configs" / "model" / "mobilenet_v3_small.yaml"


def test_count_cost_is_repeatable_and_leaves_the_model_untouched() -> None:
    model = build_model(MOBILENET, num_classes=6).train()
    before = copy.deepcopy(model.state_dict())
    first = count_cost(model, 64)
    assert count_cost(model, 64) == first
    assert model.training, "the training flag must be restored"
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[k], after[k]) for k in before), "BN statistics changed"


def test_count_cost_does_not_depend_on_earlier_runs_or_raw_thop_counts() -> None:
    fresh = count_cost(build_model(MOBILENET, num_classes=6), 32)
    model = build_model(MOBILENET, num_classes=6)
    model(torch.randn(4, 3, 32, 32))  # a training-mode forward updates BN statistics
    thop.profile(model, inputs=(torch.zeros(1, 3, 32, 32),), verbose=False)  # leaves buffers
    thop.profile(model, inputs=(torch.zeros(1, 3, 32, 32),), verbose=False)
    assert count_cost(model, 32) == fresh


def test_params_are_the_model_parameters() -> None:
    model = build_model(MOBILENET, num_classes=9)
    assert count_cost(model, 32).params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_thop_conv_and_linear_macs_equal_flop_counter(path: Path) -> None:
    """Every conv and linear is a module thop hooks: nothing hides in functional calls."""
    model = build_model(path, num_classes=6)
    assert thop_conv_linear_macs(model, 32) == flop_counter_macs(model, 32)


def test_thop_adds_bn_and_pooling_on_top_of_conv_and_linear() -> None:
    model = build_model(MOBILENET, num_classes=9)
    assert count_cost(model, 64).macs > flop_counter_macs(model, 64)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_summary_rows_add_up_to_the_totals(path: Path) -> None:
    model = build_model(path, num_classes=6)
    records = model.summary(64)
    cost = count_cost(model, 64)
    assert sum(r.macs for r in records) == cost.macs
    assert sum(r.params for r in records) == cost.params
    assert records[-1].out_shape[:2] == (1, 6)
    assert [r.index for r in records] == list(range(len(model.specs)))


def test_macs_grow_with_the_image_size() -> None:
    model = build_model(MOBILENET, num_classes=6)
    assert count_cost(model, 32).macs < count_cost(model, 64).macs < count_cost(model, 96).macs


def test_count_cost_rejects_a_bad_image_size() -> None:
    with pytest.raises(ValueError, match="img_size must be a positive int, got 0"):
        count_cost(build_model(MOBILENET), 0)

"""MAC counting: repeatable, side-effect free, and cross-checked against torch's flop_counter."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch

from space import build_model, count_cost, flop_counter_macs, thop_conv_linear_macs
from space.cost import Cost
from space.errors import ModelConfigError
from tests.conftest import REPO

with warnings.catch_warnings():  # thop imports the deprecated distutils
    warnings.simplefilter("ignore", DeprecationWarning)
    import thop

# The full EfficientNet-B0 is left to the build tests: it alone would double this file's time.
CONFIGS = sorted(
    p for p in (REPO / "configs" / "model").glob("*.yaml") if p.name != "efficientnet_b0.yaml"
)
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


def _hand_model(bias: bool = False) -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=bias),
        nn.BatchNorm2d(8),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),  # depthwise
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )


def test_macs_and_params_of_conv_dw_conv_and_linear_by_hand() -> None:
    """At 16 px the stride-2 conv outputs 8 x 8 x 8 = 512 values."""
    conv = 512 * 3 * 3 * 3  # each output: in_ch x k x k multiply-adds
    depthwise = 512 * 3 * 3  # groups = channels: one input channel per output
    linear = 8 * 5
    bn = 4 * 512  # thop: normalise (2 ops) doubled by the affine scale and shift
    pool = 8 * (8 * 8 + 1)  # per channel: 64 adds and a division
    params = 3 * 8 * 9 + 2 * 8 + 8 * 9 + 8 * 5 + 5
    assert thop_conv_linear_macs(_hand_model(), 16) == conv + depthwise + linear
    assert flop_counter_macs(_hand_model(), 16) == conv + depthwise + linear
    assert count_cost(_hand_model(), 16) == Cost(conv + depthwise + linear + bn + pool, params)
    biased = count_cost(_hand_model(bias=True), 16)
    assert biased == Cost(conv + depthwise + linear + bn + pool, params + 8), "bias adds no MACs"


def test_a_model_elsewhere_than_float_on_cpu_is_counted_through_a_copy() -> None:
    model = _hand_model().double().train()
    assert count_cost(model, 16).macs == count_cost(_hand_model(), 16).macs
    assert model.training and next(model.parameters()).dtype == torch.float64


def test_a_model_that_cannot_run_names_the_image_size() -> None:
    """A model not built by space (no row to blame) fails with the size it was counted at."""
    too_deep = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5))
    with pytest.raises(ModelConfigError, match="the model cannot run at img_size=3"):
        count_cost(too_deep, 3)


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


@pytest.mark.parametrize("size", [0, -1, True, 3.0])
def test_count_cost_rejects_a_bad_image_size(size: object) -> None:
    with pytest.raises(ValueError, match=f"img_size must be a positive int, got {size!r}"):
        count_cost(build_model(MOBILENET), size)


def test_input_channels_follow_the_model() -> None:
    """A one-channel model is probed with one channel: 8 x 8 x 4 outputs of 1 x 3 x 3."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1, bias=False))
    model.input_channel = 1
    assert count_cost(model, 8) == Cost(8 * 8 * 4 * 9, 36)
    assert thop_conv_linear_macs(model, 8) == flop_counter_macs(model, 8) == 8 * 8 * 4 * 9
    assert isinstance(flop_counter_macs(model, 8), int)
    assert count_cost(model, 1).macs == 4 * 9, "a 1-pixel image is a valid size"


class _Checked(torch.nn.Module):
    """A model that names its failing row, as space's models do; `fails` picks which check."""

    def __init__(self, fails: str) -> None:
        super().__init__()
        self.fails = fails
        self.conv = torch.nn.Conv2d(3, 2, 1)

    def check_kernels(self, img_size: int) -> None:
        if self.fails == "kernels":
            raise ModelConfigError(f"row 0: kernel larger than {img_size}")

    def check_input_size(self, img_size: int) -> None:
        raise ModelConfigError(f"row 1 collapses at {img_size}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fails == "forward":
            raise RuntimeError("shape mismatch")
        return self.conv(x)


@pytest.mark.parametrize(
    ("fails", "message"),
    [("kernels", "row 0: kernel larger than 9"), ("forward", "row 1 collapses at 9")],
)
def test_a_space_model_names_the_row_that_fails(fails: str, message: str) -> None:
    with pytest.raises(ModelConfigError, match=message):
        count_cost(_Checked(fails), 9)
    assert count_cost(_Checked("none"), 9).macs == 9 * 9 * 2 * 3


def test_a_failed_count_leaves_no_thop_hooks_or_buffers() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5), torch.nn.Flatten())
    with pytest.raises(ModelConfigError):
        count_cost(model, 3)
    assert all(not m._forward_hooks for m in model.modules()), "thop's hooks removed"
    assert "0.total_ops" not in model.state_dict() and list(model.state_dict()) == [
        "0.weight",
        "0.bias",
    ]

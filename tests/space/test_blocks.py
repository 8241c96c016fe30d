"""Every registered module runs forward and backward at stride 1 and 2, with in != out."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from space import MODULES, build_model

# One row per module with out != in (the stem gives 16 channels); "{s}" becomes the stride.
SAMPLES: dict[str, list[Any]] = {
    "Conv": [24, 3, "{s}", None, 1, "HardSwish"],
    "FixedConv": [5, 3, "{s}", None, 1, None],
    "DWConv": [32, 3, "{s}"],
    "Bottleneck": [24, 1, 2, 0.5, "ReLU6"],
    "InvertedResidualv2": [24, 6, "{s}"],
    "InvertedResidualv3": [5, 4, 24, 1, 1, "{s}"],
    "MBConv": [6, 24, "{s}", 5],
    "ShuffleNetV2": ["{s}"],
    "GhostBottleneck": [5, 3, 24, 1, "{s}"],
    "Fire": [8, 16, 16],
    "MaxPool": [3, "{s}", 1],
    "AvgPool": [3, "{s}", 1],
    "GlobalAvgPool": [],
    "Flatten": [],
    "Linear": [7, "Sigmoid"],
    "Dropout": [0.1],
}
POOLED = {"Flatten", "Linear"}  # they expect a pooled (N, C, 1, 1) input
STRIDED = {name for name, args in SAMPLES.items() if "{s}" in args}
CASES = [(name, s) for name in SAMPLES for s in ((1, 2) if name in STRIDED else (1,))]


def test_every_registered_module_has_a_sample() -> None:
    assert set(SAMPLES) == set(MODULES)


def _args(name: str, stride: int) -> list[Any]:
    return [stride if a == "{s}" else a for a in SAMPLES[name]]


@pytest.mark.parametrize(("name", "stride"), CASES)
def test_block_forward_backward(name: str, stride: int) -> None:
    torch.manual_seed(0)
    pool = [[1, "GlobalAvgPool", []]] if name in POOLED else []
    cfg = {"backbone": [[1, "Conv", [16, 3, 1]], *pool, [2, name, _args(name, stride)]]}
    model = build_model(cfg)
    spec = model.specs[-1]
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    y = model.rows(x)
    assert y.shape[0] == 2 and y.shape[1] == spec.out_chs
    if y.ndim == 4 and name not in {"GlobalAvgPool", "MaxPool", "AvgPool"}:
        assert y.shape[-1] == 16 // stride
    assert all(isinstance(block, MODULES[name].block) for block in model.rows[-1])
    y.float().pow(2).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{name}: parameters without gradient: {missing}"


@pytest.mark.parametrize("name", sorted(n for n in SAMPLES if not MODULES[n].keeps_channels))
def test_channel_changing_blocks_change_channels(name: str) -> None:
    spec = build_model({"backbone": [[1, "Conv", [16, 3, 1]], [1, name, _args(name, 1)]]}).specs[1]
    assert spec.out_chs != spec.in_chs or name == "ShuffleNetV2"


def test_shufflenet_stride_two_doubles_channels() -> None:
    spec = build_model({"backbone": [[1, "Conv", [16, 3, 1]], [1, "ShuffleNetV2", [2]]]}).specs[1]
    assert (spec.in_chs, spec.out_chs) == (16, 32)


def test_cost_bearing_ops_are_modules_so_hooks_see_them() -> None:
    """SE pooling is an AdaptiveAvgPool2d module: a forward hook on it fires."""
    model = build_model({"backbone": [[1, "Conv", [16, 3, 1]], [1, "MBConv", [6, 24, 1, 3]]]})
    pools = [m for m in model.modules() if isinstance(m, torch.nn.AdaptiveAvgPool2d)]
    seen: list[int] = []
    for pool in pools:
        pool.register_forward_hook(lambda m, i, o: seen.append(1))
    model(torch.zeros(1, 3, 8, 8))
    assert pools and len(seen) == len(pools)

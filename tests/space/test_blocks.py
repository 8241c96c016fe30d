"""Every registered module runs forward and backward at stride 1 and 2, with in != out."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from space import MODULES, build_model
from space.blocks import GhostBottleneck, InvertedResidualv2, MBConv

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


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_rows_written_by_argument_name_come_back_in_yaml_order(name: str) -> None:
    spec, args = MODULES[name], _args(name, 2)
    named = dict(zip((a.name for a in spec.args), args, strict=False))
    assert spec.positional(named) == args
    assert spec.positional(dict(reversed(named.items()))) == args  # the order given is irrelevant


def test_rows_by_name_fill_gaps_with_defaults_and_refuse_bad_names() -> None:
    conv = MODULES["Conv"]
    named = {"out": 16, "kernel": 3, "stride": 2, "activation": "SiLU"}
    assert conv.positional(named) == [16, 3, 2, None, 1, "SiLU"]
    assert MODULES["Linear"].positional({"out": 6}) == [6]  # trailing defaults stay unwritten
    with pytest.raises(ValueError, match=r"Conv args \['kernal'\] are unknown; expected Conv\("):
        conv.positional({"out": 16, "kernal": 3})
    with pytest.raises(ValueError, match=r"Conv args \['kernel'\] are missing"):
        conv.positional({"out": 16})


def _layer_types(block: nn.Module) -> set[type[nn.Module]]:
    return {type(m) for m in block.modules()}


@pytest.mark.parametrize(
    ("block", "papers"),
    [(InvertedResidualv2, nn.ReLU6), (MBConv, nn.SiLU), (GhostBottleneck, nn.ReLU)],
)
def test_blocks_take_their_activation_with_the_papers_as_default(
    block: type[nn.Module], papers: type[nn.Module]
) -> None:
    default, swapped = block(16, 24, stride=2), block(16, 24, stride=2, act_layer=nn.Hardswish)
    assert papers in _layer_types(default) and nn.Hardswish not in _layer_types(default)
    assert papers not in _layer_types(swapped) and nn.Hardswish in _layer_types(swapped)
    assert sum(p.numel() for p in default.parameters()) == sum(
        p.numel() for p in swapped.parameters()
    )

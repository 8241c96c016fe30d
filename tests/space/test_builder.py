"""Builder rules: multiples, rounding, stride placement, heads, round trip, shipped configs."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from space import (
    BlockSpec,
    build_model,
    decode,
    dump_model_config,
    instantiate,
    load_model_config,
)
from tests.conftest import REPO

CONFIGS = sorted((REPO / "configs" / "model").glob("*.yaml"))
STEM = [1, "Conv", [16, 3, 2]]


HEAD = [[1, "GlobalAvgPool", []], [1, "Linear", [3]]]


def _cfg(*rows: list, **header: float) -> dict:
    return {**header, "backbone": [STEM, *rows, *HEAD]}


def test_depth_multiple_scales_repeats_above_one_only() -> None:
    specs = decode(
        _cfg([3, "Conv", [16, 3]], [1, "Conv", [16, 3]], [4, "Conv", [16, 3]], depth_multiple=0.5)
    )
    assert [s.repeat for s in specs[:4]] == [1, 2, 1, 2]  # round(1.5) = 2, 1 stays 1, round(2) = 2


def test_depth_multiple_never_drops_a_row_below_one_repeat() -> None:
    assert decode(_cfg([2, "Conv", [16, 3]], depth_multiple=0.1))[1].repeat == 1


def test_width_multiple_rounds_channels_to_eight() -> None:
    specs = decode(
        _cfg(
            [1, "Conv", [24, 3]],
            [1, "InvertedResidualv3", [3, 4, 40, 0, 0, 1]],
            [1, "Fire", [16, 64, 64]],
            width_multiple=0.75,
        )
    )
    assert [s.out_chs for s in specs[:4]] == [16, 24, 32, 96]  # 12->16, 18->24, 30->32, 48+48
    assert specs[3].args == {"squeeze": 16, "expand1x1": 48, "expand3x3": 48}


def test_channels_are_rounded_even_at_width_one() -> None:
    assert decode(_cfg([1, "Conv", [20, 3]]))[1].out_chs == 24


@pytest.mark.parametrize("head", [[1, "FixedConv", [9, 1, 1, None, 1, None]], [1, "Linear", [9]]])
def test_class_heads_are_never_rounded(head: list) -> None:
    cfg = {"width_multiple": 0.5, "backbone": [STEM, [1, "GlobalAvgPool", []], head]}
    assert decode(cfg)[-1].out_chs == 9
    assert build_model(cfg)(torch.zeros(2, 3, 16, 16)).shape == (2, 9)


def test_num_classes_replaces_the_final_head_only() -> None:
    cfg = {
        "backbone": [
            STEM,
            [1, "GlobalAvgPool", []],
            [1, "Linear", [32, "ReLU"]],
            [1, "Dropout", [0.2]],
            [1, "Linear", [9]],
        ]
    }
    specs = decode(cfg, num_classes=4)
    assert [s.out_chs for s in specs[2:]] == [32, 32, 4]
    assert build_model(cfg, num_classes=4)(torch.zeros(1, 3, 16, 16)).shape == (1, 4)


def test_conv_stride_goes_on_the_last_repeat() -> None:
    row = build_model(_cfg([3, "Conv", [16, 3, 2]])).rows[1]
    assert [block.conv.stride for block in row] == [(1, 1), (1, 1), (2, 2)]


@pytest.mark.parametrize(
    "row",
    [
        [3, "InvertedResidualv3", [3, 4, 24, 0, 0, 2]],
        [3, "InvertedResidualv2", [24, 6, 2]],
        [3, "MBConv", [6, 24, 2, 3]],
        [3, "GhostBottleneck", [3, 3, 24, 0, 2]],
    ],
)
def test_inverted_residual_stride_goes_on_the_first_repeat(row: list) -> None:
    blocks = build_model(_cfg(row)).rows[1]
    x, sizes = torch.zeros(1, 16, 16, 16), []
    for block in blocks:
        x = block(x)
        sizes.append(x.shape[-1])
    assert sizes == [8, 8, 8]


def _same_model(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert [v.shape for v in sa.values()] == [v.shape for v in sb.values()]
    b.load_state_dict(sa)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(a.eval()(x), b.eval()(x))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_to_config_round_trips_through_yaml(path: Path, tmp_path: Path) -> None:
    model = build_model(path, num_classes=5)
    text = dump_model_config(model.to_config(), comments=[f"row {s.index}" for s in model.specs])
    (tmp_path / "back.yaml").write_text(text)
    again = build_model(tmp_path / "back.yaml")
    assert again.to_config() == model.to_config()
    _same_model(model, again)


def test_specs_round_trip_through_json() -> None:
    specs = decode(
        load_model_config(REPO / "configs/model/mobilenet_v3_small.yaml"), num_classes=6
    )
    data = json.loads(json.dumps([dataclasses.asdict(s) for s in specs]))
    _same_model(instantiate(specs), instantiate(data))
    assert [BlockSpec(**d) for d in data] == list(specs)  # nothing lost on the way through JSON


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_builds_and_runs(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = build_model(path, num_classes=6)
    assert model.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 6)
    assert len(model.specs) == len(yaml.safe_load(path.read_text())["backbone"])  # a spec per row


def test_forward_does_not_flatten_a_spatial_output() -> None:
    with pytest.warns(UserWarning):
        model = build_model({"backbone": [[1, "Conv", [12, 3, 2]]]})
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 16, 8, 8)

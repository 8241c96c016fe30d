"""The define-by-run spaces: every sample is a buildable model YAML, names are stable."""

from __future__ import annotations

import dataclasses
import re
import statistics
from pathlib import Path

import optuna
import pytest
import torch

from space import build_model, count_cost, decode
from space.layers import ACTIVATIONS as ACTIVATION_LAYERS
from space.search import downsample_range, suggest_backbone, suggest_hyper, suggest_model_config
from space.search_bounds import (
    ACTIVATIONS,
    BLOCK_TYPES,
    load_architecture_bounds,
    load_hyper_bounds,
)

REPO = Path(__file__).resolve().parents[2]
ARCH = REPO / "configs" / "search" / "architecture.yaml"
HYPER = REPO / "configs" / "search" / "hyper.yaml"
NAME = re.compile(
    r"^(img_size|width|stem\.(c|k|act)|num_stages|head\.(c|act|type)|s[1-5]\.(stride|block|repeats)"
    r"|s[1-5]\.(mbconv|ir3|ghost|conv|dwconv)\.(c|k|t|se|act))$"
)


def _study(seed: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


@torch.no_grad()
def _final_side(model: torch.nn.Module, img_size: int) -> int:
    """Side of the last feature map before global pooling (a plain pass: summary() is slow)."""
    x = torch.zeros(1, 3, img_size, img_size)
    for spec, row in zip(model.specs, model.rows, strict=True):
        if spec.module == "GlobalAvgPool":
            return x.shape[-1]
        x = row(x)
    raise AssertionError("no GlobalAvgPool row")


@pytest.mark.parametrize(("img_size", "num_classes"), [(32, 6), (48, 3), (64, 9)])
def test_random_samples_build_and_stay_small(img_size: int, num_classes: int) -> None:
    bounds = load_architecture_bounds(ARCH)
    fewest, most = downsample_range(img_size, bounds)
    macs = []
    for seed in range(12):
        trial = _study(seed).ask()
        cfg = suggest_model_config(trial, bounds, num_classes, img_size=img_size)
        decode(cfg, num_classes=num_classes)  # JSON-able specs: what a trial stores
        model = build_model(cfg)
        out = model.eval()(torch.zeros(2, 3, img_size, img_size))
        assert out.shape == (2, num_classes), cfg
        side = _final_side(model, img_size)
        assert bounds.min_feature <= side, (cfg, side)
        assert side <= max(bounds.max_feature, -(-img_size // 2**most)), (cfg, side)
        assert all(NAME.match(name) for name in trial.params), trial.params
        macs.append(count_cost(model, img_size).macs)
    assert 0.1e6 < min(macs) and max(macs) < 40e6, macs
    assert 0.3e6 <= statistics.median(macs) <= 15e6, macs
    assert fewest <= most


def test_same_trial_params_give_the_same_rows() -> None:
    bounds = load_architecture_bounds(ARCH)
    trial = _study(3).ask()
    rows = suggest_backbone(trial, bounds, 6, img_size=32)
    again = suggest_backbone(optuna.trial.FixedTrial(trial.params), bounds, 6, img_size=32)
    assert rows == again


def test_fixed_params_give_the_documented_rows() -> None:
    """Parameter names are a stored interface: resumed studies and exports depend on them."""
    params = {
        "stem.c": 16,
        "stem.k": 3,
        "stem.act": "Hardswish",
        "num_stages": 3,
        "s1.block": "MBConv",
        "s1.stride": 1,
        "s1.repeats": 2,
        "s1.mbconv.c": 16,
        "s1.mbconv.k": 3,
        "s1.mbconv.t": 3,
        "s2.block": "ShuffleNetV2",
        "s2.stride": 2,
        "s2.repeats": 3,
        "s3.block": "InvertedResidualv3",
        "s3.stride": 2,
        "s3.repeats": 1,
        "s3.ir3.c": 48,
        "s3.ir3.k": 5,
        "s3.ir3.t": 4,
        "s3.ir3.se": 1,
        "s3.ir3.act": "Hardswish",
        "head.c": 128,
        "head.act": "ReLU",
        "head.type": "Linear",
    }
    rows = suggest_backbone(optuna.trial.FixedTrial(params), load_architecture_bounds(ARCH), 5)
    assert rows == [
        [1, "Conv", [16, 3, 2, None, 1, "Hardswish"]],
        [2, "MBConv", [3, 16, 1, 3]],
        [1, "ShuffleNetV2", [2]],
        [2, "ShuffleNetV2", [1]],
        [1, "InvertedResidualv3", [5, 4, 48, 1, 1, 2]],
        [1, "Conv", [128, 1, 1, None, 1, "ReLU"]],
        [1, "GlobalAvgPool", []],
        [1, "Flatten", []],
        [1, "Linear", [5]],
    ]


def test_stride_is_forced_when_the_budget_leaves_no_choice() -> None:
    """At 64 px three halvings are needed: two stages after the stem must both downsample."""
    bounds = load_architecture_bounds(ARCH)
    params = {
        "stem.c": 8,
        "stem.k": 3,
        "stem.act": "ReLU",
        "num_stages": 2,
        "s1.block": "skip",
        "s2.block": "Conv",
        "s2.repeats": 1,
        "s2.conv.c": 16,
        "s2.conv.k": 3,
        "s2.conv.act": "ReLU",
        "head.c": 64,
        "head.act": "ReLU",
        "head.type": "FixedConv",
    }
    rows = suggest_backbone(optuna.trial.FixedTrial(params), bounds, 4, img_size=64)
    assert rows[1] == [1, "MaxPool", [3, 2, 1]]
    assert rows[2] == [1, "Conv", [16, 3, 2, None, 1, "ReLU"]]


def test_downsample_range_keeps_the_map_within_the_feature_bounds() -> None:
    bounds = load_architecture_bounds(ARCH)  # min_feature 2, max_feature 8
    assert downsample_range(32, bounds) == (2, 4)
    assert downsample_range(48, bounds) == (3, 5)
    assert downsample_range(64, bounds) == (3, 5)


def test_hyper_space_gives_valid_data_keys(tiny_data: Path) -> None:
    from runner.data.config import data_config_from_dict

    bounds = load_hyper_bounds(HYPER)
    for seed in range(10):
        keys = suggest_hyper(_study(seed).ask(), bounds)
        cfg = data_config_from_dict({"DATA_PATH": str(tiny_data), **keys})
        assert cfg.img_size in bounds.img_sizes
        lr = bounds.sgd_lr if cfg.optimizer == "sgd" else bounds.adamw_lr
        assert lr[0] <= cfg.init_lr <= lr[1]
        assert ("n_select" in cfg.aug_train_params) == (cfg.aug_train == "randaugment_train")


@pytest.mark.parametrize("block", [b for b in BLOCK_TYPES if b != "skip"])
def test_every_stage_block_the_registry_offers_samples_a_buildable_model(block: str) -> None:
    bounds = dataclasses.replace(load_architecture_bounds(ARCH), blocks=(block,))
    trial = _study(0).ask()
    cfg = suggest_model_config(trial, bounds, 6, img_size=32)
    assert block in [module for _, module, _ in cfg["backbone"]]
    assert build_model(cfg).eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 6)


def test_bounds_offer_every_registered_activation() -> None:
    assert ACTIVATIONS == tuple(ACTIVATION_LAYERS) and "Hardsigmoid" in ACTIVATIONS

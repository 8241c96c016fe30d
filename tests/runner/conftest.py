"""Runner fixtures: a data config over the synthetic folder and a tiny model to train on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from runner import compress
from runner import train as train_cli
from runner.data.config import DataConfig
from runner.data.splits import Splits, load_splits
from tests.conftest import make_image_folder

TINY_MODEL_YAML = """\
input_channel: 3
depth_multiple: 1.0
width_multiple: 1.0
backbone:
  - [1, Conv, [8, 3, 2]]
  - [1, GlobalAvgPool, []]
  - [1, FixedConv, [3, 1, 1, null, 1, null]]  # num_classes replaces 3
"""


@pytest.fixture
def tiny_cfg(tiny_data: Path) -> DataConfig:
    """Brief-trial settings on the synthetic folder: 24 px, batches of 8, 3 epochs."""
    return DataConfig(data_path=str(tiny_data), img_size=24, batch_size=8, epochs=3, init_lr=0.05)


@pytest.fixture
def tiny_splits(tiny_cfg: DataConfig, tmp_path: Path) -> Splits:
    return load_splits(tiny_cfg, cache_dir=tmp_path / "cache", progress=False)


@pytest.fixture
def make_model() -> Callable[[int], nn.Module]:
    """A seeded conv-BN-ReLU-pool-linear classifier, so tests need no model builder."""

    def make(num_classes: int = 3, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, num_classes),
        )

    return make


@pytest.fixture
def tiny_model_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_model.yaml"
    path.write_text(TINY_MODEL_YAML)
    return path


def train_tiny_run(root: Path, model_text: str = TINY_MODEL_YAML, epochs: int = 2) -> Path:
    """A run folder of `model_text` trained `epochs` epochs at 24 px on a synthetic folder made
    under `root` (for module-scoped fixtures of tests that read, damage or convert runs)."""
    data = make_image_folder(root / "data")
    data_yaml = root / "data.yaml"
    data_yaml.write_text(
        yaml.safe_dump(
            {
                "DATA_PATH": str(data),
                "IMG_SIZE": 24,
                "BATCH_SIZE": 8,
                "EPOCHS": epochs,
                "INIT_LR": 0.05,
            }
        )
    )
    model_yaml = root / "model.yaml"
    model_yaml.write_text(model_text)
    run = root / "run"
    args = ["--model", str(model_yaml), "--data", str(data_yaml), "--output", str(run)]
    assert train_cli.main([*args, "--cache-dir", str(root / "cache")]) == 0
    return run


def run_compress(
    source: Path, out: Path, method: str, target: int, *extra: str, cache: Path | None = None
) -> int:
    """runner.compress of a trained run to `target` MACs with one fine-tuning epoch."""
    return compress.main(
        [
            "--run",
            str(source),
            "--method",
            method,
            "--macs-target",
            str(target),
            "--output",
            str(out),
            "--epochs",
            "1",
            "--cache-dir",
            str(cache or out.parent / "cache"),
            *extra,
        ]
    )

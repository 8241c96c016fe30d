"""Search fixtures: a data YAML over the synthetic folder, splits, and a fast stand-in for fit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from runner.config import DataConfig
from runner.data import Splits
from runner.train import EpochStats, FitResult

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def search_data_yaml(tiny_data: Path, tmp_path: Path) -> Path:
    """A data YAML for brief trials on the synthetic folder."""
    path = tmp_path / "data.yaml"
    path.write_text(
        f"DATA_PATH: {tiny_data}\nIMG_SIZE: 32\nBATCH_SIZE: 8\nEPOCHS: 2\nINIT_LR: 0.05\n"
        "AUG_TRAIN: simple_augment_train\nFP16: false\n"
    )
    return path


@pytest.fixture
def small_space(tmp_path: Path) -> Path:
    """The shipped architecture space cut to one or two narrow stages: quick to build and train."""
    space = yaml.safe_load((REPO / "configs" / "search" / "architecture.yaml").read_text())
    space.update(num_stages=[1, 2], repeats=[1, 1], head={"type_choices": ["FixedConv", "Linear"],
                 "channels": [16, 32]})  # fmt: skip
    space["stages"] = [{"channels": [8, 16]}, {"channels": [8, 16]}]
    path = tmp_path / "small_space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


@pytest.fixture
def fake_splits() -> Splits:
    """Three classes of blank images: enough for building and costing, never trained on."""
    x, y = torch.zeros(6, 3, 32, 32, dtype=torch.uint8), torch.tensor([0, 1, 2, 0, 1, 2])
    return Splits(x, y, x, y, ["a", "b", "c"])


@pytest.fixture
def fake_cfg(tmp_path: Path) -> DataConfig:
    return DataConfig(data_path=str(tmp_path), img_size=32, epochs=3, seed=5)


class FakeFit:
    """Replaces runner.train.fit: F1 rises by 0.1 per epoch; records its calls; may raise."""

    def __init__(self, fail_on: Callable[[int], BaseException | None] = lambda call: None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_on = fail_on

    def __call__(
        self, model: torch.nn.Module, splits: Splits, cfg: DataConfig, **kw: Any
    ) -> FitResult:
        self.calls.append(kw)
        error = self.fail_on(len(self.calls))
        if error is not None:
            raise error
        history = []
        for epoch in range(1, kw["epochs"] + 1):
            history.append(EpochStats(epoch, 1.0 / epoch, 0.1 * epoch, 0.1 * epoch, 0.01))
            kw["on_epoch"](history[-1])
        f1 = history[-1].f1
        return FitResult(f1, {c: f1 for c in splits.classes}, f1, len(history), 0.5, history)


@pytest.fixture
def fake_fit(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeFit]:
    """Install a FakeFit where the search calls fit; returns a factory taking fail_on."""

    def install(fail_on: Callable[[int], BaseException | None] = lambda call: None) -> FakeFit:
        fake = FakeFit(fail_on)
        monkeypatch.setattr("search.objectives._trial.fit", fake)
        return fake

    return install

"""What a training run produces and resumes from: per-epoch stats, the result, a resumable state.

Plain data, apart from the training loop (runner/training/loop.py), so that a run folder, the
search and the benchmarks can read and write them without importing the loop.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class EpochStats:
    """One epoch: mean training loss, validation macro F1 and accuracy, seconds (with eval)."""

    epoch: int
    loss: float
    f1: float
    accuracy: float
    seconds: float


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Validation scores after the last epoch (not the best one), and every epoch's history."""

    f1: float
    per_class_f1: dict[str, float]
    accuracy: float
    epochs_run: int
    train_seconds: float
    history: list[EpochStats]
    confusion: list[list[int]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TrainState:
    """Everything needed to continue a run after its last finished epoch.

    The tensors are the live ones of the run: save or copy them before training goes on.
    """

    epochs_done: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    history: list[EpochStats]
    train_seconds: float
    ema: dict[str, Any] | None = None  # AveragedModel's state when EMA_DECAY > 0

    def scored_weights(self) -> dict[str, Any]:
        """The weights that were validated: the EMA's when there is one, else the model's."""
        if self.ema is None:
            return self.model
        prefix = "module."
        return {k[len(prefix) :]: v for k, v in self.ema.items() if k.startswith(prefix)}

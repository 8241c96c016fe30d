"""The hyperparameter study's objective: one fixed model, a sampled training recipe.

IMG_SIZE is part of the recipe, so MACs move with it: the default objectives are (F1, MACs) as
in the architecture study; a single objective (F1 or the competition score) allows Optuna's
pruners on the per-epoch values.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence

import optuna

from runner.data.config import DataConfig
from runner.data.splits_cache import SplitsCache
from runner.training.metrics import competition_score
from search.objectives._trial import (
    EpochReporter,
    Stopper,
    TrialBudget,
    build_and_cost,
    recording_failures,
    reuse_or_train,
)
from space.search import suggest_hyper
from space.search_bounds import HyperBounds

OBJECTIVES = {
    "pareto": (("maximize", "minimize"), ("f1", "macs")),
    "f1": (("maximize",), ("f1",)),
    "score": (("minimize",), ("score",)),
}


@dataclasses.dataclass
class HyperObjective:
    """Train `model_path` with a sampled recipe; return (F1, MACs), F1 or the score."""

    bounds: HyperBounds
    cfg: DataConfig
    model_path: str | os.PathLike[str]
    data: SplitsCache
    budget: TrialBudget
    objective: str = "pareto"
    stopper: Stopper | None = None

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        with recording_failures(trial):
            return self._evaluate(trial)

    def _evaluate(self, trial: optuna.Trial) -> float | Sequence[float]:
        keys = suggest_hyper(trial, self.bounds)
        cfg = dataclasses.replace(self.cfg, **{key.lower(): value for key, value in keys.items()})
        splits = self.data.get(cfg.img_size)
        model, cost = build_and_cost(trial, self.model_path, cfg, self.budget, len(splits.classes))
        macs = cost.macs
        values = functools.partial(self._values, trial, macs)
        return reuse_or_train(
            trial, model, splits, cfg, self.budget, self._reporter(trial, macs), values
        )

    def _values(self, trial: optuna.Trial, macs: int, f1: float) -> float | Sequence[float]:
        """The objective values of a trained trial; the F1 is kept too (the score hides it)."""
        trial.set_user_attr("f1", f1)
        if self.objective == "pareto":
            return f1, macs
        return f1 if self.objective == "f1" else competition_score(macs, f1)

    def _reporter(self, trial: optuna.Trial, macs: int) -> EpochReporter:
        """Pareto studies use the stopping rule; single-objective ones Optuna's pruner."""
        if self.objective == "pareto":
            return EpochReporter(trial, macs, self.stopper)
        if self.objective == "f1":
            return EpochReporter(trial, macs, report=float)
        return EpochReporter(trial, macs, report=lambda f1: competition_score(macs, f1))

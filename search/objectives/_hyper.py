"""The hyperparameter study's objective: one fixed model, a sampled training recipe.

IMG_SIZE is part of the recipe, so MACs move with it: the default objectives are (F1, MACs) as
in the architecture study; a single objective (F1 or the competition score) allows Optuna's
pruners on the per-epoch values.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import optuna

from runner.config import DataConfig
from runner.metrics import competition_score
from runner.splits_cache import SplitsCache
from search.objectives._trial import (
    EpochReporter,
    Stopper,
    TrialBudget,
    copy_twin,
    describe_setup,
    find_twin,
    recording_failures,
    train_trial,
)
from space import build_model, count_cost
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
        describe_setup(trial, cfg, self.budget)
        splits = self.data.get(cfg.img_size)
        model = build_model(self.model_path, num_classes=len(splits.classes), seed=cfg.seed)
        trial.set_user_attr("model_yaml", model.to_yaml(cfg.img_size))
        cost = count_cost(model, cfg.img_size)
        macs = int(cost.macs)
        trial.set_user_attr("macs", macs)
        trial.set_user_attr("params", int(cost.params))
        twin = find_twin(trial)
        if twin is not None:
            return copy_twin(trial, twin)
        reporter = self._reporter(trial, macs)
        f1 = float(train_trial(trial, model, splits, cfg, self.budget, reporter).f1)
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

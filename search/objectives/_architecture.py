"""The architecture study's objective: sample, cost, and only then (maybe) train.

MACs and params are counted on the built model before any training, so a candidate over the MACs
budget is recorded as infeasible at the price of one forward pass.
"""

from __future__ import annotations

import dataclasses

import optuna

from runner.config import DataConfig
from runner.data import Splits
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
from space.search import suggest_model_config
from space.search_bounds import ArchitectureBounds

MACS_CONSTRAINT = "macs_budget"


@dataclasses.dataclass
class ArchitectureObjective:
    """(macro F1, MACs) of one sampled architecture trained under the per-trial budget.

    `cfg` carries the study's IMG_SIZE and seed; `splits` are decoded once at that size.
    """

    bounds: ArchitectureBounds
    cfg: DataConfig
    splits: Splits
    budget: TrialBudget
    macs_max: int | None = None
    stopper: Stopper | None = None

    def __call__(self, trial: optuna.Trial) -> tuple[float, int]:
        with recording_failures(trial):
            return self._evaluate(trial)

    def _evaluate(self, trial: optuna.Trial) -> tuple[float, int]:
        num_classes = len(self.splits.classes)
        config = suggest_model_config(trial, self.bounds, num_classes, img_size=self.cfg.img_size)
        describe_setup(trial, self.cfg, self.budget)
        model = build_model(config, num_classes=num_classes, seed=self.cfg.seed)
        trial.set_user_attr("model_yaml", model.to_yaml(self.cfg.img_size))
        cost = count_cost(model, self.cfg.img_size)
        trial.set_user_attr("macs", int(cost.macs))
        trial.set_user_attr("params", int(cost.params))
        if self.macs_max is not None:
            trial.set_constraint(MACS_CONSTRAINT, float(cost.macs - self.macs_max))
            if cost.macs > self.macs_max:
                trial.set_user_attr(
                    "infeasible", f"MACs {cost.macs:,} > --macs-max {self.macs_max:,}"
                )
                return 0.0, int(cost.macs)
        twin = find_twin(trial)
        if twin is not None:
            return copy_twin(trial, twin)  # type: ignore[return-value]
        reporter = EpochReporter(trial, int(cost.macs), self.stopper)
        result = train_trial(trial, model, self.splits, self.cfg, self.budget, reporter)
        return float(result.f1), int(cost.macs)

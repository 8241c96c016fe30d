"""The architecture study's objective: sample, cost, and only then (maybe) train.

A trial samples its input size and width with its blocks; MACs and params are counted at that
size on the built model before any training (search/objectives/_trial.py), so a candidate over
the MACs or params budget is recorded as infeasible at the price of one forward pass.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import optuna
import torch

from runner.data.config import DataConfig
from runner.data.splits import Splits
from runner.data.splits_cache import SplitsCache
from search.objectives._trial import (
    EpochReporter,
    Stopper,
    TrialBudget,
    build_and_cost,
    describe_setup,
    plan_cost,
    recording_failures,
    reuse_or_train,
)
from space import ModelConfigError, build_model, count_cost, dump_model_config
from space.errors import UserError
from space.latency import onnx_latency_ms
from space.search import suggest_img_size, suggest_model_config
from space.search_bounds import ArchitectureBounds

MACS_CONSTRAINT = "macs_budget"
PARAMS_CONSTRAINT = "params_budget"
LATENCY_CONSTRAINT = "latency_budget"
# The second objective beside F1 -> the user attr (and metric name) holding it.
COST_OBJECTIVES = {"macs": "macs", "latency": "latency_ms"}


class BudgetCheck(NamedTuple):
    """One budget of a study beside a candidate's value; an unset budget or value is unchecked."""

    constraint: str  # the Optuna constraint's name
    what: str
    value: float | None
    budget: float | None
    flag: str  # the CLI option that sets the budget
    fmt: str

    @property
    def broken(self) -> bool:
        return self.budget is not None and self.value is not None and self.value > self.budget

    def text(self) -> str:
        return f"{self.what} {self.value:{self.fmt}} > {self.flag} {self.budget:{self.fmt}}"


@dataclasses.dataclass
class ArchitectureObjective:
    """(macro F1, MACs) of one sampled architecture trained under the per-trial budget.

    `cfg` carries the study's recipe and seed; `data` decodes each sampled IMG_SIZE once.
    """

    bounds: ArchitectureBounds
    cfg: DataConfig
    data: SplitsCache
    budget: TrialBudget
    macs_max: int | None = None
    params_max: int | None = None
    latency_max: float | None = None  # ms; measured (space/latency.py) only when needed
    objective: str = "macs"  # the second objective: "macs" or "latency" (ms)
    stopper: Stopper | None = None

    def __post_init__(self) -> None:
        if self.objective not in COST_OBJECTIVES:
            raise UserError(
                f"objective must be one of {list(COST_OBJECTIVES)}, got {self.objective!r}"
            )

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        with recording_failures(trial):
            return self._evaluate(trial)

    def _suggest(self, trial: optuna.Trial) -> tuple[DataConfig, Splits, dict[str, Any]]:
        """The trial's recipe at its sampled size, the data at that size and the sampled model
        config: the one order of suggestions that a queued startup trial replays."""
        cfg = dataclasses.replace(
            self.cfg, img_size=suggest_img_size(trial, self.bounds, self.cfg.img_size)
        )
        splits = self.data.get(cfg.img_size)
        config = suggest_model_config(
            trial, self.bounds, len(splits.classes), img_size=cfg.img_size
        )
        return cfg, splits, config

    def _evaluate(self, trial: optuna.Trial) -> tuple[float, float]:
        cfg, splits, config = self._suggest(trial)
        num_classes = len(splits.classes)
        early = self._over_budget_unbuilt(trial, config, cfg, num_classes)
        if early is not None:
            return early
        model, counted = build_and_cost(trial, config, cfg, self.budget, num_classes)
        latency = self._latency(trial, model, cfg.img_size)
        cost = latency if self.objective == "latency" and latency is not None else counted.macs
        if not self._within_budgets(trial, counted.macs, counted.params, latency):
            return 0.0, cost
        reporter = EpochReporter(trial, cost, self.stopper)
        return reuse_or_train(  # type: ignore[return-value]
            trial, model, splits, cfg, self.budget, reporter, lambda f1: (f1, cost)
        )

    def _over_budget_unbuilt(
        self, trial: optuna.Trial, config: dict[str, Any], cfg: DataConfig, num_classes: int
    ) -> tuple[float, float] | None:
        """A candidate over the MACs or params budget, counted from its rows on the meta device
        and recorded infeasible without building it (a model of huge rows would not fit in
        memory); None when it is within them or latency must be measured on the built model."""
        if self.latency_max is not None or self.objective == "latency":
            return None
        planned, cost = plan_cost(config, cfg.img_size, num_classes)
        if cost is None or self._within_budgets(trial, cost.macs, cost.params, None):
            return None
        describe_setup(trial, cfg, self.budget)
        trial.set_user_attr("macs", int(cost.macs))
        trial.set_user_attr("params", int(cost.params))
        trial.set_user_attr("model_yaml", dump_model_config(planned.to_config()))
        return 0.0, float(cost.macs)

    def draw_cost(self, trial: optuna.Trial) -> float | None:
        """The MACs of an architecture suggested in `trial`, without training or recording it
        (search/objectives/_startup.py); None when it is over a budget or cannot be built."""
        cfg, splits, config = self._suggest(trial)
        num_classes = len(splits.classes)
        try:  # counted from the rows first: a huge candidate is never allocated
            _, cost = plan_cost(config, cfg.img_size, num_classes)
            if cost is None:
                cost = count_cost(build_model(config, num_classes=num_classes), cfg.img_size)
        except ModelConfigError:  # e.g. a feature map that collapses at this size
            return None
        if any(check.broken for check in self._budgets(cost.macs, cost.params, None)):
            return None
        return float(cost.macs)

    def _latency(self, trial: optuna.Trial, model: torch.nn.Module, img_size: int) -> float | None:
        """Batch-1 ONNX Runtime latency in ms (about a second), only when it is the objective
        or under a budget."""
        if self.latency_max is None and self.objective != "latency":
            return None
        latency = round(onnx_latency_ms(model, img_size), 4)
        trial.set_user_attr("latency_ms", latency)
        return latency

    def _budgets(self, macs: int, params: int, latency: float | None) -> tuple[BudgetCheck, ...]:
        """Every budget of the study beside the candidate's value."""
        return (
            BudgetCheck(MACS_CONSTRAINT, "MACs", macs, self.macs_max, "--macs-max", ","),
            BudgetCheck(PARAMS_CONSTRAINT, "params", params, self.params_max, "--params-max", ","),
            BudgetCheck(
                LATENCY_CONSTRAINT, "latency ms", latency, self.latency_max, "--latency-max", ".3f"
            ),
        )

    def _within_budgets(
        self, trial: optuna.Trial, macs: int, params: int, latency: float | None
    ) -> bool:
        """Record each budget as a constraint (the samplers learn from it) and say which ones a
        candidate breaks; one over a budget is recorded infeasible and never trained."""
        over = []
        already = trial.constraints  # a retry of a dead worker's trial carries its original's
        for check in self._budgets(macs, params, latency):
            if check.budget is None or check.value is None:
                continue
            if check.constraint not in already:
                trial.set_constraint(check.constraint, float(check.value - check.budget))
            if check.broken:
                over.append(check.text())
        if over:
            trial.set_user_attr("infeasible", ", ".join(over))
        return not over

"""Training one trial's model under the per-trial budget and recording what came out.

The runner knows nothing of Optuna: a study reaches the training loop only through the per-epoch
callback defined here, which stores the F1 history and stops a trial by raising TrialPruned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import os
import platform
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from runner.data.config import DataConfig
from runner.data.splits import Splits
from runner.training.loop import FitOptions, TrainingDiverged, fit
from runner.training.run import check_trainable
from runner.training.state import EpochStats, FitResult
from search.study import INTERRUPTED
from space import Cost, SpaceModel, build_model, count_cost
from space.cost import meta_cost
from space.errors import UserError

VERSIONED = ("litenas", "torch", "torchvision", "optuna", "numpy", "pillow")
RECIPE_ATTRS = ("model_yaml", "data_config", "budget")
TWIN_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
# The result of training, copied from a twin (f1: single-objective studies' F1).
TWIN_RESULT_ATTRS = (
    "f1_history",
    "per_class_f1",
    "epochs_run",
    "f1",
    "pruned_at_epoch",
    "pruned_reason",
)

# What fails one trial but not the study: an architecture or recipe the user's space allows but
# that cannot be built or trained as asked (UserError, e.g. a map that collapses at the sampled
# size), a loss that diverged, or memory that ran out on the device. The reason is stored on the
# trial; a run of failures in a row stops the study (search/study/_study.py StopRule). Anything
# else (a TypeError, a KeyError, a ValueError or RuntimeError from inside a library) is a bug: it
# stops the study with its traceback instead of failing every trial alike.
TRIAL_ERRORS: tuple[type[Exception], ...] = (
    UserError,
    TrainingDiverged,
    torch.OutOfMemoryError,
    MemoryError,
)


@dataclasses.dataclass(frozen=True)
class TrialBudget:
    """How much training one trial gets (whichever of epochs and seconds ends first stops it)
    and how it is scored: the mean validation F1 of its last score_epochs epochs.

    Without epochs a trial trains for its data config's EPOCHS (the hyper space samples it).
    """

    epochs: int | None = None
    seconds: float | None = None
    train_fraction: float = 1.0
    score_epochs: int = 1

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise UserError(f"--epochs must be >= 1, got {self.epochs}")
        if self.seconds is not None and self.seconds <= 0:
            raise UserError(f"--trial-seconds must be > 0, got {self.seconds}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise UserError(f"--train-fraction must be in (0, 1], got {self.train_fraction}")
        if self.score_epochs < 1:
            raise UserError(f"--score-epochs must be >= 1, got {self.score_epochs}")


class Stopper(Protocol):
    """Anything with ParetoStopper's should_stop (search/front/_early_stop.py)."""

    def should_stop(
        self, study: optuna.Study, trial: optuna.Trial, epoch: int, f1: float, macs: float
    ) -> bool: ...


@dataclasses.dataclass
class EpochReporter:
    """The per-epoch callback: store the F1 history, then let a stopping rule end the trial.

    With `report` (single-objective studies) the epoch's objective value, computed from its F1,
    also goes to Optuna's pruner.
    """

    trial: optuna.Trial
    macs: float  # the study's second objective: MACs, or latency in ms
    stopper: Stopper | None = None
    report: Callable[[float], float] | None = None
    history: list[float] = dataclasses.field(default_factory=list)

    def __call__(self, stats: EpochStats) -> None:
        self.history.append(float(stats.f1))
        self.trial.set_user_attr("f1_history", list(self.history))
        if self.report is not None:
            self.trial.report(self.report(stats.f1), stats.epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruner stopped it at epoch {stats.epoch}")
        if self.stopper is not None and self.stopper.should_stop(
            self.trial.study, self.trial, stats.epoch, stats.f1, self.macs
        ):
            raise optuna.TrialPruned(f"early stop at epoch {stats.epoch}: F1 {stats.f1:.3f}")


def build_and_cost(
    trial: optuna.Trial,
    model_cfg: str | os.PathLike[str] | Mapping[str, Any],
    cfg: DataConfig,
    budget: TrialBudget,
    num_classes: int,
) -> tuple[SpaceModel, Cost]:
    """The first half of every objective: record the setup, build the model and count its cost
    before anything else (a feature map that collapses at IMG_SIZE is a ModelConfigError naming
    the row, not torch's RuntimeError), then store its YAML. Returns the model and its cost."""
    describe_setup(trial, cfg, budget)
    check_trainable(plan_cost(model_cfg, cfg.img_size, num_classes)[0])
    model = build_model(model_cfg, num_classes=num_classes, seed=cfg.seed)
    cost = count_cost(model, cfg.img_size)
    trial.set_user_attr("macs", int(cost.macs))
    trial.set_user_attr("params", int(cost.params))
    trial.set_user_attr("model_yaml", model.to_yaml(cfg.img_size))
    return model, cost


def plan_cost(
    model_cfg: str | os.PathLike[str] | Mapping[str, Any], img_size: int, num_classes: int
) -> tuple[SpaceModel, Cost | None]:
    """The model built on the meta device (rows and shapes, no weights) and its cost counted from
    that, before any weight is allocated (None when the meta pass cannot run)."""
    with torch.device("meta"):
        planned = build_model(model_cfg, num_classes=num_classes)
    return planned, meta_cost(planned, img_size)


def reuse_or_train(
    trial: optuna.Trial,
    model: nn.Module,
    splits: Splits,
    cfg: DataConfig,
    budget: TrialBudget,
    reporter: EpochReporter,
    values: Callable[[float], float | Sequence[float]],
) -> float | Sequence[float]:
    """The second half: a twin's values when the same recipe ran before, else train and turn
    the trial's score (trial_score) into the objective's values."""
    twin = find_twin(trial)
    if twin is not None:
        return copy_twin(trial, twin)
    return values(trial_score(train_trial(trial, model, splits, cfg, budget, reporter), budget))


def train_trial(
    trial: optuna.Trial,
    model: nn.Module,
    splits: Splits,
    cfg: DataConfig,
    budget: TrialBudget,
    on_epoch: Callable[[EpochStats], None],
) -> FitResult:
    """Train under the budget and store the per-class F1, epochs run and seconds on the trial."""
    options = FitOptions(
        budget.epochs or cfg.epochs,
        budget.seconds,
        budget.train_fraction,
        cfg.seed,
        progress=False,
    )
    result = fit(model, splits, cfg, options, on_epoch=on_epoch)
    record_result(trial, result)
    return result


def trial_score(result: FitResult, budget: TrialBudget) -> float:
    """The study's F1 for a trial: the mean of its last score_epochs epochs' validation F1.

    One epoch's F1 on a few hundred validation images swings by a few hundredths; the mean of
    the last epochs (at the end of a one-cycle schedule, where the weights change little) is
    the same model measured with less noise.
    """
    history = [float(s.f1) for s in result.history]
    return tail_mean(history, budget.score_epochs) if history else float(result.f1)


def tail_mean(f1_history: Sequence[float], score_epochs: int) -> float:
    """The mean of the last score_epochs values of a non-empty F1 history (trial_score's rule,
    for any history: the fidelity bench scores its retrained variants with it)."""
    tail = f1_history[-score_epochs:]
    return sum(tail) / len(tail)


def record_result(trial: optuna.Trial, result: FitResult) -> None:
    """The contract's per-trial attributes for a finished training run."""
    trial.set_user_attr("f1_history", [float(s.f1) for s in result.history])
    trial.set_user_attr("per_class_f1", {k: float(v) for k, v in result.per_class_f1.items()})
    trial.set_user_attr("epochs_run", int(result.epochs_run))
    trial.set_user_attr("train_seconds", round(float(result.train_seconds), 2))


def record_failure(trial: optuna.Trial, error: BaseException) -> None:
    """Store why a trial failed so the dashboard and the next worker can see it."""
    reason = f"{type(error).__name__}: {error}"
    if isinstance(error, torch.OutOfMemoryError):
        reason = f"out of memory: {error}"
    trial.set_user_attr("fail_reason", reason[:2000])


@contextlib.contextmanager
def recording_failures(trial: optuna.Trial) -> Iterator[None]:
    """Store the reason of a failed trial, or mark it interrupted after Ctrl-C; re-raise."""
    try:
        yield
    except optuna.TrialPruned:
        raise
    except KeyboardInterrupt:
        trial.set_user_attr(INTERRUPTED, True)
        trial.set_user_attr("fail_reason", "interrupted by Ctrl-C (SIGINT)")
        raise
    except Exception as error:
        record_failure(trial, error)
        raise


def describe_setup(trial: optuna.Trial, cfg: DataConfig, budget: TrialBudget) -> None:
    """Attributes that say how the trial was trained: enough for search.replay to retrain it."""
    trial.set_user_attr("img_size", cfg.img_size)
    trial.set_user_attr("seed", cfg.seed)
    trial.set_user_attr("data_config", cfg.to_yaml_dict())
    trial.set_user_attr("budget", dataclasses.asdict(budget))
    trial.set_user_attr("threads", torch.get_num_threads())
    trial.set_user_attr("versions", package_versions())
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")


def recipe_key(attrs: Mapping[str, Any]) -> str:
    """What a trial's result depends on: its model YAML, data config (with the seed) and budget."""
    return json.dumps([attrs.get(k) for k in RECIPE_ATTRS], sort_keys=True)


def find_twin(trial: optuna.Trial) -> FrozenTrial | None:
    """An earlier trained trial with the same recipe, completed or stopped early.

    Training is seeded, so the twin's result is what this trial would get: samplers that
    suggest an architecture again (TPE does, once it has found a good region) cost nothing.
    """
    key = recipe_key(trial.user_attrs)
    for other in trial.study.get_trials(deepcopy=False, states=TWIN_STATES):
        if other.number != trial.number and "f1_history" in other.user_attrs:
            if recipe_key(other.user_attrs) == key:
                return other
    return None


def copy_twin(trial: optuna.Trial, twin: FrozenTrial) -> float | tuple[float, ...]:
    """Record the twin's result on the trial and return its values (raise if it was stopped)."""
    trial.set_user_attr("twin_of", twin.number)
    for name in TWIN_RESULT_ATTRS:
        if name in twin.user_attrs:
            trial.set_user_attr(name, twin.user_attrs[name])
    if twin.state == TrialState.PRUNED:
        raise optuna.TrialPruned(f"same recipe as trial {twin.number}, which was stopped early")
    return tuple(twin.values) if len(twin.values) > 1 else twin.values[0]


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a trial's result depends on."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions

"""Opening, sampling and running Optuna studies the same way for every search CLI.

A study is resumable by rerunning the same command: it is created once in its storage and every
later run loads it and only adds the trials still missing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.trial import TrialState

DIRECTIONS = ("maximize", "minimize")
METRIC_NAMES = ("f1", "macs")
SAMPLERS = ("tpe", "nsga2", "random")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def default_storage(study_name: str, folder: str | Path = "studies") -> str:
    """sqlite:///studies/<study-name>.db, creating the folder so the first run just works."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(folder) / study_name}.db"


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """A seeded sampler; constraints come from trial.set_constraint, which all three honour."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=16)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {name!r}")


def open_study(
    study_name: str,
    storage: str | optuna.storages.BaseStorage,
    sampler: optuna.samplers.BaseSampler,
    *,
    directions: Sequence[str] = DIRECTIONS,
    metric_names: Sequence[str] = METRIC_NAMES,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create the study or load it; reusing a name with other objectives is an error."""
    study = optuna.create_study(
        study_name=study_name, storage=storage, sampler=sampler, pruner=pruner,
        directions=list(directions), load_if_exists=True,
    )  # fmt: skip
    wanted = [optuna.study.StudyDirection[d.upper()] for d in directions]
    if list(study.directions) != wanted:
        have = [d.name.lower() for d in study.directions]
        raise ValueError(
            f"study {study_name!r} in {storage} optimises {have}, not {list(directions)}; "
            "pick another --study-name"
        )
    if study.metric_names != list(metric_names):
        with warnings.catch_warnings():  # experimental since 3.2 and still the only way
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(metric_names))
    return study


def finished_count(study: optuna.Study) -> int:
    """Trials that count toward --trials: completed, pruned or failed (not running ones)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float | Sequence[float]],
    *,
    trials: int,
    timeout: float | None,
    catch: tuple[type[BaseException], ...],
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
) -> bool:
    """Run until the study holds `trials` finished trials or the timeout; True when interrupted.

    Ctrl-C stops after Optuna has recorded the running trial as failed; finished trials stay.
    """
    remaining = trials - finished_count(study)
    if remaining <= 0:
        return False
    stop_at = optuna.study.MaxTrialsCallback(trials, states=FINISHED)
    try:
        study.optimize(
            objective, n_trials=remaining, timeout=timeout, catch=catch,
            callbacks=[*callbacks, stop_at], show_progress_bar=True, gc_after_trial=True,
        )  # fmt: skip
    except KeyboardInterrupt:
        return True
    return False


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """A completed trial whose constraints (if any) all hold."""
    return trial.state == TrialState.COMPLETE and all(v <= 0 for v in trial.constraints.values())


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Feasible non-dominated trials, highest F1 first (single objective: the best trial)."""
    if len(study.directions) == 1:
        best = [t for t in study.get_trials(deepcopy=False) if is_feasible(t)]
        sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
        return sorted(best, key=lambda t: -sign * t.value)[:1] if best else []
    front = [t for t in study.best_trials if not any(map(math.isnan, t.values))]
    return sorted(front, key=lambda t: (-t.values[0], t.values[1]))

"""A new study's first trials, spread evenly over the cost axis.

Why. A sampler starts from a few random trials (TPE: 10) and then refines around the best of
them. Drawn uniformly over the space's choices, a model's MACs are a product of many of them, so
they pile up in the middle of the range: on the default architecture space half the draws lie
between 1.6M and 7.7M MACs and 2.5% under 0.4M. The cheap end of the front is then never seen,
and a multi-objective sampler has nothing there to refine. Placing the startup trials evenly on
log-MACs, as a Latin hypercube does along one axis, hands it both ends of the front.

How. Draw candidates at random (each costs one build and one forward pass, no training), keep
those within the budgets, place `count` targets evenly on log-MACs from the cheapest draw to the
costliest, and give each target the nearest draw not taken yet. The chosen parameters are
enqueued, so the study trains them first and the sampler learns from them as from its own.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import optuna

# Candidates drawn per startup trial: enough that even the cheapest few percent of the space
# holds some (about 10 s for 10 startup trials on the default space). Under a tight budget most
# draws are over it: drawing goes on until USABLE_PER_TRIAL per trial are within it, up to
# MAX_DRAWS_FACTOR times as many draws.
DRAWS_PER_TRIAL = 30
USABLE_PER_TRIAL = 3
MAX_DRAWS_FACTOR = 5
STARTUP_ATTR = "startup"  # user attr of an enqueued startup trial: the MACs it was picked for


def spread_over_cost(
    cost: Callable[[optuna.Trial], float | None], count: int, seed: int, draws: int | None = None
) -> list[tuple[dict[str, Any], float]]:
    """`count` (params, cost) pairs drawn at random and spread evenly on log cost.

    `cost` suggests a candidate in the trial it is given and returns its cost, or None when the
    candidate is over a budget (or cannot be built); only costs above zero are kept. At least
    `draws` candidates are drawn, more while fewer than USABLE_PER_TRIAL per pick are usable.
    """
    sampler = optuna.samplers.RandomSampler(seed=seed)
    scratch = optuna.create_study(sampler=sampler)
    drawn: list[tuple[dict[str, Any], float]] = []
    least = draws if draws is not None else DRAWS_PER_TRIAL * count
    for done in range(least * MAX_DRAWS_FACTOR):
        if done >= least and len(drawn) >= USABLE_PER_TRIAL * count:
            break
        trial = scratch.ask()
        value = cost(trial)
        scratch.tell(trial, state=optuna.trial.TrialState.PRUNED)
        if value is not None and value > 0:
            drawn.append((dict(trial.params), float(value)))
    if len(drawn) <= count:
        return sorted(drawn, key=lambda pick: pick[1])
    logs = [math.log(value) for _, value in drawn]
    low, high = min(logs), max(logs)
    chosen: list[int] = []
    for k in range(count):
        target = low + (high - low) * k / (count - 1) if count > 1 else (low + high) / 2
        free = (i for i in range(len(drawn)) if i not in chosen)
        chosen.append(min(free, key=lambda i: abs(logs[i] - target)))
    return [drawn[i] for i in sorted(chosen, key=lambda i: logs[i])]


def enqueue_startup(study: optuna.Study, picks: list[tuple[dict[str, Any], float]]) -> None:
    """Queue the picks as the study's first trials; a pick already queued is not queued again
    (two workers starting the same empty study)."""
    with warnings.catch_warnings():  # skip_if_exists is experimental and the only guard
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for params, value in picks:
            study.enqueue_trial(params, user_attrs={STARTUP_ATTR: value}, skip_if_exists=True)

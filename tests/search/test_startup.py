"""A new study's first trials are spread over log-MACs, so the cheap end of the front is seen."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import optuna
import pytest

from search import architecture
from search.objectives import STARTUP_ATTR, ArchitectureObjective, TrialBudget, spread_over_cost
from space import build_model, count_cost
from space.search import suggest_model_config


def _exp_cost(trial: optuna.Trial) -> float | None:
    """Cost e**x for x drawn from [0, 10]; costs above e**9 are 'over the budget'."""
    x = trial.suggest_float("x", 0.0, 10.0)
    return None if x > 9.0 else math.exp(x)


def test_picks_spread_evenly_on_log_cost_from_the_cheapest_draw_to_the_costliest() -> None:
    picks = spread_over_cost(_exp_cost, count=5, seed=0, draws=300)
    logs = [math.log(value) for _, value in picks]
    assert logs == sorted(logs) and len({p["x"] for p, _ in picks}) == 5
    assert logs[0] < 0.2 and 8.8 < logs[-1] <= 9.0, "both ends of what the budget allows"
    gaps = [b - a for a, b in itertools.pairwise(logs)]
    assert max(gaps) - min(gaps) < 0.3, f"evenly spaced on log cost: {gaps}"
    assert all(p["x"] == pytest.approx(math.log(v)) for p, v in picks), "params match the cost"
    assert spread_over_cost(_exp_cost, 5, seed=0, draws=300) == picks, "seeded"


def test_a_tight_budget_draws_on_until_enough_fit_and_then_gives_up() -> None:
    calls = []

    def tight(trial: optuna.Trial) -> float | None:  # a tenth of the draws fit
        calls.append(1)
        x = trial.suggest_float("x", 0.0, 10.0)
        return None if x > 1.0 else math.exp(x)

    picks = [value for _, value in spread_over_cost(tight, 5, seed=0, draws=20)]
    assert len(picks) == 5 and picks == sorted(picks) and max(picks) <= math.e
    assert 20 < len(calls) <= 100, "drew past 20 draws (2 fit) but not past 5x"
    calls.clear()
    assert spread_over_cost(lambda trial: tight(trial) and None, 5, seed=0, draws=20) == []
    assert len(calls) == 100, "nothing fits: gives up after 5x the draws"


def test_a_new_study_starts_with_the_spread_and_a_rerun_does_not_queue_it_again(
    search_data_yaml: Path,
    small_space: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "--data",
        str(search_data_yaml),
        "--space",
        str(small_space),
        "--study-name",
        "st",
        "--epochs",
        "1",
        "--no-early-stop",
        "--bands",
        "none",
    ]
    assert architecture.main([*args, "--trials", "4", "--startup-trials", "3"]) == 0
    assert "startup: 3 trials spread over " in capsys.readouterr().out
    assert architecture.main([*args, "--trials", "6", "--startup-trials", "3"]) == 0
    study = optuna.load_study(study_name="st", storage="sqlite:///studies/st.db")
    started = [t for t in study.trials if STARTUP_ATTR in t.user_attrs]
    assert [t.number for t in started] == [0, 1, 2], "queued once, run first"
    macs = [t.user_attrs["macs"] for t in started]
    assert macs == [t.user_attrs[STARTUP_ATTR] for t in started] and macs == sorted(macs)
    assert macs[0] < macs[-1]
    assert "startup:" not in capsys.readouterr().out
    # A brief study still starts spread (at least 2 trials), unless told not to.
    assert architecture.main([*args, "--study-name", "brief", "--trials", "3"]) == 0
    brief = optuna.load_study(study_name="brief", storage="sqlite:///studies/brief.db")
    assert [STARTUP_ATTR in t.user_attrs for t in brief.trials] == [True, True, False]
    assert (
        architecture.main(
            [*args, "--study-name", "plain", "--trials", "3", "--startup-trials", "0"]
        )
        == 0
    )
    plain = optuna.load_study(study_name="plain", storage="sqlite:///studies/plain.db")
    assert not any(STARTUP_ATTR in t.user_attrs for t in plain.trials)


def test_the_architecture_objective_draws_costs_within_its_budgets_and_trains_nothing(
    arch_bounds, fake_cfg, fake_data, fake_fit
) -> None:
    fake = fake_fit()
    objective = ArchitectureObjective(arch_bounds, fake_cfg, fake_data, TrialBudget(epochs=3))
    costs = [cost for _, cost in spread_over_cost(objective.draw_cost, 4, seed=0, draws=60)]
    budget = sorted(costs)[1]
    capped = dataclasses.replace(objective, macs_max=int(budget))
    picks = spread_over_cost(capped.draw_cost, 4, seed=0, draws=60)
    assert picks and all(cost <= budget for _, cost in picks)
    for params, cost in picks:  # the params rebuild the very architecture that was costed
        config = suggest_model_config(optuna.trial.FixedTrial(params), arch_bounds, 3)
        assert count_cost(build_model(config, num_classes=3), 32).macs == cost
    assert not fake.calls, "nothing is trained to pick the start"

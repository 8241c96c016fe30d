"""A new study's first trials are spread over log-MACs, so the cheap end of the front is seen."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import optuna
import pytest

from search import architecture
from search.objectives import STARTUP_ATTR, spread_over_cost


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
    few = [value for _, value in spread_over_cost(_exp_cost, 5, seed=1, draws=4)]
    assert 0 < len(few) <= 4 and few == sorted(few), "fewer draws than picks: each usable one"
    assert all(value <= math.exp(9.0) for value in few), "never one over the budget"
    assert spread_over_cost(_exp_cost, 5, seed=0, draws=300) == picks, "seeded"


def test_a_new_study_starts_with_the_spread_and_a_rerun_does_not_queue_it_again(
    search_data_yaml: Path, small_space: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    args = ["--data", str(search_data_yaml), "--space", str(small_space), "--study-name", "st",
            "--epochs", "1", "--no-early-stop"]  # fmt: skip
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
    # A brief study (under 10 trials) leaves its start to the sampler unless asked.
    assert architecture.main([*args, "--study-name", "brief", "--trials", "2"]) == 0
    brief = optuna.load_study(study_name="brief", storage="sqlite:///studies/brief.db")
    assert not any(STARTUP_ATTR in t.user_attrs for t in brief.trials)

"""The models the search hands over cover the MACs range: each study's own front, and a pick
wherever those leave a budget without a model within GAP_RATIO below it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
import pytest

from search.front import (
    GAP_RATIO,
    MACS_MAX_ATTR,
    FrontEntry,
    FrontFilter,
    Pick,
    cover_budgets,
    front_entries,
)


def trial(f1: float, macs: int, **attrs: Any) -> optuna.trial.FrozenTrial:
    user_attrs = {
        "macs": macs,
        "params": macs // 10,
        "model_yaml": f"m{macs}-{f1}",
        "data_config": {},
        **attrs,
    }
    return optuna.trial.create_trial(
        values=[f1, macs], user_attrs=user_attrs, constraints={"macs_budget": -1.0}
    )


def pool(*points: tuple[float, int]) -> list[Pick]:
    return [Pick(trial(f1, macs), fills_gap=True) for f1, macs in points]


def uncovered(costs: Sequence[int], ceiling: int) -> list[int]:
    """Budgets (on a fine log grid from the cheapest model to the ceiling) with no model within
    GAP_RATIO below them, found by brute force."""
    cheapest = min(costs)
    steps = 400
    grid = [round(cheapest * (ceiling / cheapest) ** (i / steps)) for i in range(steps + 1)]
    return [b for b in grid if not any(b / GAP_RATIO <= c <= b for c in costs)]


def test_the_best_trial_of_each_empty_window_fills_it() -> None:
    fills = pool((0.50, 900), (0.60, 700), (0.40, 600), (0.55, 450), (0.65, 120))
    picks = cover_budgets([100, 180, 350], fills, ceiling=1000)
    assert [p.trial.user_attrs["macs"] for p in picks] == [700], "best F1 in [500, 1000]"
    assert uncovered([100, 180, 350, 700], 1000) == []
    assert uncovered([100, 180, 350], 1000) != [], "the fronts alone left a gap"


def test_a_wide_gap_takes_several_picks_walking_down() -> None:
    fills = pool((0.70, 5_000), (0.68, 2_600), (0.66, 1_400), (0.60, 700), (0.30, 360))
    picks = cover_budgets([100, 200], fills, ceiling=6_000)
    costs = [p.trial.user_attrs["macs"] for p in picks]
    assert costs == [5_000, 2_600, 1_400, 700, 360]
    assert uncovered([100, 200, *costs], 6_000) == []


def test_where_nothing_was_searched_the_gap_stays_and_the_walk_goes_on() -> None:
    picks = cover_budgets([100], pool((0.5, 250), (0.4, 300)), ceiling=1000)
    assert [p.trial.user_attrs["macs"] for p in picks] == [300, 250], "nothing in [500, 1000]"
    assert cover_budgets([100], [], ceiling=1000) == []
    assert cover_budgets([], pool((0.5, 250)), ceiling=1000) == [], "no front, nothing to cover"


def test_a_covered_range_needs_no_pick() -> None:
    assert cover_budgets([100, 190, 370, 700], pool((0.9, 500)), ceiling=1400) == []


@pytest.fixture
def studies() -> tuple[optuna.Study, optuna.Study]:
    """A study whose front jumps from 0.3M to 4.8M MACs, beside a band whose front beats the
    study's cheap end on the brief trial's F1."""
    study = optuna.create_study(study_name="s", directions=["maximize", "minimize"])
    for f1, macs in (
        (0.62, 4_800_000),
        (0.55, 300_000),
        (0.54, 2_000_000),
        (0.53, 1_100_000),
        (0.40, 900_000),
        (0.45, 3_000_000),
        (0.45, 600_000),
    ):
        study.add_trial(trial(f1, macs))
    band = optuna.create_study(study_name="s-0.4M", directions=["maximize", "minimize"])
    for f1, macs in ((0.61, 350_000), (0.50, 150_000)):
        band.add_trial(trial(f1, macs))
    return study, band


def labels(entries: Sequence[FrontEntry]) -> list[tuple[str, str]]:
    return [(e.label, e.picked) for e in entries]


def test_each_study_keeps_its_own_front(studies: tuple[optuna.Study, optuna.Study]) -> None:
    study, band = studies
    assert labels(front_entries(study, bands=[band])) == [
        ("0", "front"),
        ("s-0.4M/0", "front"),
        ("1", "front"),
        ("s-0.4M/1", "front"),
    ], "the band's 0.61 at 0.35M does not push out the study's 0.55 at 0.3M"


def test_gaps_are_filled_up_to_the_study_budget(
    studies: tuple[optuna.Study, optuna.Study],
) -> None:
    study, band = studies
    study.set_user_attr(MACS_MAX_ATTR, 6_000_000)
    entries = front_entries(study, bands=[band])
    assert labels(entries) == [
        ("0", "front"),
        ("s-0.4M/0", "front"),
        ("1", "front"),
        ("2", "gap"),
        ("3", "gap"),
        ("s-0.4M/1", "front"),
        ("6", "gap"),
        ("5", "gap"),
    ], "trial 4 (0.40 at 0.9M) loses its window to trial 6 (0.45 at 0.6M)"
    assert uncovered([e.macs for e in entries], 6_000_000) == []
    assert [e.rank for e in entries] == list(range(1, 9))
    capped = front_entries(study, FrontFilter(macs_max=2_500_000), bands=[band])
    assert labels(capped) == [
        ("s-0.4M/0", "front"),
        ("1", "front"),
        ("2", "gap"),
        ("3", "gap"),
        ("s-0.4M/1", "front"),
        ("6", "gap"),
    ], "covered up to --macs-max"


def stopped(f1_history: Sequence[float], macs: int, **attrs: Any) -> optuna.trial.FrozenTrial:
    """A trial the early-stopping rule ended after len(f1_history) epochs."""
    user_attrs = {
        "macs": macs,
        "params": macs // 10,
        "model_yaml": f"m{macs}-stopped",
        "data_config": {},
        "f1_history": list(f1_history),
        "pruned_at_epoch": len(f1_history),
        **attrs,
    }
    return optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, user_attrs=user_attrs)


def test_a_window_only_stopped_trials_reached_takes_the_one_stopped_latest() -> None:
    fills = [
        Pick(stopped([0.2, 0.3, 0.50], 700), fills_gap=True),
        Pick(stopped([0.2, 0.3, 0.35, 0.4, 0.4, 0.45], 800), fills_gap=True),
    ]
    picks = cover_budgets([100, 200, 400], fills, ceiling=1000)
    assert [p.trial.user_attrs["macs"] for p in picks] == [800], "it outlasted a rung more"
    finished = cover_budgets([100, 200, 400], [*fills, *pool((0.30, 600))], ceiling=1000)
    assert [p.trial.user_attrs["macs"] for p in finished] == [600], "a finished trial first"


def test_where_the_search_stopped_every_costly_net_a_stopped_one_fills_the_gap() -> None:
    study = optuna.create_study(study_name="s", directions=["maximize", "minimize"])
    study.set_user_attr(MACS_MAX_ATTR, 6_000_000)
    for f1, macs in ((0.62, 4_800_000), (0.61, 2_000_000), (0.60, 1_000_000), (0.55, 600_000)):
        study.add_trial(trial(f1, macs))
    study.add_trial(stopped([0.3, 0.4, 0.41], 3_000_000))
    study.add_trial(stopped([0.3, 0.4, 0.45], 2_600_000, twin_of=4))  # a replay: not trained
    study.add_trial(stopped([0.3, 0.4, 0.43], 2_500_000))
    entries = front_entries(study)
    assert labels(entries) == [
        ("0", "front"),
        ("1", "front"),
        ("2", "front"),
        ("3", "front"),
        ("6", "gap"),
    ], "nothing finished between 2.4M and 4.8M: the best stopped trial there fills it"
    assert entries[-1].f1 == 0.43, "its F1 at the epoch it was stopped"
    assert uncovered([e.macs for e in entries], 6_000_000) == []

"""The front's building blocks on in-memory studies: which trials count, how they are named,
filtered and ordered, with values set by the test (search/front/_pareto.py)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from search.front import (
    LATENCY_AXIS,
    FrontEntry,
    FrontError,
    FrontFilter,
    Pick,
    StudyPoint,
    cost_axis,
    cover_budgets,
    feasible_trials,
    front_entries,
    is_feasible,
    pareto_front,
    safe_folder_name,
    study_points,
    trial_entry,
    trial_f1,
    trial_folder,
    trial_label,
)

ATTRS = {"model_yaml": "m", "data_config": {"IMG_SIZE": 32}, "params": 5}


def _trial(
    values: list[float] | None,
    state: TrialState = TrialState.COMPLETE,
    constraint: float | None = None,
    **attrs: Any,
) -> optuna.trial.FrozenTrial:
    constraints = None if constraint is None else {"macs_budget": constraint}
    return optuna.trial.create_trial(
        state=state, values=values, user_attrs=attrs, constraints=constraints
    )


def _study(
    *trials: optuna.trial.FrozenTrial, directions: tuple[str, ...] = ("maximize", "minimize")
) -> optuna.Study:
    study = optuna.create_study(directions=list(directions))
    for t in trials:
        study.add_trial(t)
    return study


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("arch-0.4M", "arch-0.4M"),
        ("a/b c", "a_b_c"),
        ("..", "__"),
        ("", "_"),
        (".x", ".x"),
        ("X..", "X.."),
    ],
)
def test_safe_folder_name(name: str, folder: str) -> None:
    assert safe_folder_name(name) == folder


def test_trial_names() -> None:
    assert (trial_folder(7), trial_folder(7, "s/0.4M")) == ("trial7", "s_0.4M-trial7")
    assert (trial_label(7), trial_label(7, "s-0.4M")) == ("7", "s-0.4M/7")


def test_filter_keeps_at_its_bounds_and_describes_itself() -> None:
    keep = FrontFilter(top_k=2, macs_max=100, f1_min=0.5, params_max=10)
    assert keep.keeps(0.5, 100, 10), "bounds are inclusive"
    assert not keep.keeps(0.49, 100, 10) and not keep.keeps(0.5, 101, 10)
    assert not keep.keeps(0.5, 100, 11)
    assert keep.describe() == "--top-k 2 --macs-max 100 --params-max 10 --f1-min 0.5"
    assert FrontFilter(macs_max=1_000_000).describe() == "--macs-max 1,000,000"
    assert FrontFilter().describe() == "no filters" and FrontFilter().keeps(0.0, 10**12, 10**9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top_k": 0}, "--top-k must be >= 1, got 0"),
        ({"macs_max": 0}, "--macs-max must be > 0, got 0"),
        ({"params_max": -1}, "--params-max must be > 0, got -1"),
        ({"f1_min": 1.5}, r"--f1-min must be in \[0, 1\], got 1.5"),
        ({"f1_min": -0.1}, r"--f1-min must be in \[0, 1\], got -0.1"),
    ],
)
def test_bad_filter_values(kwargs: dict, message: str) -> None:
    with pytest.raises(FrontError, match=message):
        FrontFilter(**kwargs)


def test_filter_edges_are_allowed() -> None:
    FrontFilter(top_k=1, macs_max=1, params_max=1, f1_min=0.0)
    FrontFilter(f1_min=1.0)


def test_entry_from_a_trial_and_what_it_lacks() -> None:
    trial = _trial([0.7, 300.0], macs=300, latency_ms=1.5, **ATTRS)
    trial.number = 4
    entry = trial_entry(2, trial, band="s-1M", fills_gap=True)
    assert entry == FrontEntry(2, 4, 0.7, 300, 5, "m", {"IMG_SIZE": 32}, 1.5, "s-1M", True)
    assert (entry.folder, entry.label, entry.picked) == ("02-s-1M-trial4", "s-1M/4", "gap")
    assert (entry.cost("macs"), entry.cost(LATENCY_AXIS)) == (300, 1.5)
    assert entry.cliff == pytest.approx(0.2)
    assert entry.score == pytest.approx(300 / 13_863_553 + 1 - 0.7 / 0.8342)
    unnumbered = _trial([0.9, 10.0], macs=10, **ATTRS)
    unnumbered.number = 0
    plain = trial_entry(1, unnumbered)
    assert (plain.folder, plain.picked, plain.latency_ms) == ("01-trial0", "front", None)
    lacking = _trial([0.9, 10.0], macs=10, params=1)
    lacking.number = 3
    with pytest.raises(
        FrontError,
        match=r"trial 3 has no user attrs \['model_yaml', "
        r"'data_config'\]: export and finalize read the ones "
        "search.architecture and search.hyper store with "
        "every trial$",
    ):
        trial_entry(1, lacking)


def test_f1_of_a_score_study_is_its_attr() -> None:
    assert trial_f1(_trial([0.42], f1=0.8)) == 0.8 and trial_f1(_trial([0.42])) == 0.42


def test_feasible_is_completed_within_every_constraint() -> None:
    assert is_feasible(_trial([0.5, 1.0])) and is_feasible(_trial([0.5, 1.0], constraint=0.0))
    assert not is_feasible(_trial([0.5, 1.0], constraint=0.1))
    assert not is_feasible(_trial(None, state=TrialState.PRUNED))


def test_feasible_trials_leave_out_twins_nan_and_infeasible() -> None:
    study = _study(
        _trial([0.5, 1.0]),
        _trial([0.6, 2.0], constraint=1.0),
        _trial([0.7, 3.0], twin_of=0),
        _trial([0.8, math.inf]),
        _trial(None, state=TrialState.FAIL),
        _trial([0.9, 4.0]),
    )
    assert [t.number for t in feasible_trials(study)] == [0, 3, 5]


def test_pareto_front_highest_f1_first_without_twins() -> None:
    study = _study(
        _trial([0.5, 1.0]),
        _trial([0.7, 3.0]),
        _trial([0.6, 2.0]),
        _trial([0.8, 3.5], twin_of=1),
        _trial([0.6, 5.0]),
        _trial([0.9, 9.0], constraint=1.0),
    )
    assert [t.number for t in pareto_front(study)] == [1, 2, 0]


def test_pareto_front_of_a_single_objective_study_is_its_best_trial() -> None:
    best_high = _study(
        _trial([0.3]),
        _trial([0.9]),
        _trial([0.95], constraint=1.0),
        _trial([0.5]),
        directions=("maximize",),
    )
    assert [t.number for t in pareto_front(best_high)] == [1]
    best_low = _study(_trial([0.3]), _trial([0.2]), _trial([0.5]), directions=("minimize",))
    assert [t.number for t in pareto_front(best_low)] == [1]
    assert pareto_front(_study(directions=("maximize",))) == []


def test_study_points_and_cost_axis() -> None:
    study = _study(
        _trial([0.5, 10.0], macs=12, latency_ms=2.0),
        _trial([0.6, 20.0]),
        _trial([0.7, 30.0], constraint=1.0),
        _trial(None, state=TrialState.PRUNED),
    )
    assert study_points(study, band="b") == [
        StudyPoint(0, 0.5, 12, True, 2.0, "b"),
        StudyPoint(1, 0.6, 20, True, None, "b"),
        StudyPoint(2, 0.7, 30, False, None, "b"),
    ]
    point = study_points(study)[0]
    assert (point.label, point.cost("macs"), point.cost(LATENCY_AXIS)) == ("0", 12, 2.0)
    single = _study(_trial([0.4], macs=7), _trial([0.5]), directions=("maximize",))
    assert study_points(single) == [StudyPoint(0, 0.4, 7, True)], "no MACs, no point"
    assert cost_axis(study) == "macs"
    with warnings.catch_warnings():  # set_metric_names is "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["f1", LATENCY_AXIS])
        assert cost_axis(study) == LATENCY_AXIS
        study.set_metric_names(["f1", "macs"])
        assert cost_axis(study) == "macs"
    assert cost_axis(_study(directions=("maximize",))) == "macs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        single.set_metric_names(["score"])
    assert cost_axis(single) == "macs"


def test_front_entries_order_ties_and_repeats() -> None:
    """Best F1 first; at equal F1 fewer MACs; a model found alike by a band counts once; the
    filter applies before ranking and top_k after."""
    study = _study(
        _trial([0.8, 5.0], macs=5, **ATTRS),
        _trial([0.6, 2.0], macs=2, **ATTRS),
        _trial([0.6, 2.0], macs=2, **{**ATTRS, "model_yaml": "other"}),
    )
    band = optuna.create_study(study_name="b", directions=["maximize", "minimize"])
    band.add_trial(_trial([0.8, 5.0], macs=5, **ATTRS))  # study trial 0's twin
    band.add_trial(_trial([0.7, 1.0], macs=1, params=50, model_yaml="n", data_config={}))
    band.add_trial(_trial([0.8, 5.0], macs=5, **{**ATTRS, "model_yaml": "third"}))
    entries = front_entries(study, bands=[band])
    assert [(e.rank, e.label) for e in entries] == [
        (1, "0"),
        (2, "b/2"),
        (3, "b/1"),
        (4, "1"),
        (5, "2"),
    ], "at a tie the study first"
    assert [e.label for e in front_entries(study, FrontFilter(f1_min=0.65), [band])] == [
        "0",
        "b/2",
        "b/1",
    ]
    kept = front_entries(study, FrontFilter(top_k=2, params_max=10), bands=[band])
    assert [e.label for e in kept] == ["0", "b/2"], "b/1 has too many params"


def _gap_pool(*points: tuple[float, int]) -> list[Pick]:
    picks = []
    for f1, macs in points:
        trial = _trial([f1, float(macs)], macs=macs, **ATTRS)
        picks.append(Pick(trial, fills_gap=True))
    return picks


def test_cover_budgets_starts_at_the_ceiling_itself() -> None:
    """A model of exactly the ceiling's MACs serves it; one a MAC above never does."""
    picks = cover_budgets([100], _gap_pool((0.9, 1001), (0.5, 1000), (0.4, 600)), ceiling=1000)
    assert [p.trial.user_attrs["macs"] for p in picks] == [1000, 600]


def test_cover_budgets_takes_the_cheaper_of_equal_f1() -> None:
    picks = cover_budgets([100], _gap_pool((0.5, 800), (0.5, 700)), ceiling=1000)
    assert [p.trial.user_attrs["macs"] for p in picks][0] == 700


def test_a_front_trial_without_its_cost_attrs_is_named() -> None:
    """A single-objective trial with neither "macs" nor "params" gets the FrontError."""
    study = _study(_trial([0.5], model_yaml="m", data_config={}), directions=("maximize",))
    with pytest.raises(FrontError, match=r"no user attrs \['macs', 'params'\]"):
        front_entries(study)

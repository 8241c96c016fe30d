"""The Pareto early-stopping rule on studies built by hand: who is stopped, who never is."""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from runner.data.splits_cache import SplitsCache
from runner.training.state import EpochStats
from search import hyper
from search.front import ParetoStopper, dominates, front_ranks
from search.front._early_stop import rung_points
from search.objectives import TRIAL_ERRORS, EpochReporter, HyperObjective, TrialBudget
from search.study import run_study
from space.search_bounds import load_hyper_bounds

REPO = Path(__file__).resolve().parents[2]
M = 1_000_000
RUNGS = (1, 3, 9)  # a rung at epoch 1, so one-epoch histories are judged
# Five finished peers whose F1 at epochs 1..3 rises; MACs from 1M to 5M.
PEERS = [(0.50, 1 * M), (0.60, 2 * M), (0.70, 3 * M), (0.75, 4 * M), (0.80, 5 * M)]


def _study(storage: str | None = None) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name="s", storage=storage, directions=["maximize", "minimize"], load_if_exists=True
    )


def _add_peer(
    study: optuna.Study,
    history: Sequence[float],
    macs: int | None,
    state: TrialState = TrialState.COMPLETE,
) -> None:
    """A finished trial with the objective's attrs (values only when it completed); `macs`
    None leaves out the "macs" attr, as a trial that failed before its cost was counted."""
    attrs: dict[str, object] = {"f1_history": list(history)}
    if macs is not None:
        attrs["macs"] = macs
    values = [history[-1], macs or M] if state == TrialState.COMPLETE else None
    study.add_trial(optuna.trial.create_trial(state=state, values=values, user_attrs=attrs))


def _add_peers(study: optuna.Study, epochs: int = 3) -> None:
    for f1, macs in PEERS:
        _add_peer(study, [f1 - 0.1 * (epochs - e) for e in range(1, epochs + 1)], macs)


def _running(study: optuna.Study, history: Sequence[float]) -> optuna.Trial:
    """The trial under test, as the objective leaves it before calling should_stop."""
    trial = study.ask()
    trial.set_user_attr("f1_history", list(history))
    return trial


def test_clearly_dominated_trial_is_stopped_and_says_why() -> None:
    study = _study()
    _add_peers(study)
    trial = _running(study, [0.1])  # peers had 0.3..0.6 at epoch 1, all with fewer MACs
    assert ParetoStopper(RUNGS).should_stop(study, trial, 1, 0.1, 6 * M)
    attrs = study.trials[trial.number].user_attrs
    assert attrs["pruned_at_epoch"] == 1
    assert (
        "rung 1" in attrs["pruned_reason"]
        and "dominated by 5 of 5 peers" in attrs["pruned_reason"]
    )


def test_first_trials_are_never_stopped() -> None:
    study = _study()
    stopper = ParetoStopper(RUNGS, min_peers=4)
    for f1, macs in PEERS[:4]:
        trial = _running(study, [f1 - 0.5])
        trial.set_user_attr("macs", macs)
        # each trial is the worst of its study so far, yet has fewer than 4 peers to face
        assert not stopper.should_stop(study, trial, 1, f1 - 0.5, 9 * M)
        study.tell(trial, [f1, macs])
    trial = _running(study, [0.0])
    assert stopper.should_stop(study, trial, 1, 0.0, 9 * M)  # the 5th faces 4 peers


def test_trial_on_the_rung_front_is_never_stopped() -> None:
    study = _study()
    _add_peers(study)
    stopper = ParetoStopper(RUNGS, worst_fraction=0.9, min_peers=1)
    cheapest = _running(study, [0.01])  # hopeless F1, but nothing is cheaper
    assert not stopper.should_stop(study, cheapest, 1, 0.01, M // 2)
    best = _running(study, [0.99])  # the most expensive, but the best F1
    assert not stopper.should_stop(study, best, 1, 0.99, 50 * M)
    assert "pruned_reason" not in study.trials[cheapest.number].user_attrs


def test_non_dominated_is_never_stopped_on_random_studies() -> None:
    rng = random.Random(0)
    stopper = ParetoStopper(rungs=(1,), worst_fraction=0.9, min_peers=1)
    study = _study()
    for _ in range(30):
        _add_peer(study, [rng.random()], rng.randrange(1, 10) * M)
    trials = study.get_trials()
    for _ in range(300):
        f1, macs = rng.random(), rng.randrange(1, 10) * M
        points = [(t.user_attrs["f1_history"][0], t.user_attrs["macs"]) for t in trials]
        decision = stopper.decide(trials, -1, 1, f1, macs)
        if not any(dominates(p, (f1, macs)) for p in points):
            assert not decision.stop, decision.reason


def test_dominated_but_not_in_the_worst_fraction_survives() -> None:
    study = _study()
    _add_peer(study, [0.9], 1 * M)  # the only peer better than the trial under test
    for f1, macs in [(0.7, 3 * M), (0.6, 4 * M), (0.5, 5 * M), (0.4, 6 * M)]:
        _add_peer(study, [f1], macs)  # all dominated by the trial under test
    half = ParetoStopper(RUNGS, worst_fraction=0.5)
    decision = half.decide(study.get_trials(), -1, 1, 0.8, 2 * M)
    assert "front 2" in decision.reason and not decision.stop  # 1 of 6 in better fronts < 3
    most = ParetoStopper(RUNGS, worst_fraction=0.9)
    assert most.decide(study.get_trials(), -1, 1, 0.8, 2 * M).stop


@pytest.mark.parametrize("epoch", [2, 4, 5])
def test_non_rung_epochs_never_stop(epoch: int) -> None:
    study = _study()
    _add_peers(study, epochs=5)
    trial = _running(study, [0.0] * epoch)
    assert not ParetoStopper(rungs=(1, 3)).should_stop(study, trial, epoch, 0.0, 9 * M)
    assert ParetoStopper(rungs=(1, epoch)).should_stop(study, trial, epoch, 0.0, 9 * M)


def test_peers_that_did_not_reach_the_rung_are_ignored() -> None:
    study = _study()
    _add_peers(study, epochs=2)  # five peers stopped or capped at epoch 2
    _add_peer(study, [0.9, 0.9, 0.9], None)  # reached the rung but never had its MACs counted
    _add_peer(study, [0.9, 0.9, 0.9], M, TrialState.FAIL)
    trial = _running(study, [0.0, 0.0, 0.0])
    stopper = ParetoStopper(RUNGS, min_peers=1)
    decision = stopper.decide(study.get_trials(), trial.number, 3, 0.0, 9 * M)
    assert not decision.stop and decision.reason.startswith("0 peers at rung 3")
    assert stopper.decide(study.get_trials(), trial.number, 1, 0.0, 9 * M).stop


def test_pruned_and_running_peers_count() -> None:
    study = _study()
    for f1, macs in PEERS[:2]:
        _add_peer(study, [f1], macs, TrialState.PRUNED)
    for f1, macs in PEERS[2:4]:
        _running(study, [f1]).set_user_attr("macs", macs)
    trial = _running(study, [0.1])
    assert ParetoStopper(RUNGS, min_peers=4).should_stop(study, trial, 1, 0.1, 9 * M)


def test_two_workers_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = _study(url), _study(url)  # as two worker processes would open it
    _add_peers(first)
    trial = _running(second, [0.1])
    assert ParetoStopper(RUNGS).should_stop(second, trial, 1, 0.1, 6 * M)
    second.tell(trial, state=TrialState.PRUNED)
    seen = first.get_trials(states=(TrialState.PRUNED,))[0].user_attrs
    assert seen["pruned_at_epoch"] == 1 and seen["f1_history"] == [0.1]
    fresh = _running(first, [0.95])
    assert not ParetoStopper(RUNGS).should_stop(first, fresh, 1, 0.95, 6 * M)


def test_epoch_reporter_prunes_and_keeps_the_history() -> None:
    study = _study()
    _add_peers(study)
    trial = study.ask()
    reporter = EpochReporter(trial, 6 * M, ParetoStopper(RUNGS))
    with pytest.raises(optuna.TrialPruned):
        reporter(EpochStats(1, 1.0, 0.05, 0.2, 0.1))
    study.tell(trial, state=TrialState.PRUNED)
    stopped = study.trials[trial.number]
    assert stopped.user_attrs["f1_history"] == [0.05]
    assert stopped.user_attrs["pruned_at_epoch"] == 1


def test_front_ranks_match_brute_force() -> None:
    rng = random.Random(1)
    points = [(rng.randrange(5) / 4, rng.randrange(5) * M) for _ in range(60)]
    ranks, left, rank = front_ranks(points), set(range(len(points))), 0
    while left:  # peel fronts the slow way
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        assert {i for i in left if ranks[i] == rank} == front
        left, rank = left - front, rank + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rungs": ()}, "epochs >= 1"),
        ({"rungs": (0, 3)}, "epochs >= 1"),
        ({"rungs": (3, 1)}, "rise strictly"),
        ({"worst_fraction": 1.0}, "worst_fraction must be in"),
        ({"min_peers": 0}, "min_peers must be >= 1"),
    ],
)
def test_bad_settings_say_what_is_expected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParetoStopper(**{"rungs": RUNGS, **kwargs})


def test_single_objective_hyper_trials_lagging_the_median_are_pruned(
    fake_fit: Callable, fake_cfg, fake_splits
) -> None:
    """The MedianPruner of `--objective f1` past its 3 startup trials: the 4th learns slower."""
    fake = fake_fit(pace=lambda call: 0.2 if call == 4 else 1.0)
    bounds = load_hyper_bounds(REPO / "configs" / "search" / "hyper.yaml")
    data = SplitsCache(fake_cfg, splits={size: fake_splits for size in bounds.img_sizes})
    model = REPO / "configs" / "model" / "example.yaml"
    objective = HyperObjective(bounds, fake_cfg, model, data, TrialBudget(epochs=3), "f1")
    open_fn = hyper._open_fn(argparse.Namespace(objective="f1"))
    study = open_fn("median", optuna.storages.InMemoryStorage(), optuna.samplers.RandomSampler(0))
    run_study(study, objective, trials=5, timeout=None, catch=TRIAL_ERRORS)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 3 + [TrialState.PRUNED, TrialState.COMPLETE]
    assert study.trials[3].user_attrs["f1_history"] == pytest.approx([0.02])  # lags at epoch 1
    assert len(fake.calls) == 5


def _frozen(
    number: int,
    f1_history: list[float],
    cost: float | None,
    state: TrialState = TrialState.COMPLETE,
    attr: str = "macs",
) -> FrozenTrial:
    """A trial as the study reads it, numbered `number`, without a storage."""
    attrs: dict[str, object] = {"f1_history": f1_history}
    if cost is not None:
        attrs[attr] = cost
    values = [0.5, 1.0] if state == TrialState.COMPLETE else None
    made = optuna.trial.create_trial(state=state, values=values, user_attrs=attrs)
    made.number = number
    return made


def test_front_ranks_and_dominance_by_hand() -> None:
    """Fronts of six points: ties share a front, equal points never dominate each other."""
    points = [(0.9, 5.0), (0.8, 3.0), (0.7, 4.0), (0.6, 1.0), (0.5, 2.0), (0.8, 3.0), (0.5, 6.0)]
    assert front_ranks(points) == [0, 0, 1, 0, 1, 0, 2]
    assert dominates((0.8, 3.0), (0.7, 4.0)) and dominates((0.8, 3.0), (0.8, 4.0))
    assert dominates((0.8, 3.0), (0.7, 3.0)) and not dominates((0.8, 3.0), (0.8, 3.0))
    assert not dominates((0.9, 5.0), (0.8, 3.0)) and not dominates((0.7, 4.0), (0.8, 3.0))
    assert front_ranks([]) == []


def test_keep_is_the_ceiling_of_the_kept_share_at_the_exact_boundary() -> None:
    """Six points, worst_fraction 2/3: keep = ceil(6 / 3) = 2 (not 3 from float noise). A
    dominated trial with exactly 2 points in better fronts is stopped; with 1 it is not."""
    peers = [
        _frozen(i, [f1], macs)
        for i, (f1, macs) in enumerate(
            [(0.9, 1.0), (0.8, 2.0), (0.1, 9.0), (0.2, 8.0), (0.3, 7.0)]
        )
    ]
    stopper = ParetoStopper((1,), min_peers=5)
    stopped = stopper.decide(peers, 99, 1, 0.7, 3.0)  # fronts: 0.9/1 and 0.8/2 ahead of it
    assert stopped.stop and stopped.reason == (
        "rung 1: F1 0.7000 at 3 MACs is in front 3, dominated by 2 of 5 peers, "
        "2 of 6 trials in better fronts (keeping 2)"
    )
    kept = stopper.decide(peers[1:] + [_frozen(5, [0.05], 9.5)], 99, 1, 0.7, 3.0)
    assert kept.stop is False and "1 of 6 trials in better fronts (keeping 2)" in kept.reason
    seven = stopper.decide(peers + [_frozen(5, [0.05], 9.5)], 99, 1, 0.7, 3.0)
    assert seven.stop is False, "7 points: keep = ceil(7 / 3) = 3, not round(7 / 3) = 2"
    assert "2 of 7 trials in better fronts (keeping 3)" in seven.reason


def test_peers_are_read_at_the_rung_with_their_cost_attr() -> None:
    """F1 at the rung epoch (not the last one); own trial, failed, cost-less, short and NaN
    histories left out; a latency study reads "latency_ms"."""
    trials = [
        _frozen(0, [0.2, 0.6, 0.9], 4.0),
        _frozen(1, [0.3, 0.5], 2.0, TrialState.PRUNED),
        _frozen(2, [0.3], 2.0),  # short of rung 2
        _frozen(3, [0.3, 0.4], None),  # no cost
        _frozen(4, [0.3, math.nan], 2.0),
        _frozen(5, [0.3, 0.4], 2.0, TrialState.FAIL),
        _frozen(6, [0.1, 0.1], 1.0),  # the trial itself
    ]
    assert rung_points(trials, 2, exclude=6) == [(0.6, 4.0), (0.5, 2.0)]
    assert rung_points(trials, 1, exclude=0) == [(0.3, 2.0)] * 3 + [(0.1, 1.0)], "NaN later"
    # trial 1 has MACs only: in a latency study it is no peer (by MACs it would not dominate)
    latency = [_frozen(0, [0.5], 2.5, attr="latency_ms"), _frozen(1, [0.05], 3.0)]
    assert rung_points(latency, 1, exclude=9, cost_attr="latency_ms") == [(0.5, 2.5)]
    stopper = ParetoStopper((1,), min_peers=1, worst_fraction=0.5, cost_attr="latency_ms")
    decision = stopper.decide(latency, 9, 1, 0.1, 7.5)
    assert decision.stop and "F1 0.1000 at 7.5 latency_ms is in front 2" in decision.reason
    assert "dominated by 1 of 1 peers" in decision.reason
    after_a_short_one = [_frozen(0, [0.3], 2.0), _frozen(1, [0.3, 0.4], 2.0)]
    assert rung_points(after_a_short_one, 2, exclude=9) == [(0.4, 2.0)]


def test_min_peers_boundary_and_non_rung_reason() -> None:
    peers = [_frozen(i, [0.9], 1.0) for i in range(3)]
    assert ParetoStopper((1,), min_peers=3).decide(peers, 9, 1, 0.1, 5.0).stop
    few = ParetoStopper((1,), min_peers=4).decide(peers, 9, 1, 0.1, 5.0)
    assert few.stop is False and few.reason == "3 peers at rung 1 < 4"
    off = ParetoStopper((1, 3)).decide(peers, 9, 2, 0.1, 5.0)
    assert off.stop is False and off.reason == "epoch 2 is not a rung (1, 3)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rungs": (1.5, 3)}, r"early-stop rungs must be epochs >= 1, got \(1.5, 3\)"),
        ({"rungs": (3, 3)}, r"must rise strictly, e.g. \(3, 6\); got \(3, 3\)"),
        ({"worst_fraction": 0.0}, r"worst_fraction must be in \(0, 1\), got 0.0"),
        ({"min_peers": -1}, "min_peers must be >= 1, got -1"),
    ],
)
def test_more_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParetoStopper(**{"rungs": RUNGS, **kwargs})


def test_rungs_given_as_a_list_become_a_tuple_and_defaults_hold() -> None:
    assert ParetoStopper(rungs=[2, 4]).rungs == (2, 4)
    default = ParetoStopper()
    assert (default.rungs, default.worst_fraction, default.min_peers) == ((3, 6), 2 / 3, 4)
    assert default.cost_attr == "macs"

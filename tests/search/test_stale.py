"""The end of a shared study: a worker that finds it full waits for other workers' running
trials, runs the retry of a killed worker's trial, gives up after the grace period, and leaves
on Ctrl-C. In one process on SQLite (which has heartbeats too), with a 1 s heartbeat; the
PostgreSQL tests run the same with real worker processes."""

from __future__ import annotations

import signal
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from search import architecture
from search.study import RunOutcome, _stale, make_storage, open_study, run_study

X = {"x": IntDistribution(0, 9)}


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    return trial.suggest_int("x", 0, 9) / 10, 1000.0


HEARTBEAT = 1  # seconds: the interval the storage below is made with


def _study_with_another_workers_trial(
    tmp_path: Path,
) -> tuple[optuna.Study, optuna.Trial, optuna.storages.RDBStorage]:
    """One finished trial, and one RUNNING trial of another worker that has sent one heartbeat."""
    storage = make_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat=HEARTBEAT)
    study = open_study("s", storage, optuna.samplers.RandomSampler(0))
    study.add_trial(create_trial(values=[0.5, 1000.0], params={"x": 5}, distributions=X))
    with warnings.catch_warnings():  # asked outside optimize, as another worker would have
        warnings.simplefilter("ignore", UserWarning)
        other = study.ask(X)
    storage.record_heartbeat(other._trial_id)
    return study, other, storage


@pytest.mark.parametrize("trials", [1, 2])  # full at the start; full after a trial of its own
def test_a_full_study_waits_for_a_dead_workers_trial_and_runs_its_retry(
    trials: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study, dead, _ = _study_with_another_workers_trial(tmp_path)  # its worker never beats again
    outcome = run_study(
        study, _objective, trials=trials, timeout=None, catch=(), heartbeat=HEARTBEAT
    )
    assert outcome == RunOutcome()
    out = capsys.readouterr().out
    assert (
        "study full; waiting up to 5 s for 1 running trial of another worker (trial 1) to "
        "finish or go stale" in out
    )
    assert "trial 1 went stale (no heartbeat from its worker): running its retry" in out
    by_number = {t.number: t for t in study.trials}
    assert by_number[1].state == TrialState.FAIL
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].params == by_number[1].params == dead.params
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert len(study.trials) == trials + 2  # nothing else was started


@pytest.fixture
def live_worker(tmp_path: Path) -> Iterator[tuple[optuna.Study, optuna.Trial]]:
    """The study, its other worker's trial kept alive by a heartbeat every 0.2 s."""
    study, other, storage = _study_with_another_workers_trial(tmp_path)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(0.2):
            storage.record_heartbeat(other._trial_id)

    thread = threading.Thread(target=beat)
    thread.start()
    yield study, other
    stop.set()
    thread.join()


def test_the_wait_is_bounded_by_the_grace_period(
    live_worker: tuple[optuna.Study, optuna.Trial], capsys: pytest.CaptureFixture[str]
) -> None:
    study, other = live_worker
    outcome = run_study(study, _objective, trials=1, timeout=None, catch=(), heartbeat=HEARTBEAT)
    assert outcome == RunOutcome()
    out = capsys.readouterr().out
    assert "waiting up to 5 s for 1 running trial of another worker (trial 1)" in out
    assert (
        "stopped waiting after 5 s: trial 1 still running with a live heartbeat; its worker "
        "records it when done" in out
    )
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.RUNNING]  # its own


def test_ctrl_c_during_the_wait_stops_cleanly(
    live_worker: tuple[optuna.Study, optuna.Trial], monkeypatch: pytest.MonkeyPatch
) -> None:
    def ctrl_c(seconds: float) -> None:
        signal.raise_signal(signal.SIGINT)  # through the run's own SIGINT handler

    monkeypatch.setattr(_stale.time, "sleep", ctrl_c)
    study, _ = live_worker
    before = signal.getsignal(signal.SIGINT)
    outcome = run_study(study, _objective, trials=1, timeout=None, catch=(), heartbeat=HEARTBEAT)
    assert outcome == RunOutcome(interrupted=True)
    assert signal.getsignal(signal.SIGINT) is before
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.RUNNING]


def test_without_heartbeats_nothing_waits(tmp_path: Path, capsys) -> None:
    study = open_study(
        "s", make_storage(str(tmp_path / "s.journal")), optuna.samplers.RandomSampler(0)
    )
    study.add_trial(create_trial(values=[0.5, 1000.0], params={"x": 5}, distributions=X))
    study.ask(X)  # a killed worker's trial: on a journal nothing can tell
    assert run_study(study, _objective, trials=1, timeout=None, catch=()) == RunOutcome()
    assert "waiting" not in capsys.readouterr().out


def test_a_journal_study_says_at_the_start_that_it_has_no_heartbeats(
    search_data_yaml: Path, small_space: Path, tmp_path: Path, capsys
) -> None:
    journal = tmp_path / "s.journal"
    args = [
        "--data",
        str(search_data_yaml),
        "--space",
        str(small_space),
        "--study-name",
        "s",
        "--trials",
        "1",
        "--epochs",
        "1",
        "--no-early-stop",
        "--sampler",
        "random",
        "--bands",
        "none",
    ]
    assert architecture.main([*args, "--storage", str(journal)]) == 0
    out = capsys.readouterr().out
    note = (
        f"note: {journal} is a journal file, which has no heartbeats: the trial of a worker that "
        "is killed stays RUNNING there and is not retried; for that, use a database URL "
        "(--storage postgresql://USER@HOST/DB) with --heartbeat"
    )
    assert out.startswith(note + "\n")  # said before any trial
    assert architecture.main([*args, "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 0
    assert "heartbeats" not in capsys.readouterr().out

"""Several workers, crash safety and failures: what a long or shared study depends on."""

from __future__ import annotations

import io
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from search import architecture
from search.objectives import TrialBudget
from search.study import (
    INTERRUPTED_EXIT,
    StopRule,
    StorageError,
    _workers,
    finished_count,
    open_study,
    run_study,
    run_workers,
    single_writer,
)
from space.search_bounds import ArchitectureBounds

if TYPE_CHECKING:
    from tests.search.conftest import WorkerCLI


def test_several_workers_on_sqlite_are_refused_with_guidance(
    search_data_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    code = architecture.main(["--data", str(search_data_yaml), "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--storage studies/architecture.journal" in err and "postgresql://" in err
    assert not (tmp_path / "studies" / "architecture.db").exists()  # nothing was started


def test_a_second_process_on_one_sqlite_study_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with single_writer(url):
        with pytest.raises(StorageError, match=r"another process \(pid \d+\) is running"):
            with single_writer(url):  # a second open of the lock file, as a second process
                pass
    with single_writer(url):  # released at the end of the first run
        pass


def _fail(state: TrialState, **attrs: object) -> optuna.trial.FrozenTrial:
    return create_trial(
        state=state,
        values=None if state != TrialState.COMPLETE else [0.5, 10],
        params={"x": 1},
        distributions={"x": IntDistribution(0, 2)},
        user_attrs=attrs,
    )


def test_failed_trials_do_not_count_and_retries_run_first() -> None:
    study = open_study("t", optuna.storages.InMemoryStorage(), optuna.samplers.RandomSampler())
    study.add_trial(_fail(TrialState.COMPLETE))
    study.add_trial(_fail(TrialState.FAIL))  # trial 1: its worker died ...
    study.add_trial(_fail(TrialState.FAIL, interrupted=True))  # trial 2: Ctrl-C
    study.add_trial(_fail(TrialState.FAIL, fail_reason="ModelConfigError: bad row"))  # nor this
    study.add_trial(_fail(TrialState.PRUNED))
    retry = _fail(TrialState.WAITING)  # ... and trial 1 was re-queued (as Optuna's callback does)
    retry._system_attrs = {"failed_trial": 1, "retry_history": [1]}
    study.add_trial(retry)
    assert finished_count(study) == 2
    assert not StopRule(trials=2).full(study)  # the queued retry must run first


def test_a_run_of_failures_stops_the_study_with_the_reason(
    fake_fit: Callable, fake_cfg, fake_data, arch_bounds: ArchitectureBounds
) -> None:
    fake_fit(lambda call: RuntimeError("CUDA out of memory") if call > 1 else None)
    study = open_study("t", optuna.storages.InMemoryStorage(), optuna.samplers.RandomSampler(0))
    objective = architecture.ArchitectureObjective(
        arch_bounds, fake_cfg, fake_data, TrialBudget(1)
    )
    outcome = run_study(
        study, objective, trials=20, timeout=None, catch=(Exception,), max_failures=3
    )
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] + [TrialState.FAIL] * 3
    assert "stopped after 3 failed trials in a row" in outcome.failure
    assert "trial 3: RuntimeError: CUDA out of memory" in outcome.failure
    assert study.trials[2].user_attrs["fail_reason"] == "RuntimeError: CUDA out of memory"


def test_ctrl_c_ends_the_trial_cleanly_and_a_rerun_completes_the_study(
    search_data_yaml: Path, small_space: Path, tmp_path: Path, worker_cli: WorkerCLI
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    args = worker_cli.args(search_data_yaml, small_space, storage, trials=3, epochs=20)
    worker = worker_cli.start(args, tmp_path)
    second_running = worker_cli.running_with_epochs(2)
    worker_cli.wait_for(storage, worker, lambda t: t.number == 1 and second_running(t))
    worker.send_signal(signal.SIGINT)
    code, out = worker_cli.finish(worker)
    assert code == 130, out
    assert "interrupted; finished trials are kept" in out
    done = worker_cli.trials(storage)
    assert done[0].state == TrialState.COMPLETE
    assert done[1].state == TrialState.FAIL and done[1].user_attrs["interrupted"] is True
    assert all(t.state != TrialState.RUNNING for t in done)  # the storage is consistent
    code, out = worker_cli.finish(worker_cli.start(args, tmp_path))  # the same command resumes
    assert code == 0, out
    final = worker_cli.trials(storage)
    assert final[0] == done[0]  # finished work untouched
    assert sum(t.state == TrialState.COMPLETE for t in final) == 3


def test_two_local_workers_share_a_journal_study(
    search_data_yaml: Path, small_space: Path, tmp_path: Path, worker_cli: WorkerCLI
) -> None:
    storage = str(tmp_path / "s.journal")
    args = worker_cli.args(search_data_yaml, small_space, storage, trials=6, epochs=2)
    code, out = worker_cli.finish(worker_cli.start([*args, "--workers", "2"], tmp_path))
    assert code == 0, out
    assert "[w0] trial" in out and "[w1] trial" in out
    done = worker_cli.trials(storage)
    assert all(t.state == TrialState.COMPLETE for t in done)
    assert 6 <= len(done) <= 7  # at most the other worker's trial in flight past the count
    worker_cli.assert_both_drew_their_own(done)


class _InterruptedWorker:
    """A worker process that has already ended after Ctrl-C."""

    returncode = INTERRUPTED_EXIT
    stdout = io.StringIO("")

    def poll(self) -> int | None:
        return None

    def send_signal(self, signum: int) -> None:
        pass

    def wait(self) -> int:
        return self.returncode


def test_the_parent_of_workers_takes_ctrl_c_again_once_they_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_workers.subprocess, "Popen", lambda *a, **kw: _InterruptedWorker())
    monkeypatch.setattr(_workers.time, "sleep", ctrl_c)
    study = open_study("t", optuna.storages.InMemoryStorage(), optuna.samplers.RandomSampler())
    before = signal.getsignal(signal.SIGINT)
    assert run_workers(study, "search.architecture", [], 2, 1).interrupted
    assert signal.getsignal(signal.SIGINT) is before

"""Workers on one PostgreSQL study, as on several machines: sharing, and a worker killed mid-trial.

Needs a PostgreSQL server: TEST_POSTGRES_URL (set by .ci/run) names a database; each test gets a
fresh, empty database beside it, so Optuna's schema is created by the workers themselves.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pytest
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from search.study import finished_count

if TYPE_CHECKING:
    from tests.search.conftest import WorkerCLI


pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    base = os.environ.get("TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("TEST_POSTGRES_URL is not set: .ci/run creates a database for the run")
        pytest.skip("no PostgreSQL server (set TEST_POSTGRES_URL)")
    url = sqlalchemy.engine.make_url(base)
    name = f"litenas_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_two_workers_started_together_share_the_study_once(
    postgres_url: str,
    search_data_yaml: Path,
    small_space: Path,
    tmp_path: Path,
    worker_cli: WorkerCLI,
) -> None:
    args = worker_cli.args(search_data_yaml, small_space, postgres_url, trials=6, epochs=2)
    workers = [worker_cli.start(args, tmp_path) for _ in range(2)]  # on an empty database, at once
    for worker in workers:
        code, out = worker_cli.finish(worker)
        assert code == 0, out
    done = worker_cli.trials(postgres_url)
    assert all(t.state == TrialState.COMPLETE for t in done)
    assert 6 <= len(done) <= 7  # stopped together: at most one trial in flight past the count
    worker_cli.assert_both_drew_their_own(done)


def test_a_worker_killed_mid_trial_loses_nothing_and_its_trial_is_retried(
    postgres_url: str,
    search_data_yaml: Path,
    small_space: Path,
    tmp_path: Path,
    worker_cli: WorkerCLI,
) -> None:
    args = worker_cli.args(search_data_yaml, small_space, postgres_url, trials=3, epochs=15)
    doomed = worker_cli.start(args, tmp_path)
    second_running = worker_cli.running_with_epochs(2)
    killed = worker_cli.wait_for(
        postgres_url, doomed, lambda t: t.number == 1 and second_running(t)
    )
    doomed.kill()  # SIGKILL: no chance to record anything
    doomed.wait()
    first = worker_cli.trials(postgres_url)[0]
    assert first.state == TrialState.COMPLETE
    # another worker (or the same command again)
    code, out = worker_cli.finish(worker_cli.start(args, tmp_path))
    assert code == 0, out
    done = {t.number: t for t in worker_cli.trials(postgres_url)}
    assert done[0] == first  # finished work untouched
    assert done[1].state == TrialState.FAIL  # failed by its stale heartbeat ...
    retries = [t for t in done.values() if t.system_attrs.get("failed_trial") == 1]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE  # ... and run again
    assert retries[0].params == killed.params
    assert retries[0].user_attrs["model_yaml"] == killed.user_attrs["model_yaml"]
    study = optuna.load_study(study_name="s", storage=postgres_url)
    assert finished_count(study) == 3
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


# The worker killed below trains far longer than the others (it is surely mid-trial when killed);
# the others run the same command, with 2 s heartbeats: a trial is stale 4 s after its last one.
LONG_TRIAL = ["--epochs", "100000"]
WAIT_LINE = (
    "study full; waiting up to 9 s for 1 running trial of another worker (trial 0) to finish or "
    "go stale"
)
STALE_LINE = "trial 0 went stale (no heartbeat from its worker): running its retry"


@pytest.fixture
def stale_args(
    worker_cli: WorkerCLI,
    search_data_yaml: Path,
    small_space: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    """A one-trial study with 2 s heartbeats; one thread per worker, so that the doomed worker's
    training leaves the others the second core."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = worker_cli.args(search_data_yaml, small_space, postgres_url, trials=1, epochs=2)
    return [*args, "--heartbeat", "2"]


def _read_until(proc: subprocess.Popen[str], text: str) -> str:
    """A worker's output up to the first line holding `text` (it goes on running)."""
    lines = []
    for line in proc.stdout or ():
        lines.append(line)
        if text in line:
            return "".join(lines)
    raise AssertionError(f"the worker never printed {text!r}: {''.join(lines)}")


def _assert_retried(worker_cli: WorkerCLI, url: str, killed: FrozenTrial) -> None:
    """The killed trial 0 failed and its retry ran to the end; nothing is left running or queued
    (trial 1 is the one that filled the study)."""
    done = {t.number: t for t in worker_cli.trials(url)}
    assert done[0].state == TrialState.FAIL and done[1].state == TrialState.COMPLETE
    retries = [t for t in done.values() if t.system_attrs.get("failed_trial") == 0]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed.params
    study = optuna.load_study(study_name="s", storage=url)
    assert finished_count(study) == 2
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_the_live_worker_waits_for_a_killed_workers_trial_and_runs_its_retry(
    postgres_url: str, stale_args: list[str], tmp_path: Path, worker_cli: WorkerCLI
) -> None:
    doomed = worker_cli.start([*stale_args, *LONG_TRIAL], tmp_path)
    killed = worker_cli.wait_for(postgres_url, doomed, worker_cli.running_with_epochs(1))
    live = worker_cli.start(stale_args, tmp_path)
    head = _read_until(live, WAIT_LINE)  # its trial 1 filled the study; trial 0 is alive
    doomed.kill()  # SIGKILL mid-trial, while the live worker waits
    doomed.wait()
    code, out = worker_cli.finish(live)
    assert code == 0, head + out
    assert STALE_LINE in out and "search finished: 2 trials" in out
    _assert_retried(worker_cli, postgres_url, killed)


def test_a_later_run_on_the_full_study_waits_and_runs_the_retry(
    postgres_url: str, stale_args: list[str], tmp_path: Path, worker_cli: WorkerCLI
) -> None:
    doomed = worker_cli.start([*stale_args, *LONG_TRIAL], tmp_path)
    killed = worker_cli.wait_for(postgres_url, doomed, worker_cli.running_with_epochs(1))
    study = optuna.load_study(study_name="s", storage=postgres_url)
    study.add_trial(  # another worker's finished trial fills the study, and that worker left
        optuna.trial.create_trial(
            values=[0.5, killed.user_attrs["macs"]],
            params=killed.params,
            distributions=killed.distributions,
            user_attrs=killed.user_attrs,
        )
    )
    later = worker_cli.start(stale_args, tmp_path)  # the same command, on the full study
    head = _read_until(later, WAIT_LINE)  # full at the start; trial 0 is alive
    doomed.kill()
    doomed.wait()
    code, out = worker_cli.finish(later)
    assert code == 0, head + out
    assert STALE_LINE in out
    _assert_retried(worker_cli, postgres_url, killed)

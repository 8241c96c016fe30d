"""The end of a shared study: wait for other workers' running trials before leaving.

A trial whose worker was killed stays RUNNING until a live worker of the study notices that its
heartbeat stopped (Optuna checks only when a worker starts a trial). If every live worker left as
soon as the study was full, nobody would: the trial would stay RUNNING for good and never be
retried. So a worker that finds the study full while other workers' trials still run waits for
them to finish or go stale, at most the grace period and a poll; a stale trial is failed and
re-queued by the storage's stale-trial callback, and the caller runs that retry.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from search.study._storage import GRACE_HEARTBEATS

POLL_SECONDS = 5.0


def wait_for_other_workers(
    study: optuna.Study, full: Callable[[optuna.Study], bool], heartbeat: float | None
) -> None:
    """While the study is `full` but trials still run, wait until they finish or go stale.

    Called only between this process's trials (at the start of a run, or after its trial is
    recorded), so every RUNNING trial is another worker's. `heartbeat` is the interval the
    study's storage was made with (search.study.heartbeat_interval); returns at once without one
    (nothing would ever go stale), and when the wait runs out, saying so. A retry queued
    meanwhile makes the study not `full`: the caller goes on and runs it.
    """
    if not heartbeat or not full(study):
        return
    interval = heartbeat
    poll = min(POLL_SECONDS, interval)
    # A trial already dead is stale and seen by then (+1 s: SQLite keeps heartbeats to the second).
    limit = GRACE_HEARTBEATS * interval + 2 * poll + 1
    deadline = None
    while True:
        running = _running_after_stale_check(study)
        if not full(study):  # one went stale: its retry is queued
            tqdm.write(_retry_text(study))
            return
        if not running:
            return
        if deadline is None:
            tqdm.write(
                f"study full; waiting up to {limit:.0f} s for {_running_text(running)} "
                "to finish or go stale"
            )
            deadline = time.monotonic() + limit
        elif time.monotonic() >= deadline:
            break
        time.sleep(poll)
    whose = "its worker records it" if len(running) == 1 else "their workers record them"
    tqdm.write(
        f"stopped waiting after {limit:.0f} s: {_numbers(running)} still running with a "
        f"live heartbeat; {whose} when done"
    )


def _running_after_stale_check(study: optuna.Study) -> list[FrozenTrial]:
    """Fail (and so re-queue) trials whose heartbeat is older than the grace period; the rest
    still RUNNING."""
    with warnings.catch_warnings():  # experimental since 2.9 and still the only way
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def _numbers(trials: list[FrozenTrial]) -> str:
    """'trial 7' or 'trials 7, 9'."""
    return f"trial{'s' if len(trials) > 1 else ''} {', '.join(str(t.number) for t in trials)}"


def _running_text(trials: list[FrozenTrial]) -> str:
    """'1 running trial of another worker (trial 7)', or of other workers for several."""
    if len(trials) == 1:
        return f"1 running trial of another worker ({_numbers(trials)})"
    return f"{len(trials)} running trials of other workers ({_numbers(trials)})"


def _retry_text(study: optuna.Study) -> str:
    """What was queued while waiting: the retries of the trials that went stale."""
    queued = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    stale = [t.system_attrs["failed_trial"] for t in queued if "failed_trial" in t.system_attrs]
    if not stale:
        return "a trial was queued meanwhile: running it"
    if len(stale) == 1:
        return f"trial {stale[0]} went stale (no heartbeat from its worker): running its retry"
    numbers = ", ".join(map(str, stale))
    return f"trials {numbers} went stale (no heartbeat from their workers): running their retries"

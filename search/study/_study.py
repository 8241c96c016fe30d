"""Opening, sampling and running Optuna studies the same way for every search CLI.

A study is resumable by rerunning the same command: it is created once in its storage and every
later run loads it and only adds the trials still missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import optuna
from optuna.trial import TrialState

from litenas.user_input import did_you_mean
from search.study._stale import wait_for_other_workers
from search.study._storage import (
    StorageError,
    default_url,
    is_journal,
    make_storage,
    sqlite_file,
    storage_name,
)
from space.errors import UserError

DIRECTIONS = ("maximize", "minimize")
METRIC_NAMES = ("f1", "macs")
SAMPLERS = ("tpe", "nsga2", "random")
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)  # the trials --trials counts
INTERRUPTED = "interrupted"  # user attr of a trial ended by Ctrl-C
BANDS_ATTR = "bands"  # study user attr: its band studies, name -> MACs ceiling
DEFAULT_MAX_FAILURES = 5
INTERRUPTED_EXIT = 130  # the exit code of a run ended by Ctrl-C, as a shell reports SIGINT


class StudyNotFoundError(UserError):
    """The study to read cannot be found or opened; the message lists what is there."""


def default_storage(study_name: str, folder: str | Path = "studies") -> str:
    """sqlite:///studies/<study-name>.db, creating the folder so the first run just works."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return default_url(study_name, folder)


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """A seeded sampler; constraints come from trial.set_constraint, which all three honour."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=16)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"sampler must be one of {list(SAMPLERS)}, got {name!r}")


def open_study(
    study_name: str,
    storage: str | optuna.storages.BaseStorage,
    sampler: optuna.samplers.BaseSampler,
    *,
    directions: Sequence[str] = DIRECTIONS,
    metric_names: Sequence[str] = METRIC_NAMES,
    pruner: optuna.pruners.BasePruner | None = None,
    where: str | None = None,
) -> optuna.Study:
    """Create the study or load it; reusing a name with other objectives is an error (naming
    the storage as `where`, the user's URL or journal path, when given)."""
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=list(directions),
        load_if_exists=True,
    )
    where = where or storage_name(storage)
    wanted = [optuna.study.StudyDirection[d.upper()] for d in directions]
    if list(study.directions) != wanted:
        have = [d.name.lower() for d in study.directions]
        raise StorageError(
            f"study {study_name!r} in {where} optimises {have}, not "
            f"{list(directions)}; pick another --study-name"
        )
    if study.metric_names is not None and study.metric_names != list(metric_names):
        raise StorageError(
            f"study {study_name!r} in {where} optimises {study.metric_names}, not "
            f"{list(metric_names)}; pick another --study-name"
        )
    if study.metric_names is None:
        with warnings.catch_warnings():  # experimental since 3.2 and still the only way
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(metric_names))
    return study


def finished_count(study: optuna.Study) -> int:
    """Trials that count toward --trials: completed or pruned ones.

    A failed trial does not count (a worker that died, Ctrl-C, or a candidate that cannot be
    built or trained): another takes its place, so --trials 20 gives 20 results. A run of
    --max-failures failures in a row stops the study (StopRule), so it cannot loop forever.
    """
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def is_interrupted(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial ended by Ctrl-C (SIGINT) rather than by its own failure."""
    return trial.state == TrialState.FAIL and bool(trial.user_attrs.get(INTERRUPTED))


def waiting_count(study: optuna.Study) -> int:
    """Queued trials (retries of dead workers' trials, enqueued ones) that a worker must run."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


@dataclasses.dataclass
class StopRule:
    """Study callback: stop this worker when the study is full, or after a run of failures.

    "Full" counts every worker's finished trials, so workers sharing a storage stop together,
    past the count by at most the trials still in flight; queued retries are run first. A full
    study with other workers' trials still running is left only once they finish or go stale
    (their retries run here), so a killed worker's trial does not stay RUNNING.
    """

    trials: int
    max_failures: int = DEFAULT_MAX_FAILURES
    heartbeat: float | None = None  # the storage's heartbeat interval; None: none
    streak: int = 0
    failure: str | None = None  # set when the failure streak stopped the study

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        failed = trial.state == TrialState.FAIL and not is_interrupted(trial)
        self.streak = self.streak + 1 if failed else 0
        if self.streak >= self.max_failures:
            reason = trial.user_attrs.get("fail_reason", "see the log above")
            self.failure = (
                f"stopped after {self.streak} failed trials in a row (the last, trial "
                f"{trial.number}: {reason}); fix the cause and rerun the same command: finished "
                "trials are kept"
            )
            study.stop()
        elif self.full_for_good(study):
            study.stop()

    def full(self, study: optuna.Study) -> bool:
        return finished_count(study) >= self.trials and waiting_count(study) == 0

    def full_for_good(self, study: optuna.Study) -> bool:
        """Full, and still full once other workers' running trials have finished or gone stale
        (a stale one is re-queued, so the study is no longer full: its retry is run here)."""
        wait_for_other_workers(study, self.full, self.heartbeat)
        return self.full(study)


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How a run of the study ended: normally, by Ctrl-C, or stopped by repeated failures."""

    interrupted: bool = False
    failure: str | None = None


def _interrupt_once(signum: int, frame: object) -> None:
    """SIGINT handler: end the running trial now, and ignore further Ctrl-C while Optuna
    records it, so the storage is left consistent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


class _ReportedFailures(logging.Filter):
    """Drops Optuna's log records of a failed trial (with its traceback) when it failed with one
    of the errors the study catches or by Ctrl-C: the trial's own line gives the reason, and a
    bug's traceback is shown when it stops the study."""

    def __init__(self, catch: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.catch = (*catch, KeyboardInterrupt)

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            return not isinstance(error, self.catch)
        return record.funcName != "_log_failed_trial"  # its "failed with value None" line


@contextlib.contextmanager
def _quiet_reported_failures(catch: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Install _ReportedFailures on Optuna's log handlers for the run."""
    handlers = logging.getLogger("optuna").handlers
    quiet = _ReportedFailures(catch)
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


@contextlib.contextmanager
def _sigint_ends_the_trial() -> Iterator[None]:
    """Install _interrupt_once for the run (main thread only), restoring the handler after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _interrupt_once)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float | Sequence[float]],
    *,
    trials: int,
    timeout: float | None,
    catch: tuple[type[BaseException], ...],
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
    max_failures: int = DEFAULT_MAX_FAILURES,
    heartbeat: float | None = None,
) -> RunOutcome:
    """Run until the study holds `trials` finished trials, the timeout, Ctrl-C or a failure streak.

    Ctrl-C ends the running trial, which Optuna records as failed and we mark interrupted (it
    does not count), or the wait for other workers' trials; finished trials stay. A trial that
    fails with an error of `catch` is reported by its trial line, without Optuna's traceback.
    `heartbeat` is the interval the study's storage was made with (heartbeat_interval): with
    one, a full study waits for other workers' running trials to finish or go stale.
    """
    rule = StopRule(trials, max_failures, heartbeat)
    try:
        with _sigint_ends_the_trial(), _quiet_reported_failures(catch):
            if rule.full_for_good(study):
                return RunOutcome()
            study.optimize(
                objective,
                timeout=timeout,
                catch=catch,
                callbacks=[*callbacks, rule],
                show_progress_bar=False,
                gc_after_trial=True,
            )
    except KeyboardInterrupt:
        return RunOutcome(interrupted=True)
    return RunOutcome(failure=rule.failure)


def open_existing_study(study_name: str, storage: str) -> optuna.Study:
    """Load a study without ever creating one; a wrong name lists the studies there."""
    return optuna.load_study(study_name=study_name, storage=_storage_holding(study_name, storage))


def open_with_bands(study_name: str, storage: str) -> tuple[optuna.Study, list[optuna.Study]]:
    """The study and the band studies searched beside it (search.architecture --bands), which
    export and finalize merge into its front; a band not started yet is not there."""
    opened = _storage_holding(study_name, storage)
    study = optuna.load_study(study_name=study_name, storage=opened)
    present = set(optuna.get_all_study_names(opened))
    bands = [name for name in study.user_attrs.get(BANDS_ATTR, {}) if name in present]
    return study, [optuna.load_study(study_name=name, storage=opened) for name in bands]


def add_bands(study: optuna.Study, bands: Mapping[str, int]) -> None:
    """Record band studies (name -> MACs ceiling) beside the study; earlier ones stay, so a
    rerun with fewer bands does not hide a band's finished trials from export."""
    recorded = dict(study.user_attrs.get(BANDS_ATTR, {}))
    if any(name not in recorded for name in bands):
        study.set_user_attr(BANDS_ATTR, {**recorded, **bands})


def _storage_holding(study_name: str, storage: str) -> optuna.storages.BaseStorage:
    """The storage, checked to hold the study; a wrong name lists the studies there."""
    db = Path(storage) if is_journal(storage) else sqlite_file(storage)
    if db is not None and not db.is_file():
        files = db.parent.glob(f"*{db.suffix}") if db.parent.is_dir() else []
        present = sorted(p.name for p in files)
        raise StudyNotFoundError(
            f"no study storage at {db}; --storage takes the URL the search used "
            f"({db.parent}/ holds: {', '.join(present) or 'no study files'})"
        )
    opened = make_storage(storage, heartbeat=None)
    names = sorted(optuna.get_all_study_names(opened))
    if study_name not in names:
        hint = did_you_mean(study_name, names, template="did you mean {!r}? ")
        raise StudyNotFoundError(
            f"no study {study_name!r} in {storage}; {hint}studies there: "
            f"{', '.join(repr(n) for n in names) or 'none'}"
        )
    return opened

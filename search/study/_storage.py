"""Where a study lives: an Optuna storage from a URL or a journal file, safe for its workers.

- RDB URLs (sqlite:///, postgresql://, mysql://) get heartbeats: a trial whose worker died
  (SIGKILL, a lost machine) is failed once its heartbeat is older than the grace period, and
  Optuna's RetryHeartbeatStaleTrialCallback re-queues it with the same parameters; the next live
  worker of the study to start a trial runs it.
- SQLite serves one writing process. A second process on the same file is refused at start with
  what to use instead (a lock file beside the database), never "database is locked" mid-study.
- A path ending in `.journal` is Optuna's JournalStorage on a file: several processes on one
  machine, no server (it has no heartbeats, so a killed worker's trial stays RUNNING).
- PostgreSQL: the schema and the study are created under an advisory lock, so workers started
  together on an empty database do not race on Optuna's table creation.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import optuna
import sqlalchemy

JOURNAL_SUFFIX = ".journal"
DEFAULT_HEARTBEAT = 60  # seconds; a dead worker's trial is retried after twice that
MAX_RETRY = 3  # a trial whose workers keep dying is not re-queued forever
_CREATE_LOCK_KEY = 0x6C6E6173  # any fixed 64-bit key: "lnas"
STORAGE_HELP = "Optuna storage URL or journal file (default: sqlite:///studies/<study-name>.db)"


class StorageError(ValueError):
    """A storage the command cannot use as asked; the message says what to use instead."""


def default_url(study_name: str, folder: str | os.PathLike[str] = "studies") -> str:
    """sqlite:///studies/<study-name>.db, where the search CLIs keep a study by default."""
    return f"sqlite:///{Path(folder) / study_name}.db"


def is_journal(spec: str) -> bool:
    """A journal file path (not a URL)."""
    return "://" not in spec and spec.endswith(JOURNAL_SUFFIX)


def sqlite_file(spec: str) -> Path | None:
    """The database file of a sqlite:/// URL (None for other storages and in-memory SQLite)."""
    if not spec.startswith("sqlite:///") or spec in ("sqlite:///:memory:", "sqlite://"):
        return None
    return Path(spec.removeprefix("sqlite:///"))


def one_machine_hint(spec: str) -> str:
    """What to pass instead of a SQLite URL when several processes must share the study."""
    db = sqlite_file(spec)
    journal = db.with_suffix(JOURNAL_SUFFIX) if db else Path("studies/NAME.journal")
    return (
        f"use --storage {journal} (Optuna's journal file: several processes on this machine) or "
        "--storage postgresql://USER@HOST/DB (several machines; see README, Running on many "
        "machines)"
    )


def check_workers(spec: str, workers: int) -> None:
    """SQLite cannot take several local workers: say so before anything starts."""
    if workers > 1 and sqlite_file(spec) is not None:
        raise StorageError(
            f"--workers {workers} needs a storage several processes can write; {spec} is SQLite, "
            f"which serves one: {one_machine_hint(spec)}"
        )


def make_storage(
    spec: str, heartbeat: int | None = DEFAULT_HEARTBEAT
) -> optuna.storages.BaseStorage:
    """The storage named by `spec`; RDB storages with heartbeats and retry of stale trials.

    `heartbeat` is the interval in seconds (None or 0: off); the grace period is twice that.
    """
    if is_journal(spec):
        Path(spec).parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(spec)
        return optuna.storages.journal.JournalStorage(backend)
    if "://" not in spec:
        raise StorageError(
            f"--storage {spec!r} is neither a URL (sqlite:///x.db, postgresql://...) nor a "
            f"journal file (a path ending in {JOURNAL_SUFFIX})"
        )
    db = sqlite_file(spec)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    if not heartbeat:
        return optuna.storages.RDBStorage(spec)
    with warnings.catch_warnings():  # experimental since 2.9 and still the only way
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
        return optuna.storages.RDBStorage(
            spec, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
            heartbeat_stale_trial_callback=retry,
        )  # fmt: skip


@contextlib.contextmanager
def creation_lock(spec: str) -> Iterator[None]:
    """Serialise study creation across processes on PostgreSQL (a no-op elsewhere)."""
    if not spec.startswith(("postgresql", "postgres://")):
        yield
        return
    engine = sqlalchemy.create_engine(spec, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _CREATE_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(
                    sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": _CREATE_LOCK_KEY}
                )
    finally:
        engine.dispose()


@contextlib.contextmanager
def single_writer(spec: str) -> Iterator[None]:
    """Hold a lock on a SQLite study file for this process's run; refuse if another holds it.

    The operating system releases the lock when the process ends, however it ends.
    """
    db = sqlite_file(spec)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): SQLite's own locking is all there is
        fcntl = None  # type: ignore[assignment]
    if db is None or fcntl is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StorageError(_in_use(spec, handle)) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def _in_use(spec: str, handle: IO[str]) -> str:
    """The refusal message for a SQLite file another process is searching in."""
    with open(handle.name) as f:
        pid = f.read().strip() or "?"
    return (
        f"another process (pid {pid}) is running a study in {spec}; SQLite serves one process at "
        f"a time. Wait for it, or to run several workers {one_machine_hint(spec)}"
    )

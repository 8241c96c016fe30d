"""Where a study lives: an Optuna storage from a URL or a journal file, safe for its workers.

- RDB URLs (sqlite:///, postgresql://, mysql://) get heartbeats: a trial whose worker died
  (SIGKILL, a lost machine) is failed once its heartbeat is older than the grace period, and
  Optuna's RetryHeartbeatStaleTrialCallback re-queues it with the same parameters; the next live
  worker of the study to start a trial runs it (one that finds the study full waits for it).
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
import sqlalchemy.exc

from litenas.user_input import did_you_mean
from space.errors import UserError

JOURNAL_SUFFIX = ".journal"
DEFAULT_HEARTBEAT = 60  # seconds; a dead worker's trial is retried after twice that
GRACE_HEARTBEATS = 2  # a trial silent for this many heartbeats is stale (its worker died)
MAX_RETRY = 3  # a trial whose workers keep dying is not re-queued forever
_CREATE_LOCK_KEY = 0x6C6E6173  # any fixed 64-bit key: "lnas"
STORAGE_HELP = "Optuna storage URL or journal file (default: sqlite:///studies/<study-name>.db)"
SCHEMES = ("sqlite", "postgresql", "mysql")
STORAGE_FORMS = (
    "sqlite:///FILE.db, postgresql://USER@HOST[:PORT]/DB, "
    "mysql+pymysql://USER@HOST[:PORT]/DB or a FILE.journal path"
)


class StorageError(UserError):
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
        "--storage postgresql://USER@HOST/DB (several machines; see docs/scale-out.md)"
    )


def check_workers(spec: str, workers: int) -> None:
    """SQLite cannot take several local workers: say so before anything starts."""
    if workers > 1 and sqlite_file(spec) is not None:
        raise StorageError(
            f"--workers {workers} needs a storage several processes can write; {spec} is SQLite, "
            f"which serves one: {one_machine_hint(spec)}"
        )


def no_heartbeat_note(spec: str) -> str | None:
    """For a journal file, what a killed worker leaves behind there and what to use instead;
    None for storages with heartbeats. Said when a run starts, not found out at the end."""
    if not is_journal(spec):
        return None
    return (
        f"note: {spec} is a journal file, which has no heartbeats: the trial of a worker that is "
        "killed stays RUNNING there and is not retried; for that, use a database URL "
        "(--storage postgresql://USER@HOST/DB) with --heartbeat"
    )


def heartbeat_interval(spec: str, heartbeat: int | None) -> int | None:
    """The heartbeat interval make_storage(spec, heartbeat) gives its storage: None for a
    journal file (no heartbeats there) or when `heartbeat` is off (None or 0)."""
    return None if is_journal(spec) or not heartbeat else heartbeat


def storage_name(storage: str | optuna.storages.BaseStorage) -> str:
    """How a user names the storage (its URL without a password, or its journal file) for
    messages, never the storage object's repr."""
    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    if isinstance(url, str):
        if "://" not in url:
            return url
        try:
            return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
        except sqlalchemy.exc.ArgumentError:
            return url
    return type(storage).__name__


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
    with database_errors(spec):
        if not heartbeat:
            return optuna.storages.RDBStorage(spec)
        with warnings.catch_warnings():  # experimental since 2.9 and still the only way
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
            return optuna.storages.RDBStorage(
                spec,
                heartbeat_interval=heartbeat,
                grace_period=GRACE_HEARTBEATS * heartbeat,
                heartbeat_stale_trial_callback=retry,
            )


@contextlib.contextmanager
def database_errors(spec: str) -> Iterator[None]:
    """Turn SQLAlchemy's failures to open `spec` into a StorageError that names the URL (or the
    host and port) and what would work: a typo in the scheme, a server not listening, a
    missing driver. Raised before any trial starts, so nothing is lost."""
    scheme = spec.split("://", 1)[0]
    try:
        yield
    except (sqlalchemy.exc.NoSuchModuleError, sqlalchemy.exc.ArgumentError) as e:
        hint = did_you_mean(scheme.split("+")[0], SCHEMES, template="did you mean {!r}? ")
        raise StorageError(
            f"--storage {spec}: {scheme!r} is not a database URL scheme that "
            f"works here; {hint}use {STORAGE_FORMS}"
        ) from e
    except sqlalchemy.exc.DBAPIError as e:
        reason = str(e.orig).splitlines()[0] if e.orig is not None else str(e)
        raise StorageError(f"{_where(spec)}: {reason}") from e
    except ImportError as e:  # Optuna's message when the URL's driver is not installed
        raise StorageError(
            f"--storage {spec}: the database driver for {scheme!r} is not "
            f"installed ({e}); install it, or use {STORAGE_FORMS}"
        ) from e


def _where(spec: str) -> str:
    """'cannot reach the database at HOST:PORT' (or open the SQLite file) for connection errors."""
    db = sqlite_file(spec)
    if db is not None:
        return f"cannot open the SQLite database {db}"
    url = sqlalchemy.engine.make_url(spec)
    port = url.port or {"postgresql": 5432, "mysql": 3306}.get(url.get_backend_name(), "")
    return f"cannot reach the database at {url.host or 'localhost'}:{port} (--storage {spec})"


@contextlib.contextmanager
def creation_lock(spec: str) -> Iterator[None]:
    """Serialise study creation across processes on PostgreSQL (a no-op elsewhere)."""
    if not spec.startswith(("postgresql", "postgres://")):
        yield
        return
    with database_errors(spec):
        engine = sqlalchemy.create_engine(spec, poolclass=sqlalchemy.pool.NullPool)
        conn_cm = engine.connect()
    try:
        with conn_cm as conn:
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

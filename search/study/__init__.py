"""Where a study lives and how it runs: storage, opening, the run loop, workers, progress."""

from search.study._progress import StudyBar, print_trial_line, trial_line
from search.study._report import summary_lines
from search.study._storage import (
    DEFAULT_HEARTBEAT,
    STORAGE_HELP,
    StorageError,
    check_workers,
    creation_lock,
    default_url,
    make_storage,
    no_heartbeat_note,
    single_writer,
    sqlite_file,
)
from search.study._study import (
    DEFAULT_MAX_FAILURES,
    INTERRUPTED,
    INTERRUPTED_EXIT,
    SAMPLERS,
    RunOutcome,
    StopRule,
    StudyNotFoundError,
    default_storage,
    finished_count,
    make_sampler,
    open_existing_study,
    open_study,
    run_study,
)
from search.study._workers import run_workers

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_FAILURES",
    "INTERRUPTED",
    "INTERRUPTED_EXIT",
    "SAMPLERS",
    "STORAGE_HELP",
    "RunOutcome",
    "StopRule",
    "StorageError",
    "StudyBar",
    "StudyNotFoundError",
    "check_workers",
    "creation_lock",
    "default_storage",
    "default_url",
    "finished_count",
    "make_sampler",
    "make_storage",
    "no_heartbeat_note",
    "open_existing_study",
    "open_study",
    "print_trial_line",
    "run_study",
    "run_workers",
    "single_writer",
    "sqlite_file",
    "summary_lines",
    "trial_line",
]

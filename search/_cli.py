"""Command-line pieces shared by the search CLIs: study options, budget, stopper, the run."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import socket
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import optuna

from litenas.resources import config_file
from litenas.user_input import add_debug_option, non_negative_int, positive_float, positive_int
from runner.data.config import DataConfig, DataConfigError
from runner.data.sources import load_data
from search.front import ParetoStopper
from search.objectives import TRIAL_ERRORS, Stopper, TrialBudget
from search.study import (
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_FAILURES,
    INTERRUPTED_EXIT,
    SAMPLERS,
    StudyBar,
    check_workers,
    creation_lock,
    default_storage,
    finished_count,
    heartbeat_interval,
    make_sampler,
    make_storage,
    no_heartbeat_note,
    print_trial_line,
    run_study,
    run_workers,
    single_writer,
    sqlite_file,
    storage_name,
    summary_lines,
)
from space.search_bounds import SearchSpaceError

# Shipped configs, found from any folder (litenas.resources.config_file); DATA_PATH inside the
# data YAML is relative to the current folder.
DEFAULT_DATA = "configs/data/trashnet.yaml"


def _rungs(text: str) -> tuple[int, ...]:
    """'2,4' -> (2, 4) for --early-stop-rungs."""
    try:
        return tuple(positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"expected epochs >= 1 like 2,4, got {text!r}") from e


def study_parser(
    doc: str, module: str, trials: int, space: str, rungs: tuple[int, ...]
) -> argparse.ArgumentParser:
    """A parser with the options every study CLI takes (data, space, storage, sampler, length,
    per-trial budget, early-stop rungs); the study is named after the module by default."""
    name = module.rsplit(".", 1)[-1]
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])
    add = parser.add_argument
    add(
        "--space",
        type=config_file,
        default=space,
        help=f"{name} space bounds YAML (default: %(default)s)",
    )
    add("--data", type=config_file, default=DEFAULT_DATA, help="data YAML (default: %(default)s)")
    add(
        "--test-ratio",
        type=float,
        help="hold out this share of train/ as a test split that no trial and no full training "
        "sees (TEST_RATIO of the data YAML), to score the front honestly: search.finalize and "
        "bench/fidelity.py report F1 on it",
    )
    add("--study-name", default=name, help="study name (default: %(default)s)")
    add(
        "--storage",
        help="Optuna storage URL, or a .journal file for several local workers "
        "(default: sqlite:///studies/<study-name>.db)",
    )
    add(
        "--trials",
        type=positive_int,
        default=trials,
        help="finished trials the study should hold; a rerun adds the missing ones (%(default)s)",
    )
    add("--timeout", type=positive_float, help="stop starting trials after this many seconds")
    add("--sampler", choices=SAMPLERS, default="tpe", help="(default: %(default)s)")
    add("--seed", type=int, default=0, help="sampler and training seed (default: %(default)s)")
    add("--trial-seconds", type=positive_float, help="per-trial training time cap in seconds")
    add(
        "--train-fraction",
        type=float,
        default=1.0,
        help="stratified fraction of the train split each trial trains on (%(default)s)",
    )
    add(
        "--score-epochs",
        type=positive_int,
        default=1,
        help="a trial's F1: mean val F1 of its last this many epochs (%(default)s)",
    )
    add(
        "--no-early-stop",
        action="store_true",
        help="train every trial to its budget (no Pareto-based early stopping)",
    )
    add(
        "--early-stop-rungs",
        type=_rungs,
        default=rungs,
        help="epochs at which dominated trials may be stopped, e.g. 3,6 (default: %(default)s)",
    )
    add(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes on this machine (one per GPU when there are GPUs); the storage "
        "must take several processes: a .journal file or postgresql://",
    )
    add(
        "--heartbeat",
        type=non_negative_int,
        default=DEFAULT_HEARTBEAT,
        help="heartbeat seconds of a running trial on a database storage; a trial silent "
        "for twice that (its worker died) is retried (0: off; %(default)s)",
    )
    add(
        "--max-failures",
        type=positive_int,
        default=DEFAULT_MAX_FAILURES,
        help="stop after this many failed trials in a row (%(default)s)",
    )
    add_debug_option(parser)
    add("--worker-label", help=argparse.SUPPRESS)  # set on the processes --workers starts
    add("--band-of", help=argparse.SUPPRESS)  # set on a band study: the study it is a band of
    return parser


@contextlib.contextmanager
def study_session(
    args: argparse.Namespace, open_fn: Callable[..., optuna.Study]
) -> Iterator[tuple[optuna.Study, str]]:
    """Open (creating once) the study named by the args, for this process's run.

    Refuses storages the command cannot share (SQLite with --workers, or a SQLite file another
    process is searching in) before anything starts. Yields the study and the storage as given.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our per-trial line replaces its log
    spec = args.storage or default_storage(args.study_name)
    check_workers(spec, args.workers)
    writer = single_writer(spec) if args.workers == 1 else contextlib.nullcontext()
    with writer:
        with creation_lock(spec):  # RDBStorage creates Optuna's schema on first use
            storage = make_storage(spec, args.heartbeat)
            study = open_fn(
                args.study_name,
                storage,
                make_sampler(args.sampler, args.seed),
                where=storage_name(spec),
            )
        study.sampler = make_sampler(args.sampler, _sampler_seed(args, spec, study))
        yield study, spec


def study_seed(args: argparse.Namespace) -> int:
    """The seed of the study's own random draws (its sampler and startup): --seed, or for a
    band study one drawn from --seed and its name, so that it does not draw its study's
    candidates again in the same order. Training keeps --seed itself (a trial's recipe)."""
    if args.band_of is None:
        return args.seed
    return zlib.crc32(f"{args.band_of}:{args.study_name}:{args.seed}".encode())


def _sampler_seed(args: argparse.Namespace, spec: str, study: optuna.Study) -> int:
    """The study's seed, moved past the trials already run so a rerun does not replay the first
    run's suggestions; on a shared storage also per process, so workers never sample alike."""
    seed = study_seed(args) + finished_count(study)
    if sqlite_file(spec) is None:
        seed = zlib.crc32(f"{seed}:{socket.gethostname()}:{os.getpid()}".encode())
    return seed


def data_config(args: argparse.Namespace, **changes: object) -> DataConfig:
    """The data YAML with the CLI's seed (and any other overrides) applied."""
    cfg = load_data(args.data)
    if args.test_ratio is not None:
        changes["test_ratio"] = args.test_ratio
    return dataclasses.replace(cfg, seed=args.seed, **changes)


def check_img_sizes(cfg: DataConfig, sizes: Sequence[int], space: object) -> None:
    """Each img_size_choices value of the space `space` makes a valid data config (in range,
    one training batch fits in memory), checked before a trial decodes or trains at it."""
    for size in sizes:
        try:
            dataclasses.replace(cfg, img_size=size)
        except DataConfigError as e:
            raise SearchSpaceError(f"{space}: img_size_choices {size}: {e}") from None


def stopper(args: argparse.Namespace) -> Stopper | None:
    """The Pareto early-stopping rule unless --no-early-stop."""
    if args.no_early_stop:
        return None
    return ParetoStopper(rungs=args.early_stop_rungs)


def budget(args: argparse.Namespace) -> TrialBudget:
    """The per-trial budget from --epochs, --trial-seconds, --train-fraction, --score-epochs."""
    return TrialBudget(args.epochs, args.trial_seconds, args.train_fraction, args.score_epochs)


Objective = TypeVar("Objective", bound=Callable[[optuna.Trial], "float | Sequence[float]"])


def run_search(
    args: argparse.Namespace,
    open_fn: Callable[..., optuna.Study],
    make_objective: Callable[[], Objective],
    module: str,
    argv: Sequence[str] | None,
    start: Callable[[optuna.Study, Objective], None] | None = None,
) -> int:
    """Open the study, build the objective inside the session (the storage is known to be usable
    by then), run and report; a storage the command cannot use raises StorageError (a ValueError:
    the CLI's error path prints its advice). `start` prepares a study that has no trial yet (in
    the command's own process, not in the --workers processes it starts)."""
    with study_session(args, open_fn) as (study, storage):
        note = no_heartbeat_note(storage)
        if note and args.worker_label is None:  # before anything runs, and once (not per worker)
            print(note)
        objective = make_objective()
        starts = start is not None and args.worker_label is None
        if starts and not study.get_trials(deepcopy=False):
            start(study, objective)
        return run_and_report(study, storage, objective, args, module, argv)


def run_and_report(
    study: optuna.Study,
    storage: str,
    objective: Callable[[optuna.Trial], float | Sequence[float]],
    args: argparse.Namespace,
    module: str,
    argv: Sequence[str] | None,
) -> int:
    """Run the study here or in --workers processes and print the summary.

    Exit code 0, 130 after Ctrl-C, 1 when a failure streak (or a worker's error) stopped it.
    """
    if args.workers > 1:
        argv = list(sys.argv[1:] if argv is None else argv)
        outcome = run_workers(study, module, argv, args.workers, args.trials)
    else:
        bar = StudyBar(study, args.trials, disable=args.worker_label is not None)
        outcome = run_study(
            study,
            objective,
            trials=args.trials,
            timeout=args.timeout,
            catch=TRIAL_ERRORS,
            callbacks=[print_trial_line, bar],
            max_failures=args.max_failures,
            heartbeat=heartbeat_interval(storage, args.heartbeat),
        )
        bar.close()
    if outcome.failure:
        print(f"error: {outcome.failure}", file=sys.stderr)
    if args.worker_label is None:
        print("\n".join(summary_lines(study, storage, outcome.interrupted)))
    if outcome.interrupted:
        return INTERRUPTED_EXIT
    return 1 if outcome.failure else 0

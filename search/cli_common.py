"""Command-line pieces shared by the search CLIs: study options, budget, stopper, the run."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna

from runner.config import DataConfig, load_data_config
from search.progress import print_trial_line
from search.pruning import ParetoStopper
from search.report import summary_lines
from search.study import SAMPLERS, default_storage, finished_count, make_sampler, run_study
from search.trial_training import TRIAL_ERRORS, Stopper, TrialBudget

DEFAULT_DATA = "configs/data/trashnet.yaml"  # like DATA_PATH inside it: from the current dir
# The shipped search-space bounds, found from any working directory.
SEARCH_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "search"
INTERRUPTED_EXIT = 130
DEFAULT_RUNGS = (2, 4)


def _rungs(text: str) -> tuple[int, ...]:
    """'2,4' -> (2, 4) for --early-stop-rungs."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected epochs like 2,4, got {text!r}") from e


def study_parser(doc: str, module: str, trials: int, space: str) -> argparse.ArgumentParser:
    """A parser with the options every study CLI takes (data, space, storage, sampler, length,
    per-trial budget); the study is named after the module by default."""
    name = module.rsplit(".", 1)[-1]
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])
    add = parser.add_argument
    add("--space", default=space, help=f"{name} space bounds YAML (default: %(default)s)")
    add("--data", default=DEFAULT_DATA, help="data YAML (default: %(default)s)")
    add("--study-name", default=name, help="study name (default: %(default)s)")
    add("--storage", help="Optuna storage URL (default: sqlite:///studies/<study-name>.db)")
    add(
        "--trials",
        type=int,
        default=trials,
        help="finished trials the study should hold; a rerun adds the missing ones (%(default)s)",
    )
    add("--timeout", type=float, help="stop starting trials after this many seconds")
    add("--sampler", choices=SAMPLERS, default="tpe", help="(default: %(default)s)")
    add("--seed", type=int, default=0, help="sampler and training seed (default: %(default)s)")
    add("--trial-seconds", type=float, help="per-trial training time cap in seconds")
    add(
        "--train-fraction",
        type=float,
        default=1.0,
        help="stratified fraction of the train split each trial trains on (%(default)s)",
    )
    add(
        "--no-early-stop",
        action="store_true",
        help="train every trial to its budget (no Pareto-based early stopping)",
    )
    add("--early-stop-rungs", type=_rungs, default=DEFAULT_RUNGS,
        help="epochs at which dominated trials may be stopped (default: 2,4: epoch-1 F1 of a "
             "brief trial is still noise)")  # fmt: skip
    return parser


def open_args_study(
    args: argparse.Namespace, open_fn: Callable[..., optuna.Study]
) -> tuple[optuna.Study, str]:
    """Open the study named by the args; a resumed study's sampler is reseeded past its trials.

    Reseeding keeps a rerun from replaying the first run's random suggestions.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our per-trial line replaces its log
    storage = args.storage or default_storage(args.study_name)
    study = open_fn(args.study_name, storage, make_sampler(args.sampler, args.seed))
    done = finished_count(study)
    if done:
        study.sampler = make_sampler(args.sampler, args.seed + done)
    return study, storage


def data_config(args: argparse.Namespace, **changes: object) -> DataConfig:
    """The data YAML with the CLI's seed (and any other overrides) applied."""
    cfg = load_data_config(args.data)
    return dataclasses.replace(cfg, seed=args.seed, **changes)


def stopper(args: argparse.Namespace) -> Stopper | None:
    """The Pareto early-stopping rule unless --no-early-stop."""
    if args.no_early_stop:
        return None
    return ParetoStopper(rungs=args.early_stop_rungs)


def budget(args: argparse.Namespace) -> TrialBudget:
    """The per-trial budget from --epochs, --trial-seconds and --train-fraction."""
    return TrialBudget(args.epochs, args.trial_seconds, args.train_fraction)


def run_and_report(
    study: optuna.Study,
    storage: str,
    objective: Callable[[optuna.Trial], float | Sequence[float]],
    args: argparse.Namespace,
) -> int:
    """Run the study, print the summary; exit code 130 after Ctrl-C, else 0."""
    interrupted = run_study(
        study, objective, trials=args.trials, timeout=args.timeout, catch=TRIAL_ERRORS,
        callbacks=[print_trial_line],
    )  # fmt: skip
    print("\n".join(summary_lines(study, storage, interrupted)))
    return INTERRUPTED_EXIT if interrupted else 0

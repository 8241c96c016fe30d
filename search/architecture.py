"""python -m search.architecture: multi-objective architecture search (macro F1 vs MACs).

Each trial samples a model YAML from the architecture space, counts its MACs before training,
skips training when it is over --macs-max, else trains it briefly and reports (F1, MACs).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import time
from collections.abc import Callable, Sequence

import optuna

from runner.splits_cache import SplitsCache
from search._cli import (
    SEARCH_CONFIGS,
    budget,
    data_config,
    run_search,
    stopper,
    study_parser,
)
from search.front import DEFAULT_RUNGS
from search.objectives import (
    COST_OBJECTIVES,
    ArchitectureObjective,
    enqueue_startup,
    spread_over_cost,
)
from search.study import open_study
from space.search_bounds import load_architecture_bounds
from space.user_input import exit_on_user_error, non_negative_int, positive_float, positive_int

MODULE = "search.architecture"
DEFAULT_SPACE = str(SEARCH_CONFIGS / "architecture.yaml")
# Default budget: 200 trials, about 15 minutes on TrashNet with 2 CPU cores. A trial trains 10
# epochs on the whole train split at its sampled size; no time cap by default, so a trial can be
# replayed exactly (a time cap makes the learning-rate schedule follow the clock).
DEFAULT_DATA = "configs/search/trashnet_trials.yaml"  # a fast-converging recipe for brief trials
DEFAULT_TRIALS = 200
DEFAULT_EPOCHS = 10
DEFAULT_TRAIN_FRACTION = 1.0
# Half the competition's reference model (13.9M MACs): a costlier model scores worse than any
# F1 can make up, and with sampled input sizes and widths the space reaches 25M+ MACs, which a
# brief trial would spend minutes on.
DEFAULT_MACS_MAX = 6_000_000
OBJECTIVES = ("f1,macs", "f1,latency")
MAX_STARTUP_TRIALS = 10  # TPE's own random startup (search/study/_study.py make_sampler)
DEFAULT_SCORE_EPOCHS = 3  # a trial's F1: mean of its last 3 epochs (objectives/_trial.py)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = study_parser(__doc__, MODULE, DEFAULT_TRIALS, DEFAULT_SPACE, DEFAULT_RUNGS)
    add = parser.add_argument
    add("--macs-max", type=positive_int, default=DEFAULT_MACS_MAX,
        help="MACs budget; larger candidates are recorded infeasible without training "
        "(%(default)s)")  # fmt: skip
    add("--params-max", type=positive_int,
        help="parameter budget (e.g. 2000000); larger candidates are recorded infeasible "
        "without training (default: none)")  # fmt: skip
    add("--latency-max", type=positive_float,
        help="batch-1 latency budget in ms on this CPU (ONNX Runtime, one thread, measured per "
        "trial in about a second); slower candidates are recorded infeasible without training")
    add("--objectives", choices=OBJECTIVES, default=OBJECTIVES[0],
        help="maximise F1 and minimise MACs, or batch-1 latency on this CPU in ms (measured per "
        "trial, see --latency-max) (default: %(default)s)")  # fmt: skip
    parser.set_defaults(data=DEFAULT_DATA)
    add("--epochs", type=positive_int, default=DEFAULT_EPOCHS,
        help="per-trial epochs (%(default)s)")
    add("--startup-trials", type=non_negative_int,
        help="a new study's first trials, drawn at random and spread evenly over log-MACs "
        "(no training to pick them) so that the sampler sees the cheap end of the front too; "
        "0 leaves the start to the sampler (default: a tenth of --trials, at most "
        f"{MAX_STARTUP_TRIALS})")  # fmt: skip
    add("--img-size", type=positive_int,
        help="IMG_SIZE for every trial (default: sampled from the space's img_size_choices)",
    )  # fmt: skip
    parser.set_defaults(train_fraction=DEFAULT_TRAIN_FRACTION, score_epochs=DEFAULT_SCORE_EPOCHS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or resume) the study and print the Pareto front and where to look at it."""
    args = parse_args(argv)
    return exit_on_user_error(lambda: _search(args, argv))


def _search(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """Check every input, then run the study; the data is decoded once the storage is usable."""
    cfg = data_config(args)
    bounds = load_architecture_bounds(args.space)
    if args.img_size is not None:
        bounds = dataclasses.replace(bounds, img_sizes=(args.img_size,))
    trial_budget = budget(args)
    objective = args.objectives.split(",")[1]
    rule = stopper(args)
    if rule is not None:
        rule = dataclasses.replace(rule, cost_attr=COST_OBJECTIVES[objective])

    def make_objective() -> ArchitectureObjective:
        return ArchitectureObjective(  # each size is decoded once, when a trial first needs it
            bounds, cfg, SplitsCache(cfg), trial_budget, macs_max=args.macs_max,
            params_max=args.params_max, latency_max=args.latency_max, objective=objective,
            stopper=rule,
        )  # fmt: skip

    names = ("f1", COST_OBJECTIVES[objective])
    open_fn = functools.partial(open_study, metric_names=names)
    return run_search(args, open_fn, make_objective, MODULE, argv, start=_starter(args))


def _starter(
    args: argparse.Namespace,
) -> Callable[[optuna.Study, ArchitectureObjective], None] | None:
    """What a new study starts with: --startup-trials architectures spread over log-MACs."""
    count = args.startup_trials
    if count is None:
        count = min(MAX_STARTUP_TRIALS, args.trials // 10)
    if count == 0:
        return None

    def start(study: optuna.Study, objective: ArchitectureObjective) -> None:
        began = time.monotonic()
        picks = spread_over_cost(objective.draw_cost, count, seed=args.seed)
        enqueue_startup(study, picks)
        if picks:
            macs = [value for _, value in picks]
            print(f"startup: {len(picks)} trials spread over {min(macs) / 1e6:.2f}M-"
                  f"{max(macs) / 1e6:.2f}M MACs (picked from random draws in "
                  f"{time.monotonic() - began:.0f} s, none trained)")  # fmt: skip

    return start


if __name__ == "__main__":
    sys.exit(main())

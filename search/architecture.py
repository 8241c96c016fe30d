"""python -m search.architecture: multi-objective architecture search (macro F1 vs MACs).

Each trial samples a model YAML from the architecture space, counts its MACs before training,
skips training when it is over --macs-max, else trains it briefly and reports (F1, MACs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from search.arch_objective import ArchitectureObjective
from search.cli_common import (
    SEARCH_CONFIGS,
    budget,
    data_config,
    open_args_study,
    run_and_report,
    stopper,
    study_parser,
)
from search.splits_cache import SplitsCache
from search.study import open_study
from space.search_bounds import load_architecture_bounds

DEFAULT_SPACE = str(SEARCH_CONFIGS / "architecture.yaml")
# Default budget: about 15 minutes for 30 trials on TrashNet with 2 CPU cores.
DEFAULT_DATA = "configs/search/trashnet_trials.yaml"  # a fast-converging recipe for brief trials
DEFAULT_TRIALS = 30
DEFAULT_EPOCHS = 6
DEFAULT_TRIAL_SECONDS = 45.0
DEFAULT_TRAIN_FRACTION = 0.5
DEFAULT_IMG_SIZE = 32


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = study_parser(__doc__, "search.architecture", DEFAULT_TRIALS, DEFAULT_SPACE)
    add = parser.add_argument
    add("--macs-max", type=int, help="MACs budget; larger candidates are infeasible, not trained")
    parser.set_defaults(data=DEFAULT_DATA)
    add("--epochs", type=int, default=DEFAULT_EPOCHS, help="per-trial epochs (%(default)s)")
    add("--img-size", type=int, default=DEFAULT_IMG_SIZE,
        help="IMG_SIZE for every trial, overriding the data YAML's (%(default)s)")  # fmt: skip
    parser.set_defaults(trial_seconds=DEFAULT_TRIAL_SECONDS, train_fraction=DEFAULT_TRAIN_FRACTION)
    args = parser.parse_args(argv)
    if args.macs_max is not None and args.macs_max <= 0:
        parser.error(f"--macs-max must be > 0, got {args.macs_max}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or resume) the study and print the Pareto front and where to look at it."""
    args = parse_args(argv)
    try:
        cfg = data_config(args, img_size=args.img_size)
        bounds = load_architecture_bounds(args.space)
        trial_budget = budget(args)
        rule = stopper(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    splits = SplitsCache(cfg).get(cfg.img_size)
    study, storage = open_args_study(args, open_study)
    objective = ArchitectureObjective(
        bounds, cfg, splits, trial_budget, macs_max=args.macs_max, stopper=rule
    )
    return run_and_report(study, storage, objective, args)


if __name__ == "__main__":
    sys.exit(main())

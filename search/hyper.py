"""python -m search.hyper --model M.yaml: search the training recipe of a fixed model.

Objectives: (F1, MACs) by default, IMG_SIZE moving the MACs; or one objective with
--objective f1|score, where a MedianPruner stops trials whose per-epoch value lags.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import optuna

from litenas.resources import config_file
from litenas.user_input import exit_on_user_error, positive_int
from runner.data.splits_cache import SplitsCache
from search._cli import (
    budget,
    check_img_sizes,
    data_config,
    run_search,
    stopper,
    study_parser,
)
from search.objectives import OBJECTIVES, HyperObjective
from search.study import open_study
from space import decode, load_model_config
from space.search_bounds import load_hyper_bounds

MODULE = "search.hyper"
DEFAULT_SPACE = "configs/search/hyper.yaml"
DEFAULT_TRIALS = 20
DEFAULT_RUNGS = (2, 4)  # early: a sampled recipe may train only 4 epochs (see hyper.yaml)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = study_parser(__doc__, MODULE, DEFAULT_TRIALS, DEFAULT_SPACE, DEFAULT_RUNGS)
    add = parser.add_argument
    add(
        "--model",
        required=True,
        type=config_file,
        help="model YAML whose training recipe is searched",
    )
    add(
        "--objective",
        choices=tuple(OBJECTIVES),
        default="pareto",
        help="pareto = F1 and MACs; f1 or score = one objective with a MedianPruner",
    )
    add(
        "--epochs",
        type=positive_int,
        help="per-trial epochs, overriding the sampled EPOCHS (default: sampled)",
    )
    return parser.parse_args(argv)


def _open_fn(args: argparse.Namespace) -> Callable[..., optuna.Study]:
    """open_study with the objectives (and pruner) of --objective."""
    directions, names = OBJECTIVES[args.objective]
    pruner = (
        None
        if args.objective == "pareto"
        else optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    )

    def open_fn(
        name: str,
        storage: optuna.storages.BaseStorage,
        sampler: optuna.samplers.BaseSampler,
        where: str | None = None,
    ) -> optuna.Study:
        return open_study(
            name,
            storage,
            sampler,
            directions=directions,
            metric_names=names,
            pruner=pruner,
            where=where,
        )

    return open_fn


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or resume) the recipe study and print its best trials and where they are."""
    args = parse_args(argv)
    return exit_on_user_error(lambda: _search(args, argv), args.debug)


def _search(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """Check every input (--model first: no data is decoded for a model that cannot build),
    then run the study."""
    decode(load_model_config(args.model), source=str(args.model))
    cfg = data_config(args)
    bounds = load_hyper_bounds(args.space)
    check_img_sizes(cfg, bounds.img_sizes, args.space)
    trial_budget = budget(args)
    rule = stopper(args)
    objective = HyperObjective(
        bounds, cfg, args.model, SplitsCache(cfg), trial_budget, args.objective, rule
    )
    return run_search(args, _open_fn(args), lambda: objective, MODULE, argv)


if __name__ == "__main__":
    sys.exit(main())

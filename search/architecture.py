"""python -m search.architecture: multi-objective architecture search (macro F1 vs MACs).

Each trial samples a model YAML from the architecture space, counts its MACs before training,
skips training when it is over --macs-max, else trains it briefly and reports (F1, MACs).

Then each band (--bands) runs the same search as a study of its own under a lower MACs ceiling,
in the same storage. One sampler's history spans the front thinly: it learns where the costly
half of the front lies and keeps drawing there, so the cheap end goes unexplored even when later
trials are held to a low budget. A band study starts afresh, spread over its own range.
search.export and search.finalize merge the bands' fronts into the study's.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from collections.abc import Callable, Sequence

import optuna

from litenas.user_input import exit_on_user_error, non_negative_int, positive_float, positive_int
from runner.data.splits_cache import SplitsCache
from search._cli import (
    budget,
    check_img_sizes,
    data_config,
    run_search,
    stopper,
    study_parser,
    study_seed,
)
from search.front import DEFAULT_RUNGS, MACS_MAX_ATTR, front_entries
from search.objectives import (
    COST_OBJECTIVES,
    ArchitectureObjective,
    enqueue_startup,
    spread_over_cost,
)
from search.study import add_bands, default_storage, open_study, open_with_bands
from space.errors import UserError
from space.search import check_sizes
from space.search_bounds import load_architecture_bounds

MODULE = "search.architecture"
DEFAULT_SPACE = "configs/search/architecture.yaml"
# Default budget: 200 trials (run time: docs/results/). A trial trains 10 epochs on the whole
# train split at its sampled size; no time cap by default, so a trial can be replayed exactly (a
# time cap makes the learning-rate schedule follow the clock).
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
# The cheap end's own study: under 0.4M MACs the best models are 3-10k-parameter nets that the
# main study's sampler, drawn to its costly front, hardly samples
# (docs/results/startup-and-bands.md).
DEFAULT_BANDS = (400_000,)


def _bands(text: str) -> tuple[int, ...]:
    """'400000,100000' -> (400000, 100000); 'none' -> () for --bands."""
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(
            f"expected MACs ceilings like 400000 or 400000,100000, or none; got {text!r}"
        ) from e


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = study_parser(__doc__, MODULE, DEFAULT_TRIALS, DEFAULT_SPACE, DEFAULT_RUNGS)
    add = parser.add_argument
    add(
        "--macs-max",
        type=positive_int,
        default=DEFAULT_MACS_MAX,
        help="MACs budget; larger candidates are recorded infeasible without training "
        "(%(default)s)",
    )
    add(
        "--params-max",
        type=positive_int,
        help="parameter budget (e.g. 2000000); larger candidates are recorded infeasible "
        "without training (default: none)",
    )
    add(
        "--latency-max",
        type=positive_float,
        help="batch-1 latency budget in ms on this CPU (ONNX Runtime, one thread, measured per "
        "trial in about a second); slower candidates are recorded infeasible without training",
    )
    add(
        "--objectives",
        choices=OBJECTIVES,
        default=OBJECTIVES[0],
        help="maximise F1 and minimise MACs, or batch-1 latency on this CPU in ms (measured per "
        "trial, see --latency-max) (default: %(default)s)",
    )
    add(
        "--bands",
        type=_bands,
        help="MACs ceilings of band studies run after this one: the same search, --trials "
        "trials each, under the ceiling, in the same storage, named <study-name>-<ceiling>; "
        "export and finalize take their fronts beside this study's ('none': no band; default: "
        f"{','.join(map(str, DEFAULT_BANDS))}, those under --macs-max)",
    )
    parser.set_defaults(data=DEFAULT_DATA)
    add(
        "--epochs",
        type=positive_int,
        default=DEFAULT_EPOCHS,
        help="per-trial epochs (%(default)s)",
    )
    add(
        "--startup-trials",
        type=non_negative_int,
        help="a new study's first trials, drawn at random and spread evenly over log-MACs "
        "(no training to pick them) so that the sampler sees the cheap end of the front too; "
        "0 leaves the start to the sampler (default: a tenth of --trials, at most "
        f"{MAX_STARTUP_TRIALS} and at least 2)",
    )
    add(
        "--img-size",
        type=positive_int,
        help="IMG_SIZE for every trial (default: sampled from the space's img_size_choices)",
    )
    parser.set_defaults(train_fraction=DEFAULT_TRAIN_FRACTION, score_epochs=DEFAULT_SCORE_EPOCHS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or resume) the study and print the Pareto front and where to look at it."""
    args = parse_args(argv)
    return exit_on_user_error(lambda: _search(args, argv), args.debug)


def band_studies(args: argparse.Namespace) -> dict[str, int]:
    """The band studies to run after this one: name -> MACs ceiling, highest first."""
    if args.bands is None:
        ceilings = [m for m in DEFAULT_BANDS if m < args.macs_max]
    else:
        over = [m for m in args.bands if m >= args.macs_max]
        if over:
            raise UserError(
                f"--bands {over[0]} is not under --macs-max {args.macs_max}: a band "
                "searches below the study's own MACs budget"
            )
        ceilings = list(args.bands)
    return {f"{args.study_name}-{m / 1e6:g}M": m for m in sorted(set(ceilings), reverse=True)}


def _search(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """Check every input, then run the study and its bands; the data is decoded once the
    storage is usable."""
    bands = band_studies(args) if args.worker_label is None else {}
    code = _search_one(args, argv, bands)
    if code != 0 or not bands:
        return code
    argv = list(sys.argv[1:] if argv is None else argv)
    storage = args.storage or default_storage(args.study_name)
    for name, ceiling in bands.items():
        print(f"\nband study {name!r}: the same search under {ceiling:,} MACs")
        band_argv = [
            *argv,
            "--study-name",
            name,
            "--macs-max",
            str(ceiling),
            "--bands",
            "none",
            "--storage",
            storage,
            "--band-of",
            args.study_name,
        ]
        code = _search_one(parse_args(band_argv), band_argv, {})
        if code != 0:
            return code
    print("\n".join(_merged_front_lines(args.study_name, storage)))
    return 0


def _merged_front_lines(study_name: str, storage: str) -> list[str]:
    """The models the study and its bands hand over: what export and finalize take."""
    study, bands = open_with_bands(study_name, storage)
    front = front_entries(study, bands=bands)
    width = max([6, *(len(e.label) for e in front)])
    lines = [
        f"Handed over by {study_name!r} and its band studies "
        f"({', '.join(repr(b.study_name) for b in bands)}): each study's Pareto front, "
        "and gaps in the MACs range filled, best F1 first:",
        f"  {'trial':>{width}} {'F1':>6} {'MACs':>12} {'params':>10}  picked",
    ]
    for e in front:
        lines.append(
            f"  {e.label:>{width}} {e.f1:>6.3f} {e.macs:>12,} {e.params:>10,}  {e.picked}"
        )
    where = f"--study-name {shlex.quote(study_name)} --storage {shlex.quote(storage)}"
    return [
        *lines,
        f"export:    python -m search.export {where}",
        f"finalize:  python -m search.finalize {where}",
    ]


def _search_one(
    args: argparse.Namespace, argv: Sequence[str] | None, bands: dict[str, int]
) -> int:
    """Run (or resume) one study; `bands` are recorded on it for export and finalize."""
    cfg = data_config(args)
    bounds = load_architecture_bounds(args.space)
    if args.img_size is not None:
        bounds = dataclasses.replace(bounds, img_sizes=(args.img_size,))
    check_sizes(bounds, cfg.img_size)
    check_img_sizes(cfg, bounds.img_sizes, args.space)
    trial_budget = budget(args)
    objective = args.objectives.split(",")[1]
    rule = stopper(args)
    if rule is not None:
        rule = dataclasses.replace(rule, cost_attr=COST_OBJECTIVES[objective])

    def make_objective() -> ArchitectureObjective:
        return ArchitectureObjective(  # each size is decoded once, when a trial first needs it
            bounds,
            cfg,
            SplitsCache(cfg),
            trial_budget,
            macs_max=args.macs_max,
            params_max=args.params_max,
            latency_max=args.latency_max,
            objective=objective,
            stopper=rule,
        )

    names = ("f1", COST_OBJECTIVES[objective])

    def open_fn(*given: object, **options: object) -> optuna.Study:
        study = open_study(*given, metric_names=names, **options)  # type: ignore[arg-type]
        add_bands(study, bands)
        if study.user_attrs.get(MACS_MAX_ATTR) != args.macs_max:  # export covers up to it
            study.set_user_attr(MACS_MAX_ATTR, args.macs_max)
        return study

    return run_search(args, open_fn, make_objective, MODULE, argv, start=_starter(args))


def default_startup_trials(trials: int) -> int:
    """A tenth of the trials, at most MAX_STARTUP_TRIALS, and at least two (or every trial of a
    shorter study): without a spread start, a small study under a low ceiling draws mostly
    candidates over it, and trains nothing."""
    return min(trials, max(2, min(MAX_STARTUP_TRIALS, trials // 10)))


def _starter(
    args: argparse.Namespace,
) -> Callable[[optuna.Study, ArchitectureObjective], None] | None:
    """What a new study starts with: --startup-trials architectures spread over log-MACs."""
    count = args.startup_trials
    if count is None:
        count = default_startup_trials(args.trials)
    if count == 0:
        return None

    def start(study: optuna.Study, objective: ArchitectureObjective) -> None:
        began = time.monotonic()
        picks = spread_over_cost(objective.draw_cost, count, seed=study_seed(args))
        enqueue_startup(study, picks)
        if picks:
            macs = [value for _, value in picks]
            print(
                f"startup: {len(picks)} trials spread over {min(macs) / 1e6:.2f}M-"
                f"{max(macs) / 1e6:.2f}M MACs (picked from random draws in "
                f"{time.monotonic() - began:.0f} s, none trained)"
            )

    return start


if __name__ == "__main__":
    sys.exit(main())

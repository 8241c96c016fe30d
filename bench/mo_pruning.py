"""Does Pareto early stopping pay? The same architecture study with and without it.

Both arms run the architecture study (same space, sampler, seed, data, per-trial budget and
wall-clock budget) on the real data, one after the other in this process; only the stopping rule
differs. Printed per arm: trials finished (completed + stopped early), epochs trained, wall and
CPU seconds, trials finished per CPU-hour, and the hypervolume of the final feasible front
(search/front/_hypervolume.py). Then the two ratios the early-stopping issue sets targets for:

    trials per CPU-hour, with / without     target >= 2
    hypervolume of the front, with / without  target >= 0.95

CPU time (this process, all threads) is the fair denominator on a shared machine: other jobs
slow the wall clock of one arm without costing it CPU. Run from the repository root:

    python bench/mo_pruning.py [--budget 600] [--seed 0] [--threads N] [--out DIR]
    python bench/mo_pruning.py --replay DIR/without-seed0.db [--rungs 2 4] [--worst-fraction F]

Each arm writes its study to DIR/<arm>-seed<seed>.db (replaced on every run) so it can be
opened with optuna-dashboard or exported afterwards. Last, the rule is replayed on the baseline's
own trials (see `replay`): the hypervolume it would keep on identical trials, free of the
sampler's luck. `--replay` does only that, on a finished study, to try other rule settings
without training anything.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from runner.data.config import DataConfig
from runner.data.sources import load_data
from runner.data.splits_cache import SplitsCache
from search import architecture
from search.front import (
    DEFAULT_MIN_PEERS,
    DEFAULT_WORST_FRACTION,
    ParetoStopper,
    hypervolume,
    is_feasible,
    pareto_front,
)
from search.objectives import TRIAL_ERRORS, ArchitectureObjective, TrialBudget
from search.study import make_sampler, open_study, print_trial_line, run_study
from space.search_bounds import ArchitectureBounds, load_architecture_bounds

ARMS = ("without", "with")  # the baseline first: the ratios divide "with" by "without"
TRIAL_CAP = 100_000  # by default the wall-clock budget, not a trial count, ends each arm
TARGET_RATE_RATIO, TARGET_HV_RATIO = 2.0, 0.95


@dataclasses.dataclass(frozen=True)
class ArmResult:
    """What one arm produced within the budget."""

    arm: str
    completed: int
    stopped: int
    failed: int
    epochs: int
    wall_seconds: float
    cpu_seconds: float
    front: list[tuple[float, int]]
    trials: list[FrozenTrial] = dataclasses.field(repr=False)

    @property
    def finished(self) -> int:
        return self.completed + self.stopped

    @property
    def per_cpu_hour(self) -> float:
        return self.finished / (self.cpu_seconds / 3600.0)

    @property
    def hypervolume(self) -> float:
        return hypervolume(self.front)


def label(stopper: ParetoStopper) -> str:
    """The rule's settings in a line: 'rungs (2, 4), worst fraction 0.67, min peers 4'."""
    return (
        f"rungs {stopper.rungs}, worst fraction {stopper.worst_fraction:.2f}, "
        f"min peers {stopper.min_peers}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The study options default to `python -m search.architecture`'s own defaults: the bench
    measures the rule as the product ships it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--budget", type=float, default=600.0, help="wall-clock seconds per arm (%(default)s)")
    add("--data", help="data YAML")
    add("--space", help="architecture space bounds YAML")
    add("--seed", type=int, help="sampler and training seed")
    add("--sampler", choices=("tpe", "nsga2", "random"))
    add("--epochs", type=int, help="per-trial epochs")
    add("--trial-seconds", type=float, help="per-trial training time cap")
    add("--train-fraction", type=float, help="share of the train split per trial")
    add("--img-size", type=int, help="IMG_SIZE of every trial (default: sampled)")
    add("--score-epochs", type=int, help="a trial's F1: mean of its last this many epochs")
    add("--rungs", type=int, nargs="+", help="rung epochs")
    add("--worst-fraction", type=float, default=DEFAULT_WORST_FRACTION)
    add("--min-peers", type=int, default=DEFAULT_MIN_PEERS)
    add(
        "--max-trials",
        type=int,
        default=TRIAL_CAP,
        help="also end an arm after this many finished trials (default: no cap)",
    )
    add("--threads", type=int, help="torch CPU threads (default: all cores)")
    add("--out", type=Path, default=Path("studies/mo_pruning_bench"), help="study files")
    add(
        "--replay",
        type=Path,
        metavar="DB",
        help="train nothing: replay the rule on a SQLite file holding one study that ran "
        "without early stopping (e.g. DIR/without-seed0.db)",
    )
    study = architecture.parse_args([])
    parser.set_defaults(
        data=study.data,
        space=study.space,
        seed=study.seed,
        sampler=study.sampler,
        epochs=study.epochs,
        trial_seconds=study.trial_seconds,
        img_size=study.img_size,
        train_fraction=study.train_fraction,
        rungs=list(study.early_stop_rungs),
        score_epochs=study.score_epochs,
    )
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error(f"--budget must be > 0 seconds, got {args.budget}")
    if args.max_trials < 1:
        parser.error(f"--max-trials must be >= 1, got {args.max_trials}")
    return args


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything both arms share; only the stopper differs between them."""

    cfg: DataConfig
    bounds: ArchitectureBounds
    budget: TrialBudget
    data: SplitsCache
    stopper: ParetoStopper


def run_arm(arm: str, setup: Setup, args: argparse.Namespace) -> ArmResult | None:
    """One study from scratch under the wall-clock budget; None when interrupted (Ctrl-C)."""
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{arm}-seed{args.seed}.db"
    path.unlink(missing_ok=True)  # a fresh study: the arms must not resume an older run
    sampler = make_sampler(args.sampler, args.seed)
    study = open_study(f"mo_pruning_{arm}", f"sqlite:///{path}", sampler)
    stopper = setup.stopper if arm == "with" else None
    objective = ArchitectureObjective(
        setup.bounds, setup.cfg, setup.data, setup.budget, stopper=stopper
    )
    rule = label(stopper) if stopper else "off"
    print(f"--- arm {arm!r}, early stopping {rule}; study {path}", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    interrupted = run_study(
        study,
        objective,
        trials=args.max_trials,
        timeout=args.budget,
        catch=TRIAL_ERRORS,
        callbacks=[print_trial_line],
    ).interrupted
    if interrupted:
        return None
    return summarise(arm, study, time.perf_counter() - wall, time.process_time() - cpu)


def summarise(arm: str, study: optuna.Study, wall: float, cpu: float) -> ArmResult:
    """Counts, epochs trained and the feasible front of one finished arm."""
    trials = study.get_trials()
    states = Counter(t.state for t in trials)
    epochs = sum(len(t.user_attrs.get("f1_history", [])) for t in trials)
    front = [(float(t.values[0]), int(t.user_attrs["macs"])) for t in pareto_front(study)]
    stops = Counter(
        t.user_attrs.get("pruned_at_epoch") for t in trials if t.state == TrialState.PRUNED
    )
    print(f"arm {arm!r}: stopped per rung epoch {dict(sorted(stops.items()))}")
    return ArmResult(
        arm,
        states[TrialState.COMPLETE],
        states[TrialState.PRUNED],
        states[TrialState.FAIL],
        epochs,
        wall,
        cpu,
        front,
        trials,
    )


def report(results: Sequence[ArmResult]) -> list[str]:
    """The per-arm table, both fronts and the two ratios against their targets."""
    lines = [
        f"{'arm':>8} {'done':>5} {'stopped':>7} {'failed':>6} {'epochs':>6} {'wall s':>7} "
        f"{'CPU s':>7} {'trials/CPU-h':>12} {'HV':>7}"
    ]
    for r in results:
        lines.append(
            f"{r.arm:>8} {r.completed:>5} {r.stopped:>7} {r.failed:>6} {r.epochs:>6} "
            f"{r.wall_seconds:>7.0f} {r.cpu_seconds:>7.0f} {r.per_cpu_hour:>12.1f} "
            f"{r.hypervolume:>7.4f}"
        )
    for r in results:
        front = ", ".join(f"({f1:.3f}, {macs / 1e6:.2f}M)" for f1, macs in r.front)
        lines.append(f"front {r.arm}: {front or 'empty'}")
    base, stop = results
    rate = stop.per_cpu_hour / base.per_cpu_hour
    hv = stop.hypervolume / base.hypervolume if base.hypervolume > 0 else float("nan")
    lines.append(
        f"trials per CPU-hour, with / without: {rate:.2f} (target >= {TARGET_RATE_RATIO})"
    )
    lines.append(f"hypervolume, with / without: {hv:.3f} (target >= {TARGET_HV_RATIO})")
    return lines


@dataclasses.dataclass(frozen=True)
class Replay:
    """The rule replayed on a run without it: which trials it would have stopped, and the cost."""

    stopped: dict[int, int]  # trial number -> epoch it would have stopped at
    epochs_kept: int
    epochs_all: int
    hv_kept: float
    hv_all: float
    seconds_kept: float
    seconds_all: float

    def lines(self, stopper: ParetoStopper) -> list[str]:
        at = Counter(self.stopped.values())
        speedup = self.seconds_all / max(self.seconds_kept, 1e-9)
        return [
            f"replay of {label(stopper)} on the run without it: would stop "
            f"{len(self.stopped)} trials (per rung epoch {dict(sorted(at.items()))}), "
            f"train {self.epochs_kept} of "
            f"{self.epochs_all} epochs, keep hypervolume {self.hv_kept:.4f} of "
            f"{self.hv_all:.4f} ({self.hv_kept / max(self.hv_all, 1e-12):.3f})",
            f"replay: the same trials in {self.seconds_kept:.0f} s instead of "
            f"{self.seconds_all:.0f} s: about {speedup:.2f} times the trials per hour",
        ]


def trial_seconds(trial: FrozenTrial, epochs: int) -> float:
    """The trial's wall seconds had it trained only `epochs` epochs: the epochs after those are
    taken off at its mean epoch time (train_seconds / epochs run); 0 for unfinished trials."""
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    total = (trial.datetime_complete - trial.datetime_start).total_seconds()
    history = trial.user_attrs.get("f1_history", [])
    per_epoch = float(trial.user_attrs.get("train_seconds", 0.0)) / max(len(history), 1)
    return total - (len(history) - epochs) * per_epoch


def replay(trials: Sequence[FrozenTrial], stopper: ParetoStopper) -> Replay:
    """Apply the rule in trial order to the histories of a run that trained every trial.

    The same trials with and without the rule: this isolates what the rule itself costs in
    hypervolume from the sampler's luck, which the two-arm comparison cannot. As in a one-worker
    study, a trial's peers are the trials before it, cut where the rule stopped them.
    """
    seen: list[FrozenTrial] = []
    stopped: dict[int, int] = {}
    seconds = [0.0, 0.0]  # kept, all
    for trial in sorted(trials, key=lambda t: t.number):
        history = list(trial.user_attrs.get("f1_history", []))
        macs, cut = trial.user_attrs.get("macs"), len(history)
        for epoch, f1 in enumerate(history, 1):
            if macs is not None and stopper.decide(seen, trial.number, epoch, f1, macs).stop:
                stopped[trial.number], cut = epoch, epoch
                break
        view = copy.copy(trial)
        view.user_attrs = {**trial.user_attrs, "f1_history": history[:cut]}
        seen.append(view)
        seconds[0] += trial_seconds(trial, cut)
        seconds[1] += trial_seconds(trial, len(history))
    feasible = [t for t in trials if is_feasible(t)]
    kept = [t for t in feasible if t.number not in stopped]
    return Replay(
        stopped,
        sum(len(t.user_attrs["f1_history"]) for t in seen),
        sum(len(t.user_attrs.get("f1_history", [])) for t in trials),
        hypervolume([(t.values[0], t.values[1]) for t in kept]),
        hypervolume([(t.values[0], t.values[1]) for t in feasible]),
        *seconds,
    )


def make_setup(args: argparse.Namespace) -> Setup:
    """Read and check every input before any clock starts; decode the data once."""
    cfg = load_data(args.data)
    cfg = dataclasses.replace(cfg, seed=args.seed)
    bounds = load_architecture_bounds(args.space)
    if args.img_size is not None:
        bounds = dataclasses.replace(bounds, img_sizes=(args.img_size,))
    budget = TrialBudget(args.epochs, args.trial_seconds, args.train_fraction, args.score_epochs)
    stopper = ParetoStopper(tuple(args.rungs), args.worst_fraction, args.min_peers)
    data = SplitsCache(cfg)
    for size in bounds.img_sizes or (cfg.img_size,):
        data.get(size)
    return Setup(cfg, bounds, budget, data, stopper)


def replay_file(args: argparse.Namespace) -> int:
    """The --replay mode: try rule settings on a finished baseline without training anything."""
    if not args.replay.is_file():
        print(f"error: --replay {args.replay}: no such study file", file=sys.stderr)
        return 2
    try:
        stopper = ParetoStopper(tuple(args.rungs), args.worst_fraction, args.min_peers)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{args.replay}")
    print("\n".join(replay(study.get_trials(), stopper).lines(stopper)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the baseline arm, then the early-stopping arm, and print the comparison."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.replay is not None:
        return replay_file(args)
    try:
        setup = make_setup(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = []
    for arm in ARMS:
        result = run_arm(arm, setup, args)
        if result is None:
            print("interrupted; the finished trials are in the study files", file=sys.stderr)
            return 130
        results.append(result)
    print("\n".join(report(results)))
    print("\n".join(replay(results[0].trials, setup.stopper).lines(setup.stopper)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

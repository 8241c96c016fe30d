"""Does the study rank candidates the way full training does, on images it never saw?

From a finished study, trains a spread of its trials with the full recipe (the whole front, and
completed trials across the MACs range picked by a seeded draw per log-MACs bin) and scores each
on the data's test split: images held out of the study and of full training alike (test/<class>/
or TEST_RATIO; never the study's own val images). Prints Spearman and Kendall between the study's
objective and that F1, beside the naive proxies params and MACs as a floor, and full training's
own val F1 as a ceiling: how well one reading of the very same trained models predicts the other
on a test split this small, which no study objective can be expected to beat. The training goes
through search.finalize, so a rerun skips the models already trained. Run from the repo root:

    python -m search.architecture --test-ratio 0.2 --study-name fidelity
    python bench/fidelity.py --study-name fidelity [--models 20] [--recipe R.yaml] [--epochs N]

Anchors: reduced-training proxies reach Spearman 0.61 on NAS-Bench-201 (EcoNAS), the best zero-cost
proxy 0.82 (Abdelfattah et al., ICLR 2021); params alone is a strong baseline (ZiCo, ICLR 2023).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from runner.config import load_yaml_mapping
from search.export import study_folder_name
from search.finalize import FinalRow, train_entries
from search.front import FrontEntry, front_entries, is_feasible, kendall, spearman, trial_entry
from search.study import STORAGE_HELP, default_url, open_existing_study

HISTORY_TAIL = 3  # epochs the "mean of the last epochs" diagnostic averages


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--study-name", default="fidelity")
    add("--storage", help=STORAGE_HELP)
    add("--models", type=int, default=20, help="trials to train: the front, then a spread")
    add("--recipe", type=Path, help="data keys over each trial's recipe (as search.finalize)")
    add("--epochs", type=int, help="EPOCHS of full training (default: the recipe's)")
    add("--seed", type=int, default=0, help="seed of the draw across MACs bins")
    add("--shard", type=_shard, default=(0, 1), metavar="I/N",
        help="train only every N-th model from the I-th (0-based), e.g. 0/2 and 1/2 in two "
        "processes; a run without --shard then trains nothing more and reports")  # fmt: skip
    add("--output", type=Path, default=Path("runs"),
        help="run folders: OUTPUT/<study>/<rank>-trial<N>/, shared with search.finalize "
        "(default: %(default)s)")  # fmt: skip
    return parser.parse_args(argv)


def _shard(text: str) -> tuple[int, int]:
    """'1/2' -> (1, 2) for --shard."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/2, got {text!r}") from e
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return index, count


def trained(study: optuna.Study) -> list[FrozenTrial]:
    """Feasible completed trials that trained themselves (a twin repeats another's result)."""
    return [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if is_feasible(t) and "twin_of" not in t.user_attrs and "f1_history" in t.user_attrs
    ]  # fmt: skip


def pick_spread(study: optuna.Study, count: int, seed: int) -> list[FrontEntry]:
    """The front (ranked as search.finalize ranks it, so its run folders are shared), then
    one seeded pick per equal-count bin of log MACs among the other trained trials."""
    front = front_entries(study)
    on_front = {e.number for e in front}
    rest = sorted((t for t in trained(study) if t.number not in on_front),
                  key=lambda t: t.user_attrs["macs"])  # fmt: skip
    need = max(0, count - len(front))
    if need > len(rest):
        raise SystemExit(f"study {study.study_name!r} has {len(rest) + len(front)} trained "
                         f"trials; --models {count} needs more: run the study longer")  # fmt: skip
    rng = random.Random(seed)
    edges = [round(i * len(rest) / need) for i in range(need + 1)] if need else [0]
    bins = zip(edges[:-1], edges[1:], strict=True)
    picks = [rest[rng.randrange(lo, hi)] for lo, hi in bins if hi > lo]
    return front + [trial_entry(len(front) + i, t) for i, t in enumerate(picks, start=1)]


def tail_mean(trial: FrozenTrial) -> float:
    """Mean validation F1 of the trial's last epochs (a lower-noise reading of the same run)."""
    history = trial.user_attrs["f1_history"]
    return sum(history[-HISTORY_TAIL:]) / len(history[-HISTORY_TAIL:])


PROXIES: dict[str, Callable[[FrozenTrial], float]] = {
    "study objective (F1)": lambda t: float(t.values[0]),
    f"mean val F1 of the last {HISTORY_TAIL} epochs": tail_mean,
    "params": lambda t: float(t.user_attrs["params"]),
    "MACs": lambda t: float(t.user_attrs["macs"]),
}


def report(trials: Sequence[FrozenTrial], rows: Sequence[FinalRow]) -> list[str]:
    """The per-trial table and each proxy's rank correlation with the full-training F1."""
    final = [r.final_f1 for r in rows]
    where = "test" if rows[0].test_f1 is not None else "val (no test split!)"
    lines = [f"{'trial':>6} {'MACs':>11} {'params':>9} {'study F1':>8} {'full val':>8} "
             f"{'full test':>9}"]  # fmt: skip
    for r in sorted(rows, key=lambda r: r.macs):
        test = "-" if r.test_f1 is None else f"{r.test_f1:.4f}"
        lines.append(f"{r.trial:>6} {r.macs:>11,} {r.params:>9,} {r.study_f1:>8.4f} "
                     f"{r.val_f1:>8.4f} {test:>9}")  # fmt: skip
    lines.append(f"rank correlation with the F1 after full training on {where} "
                 f"({len(rows)} models):")  # fmt: skip
    readings = {name: [proxy(t) for t in trials] for name, proxy in PROXIES.items()}
    if rows[0].test_f1 is not None:  # the ceiling: full training's own val against its test
        readings["full-training val F1 (ceiling)"] = [r.val_f1 for r in rows]
    for name, values in readings.items():
        rho, tau = spearman(values, final), kendall(values, final)
        lines.append(f"  {name:<32} Spearman {rho:+.3f}  Kendall {tau:+.3f}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_existing_study(args.study_name, args.storage or default_url(args.study_name))
    entries = pick_spread(study, args.models, args.seed)
    trials = [study.trials[e.number] for e in entries]
    recipe = load_yaml_mapping(args.recipe, "recipe YAML") if args.recipe else {}
    folder = args.output / study_folder_name(study.study_name)
    index, count = args.shard
    if count > 1:
        mine = entries[index::count]
        train_entries(
            mine, recipe, folder, epochs=args.epochs, source=str(args.recipe or "recipe")
        )
        print(f"shard {index}/{count}: {len(mine)} of {len(entries)} models trained; run "
              "without --shard to report")  # fmt: skip
        return 0
    rows = train_entries(entries, recipe, folder, epochs=args.epochs,
                         source=str(args.recipe or "recipe"))  # fmt: skip
    if any(r.test_f1 is None for r in rows):
        print("warning: the study's data has no test split, so full training is scored on val, "
              "which the study saw: run the study with --test-ratio 0.2",
              file=sys.stderr)  # fmt: skip
    print("\n".join(report(trials, rows)))
    spread = max(r.final_f1 for r in rows) - min(r.final_f1 for r in rows)
    low, high = min(r.macs for r in rows), max(r.macs for r in rows)
    print(f"full-training F1 spans {spread:.3f} over the {len(rows)} models "
          f"(MACs {low:,} .. {high:,}, {math.log10(high / low):.1f} decades)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does the study rank candidates the way full training does, on images it never saw?

From a finished study, trains a spread of its trials with the full recipe (the whole front, and
completed trials across the MACs range picked by a seeded draw per log-MACs bin) and scores each
on the data's test split: images held out of the study and of full training alike (test/<class>/
or TEST_RATIO; never the study's own val images). Prints Spearman and Kendall between the study's
objective and that F1, beside the naive proxies params and MACs as a floor, and full training's
own val F1 as a ceiling: how well one reading of the very same trained models predicts the other
on a test split this small, which no study objective can be expected to beat. Resampling the
test images (bootstrap) gives each Spearman its spread and the objective's lead over each floor a
95% interval. The training goes through search.finalize, so a rerun skips the models already
trained. Run from the repo root (the default study holds a fifth of train/ out as test):

    python -m search.architecture --study-name fidelity
    python bench/fidelity.py --study-name fidelity [--models 20] [--recipe R.yaml] [--epochs N]

Anchors: reduced-training proxies reach Spearman 0.61 on NAS-Bench-201 (EcoNAS), the best zero-cost
proxy 0.82 (Abdelfattah et al., ICLR 2021); params alone is a strong baseline (ZiCo, ICLR 2023).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from runner.config import load_yaml_mapping
from runner.fit import predict
from runner.metrics import macro_f1
from runner.rundir import RunDir, load_trained_model
from runner.splits_cache import SplitsCache
from search.export import study_folder_name
from search.finalize import FinalRow, table_lines, train_entries
from search.front import FrontEntry, front_entries, is_feasible, kendall, spearman, trial_entry
from search.study import STORAGE_HELP, default_url, open_existing_study

HISTORY_TAIL = 3  # epochs the "mean of the last epochs" diagnostic averages
BOOTSTRAP_DRAWS = 1000  # resamples of the test images behind each 95% interval


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


@dataclasses.dataclass(frozen=True)
class TestPredictions:
    """Every model's predicted class for each test image, and the true labels."""

    preds: list[torch.Tensor]
    labels: torch.Tensor
    num_classes: int

    def resampled_f1(self, draws: int, seed: int) -> list[list[float]]:
        """Each model's macro F1 on `draws` bootstrap resamples of the test images."""
        gen = torch.Generator().manual_seed(seed)
        n = len(self.labels)
        samples = []
        for _ in range(draws):
            idx = torch.randint(n, (n,), generator=gen)
            samples.append([macro_f1(self.labels[idx], p[idx], self.num_classes)
                            for p in self.preds])  # fmt: skip
        return samples


def test_predictions(rows: Sequence[FinalRow]) -> TestPredictions:
    """Predict the test split with each run's best.pt (as its test_f1 was scored)."""
    runs = [RunDir(Path(r.run)) for r in rows]
    data = SplitsCache(runs[0].data_config())
    preds, labels, classes = [], None, 0
    for run in runs:
        model, names, cfg = load_trained_model(run)
        splits = data.get(cfg.img_size)
        preds.append(predict(model, splits.test_x, torch.device("cpu")))
        labels, classes = splits.test_y, len(names)
    assert labels is not None
    return TestPredictions(preds, labels, classes)


@dataclasses.dataclass(frozen=True)
class Spread:
    """How far each Spearman moves when the test images are resampled: its standard deviation,
    and a 95% interval of the study objective's lead over each naive proxy. The lead is paired
    (the same resamples on both sides), so the extra noise resampling adds cancels out of it."""

    sd: dict[str, float]
    lead: dict[str, tuple[float, float]]


def bootstrap(readings: dict[str, list[float]], samples: Sequence[Sequence[float]]) -> Spread:
    """The Spread of `readings` (the study objective first) over resampled test F1s."""
    rhos = {name: [spearman(v, f1) for f1 in samples] for name, v in readings.items()}
    objective = rhos[next(iter(readings))]
    lo, hi = round(0.025 * (len(samples) - 1)), round(0.975 * (len(samples) - 1))
    lead = {}
    for floor in ("params", "MACs"):
        gaps = sorted(a - b for a, b in zip(objective, rhos[floor], strict=True))
        lead[floor] = (gaps[lo], gaps[hi])
    return Spread({name: statistics.pstdev(r) for name, r in rhos.items()}, lead)


def report(
    trials: Sequence[FrozenTrial], rows: Sequence[FinalRow],
    samples: Sequence[Sequence[float]] = (),
) -> list[str]:  # fmt: skip
    """The per-trial table and each proxy's rank correlation with the full-training F1; with
    bootstrap samples of the test F1, how far each moves and the objective's lead."""
    final = [r.final_f1 for r in rows]
    where = "test" if rows[0].test_f1 is not None else "val (no test split!)"
    lines = table_lines(rows)  # finalize's table: the same rows, the same columns
    lines.append(f"rank correlation with the F1 after full training on {where} "
                 f"({len(rows)} models):")  # fmt: skip
    readings = {name: [proxy(t) for t in trials] for name, proxy in PROXIES.items()}
    if rows[0].test_f1 is not None:  # the ceiling: full training's own val against its test
        readings["full-training val F1 (ceiling)"] = [r.val_f1 for r in rows]
    spread = bootstrap(readings, samples) if samples else None
    for name, values in readings.items():
        rho, tau = spearman(values, final), kendall(values, final)
        sd = f" (sd {spread.sd[name]:.2f})" if spread else ""
        lines.append(f"  {name:<32} Spearman {rho:+.3f}{sd}  Kendall {tau:+.3f}")
    if spread:
        lines.append(f"over {len(samples)} resamples of the test images (sd above), the study "
                     "objective's lead in Spearman over the floor, 95% interval:")  # fmt: skip
        for floor, (low, high) in spread.lead.items():
            lines.append(f"  over {floor:<27} [{low:+.2f}, {high:+.2f}]")
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
    samples = []
    if all(r.test_f1 is not None for r in rows):
        samples = test_predictions(rows).resampled_f1(BOOTSTRAP_DRAWS, args.seed)
    print("\n".join(report(trials, rows, samples)))
    spread = max(r.final_f1 for r in rows) - min(r.final_f1 for r in rows)
    low, high = min(r.macs for r in rows), max(r.macs for r in rows)
    print(f"full-training F1 spans {spread:.3f} over the {len(rows)} models "
          f"(MACs {low:,} .. {high:,}, {math.log10(high / low):.1f} decades)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does the study rank candidates the way full training does, on images it never saw?

From a finished study, trains a spread of its trials with the full recipe (the whole front, merged
with its band studies' as search.finalize merges it, and the study's other completed trials across
the MACs range picked by a seeded draw per log-MACs bin) and scores each
on the data's test split: images held out of the study and of full training alike (test/<class>/
or TEST_RATIO; never the study's own val images). Prints Spearman and Kendall between the study's
objective and that F1, beside the naive proxies params and MACs as a floor, and full training's
own val F1 as a ceiling: how well one reading of the very same trained models predicts the other
on a test split this small, which no study objective can be expected to beat. Resampling the
test images (bootstrap) gives each Spearman its spread and the objective's lead over each floor a
95% interval. Across decades of MACs any proxy that knows size ranks well, so each reading is also
scored on the pairs of models at matched cost (within MATCHED_COST x MACs of each other): the
share it orders as full training does, where 0.5 is a coin. The training goes through
search.finalize, so a rerun skips the models already trained. Run from the repo root (the
default study holds a fifth of train/ out as test):

    python -m search.architecture --study-name fidelity
    python bench/fidelity.py --study-name fidelity [--models 20] [--recipe R.yaml] [--epochs N]

Another trial objective is judged against the study's on the very same models and test images:
--variants 1:10 0:20 retrains every picked trial with its trial recipe under seed 1 for 10 epochs
(a second seed) and under seed 0 for 20 (twice the budget), scores each as the study would (mean
F1 of the last epochs), and reports each reading's Spearman and its paired bootstrap lead, as well
as the mean of the study's run and a second seed's.

Anchors: reduced-training proxies reach Spearman 0.61 on NAS-Bench-201 (EcoNAS), the best zero-cost
proxy 0.82 (Abdelfattah et al., ICLR 2021); params alone is a strong baseline (ZiCo, ICLR 2023).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import math
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from litenas.resources import config_file
from runner.data.splits_cache import SplitsCache
from runner.files import write_text_atomic
from runner.training.loop import predict
from runner.training.metrics import macro_f1
from runner.training.rundir import RunDir, load_trained_model
from search.finalize import FinalRow, table_lines, train_entries
from search.front import (
    FrontEntry,
    front_entries,
    is_feasible,
    kendall,
    safe_folder_name,
    spearman,
    trial_entry,
    trial_folder,
)
from search.full_recipe import FULL_TRAINING, RECIPE_HELP, FullRecipe
from search.objectives import tail_mean, train_like
from search.study import STORAGE_HELP, default_url, open_with_bands

BOOTSTRAP_DRAWS = 1000  # resamples of the test images behind each 95% interval
# Two models within this MACs ratio are "at matched cost": a search must tell them apart by
# accuracy, and size alone says little about which is better.
MATCHED_COST = 2.0
OBJECTIVE = "study objective (F1)"
VARIANTS = "variants"  # in the study's run folder: one JSON F1 history per variant run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--study-name", default="fidelity")
    add("--storage", help=STORAGE_HELP)
    add("--models", type=int, default=20, help="trials to train: the front, then a spread")
    add("--recipe", type=config_file, default=FULL_TRAINING, help=RECIPE_HELP)
    add("--epochs", type=int, help="EPOCHS of full training (default: the recipe's)")
    add("--seed", type=int, default=0, help="seed of the draw across MACs bins")
    add(
        "--variants",
        type=_variant,
        nargs="+",
        default=[],
        metavar="SEED:EPOCHS",
        help="also retrain each model with its trial recipe under this seed and epoch budget "
        "(e.g. 1:10 0:20) and rank by it beside the study objective",
    )
    add(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="I/N",
        help="train only every N-th model from the I-th (0-based), e.g. 0/2 and 1/2 in two "
        "processes; a run without --shard then trains nothing more and reports",
    )
    add(
        "--output",
        type=Path,
        default=Path("runs"),
        help="run folders: OUTPUT/<study>/<rank>-trial<N>/, shared with search.finalize "
        "(default: %(default)s)",
    )
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


@dataclasses.dataclass(frozen=True)
class Variant:
    """Another reading of a trial: its recipe trained under another seed or epoch budget."""

    seed: int
    epochs: int

    @property
    def name(self) -> str:
        return f"seed {self.seed}, {self.epochs} epochs"

    def file(self, trial: FrozenTrial, band: str = "") -> str:
        """<trial_folder>-seed<S>-<E>ep.json: trial<N>, or <band study>-trial<N>, first."""
        return f"{trial_folder(trial.number, band)}-seed{self.seed}-{self.epochs}ep.json"


def _variant(text: str) -> Variant:
    """'1:10' -> Variant(seed=1, epochs=10) for --variants."""
    try:
        seed, epochs = (int(part) for part in text.split(":"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected SEED:EPOCHS such as 1:10, got {text!r}") from e
    if seed < 0 or epochs < 1:
        raise argparse.ArgumentTypeError(f"need SEED >= 0 and EPOCHS >= 1, got {text!r}")
    return Variant(seed, epochs)


def train_variants(
    trials: Sequence[FrozenTrial],
    variants: Sequence[Variant],
    folder: Path,
    train: Callable[..., Sequence[Any]] = train_like,
    bands: Sequence[str] | None = None,
) -> None:
    """Train each trial (of the band study `bands[i]`, or of the study) under each variant into
    folder/trial<N>-seed<S>-<E>ep.json (its F1 per epoch); one already there is skipped, so
    shards share the work and an interrupted bench resumes."""
    folder.mkdir(parents=True, exist_ok=True)
    for trial, band in zip(trials, bands or [""] * len(trials), strict=True):
        for variant in variants:
            path = folder / variant.file(trial, band)
            if not path.exists():
                history = train(trial, seed=variant.seed, epochs=variant.epochs)
                write_text_atomic(json.dumps([float(s.f1) for s in history]), path)


def variant_readings(
    trials: Sequence[FrozenTrial],
    variants: Sequence[Variant],
    folder: Path,
    bands: Sequence[str] | None = None,
) -> dict[str, list[float]]:
    """Each variant's score per trial; a variant that differs from the trial's run only in its
    seed also gives the mean of both seeds (what a second seed for every trial would score)."""
    readings = {}
    tags = bands or [""] * len(trials)
    for variant in variants:
        histories = [
            json.loads((folder / variant.file(t, b)).read_text())
            for t, b in zip(trials, tags, strict=True)
        ]
        scores = [
            tail_mean(h, int(t.user_attrs["budget"].get("score_epochs", 1)))
            for t, h in zip(trials, histories, strict=True)
        ]  # as the study scored t
        readings[variant.name] = scores
        if all(_differs_only_in_seed(t, variant) for t in trials):
            readings[f"mean of the study's and seed {variant.seed}"] = [
                (float(t.values[0]) + v) / 2 for t, v in zip(trials, scores, strict=True)
            ]
    return readings


def _differs_only_in_seed(trial: FrozenTrial, variant: Variant) -> bool:
    budget = trial.user_attrs["budget"]
    return budget.get("epochs") == variant.epochs and trial.user_attrs.get("seed") != variant.seed


def trained(study: optuna.Study) -> list[FrozenTrial]:
    """Feasible completed trials that trained themselves (a twin repeats another's result)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if is_feasible(t) and "twin_of" not in t.user_attrs and "f1_history" in t.user_attrs
    ]


def pick_spread(
    study: optuna.Study, count: int, seed: int, bands: Sequence[optuna.Study] = ()
) -> list[FrontEntry]:
    """The front merged with the bands' (ranked as search.finalize ranks it, so its run folders
    are shared), then one seeded pick per equal-count bin of log MACs among the study's other
    trained trials."""
    front = front_entries(study, bands=bands)
    on_front = {e.number for e in front if not e.band}
    rest = sorted(
        (t for t in trained(study) if t.number not in on_front), key=lambda t: t.user_attrs["macs"]
    )
    need = max(0, count - len(front))
    if need > len(rest):
        raise SystemExit(
            f"study {study.study_name!r} has {len(rest) + len(front)} trained "
            f"trials; --models {count} needs more: run the study longer"
        )
    rng = random.Random(seed)
    edges = [round(i * len(rest) / need) for i in range(need + 1)] if need else [0]
    bins = zip(edges[:-1], edges[1:], strict=True)
    picks = [rest[rng.randrange(lo, hi)] for lo, hi in bins if hi > lo]
    return front + [trial_entry(len(front) + i, t) for i, t in enumerate(picks, start=1)]


PROXIES: dict[str, Callable[[FrozenTrial], float]] = {
    OBJECTIVE: lambda t: float(t.values[0]),
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
            samples.append(
                [macro_f1(self.labels[idx], p[idx], self.num_classes) for p in self.preds]
            )
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
    """How far each reading's statistic (Spearman, or the share of matched-cost pairs) moves
    when the test images are resampled: its standard deviation, and a 95% interval of the study
    objective's lead over each other reading. The lead is paired (the same resamples on both
    sides), so the extra noise resampling adds cancels out of it."""

    sd: dict[str, float]
    lead: dict[str, tuple[float, float]]


def matched_pairs(macs: Sequence[float], ratio: float = MATCHED_COST) -> list[tuple[int, int]]:
    """The pairs of models whose MACs lie within `ratio` of each other."""
    return [
        (i, j)
        for i, j in itertools.combinations(range(len(macs)), 2)
        if max(macs[i], macs[j]) <= ratio * min(macs[i], macs[j])
    ]


def pair_agreement(
    values: Sequence[float], final: Sequence[float], pairs: Sequence[tuple[int, int]]
) -> float:
    """The share of `pairs` that `values` orders as `final` does (a tie on either side counts
    half, as a coin would); nan without pairs."""
    if not pairs:
        return float("nan")
    agree = [
        0.5
        if values[i] == values[j] or final[i] == final[j]
        else float((values[i] > values[j]) == (final[i] > final[j]))
        for i, j in pairs
    ]
    return statistics.fmean(agree)


Statistic = Callable[[Sequence[float], Sequence[float]], float]


def bootstrap(
    readings: dict[str, list[float]],
    samples: Sequence[Sequence[float]],
    statistic: Statistic = spearman,
) -> Spread:
    """The Spread of `statistic` for `readings` (the study objective first) against resampled
    test F1s."""
    scores = {name: [statistic(v, f1) for f1 in samples] for name, v in readings.items()}
    objective = scores[next(iter(readings))]
    lo, hi = round(0.025 * (len(samples) - 1)), round(0.975 * (len(samples) - 1))
    lead = {}
    for other in list(readings)[1:]:
        gaps = sorted(a - b for a, b in zip(objective, scores[other], strict=True))
        lead[other] = (gaps[lo], gaps[hi])
    return Spread({name: statistics.pstdev(r) for name, r in scores.items()}, lead)


def report(
    trials: Sequence[FrozenTrial],
    rows: Sequence[FinalRow],
    samples: Sequence[Sequence[float]] = (),
    variants: dict[str, list[float]] | None = None,
) -> list[str]:
    """The per-trial table and each proxy's (and variant's) rank correlation with the
    full-training F1, then the share of the pairs at matched cost each orders as full training
    does; with bootstrap samples of the test F1, how far each moves and the objective's lead."""
    final = [r.final_f1 for r in rows]
    where = "test" if rows[0].test_f1 is not None else "val (no test split!)"
    lines = table_lines(rows)  # finalize's table: the same rows, the same columns
    lines.append(
        f"rank correlation with the F1 after full training on {where} ({len(rows)} models):"
    )
    readings = {name: [proxy(t) for t in trials] for name, proxy in PROXIES.items()}
    readings.update(variants or {})
    if rows[0].test_f1 is not None:  # the ceiling: full training's own val against its test
        readings["full-training val F1 (ceiling)"] = [r.val_f1 for r in rows]
    lines += _readings_lines(readings, final, samples, spearman, "Spearman", kendall)
    pairs = matched_pairs([r.macs for r in rows])
    if pairs:
        lines.append(
            f"at matched cost ({len(pairs)} pairs of models within {MATCHED_COST:g}x "
            "MACs of each other), the share of pairs ordered as full training orders "
            "them (0.5 is a coin):"
        )
        agreement = functools.partial(pair_agreement, pairs=pairs)
        lines += _readings_lines(readings, final, samples, agreement, "pairs", fmt=".2f")
    return lines


def _readings_lines(
    readings: dict[str, list[float]],
    final: Sequence[float],
    samples: Sequence[Sequence[float]],
    statistic: Statistic,
    label: str,
    also: Statistic | None = None,
    fmt: str = "+.3f",
) -> list[str]:
    """One line per reading with `statistic` against the full-training F1 (and `also`, as
    Kendall beside Spearman); with samples, its sd and the objective's lead over the others."""
    spread = bootstrap(readings, samples, statistic) if samples else None
    lines = []
    for name, values in readings.items():
        sd = f" (sd {spread.sd[name]:.2f})" if spread else ""
        extra = f"  Kendall {also(values, final):+.3f}" if also else ""
        lines.append(f"  {name:<34} {label} {statistic(values, final):{fmt}}{sd}{extra}")
    if spread:
        lines.append(
            f"over {len(samples)} resamples of the test images (sd above), the study "
            f"objective's lead in {label} over each, 95% interval:"
        )
        for other, (low, high) in spread.lead.items():
            lines.append(f"  over {other:<29} [{low:+.2f}, {high:+.2f}]")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, bands = open_with_bands(args.study_name, args.storage or default_url(args.study_name))
    entries = pick_spread(study, args.models, args.seed, bands)
    studies = {"": study, **{b.study_name: b for b in bands}}
    trials = [studies[e.band].trials[e.number] for e in entries]
    tags = [e.band for e in entries]
    recipe = FullRecipe.load(args.recipe, args.epochs)
    folder = args.output / safe_folder_name(study.study_name)
    index, count = args.shard
    if count > 1:
        mine = entries[index::count]
        train_entries(mine, recipe, folder)
        train_variants(
            trials[index::count], args.variants, folder / VARIANTS, bands=tags[index::count]
        )
        print(
            f"shard {index}/{count}: {len(mine)} of {len(entries)} models trained; run "
            "without --shard to report"
        )
        return 0
    rows = train_entries(entries, recipe, folder)
    if any(r.test_f1 is None for r in rows):
        print(
            "warning: the study's data has no test split, so full training is scored on val, "
            "which the study saw: run the study with --test-ratio 0.2",
            file=sys.stderr,
        )
    train_variants(trials, args.variants, folder / VARIANTS, bands=tags)
    variants = variant_readings(trials, args.variants, folder / VARIANTS, tags)
    samples = []
    if all(r.test_f1 is not None for r in rows):
        samples = test_predictions(rows).resampled_f1(BOOTSTRAP_DRAWS, args.seed)
    print("\n".join(report(trials, rows, samples, variants)))
    spread = max(r.final_f1 for r in rows) - min(r.final_f1 for r in rows)
    low, high = min(r.macs for r in rows), max(r.macs for r in rows)
    print(
        f"full-training F1 spans {spread:.3f} over the {len(rows)} models "
        f"(MACs {low:,} .. {high:,}, {math.log10(high / low):.1f} decades)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

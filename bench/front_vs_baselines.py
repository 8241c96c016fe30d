"""Does the search beat the hand-designed baselines? The study's front against them, same budget.

The shipped mobilenet_v3_small and shufflenet_v2_x0_5 YAMLs are trained with exactly the recipe
the study's trials had (data config, seed, per-trial budget, threads: read from the study), then
each is set beside the study's feasible Pareto front: which front trials dominate it (F1 >= and
MACs <=, one strictly), or that none does. Run from the repository root after a study:

    python bench/front_vs_baselines.py [--study-name architecture] [--storage URL]
        [--models configs/model/a.yaml ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import optuna

from search.front import dominates, hypervolume, pareto_front
from search.objectives import train_like
from search.study import STORAGE_HELP, default_url, open_existing_study
from space import build_model, count_cost

BASELINES = ("configs/model/mobilenet_v3_small.yaml", "configs/model/shufflenet_v2_x0_5.yaml")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study-name", default="architecture")
    parser.add_argument("--storage", help=STORAGE_HELP)
    parser.add_argument("--models", nargs="+", default=list(BASELINES), help="baseline YAMLs")
    parser.add_argument(
        "--img-size", type=int, help="baselines' IMG_SIZE (default: the study's largest)"
    )
    return parser.parse_args(argv)


def recipe_trial(study: optuna.Study, img_size: int | None) -> optuna.trial.FrozenTrial:
    """A trained trial whose stored recipe the baselines get: the trials share it but for the
    input size, which the architecture study samples; by default its largest size."""
    trained = [
        t
        for t in study.get_trials(deepcopy=False)
        if "budget" in t.user_attrs and t.user_attrs.get("per_class_f1")
    ]
    sizes = {t.user_attrs["img_size"] for t in trained}
    size = img_size or max(sizes, default=0)
    for trial in trained:
        if trial.user_attrs["img_size"] == size:
            return trial
    raise SystemExit(
        f"study {study.study_name!r} has no trained trial at IMG_SIZE {size} "
        f"(its trials' sizes: {sorted(sizes)})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_existing_study(args.study_name, args.storage or default_url(args.study_name))
    recipe = recipe_trial(study, args.img_size)
    img_size = recipe.user_attrs["img_size"]
    num_classes = len(recipe.user_attrs["per_class_f1"])
    front = [(t.number, t.values[0], t.user_attrs["macs"]) for t in pareto_front(study)]
    print(
        f"recipe of trial {recipe.number}: budget {recipe.user_attrs['budget']}, "
        f"{img_size} px, seed {recipe.user_attrs['seed']}"
    )
    print("front: " + ", ".join(f"trial {n} ({f1:.3f}, {macs:,})" for n, f1, macs in front))
    beaten = 0
    for path in args.models:
        start = time.perf_counter()
        history = train_like(recipe, path)
        tail = history[-int(recipe.user_attrs["budget"].get("score_epochs", 1)) :]
        f1 = sum(h.f1 for h in tail) / len(tail)  # scored as the study scores its trials
        macs = int(count_cost(build_model(path, num_classes=num_classes), img_size).macs)
        by = [f"trial {n} ({g:.3f}, {m:,})" for n, g, m in front if dominates((g, m), (f1, macs))]
        beaten += bool(by)
        verdict = f"dominated by {', '.join(by)}" if by else "NOT dominated by the front"
        seconds = time.perf_counter() - start
        print(
            f"{path}: F1 {f1:.3f}, MACs {macs:,} ({len(history)} epochs, {seconds:.0f} s): "
            f"{verdict}"
        )
    volume = hypervolume([(f1, macs) for _, f1, macs in front])
    print(f"{beaten} of {len(args.models)} baselines dominated; front hypervolume {volume:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does finalize hand over its front sooner with its models trained side by side?

Trains a finished study's handed-over models (the very entries search.finalize trains, with its
full recipe cut to --epochs) twice in one run, each time into a fresh folder: one after the other
with all of this process's torch threads, then with --workers processes sharing those threads out
(search.finalize --workers). Prints both wall times and their ratio, and per model the F1 each way
(the thread count changes the floating-point order, so they differ by training noise only).
Run from the repository root, on a machine doing nothing else:

    python bench/finalize_workers.py --study-name architecture \
        --storage sqlite:///studies/architecture.db [--epochs 10] [--models 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import torch

from search.finalize import FinalRow, train_entries
from search.front import front_entries
from search.full_recipe import FULL_TRAINING, FullRecipe
from search.study import open_with_bands


def timed(run: Callable[[], list[FinalRow]]) -> tuple[list[FinalRow], float]:
    """What run returns, and its wall seconds."""
    start = time.perf_counter()
    rows = run()
    return rows, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--study-name", required=True)
    add("--storage", required=True)
    add("--epochs", type=int, default=10, help="EPOCHS of each model (default: %(default)s)")
    add("--models", type=int, help="the first N handed-over models, best F1 first (default: all)")
    add("--workers", type=int, default=2, help="processes side by side (default: %(default)s)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, bands = open_with_bands(args.study_name, args.storage)
    entries = front_entries(study, bands=bands)[: args.models]
    recipe = FullRecipe.load(FULL_TRAINING, args.epochs)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        one, one_s = timed(lambda: train_entries(entries, recipe, Path(tmp) / "one"))
        side, side_s = timed(
            lambda: train_entries(entries, recipe, Path(tmp) / "side", workers=args.workers)
        )
    print(f"\n{len(entries)} models, {args.epochs} epochs each, {threads} torch threads in all")
    print(f"  {'trial':>24} {'MACs':>10} {'val F1 one':>10} {'val F1 side':>11}")
    for a, b in zip(one, side, strict=True):
        print(f"  {a.label:>24} {a.macs:>10,} {a.val_f1:>10.3f} {b.val_f1:>11.3f}")
    print(f"one after the other, {threads} threads: {one_s:7.1f} s")
    print(
        f"{args.workers} side by side, {max(1, threads // args.workers)} thread(s) each: "
        f"{side_s:7.1f} s"
    )
    print(f"speed-up: {one_s / side_s:.2f}x")


if __name__ == "__main__":
    main()

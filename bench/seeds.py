"""Does the default job hand over a good front whatever the seed? K seeds, side by side.

A study's path depends on its seed and on the floating-point order of the machine it runs on, so
one run says little about what a user gets. This runs the default job (`search.architecture`, then
`search.finalize`) once per seed, each in a folder of its own, and trains the hand-designed
baselines (mobilenet_v3_small and shufflenet_v2_x0_5) with the very recipe finalize uses, at the
same seed. Per seed, and as the minimum and median over seeds, it prints:

- the best test F1 of a finalized model at <= 0.4M, 1M and 2M MACs, and the test F1 of the model
  its val F1 picks there (what a user who never looks at test gets);
- the hypervolume of the finalized models' (test F1, MACs) points;
- the widest gap in the finalized front: the largest budget ratio with no model within 2x below it,
  from the cheapest model up to --macs-max;
- whether a finalized model dominates each baseline (test F1 >= and MACs <=, one strictly);
- the wall time of the search and of finalize.

A second table scores, on the same runs, what the 0.1.0 rule would have handed over: the studies'
fronts merged on the brief trial's F1 (a model dominated there by another study's was dropped).

Every step resumes: a finished search or finalize is not run again (the study and the run folders
stay), so an interrupted bench is rerun with the same command. Run from the repository root:

    python bench/seeds.py --seeds 0 1 2 --workers 2 --output bench/out/seeds/default
    python bench/seeds.py --seeds 0 1 2 --output bench/out/seeds/other -- --bands 400000,2000000

Arguments after `--` go to search.architecture; --epochs sets the EPOCHS of full training (finalize
and the baselines). With --workers W, W seeds run at once, each with --threads torch threads
(default: the cores shared out); the times are then those of a shared machine. --report-only
prints the table of what is there without training anything.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from search.front import dominates, hypervolume

REPO = Path(__file__).resolve().parents[1]
STUDY = "architecture"
BUDGETS = (400_000, 1_000_000, 2_000_000)
BASELINES = ("mobilenet_v3_small", "shufflenet_v2_x0_5")
BASELINE_IMG_SIZE = 64  # the baselines' input: the largest size the default space samples
DEFAULT_MACS_MAX = 6_000_000  # search.architecture's default --macs-max


@dataclass(frozen=True)
class Model:
    """One finalized model (a row of final.csv) or a trained baseline."""

    label: str
    macs: int
    val_f1: float
    test_f1: float
    study_f1: float | None = None  # the brief trial's F1 (None for a baseline)
    picked: str = "front"  # why finalize trained it: its study's front, or a gap fill


@dataclass
class SeedResult:
    """What one seed's job handed over and what it cost."""

    seed: int
    models: list[Model]
    baselines: list[Model]
    seconds: dict[str, float] = field(default_factory=dict)

    def best_test(self, budget: int) -> float | None:
        inside = [m.test_f1 for m in self.models if m.macs <= budget]
        return max(inside) if inside else None

    def val_picked_test(self, budget: int) -> float | None:
        inside = [m for m in self.models if m.macs <= budget]
        return max(inside, key=lambda m: (m.val_f1, -m.macs)).test_f1 if inside else None

    def hypervolume(self) -> float:
        return hypervolume((m.test_f1, m.macs) for m in self.models)

    def widest_gap(self, macs_max: int) -> float:
        """The largest ratio between a budget and the costliest model at or under it, over every
        budget from the cheapest model to macs_max (1.0 would be a model at every budget)."""
        costs = sorted(m.macs for m in self.models)
        if not costs:
            return float("inf")
        ceilings = [*costs[1:], macs_max]
        return max(ceiling / cost for cost, ceiling in zip(costs, ceilings, strict=True))

    def merged_front(self) -> SeedResult:
        """What the 0.1.0 rule would have handed over from the same studies: the front of every
        study's and band's front models merged on the brief trial's F1. Gap fills are never on
        it, and a model dominated across studies is on no merged front, so it is a subset of
        what was finalized, scored by the very same runs."""
        fronts = [m for m in self.models if m.picked == "front"]
        kept = [
            m
            for m in fronts
            if not any(dominates((o.study_f1, o.macs), (m.study_f1, m.macs)) for o in fronts)
        ]
        return SeedResult(self.seed, kept, self.baselines, self.seconds)

    def dominated(self, baseline: Model) -> bool:
        return any(
            m.test_f1 >= baseline.test_f1
            and m.macs <= baseline.macs
            and (m.test_f1 > baseline.test_f1 or m.macs < baseline.macs)
            for m in self.models
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    search_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, search_args = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--seeds", type=int, nargs="+", default=[0, 1, 2], help="(default: %(default)s)")
    add(
        "--output",
        type=Path,
        default=Path("bench/out/seeds/default"),
        help="one folder per seed under it (default: %(default)s)",
    )
    add(
        "--baselines",
        type=Path,
        default=Path("bench/out/seeds/baselines"),
        help="the baselines' run folders, shared by every --output (default: %(default)s)",
    )
    add("--workers", type=int, default=1, help="seeds run at once (default: %(default)s)")
    add("--threads", type=int, help="torch threads per job (default: the cores shared out)")
    add(
        "--macs-max",
        type=int,
        default=DEFAULT_MACS_MAX,
        help="the search's --macs-max, for the gap (default: %(default)s)",
    )
    add(
        "--epochs",
        type=int,
        help="EPOCHS of full training, finalize and baselines alike (default: the recipe's)",
    )
    add("--no-baselines", action="store_true", help="do not train or compare the baselines")
    add("--report-only", action="store_true", help="train nothing; report what is there")
    args = parser.parse_args(argv)
    args.search_args = search_args
    if "--macs-max" in search_args:
        args.macs_max = int(search_args[search_args.index("--macs-max") + 1])
    return args


def _run(command: list[str], log: Path, threads: int) -> float:
    """Run a CLI from the repository root with `threads` torch threads; its seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    began = time.monotonic()
    with log.open("a") as out:
        done = subprocess.run(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}; see {log}")
    return time.monotonic() - began


def _step(folder: Path, name: str, command: list[str], threads: int) -> float:
    """A step run once: its seconds are kept in <name>.done, and a rerun reads them back."""
    done = folder / f"{name}.done"
    if done.is_file():
        return float(done.read_text())
    seconds = _run(command, folder / f"{name}.log", threads)
    done.write_text(f"{seconds:.1f}\n")
    return seconds


def run_seed(args: argparse.Namespace, seed: int, threads: int) -> dict[str, float]:
    """The default job at one seed (search, then finalize), and the baselines at that seed."""
    folder = (args.output / f"seed{seed}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{folder / 'study.db'}"
    py = sys.executable
    seconds = {
        "search": _step(
            folder,
            "search",
            [
                py,
                "-m",
                "search.architecture",
                "--seed",
                str(seed),
                "--study-name",
                STUDY,
                "--storage",
                storage,
                *args.search_args,
            ],
            threads,
        ),
        "finalize": _step(
            folder,
            "finalize",
            [
                py,
                "-m",
                "search.finalize",
                "--study-name",
                STUDY,
                "--storage",
                storage,
                "--output",
                str(folder / "runs"),
                *(["--epochs", str(args.epochs)] if args.epochs else []),
            ],
            threads,
        ),
    }
    if not args.no_baselines:
        for name in BASELINES:
            run = _baseline_run(args, name, seed)
            run.mkdir(parents=True, exist_ok=True)
            data = run.parent / f"{name}.data.yaml"
            recipe = _baseline_recipe(seed, args.epochs)
            data.write_text(yaml.safe_dump(recipe, sort_keys=False))
            model = REPO / "configs" / "model" / f"{name}.yaml"
            _step(
                run.parent,
                name,
                [
                    py,
                    "-m",
                    "runner.train",
                    "--model",
                    str(model),
                    "--data",
                    str(data),
                    "--output",
                    str(run),
                ],
                threads,
            )
    return seconds


def _baseline_run(args: argparse.Namespace, name: str, seed: int) -> Path:
    """A baseline trained at another --epochs is another run, kept apart."""
    recipe = f"epochs{args.epochs}" if args.epochs else ""
    return (args.baselines / recipe / f"seed{seed}" / name).resolve()


def _baseline_recipe(seed: int, epochs: int | None = None) -> dict[str, object]:
    """The full recipe finalize gives a front model (the trials' data YAML with the full-training
    keys on top), at the baselines' input size, this seed and finalize's --epochs."""
    configs = REPO / "configs" / "search"
    recipe = yaml.safe_load((configs / "trashnet_trials.yaml").read_text())
    recipe.update(yaml.safe_load((configs / "full_training.yaml").read_text()))
    recipe.update(IMG_SIZE=BASELINE_IMG_SIZE, SEED=seed)
    if epochs:
        recipe["EPOCHS"] = epochs
    return recipe


def read_result(args: argparse.Namespace, seed: int) -> SeedResult | None:
    """The seed's finalized models and baselines, or None before its finalize has run."""
    folder = args.output / f"seed{seed}"
    final = folder / "runs" / STUDY / "final.csv"
    if not final.is_file():
        return None
    with final.open() as f:
        models = [
            Model(
                row["band"] + "/" + row["trial"] if row["band"] else row["trial"],
                int(row["macs"]),
                float(row["val_f1"]),
                float(row["test_f1"]),
                float(row["study_f1"]),
                row.get("picked", "front"),
            )
            for row in csv.DictReader(f)
        ]
    baselines = []
    for name in BASELINES:
        metrics = _baseline_run(args, name, seed) / "metrics.json"
        if metrics.is_file() and not args.no_baselines:
            m = json.loads(metrics.read_text())
            baselines.append(Model(name, int(m["macs"]), float(m["best_f1"]), float(m["test_f1"])))
    seconds = {}
    for step in ("search", "finalize"):
        done = folder / f"{step}.done"
        if done.is_file():
            seconds[step] = float(done.read_text())
    return SeedResult(seed, models, baselines, seconds)


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def table(results: Sequence[SeedResult], macs_max: int) -> list[str]:
    """Per seed, then min and median over seeds: the figures the module docstring lists."""
    heads = [
        *(f"best<={b / 1e6:g}M" for b in BUDGETS),
        *(f"val-pick<={b / 1e6:g}M" for b in BUDGETS),
        "HV",
        "gap",
        "models",
        "beats",
        "search min",
        "finalize min",
    ]
    rows: list[tuple[str, list[float | None]]] = []
    for r in results:
        beats = sum(r.dominated(b) for b in r.baselines) if r.baselines else None
        rows.append(
            (
                f"seed {r.seed}",
                [
                    *(r.best_test(b) for b in BUDGETS),
                    *(r.val_picked_test(b) for b in BUDGETS),
                    r.hypervolume(),
                    r.widest_gap(macs_max),
                    len(r.models),
                    beats,
                    *(
                        r.seconds[s] / 60 if s in r.seconds else None
                        for s in ("search", "finalize")
                    ),
                ],
            )
        )
    columns = list(zip(*(values for _, values in rows), strict=True))  # the seeds' only
    for name, reduce in (("min", min), ("median", statistics.median)):
        rows.append((name, [reduce(c) if None not in c else None for c in columns]))
    specs = [".3f"] * 7 + [".1f", ".0f", ".0f", ".1f", ".1f"]
    lines = ["| seeds | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for name, values in rows:
        cells = [_fmt(v, s) for v, s in zip(values, specs, strict=True)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def baseline_lines(results: Sequence[SeedResult]) -> list[str]:
    lines = []
    for r in results:
        for b in r.baselines:
            lines.append(
                f"seed {r.seed}: {b.label} {b.macs:,} MACs, test F1 {b.test_f1:.3f} "
                f"({'dominated' if r.dominated(b) else 'NOT dominated'})"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.report_only:
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            jobs = {pool.submit(run_seed, args, s, threads): s for s in args.seeds}
            for job in concurrent.futures.as_completed(jobs):
                print(f"seed {jobs[job]}: {job.result()}", flush=True)
    results = [r for s in args.seeds if (r := read_result(args, s)) is not None]
    if not results:
        print(f"no finalized seed under {args.output}")
        return 1
    print(f"{args.output}: search.architecture {' '.join(args.search_args) or '(defaults)'}")
    print("\n".join([*table(results, args.macs_max), *baseline_lines(results)]))
    print("\nThe 0.1.0 rule on the same studies (the fronts merged on the trial's F1):")
    print("\n".join(table([r.merged_front() for r in results], args.macs_max)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m search.finalize`: train a study's exported front fully and score it where it counts.

A study ranks candidates by a brief, noisy training; users take away fully trained models. This
trains each front trial with the full recipe (the trial's own data config and its EPOCHS, with the
keys of --recipe on top: configs/search/full_training.yaml unless another is given) into a run
folder (runner.evaluate and runner.predict take it), scores it on val and, when the data has
images kept out of everything (test/<class>/ or TEST_RATIO), on test; then writes final.csv,
final.png (both fronts on the same axes) and prints how well the study's ranking held. A model
already trained is skipped, so a rerun resumes. On a CPU two models train at once, each in a
process of its own with half the threads (--workers, runner/training/pool.py).

With --distill a second stage trains the front again, each model distilled from the front model
with the best val F1 (Hinton et al. 2015, runner/training/distill.py), and keeps whichever of a
model's two runs scores better on val: small nets trained on a few thousand images overfit, and a
teacher of about their size is the cheapest regulariser (docs/finalize.md).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from tqdm import tqdm

from litenas.resources import config_file
from litenas.user_input import add_debug_option, exit_on_user_error, positive_int
from runner.data.config import DataConfig
from runner.training.loop import pick_device
from runner.training.metrics import competition_score
from runner.training.pool import default_workers, map_in_workers
from runner.training.run import other_run, train_run, trained_metrics
from runner.training.rundir import RunDir
from search.front import (
    FrontEntry,
    FrontError,
    FrontFilter,
    dominates,
    front_entries,
    kendall,
    safe_folder_name,
    spearman,
    trial_folder,
    trial_label,
)
from search.full_recipe import FULL_TRAINING, RECIPE_HELP, FullRecipe
from search.study import STORAGE_HELP, default_url, open_with_bands
from space.errors import UserError

CSV_FIELDS = (
    "rank",
    "band",
    "trial",
    "picked",
    "macs",
    "params",
    "study_f1",
    "val_f1",
    "test_f1",
    "final_f1",
    "score",
    "val_front",
    "run",
    "teacher",
)
DISTILLED = "distilled"  # the --distill stage's run folders, beside the first stage's


@dataclasses.dataclass(frozen=True)
class FinalRow:
    """One fully trained trial: its study F1 beside the F1 full training gave."""

    rank: int
    trial: int
    macs: int
    params: int
    study_f1: float
    val_f1: float  # of best.pt, the weights scored on test and loaded by runner.evaluate
    test_f1: float | None
    run: str
    teacher: str = ""  # the run it was distilled from, if any
    band: str = ""  # the band study the trial comes from (FrontEntry.band)
    picked: str = "front"  # why the search handed it over (FrontEntry.picked)

    @property
    def label(self) -> str:
        return trial_label(self.trial, self.band)

    @property
    def final_f1(self) -> float:
        """The F1 that counts: on test when the data has one, else on val."""
        return self.val_f1 if self.test_f1 is None else self.test_f1

    @property
    def score(self) -> float:
        return competition_score(self.macs, self.final_f1)


def train_entry(
    entry: FrontEntry,
    cfg: DataConfig,
    folder: Path,
    *,
    progress: bool = True,
    device: str | None = None,
) -> FinalRow:
    """Train (or resume, or reuse) one trial's run folder and return its row."""
    run = RunDir(folder / entry.folder)
    _take_earlier_rank(run, entry, cfg)
    metrics = train_run(run, entry.model_yaml, cfg, device=device, progress=progress)
    return FinalRow(
        entry.rank,
        entry.number,
        int(metrics["macs"]),
        int(metrics["params"]),
        entry.f1,
        float(metrics["best_f1"]),
        metrics.get("test_f1"),
        str(run.path),
        cfg.teacher,
        entry.band,
        entry.picked,
    )


def _take_earlier_rank(run: RunDir, entry: FrontEntry, cfg: DataConfig) -> None:
    """Rename a run of this very trial and recipe left under another rank to the entry's folder.

    Folders are named by rank, and a front that changed since (a longer study, a band) ranks a
    trial anew: its finished or half-trained run is kept, not trained again.
    """
    if run.path.exists():
        return
    trial = trial_folder(entry.number, entry.band)
    for earlier in sorted(run.path.parent.glob(f"*-{trial}")):
        old = RunDir(earlier)
        same = re.fullmatch(rf"\d+-{re.escape(trial)}", earlier.name) and old.data_yaml.is_file()
        if same and not other_run(old, entry.model_yaml, cfg):
            earlier.rename(run.path)
            tqdm.write(
                f"{earlier.name} -> {run.path.name}: trained under its earlier rank",
                file=sys.stderr,
            )
            return


def train_entries(
    entries: Sequence[FrontEntry],
    recipe: FullRecipe,
    folder: Path,
    *,
    device: str | None = None,
    workers: int = 1,
    on_row: Any = None,
    desc: str = "finalize",
) -> list[FinalRow]:
    """Train every entry under one overall progress bar, up to `workers` at once in processes
    of their own (runner.training.pool); on_row(rows), those finished so far in entry order,
    after each. Models trained already are read here, not handed to a worker."""
    jobs = [(e, recipe.config(e)) for e in entries]  # all checked first
    overall = tqdm(total=len(jobs), desc=desc, unit="model")
    rows: dict[int, FinalRow] = {}

    def finished(index: int, row: FinalRow) -> None:
        rows[index] = row
        overall.update()
        if on_row is not None:
            on_row([rows[i] for i in sorted(rows)])

    todo = list(range(len(jobs)))
    try:
        if workers > 1:
            for i in [i for i in todo if _trained(*jobs[i], folder)]:
                finished(i, train_entry(*jobs[i], folder, device=device))
                todo.remove(i)
        if workers > 1 and len(todo) > 1:

            def announce(k: int, row: FinalRow) -> None:
                test = "" if row.test_f1 is None else f", test F1 {row.test_f1:.3f}"
                line = f"trial {row.label} ({row.macs:,} MACs): val F1 {row.val_f1:.3f}{test}"
                tqdm.write(line, file=sys.stderr)
                finished(todo[k], row)

            train = functools.partial(_train_job, folder=folder, device=device)
            map_in_workers(train, [jobs[i] for i in todo], workers, announce)
        else:
            for i in todo:
                overall.set_postfix_str(f"trial {jobs[i][0].label}")
                finished(i, train_entry(*jobs[i], folder, device=device))
    finally:
        overall.close()
    return [rows[i] for i in range(len(jobs))]


def _trained(entry: FrontEntry, cfg: DataConfig, folder: Path) -> bool:
    """Whether the entry's run folder (under its rank, or an earlier one) is finished."""
    run = RunDir(folder / entry.folder)
    _take_earlier_rank(run, entry, cfg)
    return trained_metrics(run, entry.model_yaml, cfg) is not None


def _train_job(job: tuple[FrontEntry, DataConfig], folder: Path, device: str | None) -> FinalRow:
    """One entry in a worker process: its own progress bar would garble the others'."""
    entry, cfg = job
    return train_entry(entry, cfg, folder, progress=False, device=device)


def distill_from_best(
    entries: Sequence[FrontEntry],
    rows: Sequence[FinalRow],
    recipe: FullRecipe,
    folder: Path,
    **train: Any,
) -> list[FinalRow]:
    """The --distill stage: every entry but the teacher (the row with the best val F1) trained
    again distilled from it into folder/distilled/; per trial, the run with the better val F1.

    Chosen on val only, so test stays the unbiased score of what is kept."""
    best = dict(zip((e.folder for e in entries), rows, strict=True))
    teacher = max(rows, key=lambda r: r.val_f1)
    students = [e for e in entries if best[e.folder] is not teacher]
    kd_recipe = dataclasses.replace(recipe, keys={**recipe.keys, "TEACHER": teacher.run})
    distilled = train_entries(students, kd_recipe, folder / DISTILLED, desc="distil", **train)
    for entry, row in zip(students, distilled, strict=True):
        if row.val_f1 > best[entry.folder].val_f1:
            best[entry.folder] = row
    return [best[e.folder] for e in entries]


def on_val_front(rows: Sequence[FinalRow]) -> list[bool]:
    """Per row: no other fully trained model beats it on val F1 at no more MACs. These are the
    models to choose from for a budget (val picks; test stays the unbiased score of the pick)."""
    return [not any(dominates((o.val_f1, o.macs), (r.val_f1, r.macs)) for o in rows) for r in rows]


def write_csv(path: Path, rows: Sequence[FinalRow]) -> None:
    """final.csv: one row per trained trial, fixed decimals so a rerun writes the same bytes."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for r, on_front in zip(rows, on_val_front(rows), strict=True):
            test = "" if r.test_f1 is None else f"{r.test_f1:.6f}"
            writer.writerow(
                [
                    r.rank,
                    r.band,
                    r.trial,
                    r.picked,
                    r.macs,
                    r.params,
                    f"{r.study_f1:.6f}",
                    f"{r.val_f1:.6f}",
                    test,
                    f"{r.final_f1:.6f}",
                    f"{r.score:.6f}",
                    int(on_front),
                    r.run,
                    r.teacher,
                ]
            )


def write_png(path: Path, title: str, rows: Sequence[FinalRow], study_name: str = "") -> None:
    """Both fronts on the same axes: what the study saw and what full training gave; a band
    study's trial is labelled without the study's name (0.4M/130 for architecture-0.4M/130)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5), dpi=100)
    ax = fig.subplots()
    final_label = (
        "after full training (test)"
        if rows and rows[0].test_f1 is not None
        else ("after full training (val)")
    )
    stairs = sorted(rows, key=lambda r: r.macs)
    ax.plot(
        [r.macs for r in stairs],
        [r.study_f1 for r in stairs],
        "o--",
        color="0.55",
        drawstyle="steps-post",
        label="study (brief training, val)",
    )
    ax.plot(
        [r.macs for r in stairs],
        [r.final_f1 for r in stairs],
        "o-",
        color="#d62728",
        drawstyle="steps-post",
        label=final_label,
    )
    for r in rows:
        ax.annotate(
            "",
            (r.macs, r.final_f1),
            (r.macs, r.study_f1),
            arrowprops={"arrowstyle": "->", "color": "0.7"},
        )
        ax.annotate(
            r.label.removeprefix(f"{study_name}-"),
            (r.macs, r.final_f1),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
            color="#d62728",
        )
    ax.set(xscale="log", xlabel="MACs", ylabel="macro F1", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})


def correlation_line(rows: Sequence[FinalRow]) -> str:
    """How the study's ranking held: Spearman and Kendall of study F1 vs full-training F1."""
    if len(rows) < 3:
        return f"rank correlation needs 3 or more models, have {len(rows)}"
    study, final = [r.study_f1 for r in rows], [r.final_f1 for r in rows]
    return (
        f"study F1 vs full-training F1 over {len(rows)} models: Spearman "
        f"{spearman(study, final):+.3f}, Kendall {kendall(study, final):+.3f}"
    )


def table_lines(rows: Sequence[FinalRow]) -> list[str]:
    """The finalized front as a table, cheapest first."""
    width = max([6, *(len(r.label) for r in rows)])
    lines = [
        f"  {'trial':>{width}} {'MACs':>11} {'params':>9} {'study F1':>8} {'val F1':>7} "
        f"{'test F1':>7} {'score':>6}  run"
    ]
    teachers = {r.teacher for r in rows if r.teacher}
    marked = zip(rows, on_val_front(rows), strict=True)
    for r, on_front in sorted(marked, key=lambda pair: pair[0].macs):
        test = "-" if r.test_f1 is None else f"{r.test_f1:.4f}"
        mark = "*" if on_front else " "
        lines.append(
            f"{mark} {r.label:>{width}} {r.macs:>11,} {r.params:>9,} {r.study_f1:>8.4f} "
            f"{r.val_f1:>7.4f} {test:>7} {r.score:>6.3f}  {r.run}"
            + ("  (fills a gap)" if r.picked == "gap" else "")
            + ("  (distilled)" if r.teacher else "")
        )
    lines += [f"distilled from {t}" for t in sorted(teachers)]
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m search.finalize",
        description="Train a study's Pareto front fully, score it and compare with the study.",
    )
    add = parser.add_argument
    add(
        "--study-name",
        required=True,
        help="the study to finalize (with its band studies, search.architecture --bands)",
    )
    add("--storage", help=STORAGE_HELP)
    add("--recipe", type=config_file, default=FULL_TRAINING, help=RECIPE_HELP)
    add("--epochs", type=positive_int, help="EPOCHS of full training (default: the recipe's)")
    add("--top-k", type=positive_int, help="train at most this many front trials, best F1 first")
    add("--macs-max", type=positive_int, help="leave out front trials over this many MACs")
    add("--params-max", type=positive_int, help="leave out front trials over this many parameters")
    add("--f1-min", type=float, help="leave out front trials under this study F1")
    add(
        "--output",
        type=Path,
        default=Path("runs"),
        help="run folders: OUTPUT/<study>/<rank>-trial<N>/ (default: %(default)s)",
    )
    add(
        "--distill",
        action="store_true",
        help="then train the front again, each model distilled from the front model with the "
        "best val F1, into OUTPUT/<study>/distilled/, and keep per model the run with the "
        "better val F1 (about twice the training time)",
    )
    add("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    add(
        "--workers",
        type=positive_int,
        help="models trained at once, the CPU threads shared out between them (default: 2 on a "
        "CPU with 2 or more threads, 1 on a GPU)",
    )
    add_debug_option(parser)
    return parser.parse_args(argv)


def finalize(args: argparse.Namespace) -> list[str]:
    """Train the filtered front; returns the lines to print. Ctrl-C keeps what is done."""
    pick_device(args.device)  # a device this machine lacks, before any work
    storage = args.storage or default_url(args.study_name)
    study, bands = open_with_bands(args.study_name, storage)
    keep = FrontFilter(args.top_k, args.macs_max, args.f1_min, args.params_max)
    front = front_entries(study, keep, bands)
    if not front:
        raise FrontError(f"study {args.study_name!r} has no front trial to finalize")
    recipe = FullRecipe.load(args.recipe, args.epochs)
    if args.distill and "TEACHER" in recipe.keys:
        raise UserError(
            f"{args.recipe}: sets TEACHER, and --distill picks the teacher from "
            "the front; use one or the other"
        )
    folder = args.output / safe_folder_name(study.study_name)
    folder.mkdir(parents=True, exist_ok=True)
    title = f"study {study.study_name!r}: the front after full training"

    def save(rows: Sequence[FinalRow]) -> None:
        write_csv(folder / "final.csv", rows)
        write_png(folder / "final.png", title, rows, study.study_name)

    workers = args.workers or default_workers(args.device)
    train = {"device": args.device, "workers": workers}
    rows = train_entries(front, recipe, folder, on_row=save, **train)
    notes = []
    if args.distill and len(rows) > 1:
        rows = distill_from_best(front, rows, recipe, folder, **train)
        save(rows)
    elif args.distill:
        notes.append("--distill: one front model, so no other model to teach; nothing distilled")
    return [
        *table_lines(rows),
        "*: on the front after full training (val F1 vs MACs); for a MACs budget, take the "
        "costliest * model within it",
        *notes,
        correlation_line(rows),
        f"wrote {folder}/final.csv and final.png; score a run again with "
        f"python -m runner.evaluate --run {rows[0].run}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def run() -> int:
        print("\n".join(finalize(args)))
        return 0

    try:
        return exit_on_user_error(run, args.debug)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished models are kept; run the same command to resume",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())

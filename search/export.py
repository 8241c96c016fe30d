"""`python -m search.export`: write a study's feasible Pareto front as trainable files.

exports/<study>/<rank>-trial<N>/ gets the trial's model.yaml and data.yaml (the trial's recipe
with the full-training keys of --recipe on top, search/full_recipe.py), which `python -m
runner.train --model ... --data ...` takes unchanged; beside them pareto.csv and a Pareto plot
(pareto.png, pareto.html). The fronts of the study's band studies (search.architecture --bands)
are merged into its own; their trials' folders are <rank>-<band study>-trial<N>. The same
study and options always give the same files, and rank folders left by an earlier export are
removed, so an export folder never mixes two fronts.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import optuna
import yaml

from litenas.resources import config_file
from litenas.user_input import add_debug_option, exit_on_user_error, positive_int
from search.front import (
    DEFAULT_REF,
    GAP_RATIO,
    LATENCY_AXIS,
    FrontEntry,
    FrontError,
    FrontFilter,
    StudyPoint,
    cost_axis,
    front_entries,
    hypervolume,
    safe_folder_name,
    study_points,
    write_html,
    write_png,
)
from search.full_recipe import FULL_TRAINING, RECIPE_HELP, TRIAL_RECIPE, FullRecipe
from search.study import STORAGE_HELP, default_url, open_with_bands
from space import build_model
from space.latency import onnx_latency_ms

RANK_FOLDER = re.compile(r"^\d+-(.+-)?trial\d+$")
CSV_FIELDS = (
    "rank",
    "band",
    "trial",
    "picked",
    "f1",
    "macs",
    "params",
    "latency_ms",
    "score",
    "f1_above_cliff",
    "folder",
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The export options; filters only narrow the front, they never add trials."""
    parser = argparse.ArgumentParser(
        prog="python -m search.export",
        description="Write a study's feasible Pareto front as model/data YAMLs, a CSV and plots.",
    )
    add = parser.add_argument
    add(
        "--study-name",
        required=True,
        help="the study to export (with its band studies, search.architecture --bands)",
    )
    add("--storage", help=STORAGE_HELP)
    add("--top-k", type=positive_int, help="export at most this many front trials, best F1 first")
    add("--macs-max", type=positive_int, help="leave out front trials over this many MACs")
    add("--params-max", type=positive_int, help="leave out front trials over this many parameters")
    add("--f1-min", type=float, help="leave out front trials under this validation macro F1")
    add(
        "--epochs",
        type=positive_int,
        help="EPOCHS written to each data.yaml (default: the trial's)",
    )
    add("--recipe", type=config_file, default=FULL_TRAINING, help=RECIPE_HELP)
    add(
        "--latency",
        action="store_true",
        help="measure the batch-1 latency (ONNX Runtime, one thread) of front models the study "
        "did not measure (--latency-max measures every trial), for pareto.csv",
    )
    add("--output", type=Path, default=Path("exports"), help="(default: %(default)s)")
    add_debug_option(parser)
    return parser.parse_args(argv)


def _model_text(study_name: str, entry: FrontEntry, img_size: int) -> str:
    """The trial's model rebuilt from its stored YAML, dumped with per-row shape comments."""
    model = build_model(yaml.safe_load(entry.model_yaml))
    header = (
        f"# study {entry.band or study_name!r}, trial {entry.number}, rank {entry.rank} of the "
        "exported front: "
        f"F1 {entry.f1:.4f}, MACs {entry.macs:,}, params {entry.params:,}\n"
    )
    return header + model.to_yaml(img_size)


def _folder_texts(study_name: str, entry: FrontEntry, recipe: FullRecipe) -> tuple[str, str]:
    """(model.yaml, data.yaml) of one rank folder; the model is rebuilt at the trial's size."""
    cfg = recipe.config(entry)
    model_text = _model_text(study_name, entry, cfg.img_size)
    return model_text, yaml.safe_dump(cfg.to_yaml_dict(), sort_keys=False)


def _with_latency(entry: FrontEntry) -> FrontEntry:
    """The entry with its batch-1 latency measured here when the study did not measure it."""
    if entry.latency_ms is not None:
        return entry
    model = build_model(yaml.safe_load(entry.model_yaml))
    ms = onnx_latency_ms(model, TRIAL_RECIPE.config(entry).img_size)
    return dataclasses.replace(entry, latency_ms=ms)


def _write_csv(path: Path, front: Sequence[FrontEntry]) -> None:
    """One row per rank; fixed decimals so that a rerun writes the same bytes."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for e in front:
            latency = "" if e.latency_ms is None else f"{e.latency_ms:.4f}"
            writer.writerow(
                [
                    e.rank,
                    e.band,
                    e.number,
                    e.picked,
                    f"{e.f1:.6f}",
                    e.macs,
                    e.params,
                    latency,
                    f"{e.score:.6f}",
                    f"{e.cliff:+.6f}",
                    e.folder,
                ]
            )


def write_export(
    study: optuna.Study,
    front: Sequence[FrontEntry],
    folder: Path,
    points: Sequence[StudyPoint],
    axis: str,
    recipe: FullRecipe = TRIAL_RECIPE,
) -> None:
    """Replace the rank folders in `folder` by this front's, then write the CSV and the plots
    (the study's `points` against its cost `axis`)."""
    texts = {e.folder: _folder_texts(study.study_name, e, recipe) for e in front}
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        if stale.is_dir() and RANK_FOLDER.match(stale.name):
            shutil.rmtree(stale)
    for name, (model_text, data_text) in texts.items():
        (folder / name).mkdir()
        (folder / name / "model.yaml").write_text(model_text)
        (folder / name / "data.yaml").write_text(data_text)
    _write_csv(folder / "pareto.csv", front)
    title = f"study {study.study_name!r}: Pareto front ({len(front)} exported)"
    write_png(folder / "pareto.png", title, front, points, axis)
    write_html(folder / "pareto.html", title, front, points, axis)


def front_lines(front: Sequence[FrontEntry], volume: str) -> list[str]:
    """The exported front as a table, then the hypervolume of the study's feasible front."""
    width = max([6, *(len(e.label) for e in front)])
    lines = [
        f"{'rank':>4} {'trial':>{width}} {'F1':>7} {'MACs':>12} {'params':>10} "
        f"{'latency':>9} {'score':>7} {'above cliff':>11}  picked"
    ]
    for e in front:
        latency = "-" if e.latency_ms is None else f"{e.latency_ms:.2f} ms"
        lines.append(
            f"{e.rank:>4} {e.label:>{width}} {e.f1:>7.4f} {e.macs:>12,} {e.params:>10,} "
            f"{latency:>9} {e.score:>7.4f} {e.cliff:>+11.4f}  {e.picked}"
        )
    lines.append(f"hypervolume of the feasible front: {volume}")
    if any(e.fills_gap for e in front):
        lines.append(
            f"picked 'gap': the best trial where the fronts leave no model within "
            f"{GAP_RATIO:g}x below a budget up to the study's --macs-max"
        )
    return lines


def volume_text(whole: Sequence[FrontEntry], points: Sequence[StudyPoint], axis: str) -> str:
    """The feasible front's hypervolume in the study's own objectives, and its box: MACs up to
    the reference model's; latency up to the slowest feasible trial's (no fixed reference)."""
    if axis == "macs":
        volume = hypervolume([(e.f1, e.macs) for e in whole])
        return (
            f"{volume:.4f} (share of the box F1 {DEFAULT_REF[0]:g}..1 x MACs "
            f"0..{DEFAULT_REF[1]:,.0f})"
        )
    slowest = max((p.latency_ms or 0.0 for p in points if p.feasible), default=0.0)
    if slowest <= 0:
        return "- (no feasible trial has a latency)"
    volume = hypervolume(
        [(e.f1, e.latency_ms) for e in whole if e.latency_ms is not None],
        ref=(DEFAULT_REF[0], slowest),
    )
    return (
        f"{volume:.4f} (share of the box F1 {DEFAULT_REF[0]:g}..1 x {LATENCY_AXIS} "
        f"0..{slowest:.3f}, the slowest feasible trial)"
    )


def export(args: argparse.Namespace) -> list[str]:
    """Export as the args say; returns the lines to print. Raises FrontError on an empty front."""
    storage = args.storage or default_url(args.study_name)
    study, bands = open_with_bands(args.study_name, storage)
    keep = FrontFilter(args.top_k, args.macs_max, args.f1_min, args.params_max)
    whole = front_entries(study, bands=bands)
    front = front_entries(study, keep, bands)
    if not front:
        raise FrontError(_empty_message(study, len(whole), keep))
    recipe = FullRecipe.load(args.recipe, args.epochs)
    if args.latency:
        front = [_with_latency(e) for e in front]
    folder = args.output / safe_folder_name(study.study_name)
    points = [*study_points(study), *(p for b in bands for p in study_points(b, b.study_name))]
    axis = cost_axis(study)
    write_export(study, front, folder, points, axis, recipe)
    volume = volume_text(whole, points, axis)
    first = folder / front[0].folder
    with_bands = "".join(f" and {b.study_name!r}" for b in bands)
    return [
        f"Pareto front of study {study.study_name!r}{with_bands} (feasible, best F1 first; "
        f"{len(front)} of {len(whole)} front trials kept, {keep.describe()}):",
        *(f"  {line}" for line in front_lines(front, volume)),
        f"wrote {folder}/: {len(front)} rank folders, pareto.csv, pareto.png, pareto.html",
        f"train one: python -m runner.train --model {first}/model.yaml --data {first}/data.yaml",
    ]


def _empty_message(study: optuna.Study, front_size: int, keep: FrontFilter) -> str:
    """Why nothing can be exported: no feasible completed trial, or the filters removed all."""
    if front_size:
        return (
            f"the filters ({keep.describe()}) leave none of the {front_size} front trials "
            f"of study {study.study_name!r}; loosen them"
        )
    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "no trials"
    return (
        f"study {study.study_name!r} has no feasible completed trial to export ({counts}); "
        "run the search longer or with a larger --macs-max"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 on success, 2 with a one-line reason when nothing could be exported."""
    args = parse_args(argv)

    def run() -> int:
        print("\n".join(export(args)))
        return 0

    return exit_on_user_error(run, args.debug)


if __name__ == "__main__":
    sys.exit(main())

"""Compressing a big trained model against searching a small one: pruning and Tucker side by side.

Trains a baseline YAML (mobilenet_v3_small by default) with the full recipe, holding TEST_RATIO of
train/ out as test, then compresses it to each --ratios share of its MACs by each method through
`python -m runner.compress` (fine-tuning with the recipe's epochs and lr unless told, distilled
from the source unless --teachers says otherwise: `--teachers source none` runs both) and prints,
measured in this one run: MACs, params, test (and val) macro F1 of the source, right after
compression and after fine-tuning, and the seconds each step took. With --front (a finalized
study's final.csv) the plot puts the compressed models on the same axes as that front; without
one it plots the front of docs/results/2026-12-finalize.md, labelled as not measured here. Every
step skips what is finished, so Ctrl-C and a rerun resume, and one process per method can share
the work:

    python bench/compression.py --methods prune --threads 1 &
    python bench/compression.py --methods tucker --threads 1; wait
    python bench/compression.py            # reports both
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litenas.user_input import positive_float, positive_int
from runner import compress
from runner._cli import add_threads_option, run_command
from runner.data.sources import load_data
from runner.training.run import train_run
from runner.training.rundir import RunDir

# The finalized default front of docs/results/2026-12-finalize.md (trial, MACs, test macro F1 on
# the same 303 held-out images): the plot's stand-in for a study front when no final.csv is
# given. Not measured by this bench.
RECORDED_FRONT = (
    ("196", 94_472, 0.5398),
    ("193", 96_192, 0.5538),
    ("162", 97_912, 0.5358),
    ("94", 104_552, 0.5946),
    ("architecture-0.4M/194", 163_800, 0.6480),
    ("architecture-0.4M/43", 202_216, 0.6053),
    ("architecture-0.4M/61", 230_464, 0.6440),
    ("architecture-0.4M/130", 262_736, 0.7040),
    ("architecture-0.4M/74", 290_168, 0.6307),
    ("47", 684_240, 0.6898),
    ("114", 1_123_008, 0.6413),
    ("110", 1_730_736, 0.7265),
    ("98", 2_315_312, 0.7427),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=Path("configs/model/mobilenet_v3_small.yaml")
    )
    parser.add_argument("--data", type=Path, default=Path("configs/data/trashnet.yaml"))
    parser.add_argument(
        "--test-ratio",
        type=float,
        default=0.2,
        help="TEST_RATIO laid over the recipe (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=positive_int, help="the source's EPOCHS (default: recipe)"
    )
    parser.add_argument(
        "--ft-epochs", type=positive_int, help="fine-tuning epochs (default: the recipe's EPOCHS)"
    )
    parser.add_argument("--ft-lr", type=positive_float, help="fine-tuning lr (default: recipe's)")
    parser.add_argument(
        "--ratios",
        type=positive_float,
        nargs="+",
        default=[0.5],
        help="MACs targets as shares of the source's (default: %(default)s); e.g. 0.1731 puts "
        "mobilenet_v3_small at 1.04M MACs",
    )
    parser.add_argument("--methods", nargs="+", default=["prune", "tucker"])
    parser.add_argument(
        "--teachers",
        nargs="+",
        choices=["source", "none"],
        default=["source"],
        help="fine-tune distilled from the source, on labels only, or both (default: %(default)s)",
    )
    parser.add_argument("--front", type=Path, help="final.csv of a finalized study to plot")
    parser.add_argument("--root", type=Path, default=Path("runs/bench-compression"))
    parser.add_argument("--cache-dir", type=Path)
    add_threads_option(parser)
    return parser.parse_args(argv)


def train_source(args: argparse.Namespace) -> tuple[RunDir, dict[str, Any]]:
    """The trained source run (trained, resumed or found finished) and its metrics."""
    cfg = load_data(args.data)
    cfg = dataclasses.replace(
        cfg,
        test_ratio=args.test_ratio,
        epochs=args.epochs or cfg.epochs,
        data_path=str(Path(cfg.data_path).absolute()),
    )
    run = RunDir(args.root / args.model.stem)
    return run, train_run(run, args.model.read_text(), cfg, cache_dir=args.cache_dir)


def compressed(
    args: argparse.Namespace,
    source: RunDir,
    macs: int,
    method: str,
    ratio: float,
    teacher: str = "source",
) -> dict[str, Any] | None:
    """Compress and fine-tune (or resume, or find finished) one method's run; its metrics, or
    None when the method cannot reach the target (runner.compress has said why)."""
    target = int(macs * ratio)
    labels_only = "-labels" if teacher == "none" else ""
    out = args.root / f"{source.path.name}-{method}-{target}{labels_only}"
    argv = [
        "--run",
        str(source.path),
        "--method",
        method,
        "--macs-target",
        str(target),
        "--output",
        str(out),
        "--teacher",
        teacher,
    ]
    argv += ["--epochs", str(args.ft_epochs)] if args.ft_epochs else []
    argv += ["--lr", str(args.ft_lr)] if args.ft_lr else []
    argv += ["--cache-dir", str(args.cache_dir)] if args.cache_dir else []
    if compress.main(argv) != 0:
        print(f"skipped: python -m runner.compress {' '.join(argv)}", file=sys.stderr)
        return None
    return json.loads((out / "metrics.json").read_text()) | {"run": str(out)}


def table(source: dict[str, Any], rows: dict[str, dict[str, Any]]) -> str:
    """Side by side: cost and F1 of the source, right after compression, after fine-tuning."""
    head = (
        f"{'model':<20}{'MACs':>11}{'ratio':>7}{'params':>10}{'test F1':>9}"
        f"{'(compressed)':>16}{'d test':>8}{'val F1':>8}{'seconds':>9}"
    )
    lines = [
        head,
        f"{'source':<20}{source['macs']:>11,}{1:>7.2f}{source['params']:>10,}"
        f"{source.get('test_f1', float('nan')):>9.4f}{'':>16}{'':>8}{source['best_f1']:>8.4f}"
        f"{source['train_seconds']:>9.0f}",
    ]
    for method, m in rows.items():
        c = m["compression"]
        test, before = m.get("test_f1", float("nan")), c.get("compressed_test_f1") or float("nan")
        seconds = c["compress_seconds"] + m["train_seconds"]
        lines.append(
            f"{method:<20}{m['macs']:>11,}{m['macs'] / source['macs']:>7.2f}"
            f"{m['params']:>10,}{test:>9.4f}{before:>16.4f}"
            f"{test - source.get('test_f1', float('nan')):>+8.4f}{m['best_f1']:>8.4f}"
            f"{seconds:>9.0f}"
        )
    return "\n".join(lines)


def front_points(path: Path | None) -> tuple[list[tuple[int, float]], str]:
    """(MACs, test F1) of a finalized front from final.csv, else the recorded one, and a label."""
    if path is None:
        points = [(macs, f1) for _, macs, f1 in RECORDED_FRONT]
        return points, "study front (docs/results/2026-12-finalize.md, not measured in this run)"
    with path.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("test_f1")]
    return [(int(r["macs"]), float(r["test_f1"])) for r in rows], f"finalized front ({path})"


def verdict(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """Per compressed model: the front's best test F1 at no more MACs, and which one wins."""
    points, label = front_points(args.front)
    lines = []
    for name, m in rows.items():
        cheaper = [(f1, macs) for macs, f1 in points if macs <= m["macs"]]
        if not cheaper:
            lines.append(f"{name}: no model of the {label} is as cheap ({m['macs']:,} MACs)")
            continue
        f1, macs = max(cheaper)
        winner = "searching small" if f1 >= m["test_f1"] else "compressing big"
        lines.append(
            f"{name} ({m['macs']:,} MACs, test F1 {m['test_f1']:.4f}) vs the best of the "
            f"{label} at <= its MACs ({macs:,} MACs, {f1:.4f}): {winner} wins by "
            f"{abs(f1 - m['test_f1']):.4f}"
        )
    return lines


def plot(
    source: dict[str, Any], rows: dict[str, dict[str, Any]], args: argparse.Namespace
) -> Path:
    """Test macro F1 against MACs: the front, the source and its fine-tuned compressed models
    (their scores right after compression, far lower, are in the table)."""
    from matplotlib.figure import Figure

    points, label = front_points(args.front)
    fig = Figure(figsize=(7, 5.5))
    ax = fig.subplots()
    ax.plot(*zip(*sorted(points), strict=True), "o-", color="tab:blue", label=label)
    ax.plot(source["macs"], source["test_f1"], "s", color="black", label=args.model.stem)
    for i, (method, m) in enumerate(rows.items()):
        colour = f"C{i + 1}"
        ax.plot(m["macs"], m["test_f1"], "^", color=colour, label=f"{method}, fine-tuned")
    ax.set_xscale("log")
    ax.set_xlabel("MACs (thop, one image)")
    ax.set_ylabel("test macro F1")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    fig.tight_layout()
    target = args.root / "compression.png"
    fig.savefig(target, dpi=100)
    return target


def run(args: argparse.Namespace) -> int:
    source_run, source = train_source(args)
    runs = {
        f"{method} {ratio:g}" + (" labels" if teacher == "none" else " kd"): compressed(
            args, source_run, source["macs"], method, ratio, teacher
        )
        for ratio in args.ratios
        for method in args.methods
        for teacher in args.teachers
    }
    rows = {name: m for name, m in runs.items() if m is not None}
    print(table(source, rows))
    if "test_f1" in source:
        print("\n".join(verdict(rows, args)))
        print(f"wrote {plot(source, rows, args)}")
    (args.root / "compression.json").write_text(
        json.dumps({"source": source, **rows}, indent=2, default=str)
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command(args.threads, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())

"""`python -m runner.compress`: compress a trained run to a MACs target, fine-tune it as a new run.

Structured channel pruning (torch-pruning) or Tucker decomposition (tensorly) shrinks the run's
best weights until counted MACs are at or under --macs-target; fine-tuning then trains the
result with the run's own recipe (EPOCHS and INIT_LR unless --epochs / --lr say otherwise),
distilled from the uncompressed run by default (Hinton et al. 2015; --teacher none for labels
only): the source still knows what the cut channels or ranks knew. The new folder holds the
original model.yaml, compression.yaml (the structure change) and the usual checkpoints and
metrics, so runner.evaluate, runner.predict and the export take it like any run. Ctrl-C keeps
the last finished epoch; the same command resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from litenas.user_input import add_debug_option, did_you_mean, positive_float, positive_int
from runner._cli import add_threads_option, report_interrupt, run_command
from runner.data.cache import CACHE_HELP
from runner.data.config import DataConfig
from runner.data.splits import Splits, load_splits
from runner.deploy.compression import (
    METHODS,
    Compression,
    CompressionError,
    compress,
    read_record,
    restructure,
    write_record,
)
from runner.training.loop import FitOptions, fit, pick_device, predict
from runner.training.metrics import macro_f1
from runner.training.run import (
    finished_metrics,
    load_teacher,
    run_metrics,
    test_f1,
)
from runner.training.rundir import RunDir, RunError, check_run_data, load_trained_model, plot_curve
from space import build_model, count_cost


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runner.compress",
        description="Compress a trained run to a MACs target and fine-tune it into a new run "
        "folder; rerun the same command to resume.",
    )
    parser.add_argument("--run", required=True, type=Path, help="trained run folder (runs/NAME)")
    parser.add_argument(
        "--method",
        required=True,
        help="prune (structured channel pruning, torch-pruning) or tucker (Tucker decomposition "
        "of the convolutions, tensorly)",
    )
    parser.add_argument(
        "--macs-target",
        required=True,
        type=positive_float,
        help="MACs the compressed model may count at most (3e6 is fine)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        help="fine-tuning epochs (default: EPOCHS of the run's data.yaml)",
    )
    parser.add_argument(
        "--lr", type=positive_float, help="fine-tuning INIT_LR (default: the run's data.yaml's)"
    )
    parser.add_argument(
        "--teacher",
        default="source",
        help="fine-tune distilled from this trained run (KD_WEIGHT, KD_TEMPERATURE of the run's "
        "recipe): 'source' (default) is the uncompressed run, 'none' trains on labels only",
    )
    parser.add_argument(
        "--output", type=Path, help="new run folder (default: <run>-<method>-<target>)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--cache-dir", type=Path, help=CACHE_HELP)
    add_threads_option(parser)
    add_debug_option(parser)
    return parser.parse_args(argv)


def default_output(source: Path, method: str, macs_target: int) -> Path:
    """<run>-<method>-<target>, beside the source run."""
    return source.with_name(f"{source.name}-{method}-{macs_target}")


@dataclasses.dataclass(frozen=True)
class Request:
    """One compression asked for: the source run and its model, and where the result goes."""

    source: RunDir
    model: nn.Module
    classes: list[str]
    cfg: DataConfig  # the fine-tuning recipe: the source's, with --epochs / --lr laid over it
    method: str
    macs_target: int
    output: RunDir


def make_request(args: argparse.Namespace) -> Request:
    """Check the flags against the source run; a one-line error for each kind of bad input."""
    if args.method not in METHODS:
        hint = did_you_mean(args.method, METHODS, template=" (did you mean {!r}?)")
        raise CompressionError(
            f"unknown --method {args.method!r}{hint}: choose one of {', '.join(METHODS)}"
        )
    source = RunDir(args.run)
    if source.compression.is_file():
        origin = read_record(source.compression).source or "the original run"
        raise RunError(f"{source.path} is a compressed run already: compress {origin} instead")
    model, classes, cfg = load_trained_model(source)
    macs = count_cost(model, cfg.img_size).macs
    target = int(args.macs_target)
    if target >= macs:
        raise CompressionError(
            f"--macs-target {target:,} is not below the {macs:,} MACs of "
            f"{source.path}: pass a smaller target"
        )
    teacher = {"source": str(source.path), "none": ""}.get(args.teacher, args.teacher)
    if teacher and not Path(teacher).is_dir():
        raise RunError(
            f"--teacher {args.teacher}: no such run folder; pass a trained run, "
            "'source' (the run being compressed) or 'none'"
        )
    cfg = dataclasses.replace(
        cfg, epochs=args.epochs or cfg.epochs, init_lr=args.lr or cfg.init_lr, teacher=teacher
    )
    output = RunDir(args.output or default_output(source.path, args.method, target))
    return Request(source, model, classes, cfg, args.method, target, output)


def existing_record(request: Request) -> Compression | None:
    """The output folder's compression record when it holds this very compression (to resume),
    None when the folder is new; RunError when it holds anything else."""
    run = request.output
    if not run.data_yaml.is_file() and not run.compression.is_file():
        return None
    asked = Compression(request.method, request.macs_target, 0.0, {}, str(request.source.path))
    record = read_record(run.compression) if run.compression.is_file() else None
    if record is None or not record.same_request(asked) or run.data_config() != request.cfg:
        raise RunError(
            f"{run.path} holds another run; pass a new --output, or the same flags to "
            "resume this compression"
        )
    return record


def _f1(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int, device: torch.device
) -> float | None:
    """Macro F1 on the images, None when there are none (no test split)."""
    return macro_f1(y, predict(model.to(device), x, device), k) if len(y) else None


def write_compressed(
    request: Request,
    net: nn.Module,
    record: Compression,
    seconds: float,
    splits: Splits,
    device: torch.device,
) -> None:
    """Write the new run folder: the source's model.yaml, the fine-tuning data.yaml and the
    record, whose notes keep the costs and the scores before fine-tuning (val, test if any)."""
    k, img = len(splits.classes), request.cfg.img_size
    before, after = count_cost(request.model, img), count_cost(net, img)
    notes = {
        "source_macs": before.macs,
        "source_params": before.params,
        "source_val_f1": _f1(request.model, splits.val_x, splits.val_y, k, device),
        "source_test_f1": _f1(request.model, splits.test_x, splits.test_y, k, device),
        "macs": after.macs,
        "params": after.params,
        "compress_seconds": round(seconds, 2),
        "compressed_val_f1": _f1(net, splits.val_x, splits.val_y, k, device),
        "compressed_test_f1": _f1(net, splits.test_x, splits.test_y, k, device),
    }
    record = dataclasses.replace(record, source=str(request.source.path), notes=notes)
    run = request.output
    run.path.mkdir(parents=True, exist_ok=True)
    run.model_yaml.write_text(request.source.model_yaml.read_text())
    run.data_yaml.write_text(yaml.safe_dump(request.cfg.to_yaml_dict(), sort_keys=False))
    write_record(record, run.compression)


def fine_tune(request: Request, args: argparse.Namespace) -> dict[str, Any]:
    """Compress (or pick up the compressed run where it stopped) and fine-tune; its metrics."""
    run, cfg = request.output, request.cfg
    record = existing_record(request)
    if record is not None and (done := finished_metrics(run, cfg)) is not None:
        return done
    check_run_data(RunDir(args.run), cfg)  # before compressing: nothing is fetched for a run
    saved = run.load_state() if record is not None else None
    if saved is None:  # a new folder, or one stopped before its first fine-tuned epoch
        start = time.perf_counter()
        net, record = compress(request.model, request.method, cfg.img_size, request.macs_target)
        seconds = time.perf_counter() - start
    else:
        print(f"resuming {run.path} after epoch {saved[0].epochs_done}", file=sys.stderr)
        net = build_model(run.model_yaml, num_classes=len(request.classes))
        net = restructure(net, record, cfg.img_size, str(run.compression))
    splits = load_splits(cfg, cache_dir=args.cache_dir)
    if splits.classes != request.classes:
        raise RunError(f"{cfg.data_path} has classes {splits.classes}, the run {request.classes}")
    device = pick_device(args.device)
    if saved is None:
        write_compressed(request, net, record, seconds, splits, device)
    record = read_record(run.compression)
    teacher = load_teacher(cfg, splits.classes)
    result = fit(
        net.train(),
        splits,
        cfg,
        FitOptions(seed=cfg.seed, device=device, teacher=teacher),
        resume=saved[0] if saved else None,
        on_state=lambda state: run.save_state(state, splits.classes),
    )
    cost = count_cost(net, cfg.img_size)
    metrics = run_metrics(result, cost.macs, cost.params)
    if len(splits.test_y):
        metrics["test_f1"] = test_f1(run, splits, device)
        metrics["test_images"] = len(splits.test_y)
    metrics["compression"] = {
        "method": record.method,
        "macs_target": record.macs_target,
        "knob": record.knob,
        "source": record.source,
        **record.notes,
    }
    run.write_metrics(metrics)
    plot_curve(result.history, run.curve)
    return metrics


def summary(run: RunDir, metrics: dict[str, Any]) -> str:
    """One line: the cost change and macro F1 of the source, after compression, after tuning."""
    c = metrics["compression"]
    line = (
        f"{run.path}: {c['method']} {c['source_macs']:,} -> {metrics['macs']:,} MACs "
        f"({metrics['macs'] / c['source_macs']:.2f}x), params {c['source_params']:,} -> "
        f"{metrics['params']:,}; val macro F1 {c['source_val_f1']:.4f} -> "
        f"{c['compressed_val_f1']:.4f} compressed -> {metrics['best_f1']:.4f} fine-tuned "
        f"(best of {metrics['epochs_run']} epochs)"
    )
    if "test_f1" in metrics:
        line += (
            f"; test {c['source_test_f1']:.4f} -> {c['compressed_test_f1']:.4f} -> "
            f"{metrics['test_f1']:.4f}"
        )
    return line


def _compress(args: argparse.Namespace) -> int:
    pick_device(args.device)  # a device this machine lacks, before any work
    request = make_request(args)
    try:
        metrics = fine_tune(request, args)
    except KeyboardInterrupt:
        return report_interrupt(request.output)
    print(summary(request.output, metrics))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input (a run, a method, a target) ends with its message, exit code 2."""
    args = parse_args(argv)
    return run_command(args.threads, lambda: _compress(args), args.debug)


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m runner.train`: train a model YAML on a data YAML into a resumable run folder."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from litenas.resources import config_file
from litenas.user_input import add_debug_option, positive_int
from runner._cli import add_threads_option, default_run_path, report_interrupt, run_command
from runner.data.cache import CACHE_HELP
from runner.data.sources import load_data
from runner.training.loop import pick_device
from runner.training.run import (
    train_run,
)
from runner.training.rundir import RunDir
from space.config_io import load_model_config


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runner.train",
        description="Train a model YAML on a data YAML; rerun the same command to resume.",
    )
    parser.add_argument("--model", required=True, type=config_file, help="model YAML")
    parser.add_argument("--data", required=True, type=config_file, help="data YAML")
    parser.add_argument("--epochs", type=positive_int, help="override EPOCHS of the data YAML")
    parser.add_argument(
        "--teacher",
        type=Path,
        help="a trained run folder to distil from (sets TEACHER; KD_WEIGHT and KD_TEMPERATURE "
        "of the data YAML mix the losses); its MACs never count for the trained model",
    )
    parser.add_argument("--output", type=Path, help="run folder (default runs/<model>-<data>)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--cache-dir", type=Path, help=CACHE_HELP)
    add_threads_option(parser)
    add_debug_option(parser)
    return parser.parse_args(argv)


def _train(args: argparse.Namespace) -> int:
    """Train (or resume) a run; Ctrl-C keeps the last finished epoch for the next run."""
    pick_device(args.device)  # a device this machine lacks, before any work
    cfg = load_data(args.data)
    if args.epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=args.epochs)
    if args.teacher is not None:
        cfg = dataclasses.replace(cfg, teacher=str(args.teacher))
    load_model_config(args.model)  # a missing, binary or malformed file: its name in the error
    run = RunDir(args.output or default_run_path(args.model, args.data))
    try:
        metrics = train_run(
            run,
            args.model.read_text(),
            cfg,
            device=args.device,
            cache_dir=args.cache_dir,
            model_source=str(args.model),
        )
    except KeyboardInterrupt:
        return report_interrupt(run)
    test = f", test macro F1 {metrics['test_f1']:.4f}" if "test_f1" in metrics else ""
    print(
        f"{run.path}: val macro F1 {metrics['f1']:.4f} (best {metrics['best_f1']:.4f} at epoch "
        f"{metrics['best_epoch']}){test}, accuracy {metrics['accuracy']:.4f}, "
        f"{metrics['epochs_run']} epochs, {metrics['train_seconds']:.0f} s, "
        f"{metrics['macs']:,} MACs"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input (a YAML, a folder, a run) ends with its message, not a traceback."""
    args = parse_args(argv)
    return run_command(args.threads, lambda: _train(args), args.debug)


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m runner.train`: train a model YAML on a data YAML into a resumable run folder."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from runner.config import DataConfig, load_data_config
from runner.data import load_splits
from runner.metrics import cliff_distance, competition_score
from runner.rundir import RunDir, RunError, plot_curve
from runner.train import FitResult, fit
from space.config_io import load_model_config
from space.user_input import exit_on_user_error


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runner.train",
        description="Train a model YAML on a data YAML; rerun the same command to resume.",
    )
    parser.add_argument("--model", required=True, type=Path, help="model YAML")
    parser.add_argument("--data", required=True, type=Path, help="data YAML")
    parser.add_argument("--epochs", type=int, help="override EPOCHS of the data YAML")
    parser.add_argument("--output", type=Path, help="run folder (default runs/<model>-<data>)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--cache-dir", type=Path, help="decoded-image cache (default .cache/)")
    parser.add_argument(
        "--threads", type=int,
        help="CPU threads for torch (default: all cores; 1 is faster on a busy shared machine)",
    )  # fmt: skip
    return parser.parse_args(argv)


def _prepare_run(args: argparse.Namespace, cfg: DataConfig) -> RunDir:
    """Create the run folder with both YAMLs, or check that an existing one is the same run."""
    run = RunDir(args.output or Path("runs") / f"{args.model.stem}-{args.data.stem}")
    model_cfg = load_model_config(args.model)
    if run.data_yaml.is_file():
        same_data = run.data_config() == cfg
        same_model = load_model_config(run.model_yaml) == model_cfg
        if not (same_data and same_model):
            what = "data config" if not same_data else "model"
            raise RunError(
                f"{run.path} holds a run of another {what}; pass a new --output to start a new "
                "run, or the same files to resume this one"
            )
        return run
    run.path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.model, run.model_yaml)
    run.data_yaml.write_text(yaml.safe_dump(cfg.to_yaml_dict(), sort_keys=False))
    return run


def _metrics(result: FitResult, macs: int, params: int) -> dict[str, Any]:
    """What metrics.json records: final and best scores, cost, and the per-epoch history."""
    best = max(result.history, key=lambda h: h.f1) if result.history else None
    return {
        "f1": result.f1,
        "accuracy": result.accuracy,
        "per_class_f1": result.per_class_f1,
        "confusion": result.confusion,
        "best_f1": best.f1 if best else result.f1,
        "best_epoch": best.epoch if best else 0,
        "epochs_run": result.epochs_run,
        "train_seconds": result.train_seconds,
        "macs": macs,
        "params": params,
        "competition_score": competition_score(macs, result.f1),
        "f1_above_cliff": cliff_distance(result.f1),
        "history": [dataclasses.asdict(h) for h in result.history],
    }


def _train(args: argparse.Namespace) -> int:
    """Train (or resume) a run; Ctrl-C keeps the last finished epoch for the next run."""
    from space import build_model, count_cost

    cfg = load_data_config(args.data)
    if args.epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=args.epochs)
    run = _prepare_run(args, cfg)
    splits = load_splits(cfg, cache_dir=args.cache_dir)
    model = build_model(args.model, num_classes=len(splits.classes), seed=cfg.seed)
    cost = count_cost(model, cfg.img_size)
    saved = run.load_state()
    if saved is not None:
        print(f"resuming {run.path} after epoch {saved[0].epochs_done}", file=sys.stderr)
    try:
        result = fit(
            model, splits, cfg, seed=cfg.seed, device=args.device,
            resume=saved[0] if saved else None,
            on_state=lambda state: run.save_state(state, splits.classes),
        )  # fmt: skip
    except KeyboardInterrupt:
        done = run.load_state()
        epochs = done[0].epochs_done if done else 0
        print(f"\ninterrupted: {epochs} epoch(s) saved in {run.last}; run the same command "
              "again to resume", file=sys.stderr)  # fmt: skip
        return 130
    metrics = _metrics(result, cost.macs, cost.params)
    run.write_metrics(metrics)
    plot_curve(result.history, run.curve)
    print(f"{run.path}: val macro F1 {result.f1:.4f} (best {metrics['best_f1']:.4f} at epoch "
          f"{metrics['best_epoch']}), accuracy {result.accuracy:.4f}, {result.epochs_run} epochs, "
          f"{result.train_seconds:.0f} s, {cost.macs:,} MACs")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input (a YAML, a folder, a run) ends with its message, not a traceback."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    return exit_on_user_error(lambda: _train(args))

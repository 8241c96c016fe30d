"""`python -m runner.evaluate`: score a trained run on a labelled folder.

Prints macro F1, per-class F1, accuracy, the confusion matrix and the competition score (with
the distance to the F1 = 0.5 cliff), and writes them to evaluation.json in the run folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from litenas.user_input import add_debug_option, exit_on_user_error
from runner.data.cache import CACHE_HELP, default_cache_dir
from runner.data.images import scan_split
from runner.data.splits import decode_cached, load_splits
from runner.training.loop import pick_device, predict
from runner.training.metrics import (
    accuracy,
    cliff_distance,
    competition_score,
    confusion_matrix,
    macro_f1,
    per_class_f1,
)
from runner.training.rundir import (
    CHECKPOINTS,
    RunDir,
    RunError,
    check_run_data,
    load_trained_model,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runner.evaluate", description="Score a trained run on labelled images."
    )
    parser.add_argument("--run", required=True, type=Path, help="run folder (runs/NAME)")
    parser.add_argument(
        "--data-path",
        type=Path,
        help="labelled folder: DIR/val/<class>/ if present, else DIR/<class>/ "
        "(default: the --split of the run's DATA_PATH)",
    )
    parser.add_argument(
        "--split",
        choices=("val", "test"),
        default="val",
        help="split of the run's DATA_PATH to score: val, or test (test/<class>/, else the "
        "TEST_RATIO of train/ held out of training) (default: %(default)s)",
    )
    parser.add_argument(
        "--checkpoint",
        choices=CHECKPOINTS,
        default="best",
        help="best.pt (best val F1) or last.pt (the last finished epoch) (default: %(default)s)",
    )
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--cache-dir", type=Path, help=CACHE_HELP)
    add_debug_option(parser)
    return parser.parse_args(argv)


def labelled_images(
    args: argparse.Namespace, run: RunDir, classes: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and labels to score, with labels in the run's class order."""
    cfg = run.data_config()
    if args.data_path is None:
        check_run_data(run, cfg)
        splits = load_splits(cfg, cache_dir=args.cache_dir)
        if splits.classes != classes:
            raise RunError(f"{cfg.data_path} has classes {splits.classes}, the run {classes}")
        if args.split == "test":
            if len(splits.test_y) == 0:
                raise RunError(
                    f"{cfg.data_path} has no test split: add test/<class>/ folders, or train "
                    "with TEST_RATIO (e.g. 0.2) in the data YAML to hold out part of train/"
                )
            return splits.test_x, splits.test_y
        return splits.val_x, splits.val_y
    root = args.data_path / "val" if (args.data_path / "val").is_dir() else args.data_path
    files, labels = scan_split(root, classes)
    cache = args.cache_dir if args.cache_dir is not None else default_cache_dir()
    images, kept = decode_cached(root, files, cfg.img_size, cache)
    return images, torch.tensor(labels)[torch.tensor(kept, dtype=torch.long)]


def score(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: list[str],
    img_size: int,
    device: torch.device,
) -> dict[str, Any]:
    """Every metric of the predictions, plus the model's cost and competition score."""
    from space import count_cost

    preds = predict(model.to(device), images, device)
    k = len(classes)
    f1 = macro_f1(labels, preds, k)
    cost = count_cost(model, img_size)
    return {
        "images": len(labels),
        "f1": f1,
        "accuracy": accuracy(labels, preds),
        "per_class_f1": dict(zip(classes, per_class_f1(labels, preds, k).tolist(), strict=True)),
        "confusion": confusion_matrix(labels, preds, k).tolist(),
        "macs": cost.macs,
        "params": cost.params,
        "competition_score": competition_score(cost.macs, f1),
        "f1_above_cliff": cliff_distance(f1),
    }


def report(result: dict[str, Any], classes: list[str]) -> str:
    """A readable summary: headline scores, per-class F1 and the confusion matrix."""
    width = max(len(c) for c in classes)
    lines = [
        f"macro F1 {result['f1']:.4f}  accuracy {result['accuracy']:.4f}  "
        f"({result['images']} images)",
        f"MACs {result['macs']:,}  params {result['params']:,}  competition score "
        f"{result['competition_score']:.4f}  F1 above the 0.5 cliff "
        f"{result['f1_above_cliff']:+.4f}",
        "",
        f"{'class':<{width}}  F1      confusion (rows true, columns predicted)",
    ]
    for name, row in zip(classes, result["confusion"], strict=True):
        counts = " ".join(f"{n:5d}" for n in row)
        lines.append(f"{name:<{width}}  {result['per_class_f1'][name]:.4f}  {counts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input (a run, a folder, an image) ends with its message, exit code 2."""
    args = parse_args(argv)
    return exit_on_user_error(lambda: _evaluate(args), args.debug)


def _evaluate(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    run = RunDir(args.run)
    model, classes, cfg = load_trained_model(run, args.checkpoint)
    images, labels = labelled_images(args, run, classes)
    result = score(model, images, labels, classes, cfg.img_size, device)
    result["data"] = str(args.data_path or cfg.data_path)
    result["split"] = None if args.data_path else args.split
    (run.path / "evaluation.json").write_text(json.dumps(result, indent=2))
    print(report(result, classes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

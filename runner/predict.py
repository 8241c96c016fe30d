"""`python -m runner.predict`: label an unlabelled folder (like test/NoLabel) with a run."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from litenas.user_input import add_debug_option, exit_on_user_error
from runner.data.splits import load_unlabelled
from runner.training.loop import pick_device, predict
from runner.training.rundir import CHECKPOINTS, RunDir, load_trained_model


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runner.predict", description="Write file,class rows for images."
    )
    parser.add_argument("--run", required=True, type=Path, help="run folder (runs/NAME)")
    parser.add_argument("--images", required=True, type=Path, help="folder of images")
    parser.add_argument("--output", required=True, type=Path, help="CSV to write")
    parser.add_argument(
        "--checkpoint",
        choices=CHECKPOINTS,
        default="best",
        help="best.pt (best val F1) or last.pt (the last finished epoch) (default: %(default)s)",
    )
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    add_debug_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return exit_on_user_error(lambda: _predict(args), args.debug)


def _predict(args: argparse.Namespace) -> int:
    """Predict a class per image into the CSV; user errors propagate to main's one error path."""
    device = pick_device(args.device)
    model, classes, cfg = load_trained_model(RunDir(args.run), args.checkpoint)
    images, files = load_unlabelled(args.images, cfg.img_size)
    preds = predict(model.to(device), images, device).tolist()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "class"])
        for path, label in zip(files, preds, strict=True):
            writer.writerow([path.relative_to(args.images).as_posix(), classes[label]])
    print(f"{args.output}: {len(files)} predictions", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

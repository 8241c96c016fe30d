"""`python -m runner.export --run runs/X [--int8]`: a run's model as ONNX, checked on real images.

Writes model.onnx (and with --int8 model_int8.onnx, statically quantized with ONNX Runtime and
calibrated on train images) into the run folder, then checks each on the run's val images: the
largest logit difference from PyTorch and the macro F1 through ONNX Runtime, which must match
PyTorch's within 0.005 for the float model. It prints batch-1, one-thread latency of PyTorch
eager and of each ONNX file, and writes it all to export.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from litenas.user_input import add_debug_option, exit_on_user_error, positive_int
from runner.data.augment import normalize
from runner.data.cache import CACHE_HELP
from runner.data.splits import load_splits
from runner.deploy.onnx_model import (
    INPUT,
    export_onnx,
    onnx_logits,
    quantize_int8,
    torch_threads,
)
from runner.training.loop import stratified_subset
from runner.training.metrics import macro_f1
from runner.training.rundir import (
    CHECKPOINTS,
    RunDir,
    RunError,
    check_run_data,
    load_trained_model,
)
from space.errors import UserError
from space.latency import interleaved_ms
from space.onnx import onnx_session

F1_TOLERANCE = 0.005  # float ONNX vs PyTorch; more means the export changed the model
DEFAULT_CALIBRATION = 300


class ExportMismatchError(UserError):
    """The exported model does not predict as the PyTorch model does."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runner.export", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--run", required=True, type=Path, help="run folder (runs/NAME)")
    parser.add_argument(
        "--int8", action="store_true", help="also write model_int8.onnx, statically quantized"
    )
    parser.add_argument(
        "--calibration",
        type=positive_int,
        default=DEFAULT_CALIBRATION,
        help="train images (stratified) that calibrate the int8 ranges (default: %(default)s)",
    )
    parser.add_argument(
        "--checkpoint",
        choices=CHECKPOINTS,
        default="best",
        help="weights to export (default: %(default)s)",
    )
    parser.add_argument("--cache-dir", type=Path, help=CACHE_HELP)
    add_debug_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return exit_on_user_error(lambda: _export(args), args.debug)


def _export(args: argparse.Namespace) -> int:
    run = RunDir(args.run)
    model, classes, cfg = load_trained_model(run, args.checkpoint)
    check_run_data(run, cfg)
    splits = load_splits(cfg, cache_dir=args.cache_dir)
    if splits.classes != classes:
        raise RunError(f"{cfg.data_path} has classes {splits.classes}, the run {classes}")
    with torch.no_grad():  # PyTorch's logits: its F1 and what each ONNX file is compared with
        reference = torch.cat([model(normalize(c)).flatten(1) for c in splits.val_x.split(256)])
    labels, k = splits.val_y, len(classes)
    rows: dict[str, dict[str, Any]] = {"pytorch": {"f1": macro_f1(labels, reference.argmax(1), k)}}
    float_path = run.path / "model.onnx"
    export_onnx(model, cfg.img_size, float_path, classes)
    rows["onnx"] = _check(float_path, splits.val_x, reference, labels, k)
    if abs(rows["onnx"]["f1"] - rows["pytorch"]["f1"]) > F1_TOLERANCE:
        raise ExportMismatchError(
            f"{float_path}: macro F1 through ONNX Runtime {rows['onnx']['f1']:.4f} differs from "
            f"PyTorch's {rows['pytorch']['f1']:.4f} by more than {F1_TOLERANCE}; the file is kept "
            "for inspection, do not deploy it"
        )
    if args.int8:
        int8_path = run.path / "model_int8.onnx"
        calibration, check = _calibration_images(
            splits.train_x, splits.train_y, args.calibration, cfg.seed
        )
        in_float = quantize_int8(float_path, int8_path, calibration, check)
        rows["onnx int8"] = _check(int8_path, splits.val_x, reference, labels, k)
        rows["onnx int8"] |= {
            "calibration_images": len(calibration),
            "check_images": len(check),
            "layers_in_float": in_float,
        }
    _add_latency(rows, model, run.path, cfg.img_size)
    result = {
        "img_size": cfg.img_size,
        "val_images": len(labels),
        "checkpoint": args.checkpoint,
        "models": rows,
    }
    (run.path / "export.json").write_text(json.dumps(result, indent=2))
    print(_table(rows, len(labels)))
    return 0


def _calibration_images(
    images: torch.Tensor, labels: torch.Tensor, count: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` stratified train images that calibrate the int8 ranges, and up to as many
    others that check which layers must stay in float (never val: val scores the result)."""
    pick = stratified_subset(labels, min(1.0, count / len(labels)), seed)
    rest = torch.ones(len(labels), dtype=torch.bool)
    rest[pick] = False
    others = torch.nonzero(rest).flatten()
    if len(others) == 0:  # a tiny train split: check on the calibration images themselves
        return images[pick], images[pick]
    check = stratified_subset(labels[others], min(1.0, count / len(others)), seed + 1)
    return images[pick], images[others[check]]


def _check(
    path: Path, images: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor, k: int
) -> dict[str, Any]:
    """F1, largest logit difference from PyTorch, and file size of one ONNX file on val."""
    logits = onnx_logits(onnx_session(path), images)
    return {
        "file": path.name,
        "f1": macro_f1(labels, logits.argmax(1), k),
        "max_abs_diff": float((logits - reference).abs().max()),
        "bytes": path.stat().st_size,
    }


def _add_latency(
    rows: dict[str, dict[str, Any]], model: torch.nn.Module, folder: Path, img_size: int
) -> None:
    """Batch-1, one-thread median latency of PyTorch eager and of each ONNX file, timed run by
    run in turn so that their ratios hold on a machine whose speed drifts."""
    x = normalize(torch.zeros(1, 3, img_size, img_size, dtype=torch.uint8))
    feed = {INPUT: x.numpy()}
    runs = {"pytorch": lambda: model(x)}
    for name, row in rows.items():
        if "file" in row:
            session = onnx_session(folder / row["file"], threads=1)
            runs[name] = lambda s=session: s.run(None, feed)
    with torch.inference_mode(), torch_threads(1):
        for name, ms in interleaved_ms(runs, rounds=10, block=10, warmup_rounds=2).items():
            rows[name]["latency_ms"] = ms


def _table(rows: dict[str, dict[str, Any]], images: int) -> str:
    lines = [
        f"{'model':<10} {'file':<17} {'val F1':>7} {'max |diff|':>10} {'size':>10} {'latency':>9}"
    ]
    base = rows["pytorch"]["latency_ms"]
    for name, row in rows.items():
        diff = f"{row['max_abs_diff']:.2e}" if "max_abs_diff" in row else "-"
        size = f"{row['bytes'] / 1024:,.0f} KiB" if "bytes" in row else "-"
        lines.append(
            f"{name:<10} {row.get('file', '(eager)'):<17} {row['f1']:7.4f} {diff:>10} "
            f"{size:>10} {row['latency_ms']:6.2f} ms  x{base / row['latency_ms']:.1f}"
        )
    lines.append(
        f"val macro F1 on {images} images; latency: batch 1, one thread, median of "
        "100 runs each, timed in turn in blocks of 10 after 20 warm-up runs; xN: times "
        "faster than PyTorch eager"
    )
    int8, plain = rows.get("onnx int8"), rows["onnx"]
    if int8 is not None and int8["latency_ms"] >= plain["latency_ms"]:
        lines.append(
            f"int8 is not faster than float here ({int8['latency_ms']:.2f} ms against "
            f"{plain['latency_ms']:.2f} ms; its quantize/dequantize steps cost more than "
            "a model this small saves): deploy model.onnx for speed, model_int8.onnx "
            "only for its size"
        )
    if "layers_in_float" in rows.get("onnx int8", {}):
        kept = rows["onnx int8"]["layers_in_float"]
        lines.append(
            f"int8: {len(kept)} layers kept in float (first, last, and those whose "
            f"quantization cost most): {', '.join(kept)}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

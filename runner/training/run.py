"""Training a model YAML into a run folder: the one path every full training takes.

`python -m runner.train`, `python -m search.finalize` and bench/fidelity.py all train through
train_run, so a run folder means the same thing whoever made it: resumable after Ctrl-C, its
metrics.json scored on val and, when the data holds images kept out of training (test/<class>/
or TEST_RATIO), on test with the weights runner.evaluate would load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from filelock import FileLock, Timeout
from torch import nn

from litenas.user_input import parse_yaml
from runner.data.config import DataConfig
from runner.data.images import memory_bytes
from runner.data.splits import Splits, load_splits
from runner.training.distill import Teacher
from runner.training.loop import FitOptions, fit, pick_device, predict
from runner.training.metrics import cliff_distance, competition_score, macro_f1
from runner.training.rundir import (
    CheckpointError,
    RunDir,
    RunError,
    load_trained_model,
    plot_curve,
)
from runner.training.state import FitResult
from space.errors import ModelConfigError

if TYPE_CHECKING:
    from space import Cost

LOCK_NAME = ".lock"  # in a run folder while a process trains into it
# Bytes per parameter in training: the weights, their gradients, SGD momentum or AdamW's two
# moments, and the EMA copy.
TRAINING_BYTES_PER_PARAM = 4 * 5


def prepare_run(run: RunDir, model_text: str, cfg: DataConfig, source: str = "") -> bool:
    """Create the run folder with both YAMLs; True when it already holds this very run.

    A folder holding a run of another model or data config is never overwritten.
    """
    resuming = check_run_folder(run, model_text, cfg, source)
    if not resuming:
        run.path.mkdir(parents=True, exist_ok=True)
        run.model_yaml.write_text(model_text)
        run.data_yaml.write_text(yaml.safe_dump(cfg.to_yaml_dict(), sort_keys=False))
    return resuming


def check_run_folder(run: RunDir, model_text: str, cfg: DataConfig, source: str = "") -> bool:
    """Whether the folder already holds this very run (False: none yet); a RunError naming what
    differs when it holds another one. Reads only: nothing is written."""
    if run.compression.is_file():
        raise RunError(
            f"{run.path} holds a compressed run (compression.yaml): resume it with "
            "python -m runner.compress, or pass a new --output"
        )
    if not run.data_yaml.is_file():
        return False
    other = other_run(run, model_text, cfg, source)
    if other:
        raise RunError(
            f"{run.path} holds a run of another {other}; pass a new --output to start a new "
            "run, or the same files to resume this one"
        )
    return True


def other_run(run: RunDir, model_text: str, cfg: DataConfig, source: str = "") -> str:
    """What differs between the run in the folder and this model and data config ("model
    (...)", "data config (KEY: ... in the run, ... now)"), or "" when it holds this very run."""
    saved = run.data_config()
    if saved != cfg:
        old, new = saved.to_yaml_dict(), cfg.to_yaml_dict()
        keys = [f"{k}: {old[k]!r} in the run, {new[k]!r} now" for k in new if old[k] != new[k]]
        return f"data config ({'; '.join(keys)})"
    same_model = parse_yaml(run.model_yaml.read_text()) == parse_yaml(model_text)
    mine = f" from {source}" if source else ""
    return "" if same_model else f"model ({run.model_yaml} differs{mine})"


@contextlib.contextmanager
def locked(run: RunDir) -> Iterator[None]:
    """Hold the run folder's lock (its .lock file) while training into it, so that a second
    process on the same --output is refused instead of overwriting the first one's files."""
    run.path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run.path / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunError(
            f"{run.path} is in use by another process training into it; wait for it "
            "to finish, or pass another --output"
        ) from None
    try:
        yield
    finally:
        lock.release()


def check_input_channels(model: nn.Module, source: str) -> None:
    """Images are decoded as RGB: a model that takes another channel count cannot train on them."""
    channels = getattr(model, "input_channel", 3)
    if channels != 3:
        raise RunError(
            f"{source}: input_channel is {channels}, but images are loaded as RGB (3 channels); "
            "set input_channel: 3"
        )


def check_trainable(model: nn.Module, source: str = "") -> None:
    """A ModelConfigError with the figures when training `model` (built on any device, the meta
    one included) cannot fit in this machine's memory, before its weights are allocated."""
    params = sum(p.numel() for p in model.parameters())
    memory = memory_bytes()
    need = params * TRAINING_BYTES_PER_PARAM
    if memory is not None and need > memory:
        raise ModelConfigError(
            f"{source + ': ' if source else ''}the model has {params:,} parameters; training it "
            f"takes about {need / 1e9:,.1f} GB, more than this machine's {memory / 1e9:,.1f} GB "
            "of memory: lower the channels"
        )


def run_metrics(result: FitResult, macs: int, params: int) -> dict[str, Any]:
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


def test_f1(run: RunDir, splits: Splits, device: str | torch.device | None = None) -> float:
    """Macro F1 on the held-out test split of the weights runner.evaluate loads (best.pt)."""
    model, classes, _ = load_trained_model(run)
    if len(splits.test_y) == 0:
        raise RunError(f"{run.path}: the data has no test split (test/<class>/ or TEST_RATIO)")
    target = pick_device(device)
    preds = predict(model.to(target), splits.test_x, target)
    return macro_f1(splits.test_y, preds, len(classes))


def load_teacher(cfg: DataConfig, classes: list[str]) -> Teacher | None:
    """The TEACHER run of cfg (its best weights), or None without one; classes must match."""
    if not cfg.teacher:
        return None
    model, teacher_classes, teacher_cfg = load_trained_model(RunDir(Path(cfg.teacher)))
    if teacher_classes != classes:
        raise RunError(
            f"teacher {cfg.teacher} was trained on classes {teacher_classes}, the data has "
            f"{classes}: distil from a run of the same data"
        )
    return Teacher(model, teacher_cfg.img_size, cfg.kd_temperature, cfg.kd_weight)


def finished_metrics(run: RunDir, cfg: DataConfig) -> dict[str, Any] | None:
    """metrics.json of a run that trained all of cfg's epochs, else None."""
    if not run.metrics.is_file():
        return None
    metrics = json.loads(run.metrics.read_text())
    return metrics if metrics.get("epochs_run") == cfg.epochs else None


def trained_metrics(
    run: RunDir, model_text: str, cfg: DataConfig, source: str = ""
) -> dict[str, Any] | None:
    """The metrics of this very run when the folder holds it finished, else None (a RunError
    when the folder holds another run)."""
    if not check_run_folder(run, model_text, cfg, source):
        return None
    return finished_metrics(run, cfg)


def train_run(
    run: RunDir,
    model_text: str,
    cfg: DataConfig,
    *,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    model_source: str | None = None,
) -> dict[str, Any]:
    """Train (or resume, or skip when finished) one run; returns its metrics.

    `model_source` (the user's model YAML) is named in errors about the model. KeyboardInterrupt
    propagates after the last finished epoch is saved in last.pt.
    """
    from space import build_model, count_cost

    source = model_source or str(run.model_yaml)
    done = trained_metrics(run, model_text, cfg, source)
    if done is not None:
        return done
    # Every input is checked before the folder is written, so a failed start leaves none.
    splits = load_splits(cfg, cache_dir=cache_dir, progress=progress)
    teacher = load_teacher(cfg, splits.classes)
    model_cfg = parse_yaml(model_text)
    with torch.device("meta"):  # rows and shapes only: is there memory to train it?
        check_trainable(
            build_model(model_cfg, num_classes=len(splits.classes), source=source), source
        )
    model = build_model(model_cfg, num_classes=len(splits.classes), seed=cfg.seed, source=source)
    check_input_channels(model, source)
    cost = count_cost(model, cfg.img_size)
    with locked(run):
        return _train_locked(
            run, model_text, cfg, source, splits, teacher, model, cost, device, progress
        )


def _train_locked(
    run: RunDir,
    model_text: str,
    cfg: DataConfig,
    source: str,
    splits: Splits,
    teacher: Teacher | None,
    model: nn.Module,
    cost: Cost,
    device: str | torch.device | None,
    progress: bool,
) -> dict[str, Any]:
    """train_run's part under the folder's lock: write (or check again) the YAMLs, resume, fit."""
    if prepare_run(run, model_text, cfg, source):
        done = finished_metrics(run, cfg)  # another process may have finished it meanwhile
        if done is not None:
            return done
    try:
        saved = run.load_state()
    except CheckpointError as e:
        raise CheckpointError(
            f"{e}; a run cannot resume from it: delete {run.last} to train "
            f"{run.path} again from the first epoch"
        ) from e
    if saved is not None:
        print(f"resuming {run.path} after epoch {saved[0].epochs_done}", file=sys.stderr)
    options = FitOptions(seed=cfg.seed, device=device, progress=progress, teacher=teacher)
    result = fit(
        model,
        splits,
        cfg,
        options,
        resume=saved[0] if saved else None,
        on_state=lambda state: run.save_state(state, splits.classes),
    )
    metrics = run_metrics(result, cost.macs, cost.params)
    if len(splits.test_y):
        metrics["test_f1"] = test_f1(run, splits, device)
        metrics["test_images"] = len(splits.test_y)
    run.write_metrics(metrics)
    plot_curve(result.history, run.curve)
    return metrics

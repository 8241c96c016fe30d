"""A training run's folder: both YAMLs, best and last checkpoints, metrics JSON, training curve.

Everything evaluate and predict need is in the folder, so a run can be scored or used anywhere
without the command that made it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runner.data.config import DataConfig, data_config_from_dict, is_torchvision, load_yaml_mapping
from runner.files import save_atomic, write_text_atomic
from runner.training.state import EpochStats, TrainState
from space.errors import UserError


class RunError(UserError):
    """A run folder that is missing files or belongs to another model or data config."""


class CheckpointError(RunError):
    """A checkpoint that cannot be read (empty, truncated, not ours) or fits another model."""


CHECKPOINTS = ("best", "last")
_BEST_KEYS = ("model", "classes")
_LAST_KEYS = ("epochs_done", "model", "optimizer", "scaler", "history", "train_seconds", "classes")


_DAMAGE = {
    "EOFError": "the file is empty or ends early",
    "UnpicklingError": "it holds objects other than tensors, which are never loaded",
    "RuntimeError": "not a torch checkpoint, or a truncated one",
}


def read_checkpoint(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """torch.load (weights only) of one of our checkpoints; CheckpointError naming the file when it
    is damaged or was not written by a run."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch reports damage as EOFError, RuntimeError, UnpicklingError...
        # torch's own text is not passed on: it suggests weights_only=False, which would run
        # whatever code an untrusted file holds.
        reason = _DAMAGE.get(type(e).__name__, f"torch cannot read it: {type(e).__name__}")
        raise CheckpointError(f"{path} is damaged or belongs to another model ({reason})") from e
    missing = [k for k in keys if k not in raw] if isinstance(raw, dict) else list(keys)
    if missing:
        raise CheckpointError(
            f"{path} is damaged or belongs to another model (not a run "
            f"checkpoint: no {', '.join(missing)})"
        )
    return raw


@dataclasses.dataclass(frozen=True)
class RunDir:
    """The file layout of one run."""

    path: Path

    @property
    def model_yaml(self) -> Path:
        return self.path / "model.yaml"

    @property
    def data_yaml(self) -> Path:
        return self.path / "data.yaml"

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def curve(self) -> Path:
        return self.path / "curve.png"

    @property
    def compression(self) -> Path:
        """compression.yaml: present only in a compressed run (python -m runner.compress)."""
        return self.path / "compression.yaml"

    def data_config(self) -> DataConfig:
        """The run's data config, as it was trained."""
        if not self.data_yaml.is_file():
            raise RunError(f"{self.path} is not a run folder: {self.data_yaml.name} is missing")
        return data_config_from_dict(load_yaml_mapping(self.data_yaml), str(self.data_yaml))

    def save_state(self, state: TrainState, classes: list[str]) -> None:
        """Write last.pt, and best.pt when the newest epoch has the best F1 so far."""
        payload = {
            "epochs_done": state.epochs_done,
            "model": state.model,
            "optimizer": state.optimizer,
            "scaler": state.scaler,
            "history": [dataclasses.asdict(h) for h in state.history],
            "train_seconds": state.train_seconds,
            "classes": classes,
            "ema": state.ema,
        }
        save_atomic(payload, self.last)
        scores = [h.f1 for h in state.history]
        if scores and scores[-1] >= max(scores):
            best = {
                "model": state.scored_weights(),
                "classes": classes,
                "epoch": state.epochs_done,
            }
            save_atomic(best | {"f1": scores[-1]}, self.best)

    def load_state(self) -> tuple[TrainState, list[str]] | None:
        """The last checkpoint as a resumable state and its classes, or None when there is none."""
        if not self.last.is_file():
            return None
        raw = read_checkpoint(self.last, _LAST_KEYS)
        history = [EpochStats(**h) for h in raw["history"]]
        state = TrainState(
            raw["epochs_done"],
            raw["model"],
            raw["optimizer"],
            raw["scaler"],
            history,
            raw["train_seconds"],
            raw.get("ema"),
        )
        return state, raw["classes"]

    def load_weights(self, checkpoint: str = "best") -> tuple[dict[str, Any], list[str]]:
        """The weights and class names of best.pt (when there is none yet, of last.pt), or with
        `checkpoint` "last" the scored (EMA when used) weights of last.pt."""
        if checkpoint == "best" and self.best.is_file():
            raw = read_checkpoint(self.best, _BEST_KEYS)
            return raw["model"], raw["classes"]
        loaded = self.load_state()
        if loaded is not None:
            return loaded[0].scored_weights(), loaded[1]
        if checkpoint == "last":
            raise RunError(f"{self.path} holds no last.pt: train it first")
        raise RunError(f"{self.path} holds no checkpoint (best.pt or last.pt): train it first")

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """metrics.json, written whole."""
        write_text_atomic(json.dumps(metrics, indent=2), self.metrics)


def check_run_data(run: RunDir, cfg: DataConfig) -> None:
    """The image folder the run was trained on is still there; else a RunError naming the run's
    data.yaml (nothing is downloaded or fetched for a run that exists already)."""
    if not is_torchvision(cfg.dataset) and not Path(cfg.data_path).is_dir():
        raise RunError(
            f"{run.data_yaml}: DATA_PATH {cfg.data_path!r} is not a folder (resolved from "
            f"{Path.cwd()}); the run's data has moved or is gone: run from the directory it was "
            "trained in, or edit DATA_PATH there to point at the images"
        )


def load_trained_model(
    run: RunDir, checkpoint: str = "best"
) -> tuple[nn.Module, list[str], DataConfig]:
    """Rebuild the run's model from its YAML and load the weights of `checkpoint` (best, last).

    A compressed run's model is rebuilt from model.yaml and then given the structure its
    compression.yaml records (pruned widths, Tucker ranks) before the weights are loaded.
    A damaged best.pt (or one of another model) is an error that says whether last.pt is sound,
    since training may have been cut off while the best weights were not yet the last ones.
    """
    if not run.model_yaml.is_file():
        raise RunError(f"{run.path} is not a run folder: {run.model_yaml.name} is missing")
    try:
        model, classes = _model_with_weights(run, checkpoint)
    except CheckpointError as e:
        raise CheckpointError(f"{e}{_last_hint(run) if checkpoint == 'best' else ''}") from e
    return model, classes, run.data_config()


def _model_with_weights(run: RunDir, checkpoint: str) -> tuple[nn.Module, list[str]]:
    from space import build_model

    weights, classes = run.load_weights(checkpoint)
    model = build_model(run.model_yaml, num_classes=len(classes))
    if run.compression.is_file():
        model = _compressed_structure(run, model)
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:  # missing, unexpected or mis-shaped tensors
        path = run.best if checkpoint == "best" and run.best.is_file() else run.last
        reason = " ".join(str(e).split())[:300]
        raise CheckpointError(f"{path} is damaged or belongs to another model ({reason})") from e
    return model.eval(), classes


def _compressed_structure(run: RunDir, model: nn.Module) -> nn.Module:
    """The original model given the structure compression.yaml records."""
    try:
        from runner.deploy.compression import read_record, restructure
    except ImportError as e:
        raise RunError(
            f"{run.compression}: loading a compressed run needs torch-pruning and "
            f"tensorly: pip install -e '.[deploy]' ({e})"
        ) from e
    record = read_record(run.compression)
    return restructure(model, record, run.data_config().img_size, str(run.compression))


def _last_hint(run: RunDir) -> str:
    """'; last.pt is sound (...): pass --checkpoint last' when it is, else ''."""
    if not run.last.is_file():
        return ""
    try:
        _model_with_weights(run, "last")
    except CheckpointError:
        return f"; {run.last} is damaged too: train the run again"
    state, _ = run.load_state()  # type: ignore[misc]  # last.pt is there and sound
    f1 = f", val F1 {state.history[-1].f1:.4f}" if state.history else ""
    return (
        f"; {run.last} is sound ({state.epochs_done} epochs{f1}): pass --checkpoint last to use it"
    )


def plot_curve(history: list[EpochStats], target: Path) -> None:
    """Training loss and validation macro F1 per epoch, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    epochs = [h.epoch for h in history]
    fig = Figure(figsize=(7, 4))
    loss_ax = fig.subplots()
    loss_ax.plot(epochs, [h.loss for h in history], color="tab:blue", label="train loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("train loss", color="tab:blue")
    f1_ax = loss_ax.twinx()
    f1_ax.plot(epochs, [h.f1 for h in history], color="tab:orange", label="val macro F1")
    f1_ax.set_ylabel("val macro F1", color="tab:orange")
    f1_ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(target, dpi=100)

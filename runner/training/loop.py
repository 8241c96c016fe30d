"""The training loop on cached splits: fit() serves brief search trials and full final runs.

The epoch loop touches only index tensors and whole batches (gather, augment, normalise, step), so
a brief trial costs what the model costs. The search reaches training only through on_epoch.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from runner.data.augment import cutmix, normalize, train_augment
from runner.data.config import DataConfig
from runner.data.splits import Splits, shuffled_classes
from runner.training.distill import Teacher
from runner.training.ema import make_ema
from runner.training.metrics import accuracy, confusion_matrix, macro_f1, per_class_f1
from runner.training.schedule import build_optimizer, lr_at, set_lr
from runner.training.state import EpochStats, FitResult, TrainState
from space.errors import UserError

EVAL_BATCH = 256
CUTMIX_PROBABILITY = 0.5
UNBOUNDED_EPOCHS = 1_000_000


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message gives the epoch and step."""


class DeviceError(UserError):
    """A --device this machine does not have; the message lists the ones it has."""


def available_devices() -> list[str]:
    """The --device values this machine can run on: cpu, then each CUDA device and mps."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    cuda = [f"cuda:{i}" for i in range(count)]
    mps = ["mps"] if torch.backends.mps.is_available() else []
    return ["cpu", *cuda, *mps]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, checked to exist here (a DeviceError naming the ones that do), else
    CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    have = available_devices()
    try:
        picked = torch.device(device)
    except (RuntimeError, ValueError):
        picked = None
    if picked is None or picked.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(
            f"--device {device!r} is not a device name; this machine has: {', '.join(have)}"
        )
    usable = picked.type == "cpu" or (
        f"{picked.type}:{picked.index or 0}" in have if picked.type == "cuda" else "mps" in have
    )
    if not usable:
        raise DeviceError(
            f"--device {device} is not on this machine; this machine has: {', '.join(have)}"
        )
    return picked


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indexes of a seeded fraction of each class (at least one image per class)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {fraction=}")
    if fraction == 1.0:
        return torch.arange(len(labels))
    keep = [m[: max(1, round(len(m) * fraction))] for m in shuffled_classes(labels, seed)]
    return torch.cat(keep).sort().values


@torch.inference_mode()
def predict(
    model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = EVAL_BATCH
) -> torch.Tensor:
    """Predicted class of each uint8 image, in eval mode (the training flag is restored)."""
    was_training = model.training
    model.eval()
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    preds = []
    for chunk in images.split(batch_size):
        x = normalize(chunk.to(device, non_blocking=True)).contiguous(memory_format=fmt)
        preds.append(model(x).flatten(1).argmax(1).cpu())
    model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def _loss_fn(cfg: DataConfig, labels: torch.Tensor, num_classes: int) -> nn.Module:
    """Cross-entropy with label smoothing, weighted by inverse class frequency if BALANCE=loss."""
    weight = None
    if cfg.balance == "loss":
        counts = torch.bincount(labels, minlength=num_classes).clamp(min=1).float()
        weight = counts.sum() / (num_classes * counts)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)


@dataclasses.dataclass
class _Loop:
    """What one run's training steps share (kept together so each step function stays short)."""

    model: nn.Module
    cfg: DataConfig
    device: torch.device
    train_x: torch.Tensor
    train_y: torch.Tensor
    loss_fn: nn.Module
    augment: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    total_steps: float
    seconds: float
    seed: int
    ema: torch.optim.swa_utils.AveragedModel | None = None
    teacher: Teacher | None = None

    @property
    def scored(self) -> nn.Module:
        """The model that is validated and saved as best: the EMA's copy when EMA_DECAY > 0."""
        return self.model if self.ema is None else self.ema.module

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """This epoch's sample order: a shuffle, or class-balanced draws when BALANCE=sampler."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        n = len(self.train_y)
        if self.cfg.balance == "sampler":
            labels = self.train_y.cpu()  # the generator lives on the CPU, on every device
            weights = (1.0 / torch.bincount(labels).float())[labels]
            return torch.multinomial(weights, n, replacement=True, generator=generator)
        return torch.randperm(n, generator=generator)

    def train_size(self, epoch: int, epochs: int) -> int | None:
        """FixRes (Touvron et al. 2019, arXiv:1906.06423): the epochs before the last
        FIXRES_EPOCHS train at the smaller FIXRES_TRAIN_SIZE, the last ones at IMG_SIZE, so the
        final weights and BatchNorm statistics fit the size the model is tested and costed at.
        None: train at IMG_SIZE."""
        size = self.cfg.fixres_train_size
        if not size or size == self.cfg.img_size or epoch >= epochs - self.cfg.fixres_epochs:
            return None
        return size

    def step(self, idx: torch.Tensor, lr: float, size: int | None = None) -> torch.Tensor:
        """One optimisation step on the samples idx (resized to size); returns the loss."""
        images = self.augment(self.train_x[idx])
        labels_a = labels_b = self.train_y[idx]
        weight_a = 1.0
        if self.cfg.cutmix > 0 and float(torch.rand(())) < CUTMIX_PROBABILITY:
            images, labels_a, labels_b, weight_a = cutmix(images, labels_a, self.cfg.cutmix)
        x = normalize(images)
        if size is not None:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        set_lr(self.optimizer, lr)
        amp = self.device.type == "cuda" and self.cfg.fp16
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=amp):
            logits = self.model(x).flatten(1)
            loss = weight_a * self.loss_fn(logits, labels_a)
            if weight_a < 1.0:
                loss = loss + (1 - weight_a) * self.loss_fn(logits, labels_b)
            if self.teacher is not None:
                loss = self.teacher.loss(logits, x, loss)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return loss.detach()

    def run_epoch(
        self, epoch: int, done_steps: int, start: float, bar: tqdm, size: int | None = None
    ) -> tuple[float, int]:
        """Train one epoch (or until the time budget ends); returns mean loss and steps taken."""
        order = self.epoch_order(epoch).to(self.device)
        batch = min(self.cfg.batch_size, len(order))
        total, steps = 0.0, 0
        for i in range(len(order) // batch):
            elapsed = time.perf_counter() - start
            progress = max((done_steps + steps) / self.total_steps, elapsed / self.seconds)
            if progress >= 1.0:
                break
            lr = lr_at(progress, self.cfg.init_lr, self.cfg.scheduler)
            loss = float(self.step(order[i * batch : (i + 1) * batch], lr, size))
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss} at epoch {epoch + 1}, step {steps + 1}: lower INIT_LR "
                    f"(now {self.cfg.init_lr}) or check the model"
                )
            total, steps = total + loss, steps + 1
            bar.set_postfix(loss=f"{total / steps:.3f}", refresh=False)
        return total / max(steps, 1), steps


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """How long, on what and where one run trains; the recipe itself is the data config.

    epochs defaults to the config's EPOCHS; with seconds as well, whichever ends first stops the
    run; with only seconds, epochs are unbounded. train_fraction trains on a seeded stratified
    share of the train split. A teacher adds distillation (runner/training/distill.py).
    """

    epochs: int | None = None
    seconds: float | None = None
    train_fraction: float = 1.0
    seed: int = 0
    device: str | torch.device | None = None
    progress: bool = True
    teacher: Teacher | None = None

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got epochs={self.epochs}")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"seconds must be > 0, got seconds={self.seconds}")


@dataclasses.dataclass(frozen=True)
class _Budget:
    """The limits of one run: epochs (UNBOUNDED_EPOCHS when only time limits it) and seconds."""

    epochs: int
    seconds: float

    @classmethod
    def of(cls, cfg: DataConfig, options: FitOptions) -> _Budget:
        epochs = options.epochs
        if epochs is None:
            epochs = cfg.epochs if options.seconds is None else UNBOUNDED_EPOCHS
        return cls(epochs, math.inf if options.seconds is None else float(options.seconds))

    @property
    def bounded(self) -> bool:
        return self.epochs < UNBOUNDED_EPOCHS


def _make_loop(
    model: nn.Module,
    splits: Splits,
    cfg: DataConfig,
    budget: _Budget,
    options: FitOptions,
    device: torch.device,
) -> _Loop:
    """Move the model and the training subset to the device and set up the optimiser."""
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    subset = stratified_subset(splits.train_y, options.train_fraction, options.seed)
    train_x, train_y = splits.train_x[subset].to(device), splits.train_y[subset].to(device)
    steps_per_epoch = max(1, len(subset) // min(cfg.batch_size, len(subset)))
    teacher = options.teacher
    return _Loop(
        model,
        cfg,
        device,
        train_x,
        train_y,
        _loss_fn(cfg, splits.train_y[subset], len(splits.classes)).to(device),
        train_augment(cfg).to(device),
        build_optimizer(model, cfg),
        torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and cfg.fp16),
        budget.epochs * steps_per_epoch if budget.bounded else math.inf,
        budget.seconds,
        options.seed,
        make_ema(model, cfg.ema_decay) if cfg.ema_decay > 0 else None,
        None if teacher is None else dataclasses.replace(teacher, model=teacher.model.to(device)),
    )


def _validate(model: nn.Module, splits: Splits, device: torch.device) -> dict[str, Any]:
    """Macro F1, accuracy, per-class F1 and confusion matrix on the validation split."""
    k = len(splits.classes)
    preds = predict(model, splits.val_x, device)
    per_class = per_class_f1(splits.val_y, preds, k).tolist()
    return {
        "f1": macro_f1(splits.val_y, preds, k),
        "accuracy": accuracy(splits.val_y, preds),
        "per_class_f1": dict(zip(splits.classes, per_class, strict=True)),
        "confusion": confusion_matrix(splits.val_y, preds, k).tolist(),
    }


def _resume(loop: _Loop, state: TrainState | None) -> TrainState:
    """Load a saved state into the loop; returns it (an empty one to start from scratch)."""
    if state is None:
        return TrainState(0, {}, {}, {}, [], 0.0)
    loop.model.load_state_dict(state.model)
    loop.optimizer.load_state_dict(state.optimizer)
    loop.scaler.load_state_dict(state.scaler)
    if loop.ema is not None and state.ema is not None:
        loop.ema.load_state_dict(state.ema)
    return state


def fit(
    model: nn.Module,
    splits: Splits,
    cfg: DataConfig,
    options: FitOptions = FitOptions(),
    *,
    on_epoch: Callable[[EpochStats], None] | None = None,
    on_state: Callable[[TrainState], None] | None = None,
    resume: TrainState | None = None,
) -> FitResult:
    """Train in place under the options' budget; validate after each epoch.

    on_epoch may raise to stop the run (the exception propagates). on_state receives a resumable
    state after each epoch; passing it back as resume continues the run where it stopped.
    With EMA_DECAY > 0 every score is the weight average's.
    """
    device = pick_device(options.device)
    budget = _Budget.of(cfg, options)
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        loop = _make_loop(model, splits, cfg, budget, options, device)
        resumed = _resume(loop, resume)
        bar = tqdm(
            total=budget.epochs if budget.bounded else None,
            initial=resumed.epochs_done,
            desc="train",
            unit="epoch",
            disable=not options.progress,
        )
        try:
            return _run(loop, splits, budget, resumed, bar, on_epoch, on_state)
        finally:
            bar.close()


def _run(
    loop: _Loop,
    splits: Splits,
    budget: _Budget,
    resumed: TrainState,
    bar: tqdm,
    on_epoch: Callable[[EpochStats], None] | None,
    on_state: Callable[[TrainState], None] | None,
) -> FitResult:
    """The epoch loop: train, validate, report, until a budget ends."""
    first, history = resumed.epochs_done, list(resumed.history)
    start = time.perf_counter() - resumed.train_seconds
    done_steps = round(first * loop.total_steps / budget.epochs) if budget.bounded else 0
    scores: dict[str, Any] = {}
    for epoch in range(first, budget.epochs):
        torch.manual_seed(loop.seed * 100_003 + epoch)
        epoch_start = time.perf_counter()
        loop.model.train()
        size = loop.train_size(epoch, budget.epochs)
        loss, steps = loop.run_epoch(epoch, done_steps, start, bar, size)
        if steps == 0:
            break
        done_steps += steps
        scores = _validate(loop.scored, splits, loop.device)
        stats = EpochStats(
            epoch + 1, loss, scores["f1"], scores["accuracy"], time.perf_counter() - epoch_start
        )
        history.append(stats)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", f1=f"{stats.f1:.3f}")
        if on_state is not None:
            on_state(_state(loop, history, time.perf_counter() - start))
        if on_epoch is not None:
            on_epoch(stats)
    if not scores:
        scores = _validate(loop.scored, splits, loop.device)
    return FitResult(
        scores["f1"],
        scores["per_class_f1"],
        scores["accuracy"],
        len(history),
        time.perf_counter() - start,
        history,
        scores["confusion"],
    )


def _state(loop: _Loop, history: list[EpochStats], seconds: float) -> TrainState:
    """A resumable snapshot after the epochs in history."""
    return TrainState(
        len(history),
        loop.model.state_dict(),
        loop.optimizer.state_dict(),
        loop.scaler.state_dict(),
        list(history),
        seconds,
        None if loop.ema is None else loop.ema.state_dict(),
    )

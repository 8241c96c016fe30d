"""Optimisers and learning-rate schedules as a function of training progress in [0, 1].

A schedule of progress (not of a step count fixed in advance) serves both budgets: epochs, where
progress is the share of steps done, and seconds, where it is the share of the time spent.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from runner.data.config import DataConfig

ONECYCLE_WARMUP = 0.3  # torch.optim.lr_scheduler.OneCycleLR's defaults
ONECYCLE_START_DIV = 25.0
ONECYCLE_END_DIV = 1e4
COSINE_WARMUP = 0.05


def _cos_ramp(start: float, end: float, fraction: float) -> float:
    """Cosine interpolation from start (fraction 0) to end (fraction 1)."""
    return end + (start - end) * (1 + math.cos(math.pi * min(max(fraction, 0.0), 1.0))) / 2


def lr_at(progress: float, peak: float, scheduler: str) -> float:
    """Learning rate at a point of training: OneCycle (cosine up, then down) or cosine decay."""
    if scheduler == "onecycle":
        start, end = peak / ONECYCLE_START_DIV, peak / ONECYCLE_START_DIV / ONECYCLE_END_DIV
        if progress < ONECYCLE_WARMUP:
            return _cos_ramp(start, peak, progress / ONECYCLE_WARMUP)
        return _cos_ramp(peak, end, (progress - ONECYCLE_WARMUP) / (1 - ONECYCLE_WARMUP))
    if scheduler == "cosine":
        if progress < COSINE_WARMUP:
            return peak * (progress + 1e-3) / COSINE_WARMUP
        return _cos_ramp(peak, 0.0, (progress - COSINE_WARMUP) / (1 - COSINE_WARMUP))
    raise ValueError(f"scheduler must be 'onecycle' or 'cosine', got {scheduler!r}")


def build_optimizer(model: nn.Module, cfg: DataConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov momentum) or AdamW; no weight decay on BatchNorm weights and biases."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.init_lr)
    return torch.optim.SGD(
        groups, lr=cfg.init_lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Apply a learning rate to every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr

"""An exponential moving average of a model's weights, evaluated instead of the raw weights.

Averaging the weights over the last steps (Polyak averaging; timm's ModelEma) smooths out the
noise of the final SGD/AdamW steps: the averaged model scores higher and, for a brief search
trial, steadier from epoch to epoch. torch's AveragedModel does the bookkeeping; the average is
warmed up (decay min(d, (1 + n) / (10 + n)) after n updates, as timm and TF do) so that a short
run is not dominated by its random initial weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def _warm_ema(
    decay: float,
) -> Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor], torch.Tensor], None]:
    """AveragedModel's multi_avg_fn: lerp float tensors, copy the rest (BN's step counters).

    Per tensor, through public ops: on the CPU this is what a fused foreach lerp runs anyway,
    so the averages (and a replayed trial's F1) stay bit for bit the same."""

    @torch.no_grad()
    def update(
        averaged: Sequence[torch.Tensor], current: Sequence[torch.Tensor], n: torch.Tensor
    ) -> None:
        step = float(n)
        weight = 1.0 - min(decay, (1.0 + step) / (10.0 + step))
        for a, c in zip(averaged, current, strict=True):
            if a.is_floating_point():
                a.lerp_(c, weight)
            else:
                a.copy_(c)

    return update


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """A warmed-up EMA of model's parameters and buffers (BatchNorm statistics included)."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"EMA_DECAY must be in (0, 1), got {decay=}")
    return AveragedModel(model, multi_avg_fn=_warm_ema(decay), use_buffers=True)

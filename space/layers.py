"""Small shared pieces: channel rounding, padding, activations and cost-bearing helper modules.

Every operation with a cost is an ``nn.Module`` here (pooling in SE, shuffle, concat), so
hook-based MAC counters such as thop see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

import torch
from torch import nn

from litenas.user_input import did_you_mean

ACTIVATIONS: MappingProxyType[str, type[nn.Module]] = MappingProxyType(
    {
        "ReLU": nn.ReLU,
        "ReLU6": nn.ReLU6,
        "Hardswish": nn.Hardswish,
        "HardSwish": nn.Hardswish,
        "Swish": nn.SiLU,
        "SiLU": nn.SiLU,
        "HardSigmoid": nn.Hardsigmoid,
        "Hardsigmoid": nn.Hardsigmoid,
        "Sigmoid": nn.Sigmoid,
    }
)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor``, never dropping more than 10%.

    The TF / MobileNet formula, identical in timm and the competition code; channel counts (and so
    checkpoints) depend on it being exactly this.
    """
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def autopad(kernel_size: int, padding: int | None = None) -> int:
    """'Same' padding for odd kernels (``k // 2``) when ``padding`` is None (YAML ``null``)."""
    return kernel_size // 2 if padding is None else padding


def get_act(name: str | None) -> type[nn.Module]:
    """Map a competition activation name to its module class; ``None`` means identity.

    Raises:
        ValueError: for an unknown name, listing the valid ones and the closest match.
    """
    if name is None:
        return nn.Identity
    if isinstance(name, str) and name in ACTIVATIONS:
        return ACTIVATIONS[name]
    valid = [*ACTIVATIONS, "null"]
    hint = did_you_mean(name, valid, cutoff=0.5, template=" Did you mean {!r}?")
    raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(valid)}.{hint}")


class ChannelShuffle(nn.Module):
    """Interleave channel groups so the two ShuffleNet branches exchange information."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)


class Concat(nn.Module):
    """Concatenate along the channel axis (a module, as YOLOv5's, so it shows in traces)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat(list(xs), dim=self.dim)


class SqueezeExcite(nn.Module):
    """Channel attention: pool, reduce, act, expand, gate, rescale (arXiv:1709.01507).

    The pooling is an ``nn.AdaptiveAvgPool2d`` module, not a functional mean, so it is counted.
    """

    def __init__(
        self,
        chs: int,
        rd_chs: int,
        *,
        act_layer: type[nn.Module] = nn.ReLU,
        gate_layer: type[nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(chs, rd_chs, 1, bias=True)
        self.act = act_layer()
        self.conv_expand = nn.Conv2d(rd_chs, chs, 1, bias=True)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.act(self.conv_reduce(self.pool(x)))
        return x * self.gate(self.conv_expand(s))

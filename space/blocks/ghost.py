"""GhostNet bottleneck (arXiv:1911.11907), structured as the paper's reference code."""

from __future__ import annotations

import math

import torch
from torch import nn

from space.blocks.conv import depthwise, pointwise
from space.layers import Concat, SqueezeExcite, make_divisible


class GhostModule(nn.Module):
    """Half the features from a 1x1 conv, the other half from a cheap 3x3 depthwise op on them.

    The primary conv makes ``ceil(out / 2)`` maps; the concatenation is sliced back to ``out``.
    """

    def __init__(self, in_chs: int, out_chs: int, *, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        init_chs = math.ceil(out_chs / 2)
        self.out_chs = out_chs
        self.primary_conv = pointwise(in_chs, init_chs, act_layer)
        self.cheap_operation = depthwise(init_chs, 3, 1, act_layer)
        self.concat = Concat(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        primary = self.primary_conv(x)
        return self.concat([primary, self.cheap_operation(primary)])[:, : self.out_chs]


class GhostBottleneck(nn.Module):
    """Ghost expansion, depthwise kxk when strided, optional SE, ghost projection, shortcut.

    YAML ``t`` is an expansion RATIO here: ``hidden = make_divisible(in * exp_ratio)`` (the
    reference code takes an absolute width; a ratio keeps rows valid under width_multiple). The SE
    squeezes to ``make_divisible(hidden * 0.25, 4)`` with a hard-sigmoid gate, as the reference.
    The shortcut is identity when the shape is kept, else depthwise kxk + 1x1 projection.
    ``act_layer`` (the paper's ReLU by default) activates the expanding ghost module.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        exp_ratio: float = 3.0,
        use_se: bool = False,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        hidden = make_divisible(in_chs * exp_ratio)
        self.ghost1 = GhostModule(in_chs, hidden, act_layer=act_layer)
        self.conv_dw = nn.Identity() if stride == 1 else depthwise(hidden, kernel_size, stride)
        self.se = (
            SqueezeExcite(hidden, make_divisible(hidden * 0.25, 4), gate_layer=nn.Hardsigmoid)
            if use_se
            else nn.Identity()
        )
        self.ghost2 = GhostModule(hidden, out_chs, act_layer=nn.Identity)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_chs == out_chs
            else nn.Sequential(depthwise(in_chs, kernel_size, stride), pointwise(in_chs, out_chs))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ghost2(self.se(self.conv_dw(self.ghost1(x))))
        return out + self.shortcut(x)

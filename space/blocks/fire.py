"""SqueezeNet's Fire module (arXiv:1602.07360)."""

from __future__ import annotations

import torch
from torch import nn

from space.layers import Concat


class Fire(nn.Module):
    """Squeeze with 1x1 convs, then expand with parallel 1x1 and 3x3 convs; out = e1 + e3.

    Convolutions carry biases and no BatchNorm, as in SqueezeNet.
    """

    def __init__(
        self, in_chs: int, squeeze_chs: int, expand1x1_chs: int, expand3x3_chs: int
    ) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_chs, squeeze_chs, kernel_size=1)
        self.squeeze_act = nn.ReLU()
        self.expand1x1 = nn.Conv2d(squeeze_chs, expand1x1_chs, kernel_size=1)
        self.expand1x1_act = nn.ReLU()
        self.expand3x3 = nn.Conv2d(squeeze_chs, expand3x3_chs, kernel_size=3, padding=1)
        self.expand3x3_act = nn.ReLU()
        self.concat = Concat(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze_act(self.squeeze(x))
        return self.concat(
            [self.expand1x1_act(self.expand1x1(s)), self.expand3x3_act(self.expand3x3(s))]
        )

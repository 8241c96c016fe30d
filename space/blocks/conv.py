"""Plain convolution blocks and the classifier pieces: Conv, DWConv, Bottleneck, Linear."""

from __future__ import annotations

import math

import torch
from torch import nn

from space.layers import autopad


class Conv(nn.Module):
    """Conv2d (no bias) + BatchNorm + activation: the unit every other block is made of.

    Also serves as the competition's ``FixedConv`` (the registry only skips channel rounding).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        pad = autopad(kernel_size, padding)
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = act_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def depthwise(
    chs: int, kernel_size: int = 3, stride: int = 1, act_layer: type[nn.Module] = nn.Identity
) -> Conv:
    """A kxk Conv with one filter per channel (groups = channels): the cheap spatial mixing of
    the MobileNet, ShuffleNet and GhostNet blocks."""
    return Conv(chs, chs, kernel_size=kernel_size, stride=stride, groups=chs, act_layer=act_layer)


def pointwise(in_chs: int, out_chs: int, act_layer: type[nn.Module] = nn.Identity) -> Conv:
    """A 1x1 Conv: mixes channels, the expansion and (linear) projection of bottleneck blocks."""
    return Conv(in_chs, out_chs, kernel_size=1, act_layer=act_layer)


def expansion(in_chs: int, hidden: int, act_layer: type[nn.Module]) -> nn.Module:
    """An inverted bottleneck's 1x1 expansion to `hidden`; none when it would keep the width."""
    return nn.Identity() if hidden == in_chs else pointwise(in_chs, hidden, act_layer)


class DWConv(Conv):
    """Grouped Conv with ``groups = gcd(in, out)``: depthwise when in == out, as in MobileNet.

    MobileNets, arXiv:1704.04861.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__(
            in_chs,
            out_chs,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            groups=math.gcd(in_chs, out_chs),
            act_layer=act_layer,
        )


class Bottleneck(nn.Module):
    """ResNet-style 1x1 reduce then 3x3 conv, with an identity shortcut when shapes allow.

    Deep Residual Learning, arXiv:1512.03385. ``hidden = int(out * expansion)``, as the
    competition code did.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        shortcut: bool = True,
        groups: int = 1,
        expansion: float = 0.5,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        hidden = int(out_chs * expansion)
        self.conv_reduce = Conv(in_chs, hidden, kernel_size=1, act_layer=act_layer)
        self.conv = Conv(hidden, out_chs, kernel_size=3, groups=groups, act_layer=act_layer)
        self.has_skip = bool(shortcut) and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.conv_reduce(x))
        return x + out if self.has_skip else out


class Linear(nn.Module):
    """Fully connected layer (with bias) + optional activation; flattens a pooled map first.

    Flattening here lets ``GlobalAvgPool`` be followed by ``Linear`` without a ``Flatten`` row.
    """

    def __init__(
        self, in_chs: int, out_chs: int, *, act_layer: type[nn.Module] = nn.Identity
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(in_chs, out_chs)
        self.act = act_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x.flatten(1)))

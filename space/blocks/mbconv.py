"""Inverted residual blocks: MobileNetV2, MobileNetV3 and EfficientNet's MBConv."""

from __future__ import annotations

import torch
from torch import nn

from space.blocks.conv import depthwise, expansion, pointwise
from space.layers import SqueezeExcite, make_divisible


class InvertedResidualv2(nn.Module):
    """MobileNetV2 block: expand 1x1, depthwise 3x3, linear 1x1 projection (arXiv:1801.04381).

    ``hidden = round(in * exp_ratio)``; no expansion conv when ``exp_ratio == 1``; the paper's
    ReLU6 unless ``act_layer`` says otherwise.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        stride: int = 1,
        exp_ratio: float = 6.0,
        act_layer: type[nn.Module] = nn.ReLU6,
    ) -> None:
        super().__init__()
        hidden = int(round(in_chs * exp_ratio))
        self.conv_pw = nn.Identity() if exp_ratio == 1 else pointwise(in_chs, hidden, act_layer)
        self.conv_dw = depthwise(hidden, 3, stride, act_layer)
        self.conv_pwl = pointwise(hidden, out_chs)
        self.has_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pwl(self.conv_dw(self.conv_pw(x)))
        return x + out if self.has_skip else out


class InvertedResidualv3(nn.Module):
    """MobileNetV3 block: expand, kxk depthwise, optional SE, act, project (arXiv:1905.02244).

    ``hidden = make_divisible(in * exp_ratio)``; no expansion conv when ``hidden == in``. The SE
    squeezes to ``make_divisible(hidden // 4)`` with a hard-sigmoid gate, as in MobileNetV3.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        exp_ratio: float = 4.0,
        use_se: bool = False,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        hidden = make_divisible(in_chs * exp_ratio)
        self.conv_pw = expansion(in_chs, hidden, act_layer)
        self.conv_dw = depthwise(hidden, kernel_size, stride)
        self.se = (
            SqueezeExcite(hidden, make_divisible(hidden // 4), gate_layer=nn.Hardsigmoid)
            if use_se
            else nn.Identity()
        )
        self.act = act_layer()
        self.conv_pwl = pointwise(hidden, out_chs)
        self.has_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.se(self.conv_dw(self.conv_pw(x))))
        out = self.conv_pwl(out)
        return x + out if self.has_skip else out


class MBConv(nn.Module):
    """EfficientNet mobile inverted bottleneck with SE and Swish (arXiv:1905.11946).

    ``hidden = in * exp_ratio``; the SE reduces to ``max(1, in // 4)``, counted from the block's
    INPUT channels as in the reference implementation, with a sigmoid gate. ``act_layer`` (the
    paper's Swish = SiLU by default) is used throughout, the SE's reduction included, as in timm.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        exp_ratio: float = 6.0,
        act_layer: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        hidden = int(in_chs * exp_ratio)
        self.conv_pw = expansion(in_chs, hidden, act_layer)
        self.conv_dw = depthwise(hidden, kernel_size, stride, act_layer)
        self.se = SqueezeExcite(hidden, max(1, in_chs // 4), act_layer=act_layer)
        self.conv_pwl = pointwise(hidden, out_chs)
        self.has_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        return x + out if self.has_skip else out

"""ShuffleNetV2 unit (arXiv:1807.11164), laid out as torchvision's so parameter counts agree."""

from __future__ import annotations

import torch
from torch import nn

from space.blocks.conv import depthwise, pointwise
from space.layers import ChannelShuffle, Concat


class ShuffleNetV2(nn.Module):
    """Split (stride 1) or duplicate (stride 2) the input, transform one branch, concat, shuffle.

    Stride 1 keeps the channel count (``out == in``, which must be even); stride 2 doubles it.
    All convolutions are bias-free, as in the paper and torchvision.
    """

    def __init__(self, in_chs: int, out_chs: int, *, stride: int = 1) -> None:
        super().__init__()
        branch = out_chs // 2
        self.stride = stride
        self.branch_proj = (
            nn.Identity()
            if stride == 1
            else nn.Sequential(depthwise(in_chs, 3, stride), pointwise(in_chs, branch, nn.ReLU))
        )
        main_in = branch if stride == 1 else in_chs
        self.branch_main = nn.Sequential(
            pointwise(main_in, branch, nn.ReLU),
            depthwise(branch, 3, stride),
            pointwise(branch, branch, nn.ReLU),
        )
        self.concat = Concat(dim=1)
        self.shuffle = ChannelShuffle(groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)
        else:
            left = right = x
        return self.shuffle(self.concat([self.branch_proj(left), self.branch_main(right)]))

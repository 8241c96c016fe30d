"""Block library: one block family per module, timm-style signatures, paper-role names."""

from space.blocks.conv import Bottleneck, Conv, DWConv, Linear
from space.blocks.fire import Fire
from space.blocks.ghost import GhostBottleneck, GhostModule
from space.blocks.mbconv import InvertedResidualv2, InvertedResidualv3, MBConv
from space.blocks.shufflenet import ShuffleNetV2

__all__ = [
    "Bottleneck",
    "Conv",
    "DWConv",
    "Fire",
    "GhostBottleneck",
    "GhostModule",
    "InvertedResidualv2",
    "InvertedResidualv3",
    "Linear",
    "MBConv",
    "ShuffleNetV2",
]

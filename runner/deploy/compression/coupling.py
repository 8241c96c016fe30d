"""What torch-pruning must be told about the registry's blocks to prune them without breaking them.

Its dependency graph follows convolutions, BatchNorm, residual adds and concatenations, but three
patterns of space/blocks defeat it, each in its own way:

- A grouped conv that is not depthwise (DWConv with in != out, so groups = gcd(in, out); a
  Bottleneck with groups > 1): torch-pruning takes groups == out for depthwise and slices the
  weight wrongly (an IndexError, or widths that disagree). GroupedConvPruner prunes the same
  positions in every group instead; held when torch-pruning would still call it depthwise
  (groups == out) or when its group count does not divide evenly with a coupled conv's.
- ShuffleNetV2's split, concat and channel shuffle permute channels, which the graph cannot map
  (a ZeroDivisionError in its reshape mapping, or a model that fails to run). A unit is one opaque
  layer whose input and output channels are held; prune_branches() prunes the width inside.
- Ghost's concat of a conv and a depthwise op on that conv's own output: the graph maps the halves
  apart and prunes the cheap op to nothing, so the run's record cannot be applied again. A
  GhostModule is pruned as one layer: its output channels i and init + i go together.

pruning_view() shows the model to torch-pruning that way; held_layers() turns held channels into
torch-pruning's ignored layers (every layer whose output shares a pruning group with a held
channel keeps its width).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from space.blocks import GhostModule, ShuffleNetV2

Side = tuple[nn.Module, str]  # a layer and which of its channels ("in" or "out")


def _is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups == conv.in_channels == conv.out_channels


class GhostModulePruner(tp.pruner.BasePruningFunc):
    """Prunes a GhostModule as one layer: output channel i (primary conv) and init + i (the
    cheap depthwise op on it) are one channel pair; inputs are the primary conv's."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        init = layer.primary_conv.conv.out_channels
        drop = sorted({i % init for i in idxs})
        tp.prune_conv_out_channels(layer.primary_conv.conv, drop)
        tp.prune_batchnorm_out_channels(layer.primary_conv.bn, drop)
        tp.prune_depthwise_conv_out_channels(layer.cheap_operation.conv, drop)
        tp.prune_batchnorm_out_channels(layer.cheap_operation.bn, drop)
        layer.out_chs = 2 * layer.primary_conv.conv.out_channels
        return layer

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        tp.prune_conv_in_channels(layer.primary_conv.conv, list(idxs))
        return layer

    def get_out_channels(self, layer: nn.Module) -> int:
        return layer.out_chs

    def get_in_channels(self, layer: nn.Module) -> int:
        return layer.primary_conv.conv.in_channels

    def get_out_channel_groups(self, layer: nn.Module) -> int:
        return 2  # the primary half and the cheap half lose the same positions

    def get_in_channel_groups(self, layer: nn.Module) -> int:
        return 1


GHOST_PRUNER = GhostModulePruner()


class ShuffleUnitPruner(tp.pruner.BasePruningFunc):
    """Makes a ShuffleNetV2 unit one opaque layer of the graph: tracing its channel shuffle divides
    by zero in torch-pruning's reshape mapping, and its split/concat/shuffle permute channels that
    the graph cannot map. Its input and output channels are held; prune_branches() prunes the
    width inside each unit."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        raise AssertionError("a ShuffleNetV2 unit's channels are held; pruning them is a bug")

    prune_in_channels = prune_out_channels  # one dependency: held on both sides alike

    def get_out_channels(self, layer: nn.Module) -> int:
        return 2 * _convs(layer.branch_main)[-1].out_channels

    def get_in_channels(self, layer: nn.Module) -> int:
        if layer.stride == 2:  # both branches read the whole input
            return _convs(layer.branch_proj)[0].in_channels
        return 2 * _convs(layer.branch_main)[0].in_channels  # the split's two halves


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def prune_branches(model: nn.Module, ratio: float) -> None:
    """Prune the hidden width of every ShuffleNetV2 unit's main branch (1x1, depthwise, 1x1) by
    `ratio`, on the branch alone: its input and output are the unit's held channels."""
    for unit in [m for m in model.modules() if isinstance(m, ShuffleNetV2)]:
        branch = unit.branch_main
        first, last = _convs(branch)[0], _convs(branch)[-1]
        probe = torch.zeros(1, first.in_channels, 8, 8)
        tp.pruner.MetaPruner(
            branch,
            probe,
            importance=tp.importance.GroupMagnitudeImportance(p=2),
            pruning_ratio=ratio,
            ignored_layers=[last],
        ).step()


class GroupedConv2d(nn.Conv2d):
    """A grouped conv that is not depthwise, during pruning (pruning_view): torch-pruning looks
    pruners up by class, and its own Conv2d pruner slices such convs wrongly."""


class GroupedConvPruner(tp.pruner.BasePruningFunc):
    """Prunes a grouped conv evenly: declaring `groups` channel groups on both sides makes
    torch-pruning drop the same positions in every group, so groups stays as built."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        keep = sorted(set(range(layer.out_channels)) - set(idxs))
        assert len(keep) % layer.groups == 0, "uneven output groups"
        layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 0)
        if layer.bias is not None:
            layer.bias = self._prune_parameter_and_grad(layer.bias, keep, 0)
        layer.out_channels = len(keep)
        return layer

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        per_group = layer.in_channels // layer.groups
        drop = {i % per_group for i in idxs}
        assert len(idxs) == len(drop) * layer.groups, "uneven input groups"
        keep = [i for i in range(per_group) if i not in drop]  # positions inside every group
        layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 1)
        layer.in_channels = len(keep) * layer.groups
        return layer

    def get_out_channels(self, layer: nn.Module) -> int:
        return layer.out_channels

    def get_in_channels(self, layer: nn.Module) -> int:
        return layer.in_channels

    def get_out_channel_groups(self, layer: nn.Module) -> int:
        return layer.groups

    get_in_channel_groups = get_out_channel_groups


CUSTOM_PRUNERS = {
    GhostModule: GHOST_PRUNER,
    ShuffleNetV2: ShuffleUnitPruner(),
    GroupedConv2d: GroupedConvPruner(),
}


class _OneOp(torch.autograd.Function):
    """A block's forward as one autograd op, so tracing sees a single layer from input to output
    instead of walking through its split, concat and shuffle as unknown element-wise ops."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, block: nn.Module) -> torch.Tensor:
        return type(block).forward(block, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> None:
        raise AssertionError("traced for its graph only; never differentiated")


def _one_op(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return _OneOp.apply(x, block)


@contextlib.contextmanager
def pruning_view(model: nn.Module) -> Iterator[None]:
    """The model as torch-pruning must see it, within the block: its non-depthwise grouped convs
    are GroupedConv2d (same parameters; torch-pruning looks pruners up by class) and each Ghost
    module or ShuffleNetV2 unit runs as one op. Plain Conv2d and forwards again afterwards."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and _is_grouped(m)]
    blocks = [m for m in model.modules() if isinstance(m, GhostModule | ShuffleNetV2)]
    for conv in convs:
        conv.__class__ = GroupedConv2d
    for block in blocks:
        block.forward = functools.partial(_one_op, block)
    try:
        yield
    finally:
        for conv in convs:
            conv.__class__ = nn.Conv2d
        for block in blocks:
            del block.forward


def _is_grouped(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and not _is_depthwise(conv)


class GhostAwareImportance(tp.importance.GroupMagnitudeImportance):
    """L2 magnitude importance that also scores the convs inside a GhostModule, which the graph
    sees as one opaque layer: a group of Ghost modules alone would otherwise go unscored (and
    unpruned)."""

    @torch.no_grad()
    def __call__(self, group: tp.dependency.Group) -> torch.Tensor | None:
        base = super().__call__(group)
        extra = torch.zeros(len(group[0].idxs))
        for i, (dep, idxs) in enumerate(group):
            if isinstance(dep.layer, GhostModule) and None not in group[i].root_idxs:
                out = dep.pruning_fn == GHOST_PRUNER.prune_out_channels
                scores = _ghost_scores(dep.layer, out)
                extra.scatter_add_(0, torch.tensor(group[i].root_idxs), scores[idxs])
        if not extra.any():
            return base
        extra = extra / extra.mean()  # on the scale of the base's "mean" normaliser
        return extra if base is None else base + extra.to(base.device, base.dtype)


def _ghost_scores(ghost: nn.Module, out: bool) -> torch.Tensor:
    """Squared L2 norm per output channel (primary then cheap half) or per input channel."""
    primary = ghost.primary_conv.conv.weight
    if not out:
        return primary.pow(2).sum((0, 2, 3))
    cheap = ghost.cheap_operation.conv.weight
    return torch.cat([primary.pow(2).sum((1, 2, 3)), cheap.pow(2).sum((1, 2, 3))])[: ghost.out_chs]


def held_channels(model: nn.Module) -> set[Side]:
    """The (layer, side) channels the blocks need kept as built (see the module docstring)."""
    held: set[Side] = set()
    for module in model.modules():
        if (
            isinstance(module, nn.Conv2d)
            and _is_grouped(module)
            and module.groups == module.out_channels
        ):  # torch-pruning takes it for depthwise whatever its pruner says
            held |= {(module, "in"), (module, "out")}
        elif isinstance(module, ShuffleNetV2):
            held |= {(module, "in"), (module, "out")}
        elif isinstance(module, GhostModule) and module.out_chs % 2:
            held.add((module, "out"))  # an odd width slices a cheap channel off: no pairs
    return held


def held_layers(
    graph: tp.DependencyGraph,
    held: set[Side],
    fixed: Iterable[nn.Module],
    roots: Sequence[type],
) -> list[nn.Module]:
    """Layers whose output channels must keep their count: `fixed` (the class head), and every
    layer whose output pruning group reaches a held channel."""
    ignored = list(fixed)
    changed = True
    while changed:  # a held group's other layers could root the same group again
        changed = False
        for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=roots):
            sides = {
                (
                    dep.target.module,
                    "out" if graph.is_out_channel_pruning_fn(dep.handler) else "in",
                )
                for dep, _ in group
            }
            if sides & held or not _even_groups(group):
                ignored += [m for m, side in sides if side == "out" and m not in ignored]
                changed = True
    return ignored


def _even_groups(group: tp.dependency.Group) -> bool:
    """Whether one count of channel groups splits every grouped conv of the group evenly
    (torch-pruning takes the largest count; a conv with groups 16 next to one with 24 cannot
    both lose whole positions per group)."""
    counts = {
        dep.target.module.groups if isinstance(dep.target.module, GroupedConv2d) else 2
        for dep, _ in group
        if isinstance(dep.target.module, GroupedConv2d | GhostModule)
    }
    return not counts or math.lcm(*counts) == max(counts)

"""Structured channel pruning with torch-pruning, and rebuilding a pruned model from its record.

torch-pruning's dependency graph prunes coupled layers together (a conv's BatchNorm, the next
conv's inputs, the depthwise conv that shares its channels, both sides of a residual add, an SE
gate), so the model stays a plain nn.Module graph that thop counts like any other; coupling.py
tells it what the registry's grouped convs, ShuffleNetV2 units and Ghost modules need. Each group
loses the same share of its channels (L2 magnitude importance); the class head keeps its outputs.
A run's record is applied again by replaying its ratio on the freshly built model, which gives
the same widths (they follow from the structure alone), checked against the recorded ones.
"""

from __future__ import annotations

import copy

import torch
import torch_pruning as tp
from torch import nn

from runner.deploy.compression.coupling import (
    CUSTOM_PRUNERS,
    GhostAwareImportance,
    held_channels,
    held_layers,
    prune_branches,
    pruning_view,
)
from runner.deploy.compression.record import CompressionError
from runner.deploy.compression.target import bisect_knob
from space import count_cost
from space.blocks import GhostModule

MAX_RATIO = 0.9  # the strongest pruning searched: a tenth of each group's channels left
_PRUNABLE = (nn.Conv2d, nn.Linear)
_ROOTS = [nn.Conv2d, nn.Linear, GhostModule]  # the layers whose outputs start a pruning group


def _out(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


def class_head(model: nn.Module) -> nn.Module:
    """The last conv or linear layer: its outputs are the classes, which no compression touches."""
    layers = [m for m in model.modules() if isinstance(m, _PRUNABLE)]
    if not layers:
        raise CompressionError("the model has no conv or linear layer to compress")
    return layers[-1]


def probe(model: nn.Module, img_size: int) -> torch.Tensor:
    """The input the dependency graph is traced on (the shape MACs are counted on)."""
    return torch.zeros(1, getattr(model, "input_channel", 3), img_size, img_size)


def held_names(model: nn.Module, img_size: int) -> list[str]:
    """Names of the layers whose output channels keep their count: the class head and what the
    blocks hold (coupling.py). The model's structure decides them, not its weights."""
    names = {m: n for n, m in model.named_modules()}
    with pruning_view(model):
        graph = tp.DependencyGraph().build_dependency(
            model, example_inputs=probe(model, img_size), customized_pruners=CUSTOM_PRUNERS
        )
        held = held_layers(graph, held_channels(model), [class_head(model)], _ROOTS)
    return [names[m] for m in held if m in names]  # the graph's own ops are no layers


def pruned(
    model: nn.Module, ratio: float, img_size: int, held: list[str] | None = None
) -> nn.Module:
    """A copy of the model with `ratio` of every prunable group's channels removed (eval mode,
    so tracing leaves the BatchNorm statistics alone); `held` as held_names gives it."""
    net = copy.deepcopy(model).eval()
    held = held_names(net, img_size) if held is None else held
    modules = dict(net.named_modules())
    with pruning_view(net):
        pruner = tp.pruner.MetaPruner(
            net,
            probe(net, img_size),
            importance=GhostAwareImportance(p=2),
            pruning_ratio=ratio,
            ignored_layers=[modules[n] for n in held],
            customized_pruners=CUSTOM_PRUNERS,
            root_module_types=_ROOTS,
        )
        pruner.step()
    prune_branches(net, ratio)
    return net


def prune_to_macs(
    model: nn.Module, img_size: int, target: int, progress: bool = True
) -> tuple[nn.Module, float, dict[str, int]]:
    """The least-pruned copy of the model with at most `target` MACs, its ratio and its record."""
    held = held_names(model, img_size)
    ratio = bisect_knob(
        lambda r: count_cost(pruned(model, r, img_size, held), img_size).macs,
        target,
        shrinks_with_knob=True,
        low=0.0,
        high=MAX_RATIO,
        what="prune",
        progress=progress,
    )
    net = pruned(model, ratio, img_size, held)
    return net, ratio, kept_channels(model, net)


def kept_channels(original: nn.Module, net: nn.Module) -> dict[str, int]:
    """Output channels (features) of every layer pruning shrank, in model order."""
    before = {n: _out(m) for n, m in original.named_modules() if isinstance(m, _PRUNABLE)}
    return {
        n: _out(m)
        for n, m in net.named_modules()
        if isinstance(m, _PRUNABLE) and _out(m) < before[n]
    }


def apply_kept_channels(
    model: nn.Module, ratio: object, layers: dict[str, int], img_size: int, where: str
) -> nn.Module:
    """The freshly built model pruned again to the recorded widths: the record's ratio is
    replayed (the widths it gives depend on the model's structure alone, not on its weights,
    and which channels go does not matter: the run's weights replace them), then checked
    against the recorded widths; CompressionError naming `where` on a bad record."""
    modules = dict(model.named_modules())
    for name, kept in layers.items():
        module = modules.get(name)
        if not isinstance(module, _PRUNABLE):
            raise CompressionError(f"{where}: {name!r} is no conv or linear layer of the model")
        if isinstance(kept, bool) or not isinstance(kept, int) or not 1 <= kept <= _out(module):
            raise CompressionError(
                f"{where}: {name} keeps {kept!r} channels; it must be a whole "
                f"number in [1, {_out(module)}]"
            )
    if (
        isinstance(ratio, bool)
        or not isinstance(ratio, int | float)
        or not 0 <= ratio <= MAX_RATIO
    ):
        raise CompressionError(
            f"{where}: knob (the pruning ratio) must be a number in "
            f"[0, {MAX_RATIO}], got {ratio!r}"
        )
    net = pruned(model, float(ratio), img_size)
    widths = kept_channels(model, net)
    if widths != layers:
        wrong = [
            f"{n} has {widths.get(n, _out(modules[n]))}, recorded {layers.get(n)}"
            for n in sorted(set(widths) | set(layers))
            if widths.get(n) != layers.get(n)
        ]
        raise CompressionError(
            f"{where}: pruning ratio {ratio} gives other widths than recorded "
            f"({'; '.join(wrong[:3])}): the record is damaged or was written "
            "by another torch-pruning version"
        )
    return net

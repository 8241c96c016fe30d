"""Structured channel pruning with torch-pruning, and rebuilding a pruned model from its record.

torch-pruning's dependency graph prunes coupled layers together (a conv's BatchNorm, the next
conv's inputs, the depthwise conv that shares its channels, both sides of a residual add, an SE
gate), so the model stays a plain nn.Module graph that thop counts like any other. Each group
loses the same share of its channels (L2 magnitude importance); the class head keeps its outputs.
"""

from __future__ import annotations

import copy

import torch
import torch_pruning as tp
from torch import nn

from runner.deploy.compression.record import CompressionError
from runner.deploy.compression.target import bisect_knob
from space import count_cost

MAX_RATIO = 0.9  # the strongest pruning searched: a tenth of each group's channels left
_PRUNABLE = (nn.Conv2d, nn.Linear)


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


def pruned(model: nn.Module, ratio: float, img_size: int) -> nn.Module:
    """A copy of the model with `ratio` of every prunable group's channels removed (eval mode,
    so tracing leaves the BatchNorm statistics alone)."""
    net = copy.deepcopy(model).eval()
    pruner = tp.pruner.MetaPruner(
        net, probe(net, img_size), importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=ratio, ignored_layers=[class_head(net)],
    )  # fmt: skip
    pruner.step()
    return net


def prune_to_macs(
    model: nn.Module, img_size: int, target: int, progress: bool = True
) -> tuple[nn.Module, float, dict[str, int]]:
    """The least-pruned copy of the model with at most `target` MACs, its ratio and its record."""
    ratio = bisect_knob(
        lambda r: count_cost(pruned(model, r, img_size), img_size).macs, target,
        shrinks_with_knob=True, low=0.0, high=MAX_RATIO, what="prune", progress=progress,
    )  # fmt: skip
    net = pruned(model, ratio, img_size)
    return net, ratio, kept_channels(model, net)


def kept_channels(original: nn.Module, net: nn.Module) -> dict[str, int]:
    """Output channels (features) of every layer pruning shrank, in model order."""
    before = {n: _out(m) for n, m in original.named_modules() if isinstance(m, _PRUNABLE)}
    return {n: _out(m) for n, m in net.named_modules()
            if isinstance(m, _PRUNABLE) and _out(m) < before[n]}  # fmt: skip


def apply_kept_channels(
    model: nn.Module, layers: dict[str, int], img_size: int, where: str
) -> nn.Module:
    """Prune a freshly built model in place to the recorded widths (which channels go does not
    matter: the run's weights replace them); CompressionError naming `where` on a bad record."""
    model.eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=probe(model, img_size))
    modules = dict(model.named_modules())
    for name, kept in layers.items():
        module = modules.get(name)
        if not isinstance(module, _PRUNABLE):
            raise CompressionError(f"{where}: {name!r} is no conv or linear layer of the model")
        if isinstance(kept, bool) or not isinstance(kept, int) or not 1 <= kept <= _out(module):
            raise CompressionError(f"{where}: {name} keeps {kept!r} channels; it must be a whole "
                                   f"number in [1, {_out(module)}]")  # fmt: skip
        fn = tp.prune_conv_out_channels if isinstance(module, nn.Conv2d) else (
            tp.prune_linear_out_channels)  # fmt: skip
        if kept < _out(module):
            graph.get_pruning_group(module, fn, idxs=list(range(kept, _out(module)))).prune()
    wrong = [f"{n} has {_out(modules[n])}" for n, k in layers.items() if _out(modules[n]) != k]
    if wrong:
        raise CompressionError(f"{where}: the recorded widths disagree with each other "
                               f"({'; '.join(wrong[:3])}): the record is damaged")  # fmt: skip
    return model

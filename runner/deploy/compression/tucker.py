"""Tucker decomposition of convolutions (tensorly), and rebuilding decomposed layers from ranks.

A kxk conv's weight (O, I, k, k) is factored on its two channel modes (Tucker-2, Kim et al. 2016,
arXiv:1511.06530): a 1x1 conv I -> r_in, the kxk core r_in -> r_out, a 1x1 conv r_out -> O. A 1x1
conv or a linear layer has no spatial modes, so Tucker on the two channel modes would add a
useless r x r core: its input mode alone is factored (Tucker-1, a truncated SVD), two layers
I -> r -> O. Depthwise and grouped convs are kept (their channel modes are not mixed, nothing to
factor), and so are the class head and modes of fewer than MIN_CHANNELS channels (a stem's RGB
input). A layer is decomposed only when that counts fewer MACs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from tensorly.decomposition import partial_tucker
from torch import nn

from runner.deploy.compression.prune import class_head, probe
from runner.deploy.compression.record import CompressionError
from runner.deploy.compression.target import bisect_knob
from space import count_cost
from space.cost import profile_macs

MIN_FRACTION = 0.02
MIN_CHANNELS = 8  # a mode with fewer channels (the image's 3 colours) is never factored
Ranks = dict[str, int]  # channel mode ("in", "out") -> rank


class TuckerConv2d(nn.Sequential):
    """A Conv2d as [1x1 to r_in] -> kxk core -> [1x1 to O]; the bracketed convs exist only for the
    factored modes. The core keeps the stride, padding and dilation; the last conv the bias."""

    def __init__(self, conv: nn.Conv2d, ranks: Ranks) -> None:
        r_in, r_out = ranks.get("in", conv.in_channels), ranks.get("out", conv.out_channels)
        layers: list[nn.Module] = []
        if "in" in ranks:
            layers.append(nn.Conv2d(conv.in_channels, r_in, 1, bias=False))
        has_last = "out" in ranks
        layers.append(
            nn.Conv2d(
                r_in,
                r_out,
                conv.kernel_size,
                conv.stride,
                conv.padding,
                conv.dilation,
                bias=conv.bias is not None and not has_last,
                padding_mode=conv.padding_mode,
            )
        )
        if has_last:
            layers.append(nn.Conv2d(r_out, conv.out_channels, 1, bias=conv.bias is not None))
        super().__init__(*layers)


class LowRankLinear(nn.Sequential):
    """A Linear as I -> r (no bias) -> O: Tucker-1 on its input mode."""

    def __init__(self, fc: nn.Linear, ranks: Ranks) -> None:
        super().__init__(
            nn.Linear(fc.in_features, ranks["in"], bias=False),
            nn.Linear(ranks["in"], fc.out_features, bias=fc.bias is not None),
        )


def _structure(layer: nn.Module, ranks: Ranks) -> nn.Module:
    return (
        TuckerConv2d(layer, ranks) if isinstance(layer, nn.Conv2d) else LowRankLinear(layer, ranks)
    )


def candidates(model: nn.Module) -> dict[str, nn.Module]:
    """Layers with channel modes to factor: ungrouped convs and linears, bar the class head."""
    head = class_head(model)
    return {
        n: m
        for n, m in model.named_modules()
        if m is not head
        and (isinstance(m, nn.Linear) or isinstance(m, nn.Conv2d) and m.groups == 1)
    }


def ranks_at(layer: nn.Module, fraction: float) -> Ranks:
    """The ranks of one common fraction: of each channel count for a kxk conv (Tucker-2); of the
    break-even rank I*O/(I+O) for a 1x1 conv or linear, so their MACs scale by the fraction."""
    if isinstance(layer, nn.Conv2d) and layer.kernel_size != (1, 1):
        dims = {"in": layer.in_channels, "out": layer.out_channels}
        ranks = {mode: max(1, round(fraction * d)) for mode, d in dims.items()}
        return {
            mode: r for mode, r in ranks.items() if r < dims[mode] and dims[mode] >= MIN_CHANNELS
        }
    i, o = (
        (layer.in_channels, layer.out_channels)
        if isinstance(layer, nn.Conv2d)
        else (layer.in_features, layer.out_features)
    )
    if min(i, o) < MIN_CHANNELS:
        return {}
    return {"in": max(1, math.floor(fraction * i * o / (i + o)))}


def layer_inputs(model: nn.Module, img_size: int, names: list[str]) -> dict[str, torch.Tensor]:
    """A zero tensor of each named layer's input shape, from one traced forward pass."""
    modules = dict(model.named_modules())
    shapes: dict[str, torch.Size] = {}

    def record(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            shapes.setdefault(name, args[0].shape)

        return hook

    hooks = [modules[n].register_forward_pre_hook(record(n)) for n in names]
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(probe(model, img_size))
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    return {n: torch.zeros(shape) for n, shape in shapes.items()}


def plan(model: nn.Module, fraction: float, inputs: dict[str, torch.Tensor]) -> dict[str, Ranks]:
    """The ranks of every layer the fraction makes cheaper (thop MACs on its own input)."""
    layers = candidates(model)
    out: dict[str, Ranks] = {}
    for name, x in inputs.items():
        ranks = ranks_at(layers[name], fraction)
        if ranks and profile_macs(_structure(layers[name], ranks), x) < profile_macs(
            layers[name], x
        ):
            out[name] = ranks
    return out


def apply_ranks(model: nn.Module, layers: dict[str, Ranks], where: str) -> nn.Module:
    """Replace each recorded layer by its decomposed structure, in place (untrained weights: a
    run's weights are loaded next); CompressionError naming `where` on a bad record."""
    modules = candidates(model)
    for name, ranks in layers.items():
        layer = modules.get(name)
        if layer is None:
            raise CompressionError(
                f"{where}: {name!r} is no ungrouped conv or linear layer of "
                "the model (other than the class head)"
            )
        _check_ranks(layer, ranks, f"{where}: {name}")
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attr, _structure(layer, ranks))
    return model


def _check_ranks(layer: nn.Module, ranks: object, where: str) -> None:
    spatial = isinstance(layer, nn.Conv2d) and layer.kernel_size != (1, 1)
    allowed = ("in", "out") if spatial else ("in",)
    if (
        not isinstance(ranks, dict)
        or not ranks
        or not set(ranks) <= set(allowed)
        or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in ranks.values())
    ):
        raise CompressionError(
            f"{where} has ranks {ranks!r}; they must map "
            f"{' and/or '.join(allowed)} to whole numbers >= 1"
        )


def decomposed(layer: nn.Module, ranks: Ranks) -> nn.Module:
    """The layer's structure for `ranks` with tensorly's partial_tucker factors as weights."""
    new = _structure(layer, ranks)
    weight = layer.weight.detach().cpu().double().numpy()
    if weight.ndim == 2:
        weight = weight[:, :, None, None]
    names = {0: "out", 1: "in"}  # the weight's channel modes: (O, I, k, k)
    modes = [m for m in (0, 1) if names[m] in ranks]
    rank = [ranks[names[m]] for m in modes]
    (core, factors), _ = partial_tucker(weight, rank=rank, modes=modes, init="svd", n_iter_max=20)
    by_mode = dict(zip(modes, factors, strict=True))
    convs = list(new.children())
    with torch.no_grad():
        if 1 in by_mode:  # input factor (I, r_in): the first layer maps I -> r_in
            _copy(convs[0], by_mode[1].T)
        _copy(convs[1 if 1 in by_mode else 0], core)
        if 0 in by_mode:  # output factor (O, r_out): the last layer maps r_out -> O
            _copy(convs[-1], by_mode[0])
        if layer.bias is not None:
            convs[-1].bias.copy_(layer.bias.detach())
    return new.to(layer.weight.device)


def _copy(target: nn.Module, array: np.ndarray) -> None:
    """Write a factor or core into a conv or linear weight (1x1 convs get their spatial dims)."""
    tensor = torch.as_tensor(np.ascontiguousarray(array), dtype=target.weight.dtype)
    target.weight.copy_(tensor.reshape(target.weight.shape))


def tucker_to_macs(
    model: nn.Module, img_size: int, target: int, progress: bool = True
) -> tuple[nn.Module, float, dict[str, Ranks]]:
    """The least-decomposed copy of the model with at most `target` MACs, its rank fraction and
    its record; the factors are tensorly's, ready to fine-tune."""
    inputs = layer_inputs(model, img_size, list(candidates(model)))

    def macs_at(fraction: float) -> int:
        return count_cost(
            apply_ranks(copy.deepcopy(model), plan(model, fraction, inputs), ""), img_size
        ).macs

    fraction = bisect_knob(
        macs_at,
        target,
        shrinks_with_knob=False,
        low=MIN_FRACTION,
        high=1.0,
        what="tucker",
        progress=progress,
    )
    layers = plan(model, fraction, inputs)
    net = copy.deepcopy(model)
    originals = candidates(net)
    for name, ranks in layers.items():
        parent_name, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent_name), attr, decomposed(originals[name], ranks))
    return net, fraction, layers

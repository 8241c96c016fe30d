"""What a model costs: MACs with thop (the competition's count) and a flop_counter cross-check.

thop registers ``total_ops`` / ``total_params`` buffers and forward hooks on every module it
counts, and leaves some behind (all of them when the forward pass fails), so it counts a CPU copy
of the model in eval mode and the caller's model keeps its device, mode and state_dict: a count
never depends on whether the model ran or was counted before.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import warnings
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from space.errors import ModelConfigError

with warnings.catch_warnings():  # thop imports distutils, deprecated in recent Pythons
    warnings.simplefilter("ignore", DeprecationWarning)
    import thop
    from thop.vision.basic_hooks import zero_ops

# thop counts these besides conv and linear; the cross-check zeroes them.
_NOT_CONV_OR_LINEAR = (nn.BatchNorm2d, nn.AdaptiveAvgPool2d, nn.AvgPool2d)


@dataclasses.dataclass(frozen=True)
class Cost:
    """Multiply-accumulates of one (1, 3, H, W) forward pass, and the parameter count."""

    macs: int
    params: int


@contextlib.contextmanager
def eval_on_cpu(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode on CPU, float; put back as it was afterwards.

    A CPU float32 model is used in place (no copy) and its training flag restored; any other
    model runs as a CPU copy.
    """
    tensors = [*model.parameters(), *model.buffers()]
    in_place = all(
        t.device.type == "cpu" and t.dtype in (torch.float32, torch.int64) for t in tensors
    )
    net = model if in_place else copy.deepcopy(model).cpu().float()
    training = net.training
    try:
        yield net.eval()
    finally:
        net.train(training)


def _probe(model: nn.Module, img_size: int) -> torch.Tensor:
    """The zeros (1, C, S, S) input MACs are counted on, after checking the size."""
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 1:
        raise ValueError(f"img_size must be a positive int, got {img_size!r}")
    return torch.zeros(1, getattr(model, "input_channel", 3), img_size, img_size)


def profile_macs(module: nn.Module, x: torch.Tensor, *, conv_linear_only: bool = False) -> int:
    """thop MACs of ``module`` on input ``x``; ``conv_linear_only`` drops BN and pooling terms."""
    custom = {t: zero_ops for t in _NOT_CONV_OR_LINEAR} if conv_linear_only else None
    net = copy.deepcopy(module).cpu().float().eval()  # thop's buffers and hooks stay on the copy
    with torch.no_grad():
        macs, _ = thop.profile(
            net, inputs=(x.detach().cpu().float(),), custom_ops=custom, verbose=False
        )
    return int(round(float(macs)))


def count_cost(model: nn.Module, img_size: int) -> Cost:
    """MACs (thop, eval mode, zeros (1, C, H, W)) and parameters of ``model``.

    A model built by ``space`` whose feature map collapses raises a ModelConfigError naming the
    row that fails (or whose kernel is larger than the image, checked before running it); any
    other model's failure is reported with the image size.
    """
    x = _probe(model, img_size)
    check_kernels = getattr(model, "check_kernels", None)
    if check_kernels is not None:
        check_kernels(img_size)
    try:
        macs = profile_macs(model, x)
    except RuntimeError as e:
        check = getattr(model, "check_input_size", None)
        if check is not None:
            check(img_size)
        raise ModelConfigError(f"the model cannot run at img_size={img_size}: {e}") from e
    return Cost(macs=macs, params=sum(p.numel() for p in model.parameters()))


def meta_cost(model: nn.Module, img_size: int) -> Cost | None:
    """MACs and parameters of a model built on the meta device (``with torch.device("meta")``),
    which holds shapes and no data: a model too large for memory is measured without allocating
    it. None when the meta pass cannot run; building the model then names the problem."""
    x = _probe(model, img_size).to("meta")
    check_kernels = getattr(model, "check_kernels", None)
    if check_kernels is not None:
        check_kernels(img_size)
    params = sum(p.numel() for p in model.parameters())
    net = copy.deepcopy(model).eval()  # thop's buffers and hooks stay on the copy (no data: meta)
    try:
        with torch.no_grad():
            macs, _ = thop.profile(net, inputs=(x,), verbose=False)
    except RuntimeError:
        return None
    return Cost(macs=int(round(float(macs))), params=params)


def flop_counter_macs(model: nn.Module, img_size: int) -> int:
    """Conv + linear MACs from ``torch.utils.flop_counter`` (FLOPs / 2): an independent count.

    It sees functional ops too, so it checks that no convolution hides from thop's hooks.
    """
    x = _probe(model, img_size)
    with torch.no_grad(), eval_on_cpu(model) as net, FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() // 2


def thop_conv_linear_macs(model: nn.Module, img_size: int) -> int:
    """thop's count restricted to conv and linear layers, comparable with ``flop_counter_macs``."""
    return profile_macs(model, _probe(model, img_size), conv_linear_only=True)

"""The built network: rows in order, plus the specs they came from (round-trip and summary)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from space.config_io import dump_model_config
from space.cost import eval_on_cpu, profile_macs
from space.errors import ModelConfigError
from space.registry import MODULES
from space.spec import BlockSpec


@dataclasses.dataclass(frozen=True)
class RowSummary:
    """One backbone row at a given image size: what it is, what it outputs, what it costs."""

    index: int
    repeat: int
    module: str
    args: list[Any]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: int
    macs: int


class SpaceModel(nn.Module):
    """A backbone of YAML rows; a pooled (N, C, 1, 1) output is flattened to (N, C) logits."""

    def __init__(
        self, rows: Sequence[nn.Module], specs: Sequence[BlockSpec], input_channel: int = 3
    ) -> None:
        super().__init__()
        self.rows = nn.Sequential(*rows)
        self.specs = tuple(specs)
        self.input_channel = input_channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.rows(x)
        return x.flatten(1) if x.ndim == 4 and x.shape[-2:] == (1, 1) else x

    def to_config(self) -> dict[str, Any]:
        """A YAML-able config that rebuilds this model exactly (multiples already applied)."""
        return {
            "input_channel": self.input_channel,
            "depth_multiple": 1.0,
            "width_multiple": 1.0,
            "backbone": [[s.repeat, s.module, s.positional()] for s in self.specs],
        }

    def to_yaml(self, img_size: int) -> str:
        """to_config() as YAML text, each row annotated as YOLOv5 does (``# 3: 24ch /8``).

        The comments come from one plain pass, not summary(): counting per-row MACs there costs
        a second per trial; a size that collapses the map raises ModelConfigError naming the row.
        """
        comments = []
        for spec, _, _, y in self._trace(img_size):
            side = f" /{img_size // y.shape[-1]}" if y.ndim == 4 else ""
            comments.append(f"{spec.index}: {y.shape[1]}ch{side}")
        return dump_model_config(self.to_config(), comments)

    def summary(self, img_size: int) -> list[RowSummary]:
        """Per-row records (shapes, params, thop MACs) on a zeros (1, C, S, S) input."""
        records = []
        for spec, row, x, y in self._trace(img_size):
            records.append(
                RowSummary(
                    spec.index,
                    spec.repeat,
                    spec.module,
                    spec.positional(),
                    tuple(x.shape),
                    tuple(y.shape),
                    sum(p.numel() for p in row.parameters()),
                    profile_macs(row, x),
                )
            )
        return records

    def check_input_size(self, img_size: int) -> None:
        """Raise a ModelConfigError naming the row where ``img_size`` collapses the feature map."""
        for _ in self._trace(img_size):
            pass

    def check_kernels(self, img_size: int) -> None:
        """Raise a ModelConfigError naming the first row whose kernel or stride is larger than
        the image.

        Checked before any forward pass: with 'same' padding such a conv is legal to torch, but
        a 1000x1000 kernel on a 32 px image costs tens of GMACs and can abort the process; a
        stride that large skips all but the first pixel.
        """
        for spec in self.specs:
            kernel = spec.args.get("kernel", spec.args.get("k"))
            if isinstance(kernel, int) and kernel > img_size:
                raise ModelConfigError(
                    f"{spec.label()}: kernel {kernel} is larger than the {img_size}x{img_size} "
                    f"input image; use a kernel of at most {img_size} (3, 5 and 7 are usual) "
                    f"or a larger img_size"
                )
            stride = spec.args.get(MODULES[spec.module].stride_arg or "", 1)
            if isinstance(stride, int) and stride > img_size:
                raise ModelConfigError(
                    f"{spec.label()}: stride {stride} is larger than the {img_size}x{img_size} "
                    f"input image; use a stride of 1 or 2"
                )

    def _trace(self, img_size: int) -> Any:
        """Yield (spec, row, input, output) per row, run in eval mode on the CPU."""
        self.check_kernels(img_size)
        x = torch.zeros(1, self.input_channel, img_size, img_size)
        with torch.no_grad(), eval_on_cpu(self) as net:
            for spec, row in zip(self.specs, net.rows, strict=True):
                y = _run_row(spec, row, x, img_size)
                yield spec, row, x, y
                x = y


class _Collapsed(Exception):
    """Raised by _refuse_small_maps before a conv or pool gets a map smaller than its window."""


def _window_too_large(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    """Forward pre-hook: the padded input map must hold the (dilated) kernel of a conv or pool,
    checked here so that no torch error message has to be read."""
    size = inputs[0].shape[-2:]
    kernel, padding = module.kernel_size, module.padding
    if isinstance(padding, str):  # "same" keeps the size; "valid" pads nothing
        if padding == "same":
            return
        padding = 0
    dilation = getattr(module, "dilation", 1)
    pairs = [v if isinstance(v, tuple) else (v, v) for v in (kernel, padding, dilation)]
    for side, k, p, d in zip(size, *pairs, strict=True):
        if side + 2 * p < d * (k - 1) + 1:
            raise _Collapsed


_WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def _run_row(spec: BlockSpec, row: nn.Module, x: torch.Tensor, img_size: int) -> torch.Tensor:
    """Run one row; a failure or an empty output names the row and the shape it received."""
    shape = "x".join(str(d) for d in x.shape[1:])
    collapse = (
        f"{spec.label()}: at img_size={img_size} this row receives a {shape} feature map "
        f"and collapses it"
    )
    hooks = [
        m.register_forward_pre_hook(_window_too_large)
        for m in row.modules()
        if isinstance(m, _WINDOWED)
    ]
    try:
        y = row(x)
    except _Collapsed:
        raise ModelConfigError(
            f"{collapse} (a kernel or pool window is larger than the map); "
            f"the strides before it shrink the image too much: use a larger "
            f"img_size"
        ) from None
    except RuntimeError as e:
        hint = (
            "; Linear takes a pooled map: put [1, GlobalAvgPool, []] before it"
            if spec.module == "Linear"
            else ""
        )
        raise ModelConfigError(
            f"{spec.label()}: cannot run on a {shape} input at "
            f"img_size={img_size}: {str(e).splitlines()[0]}{hint}"
        ) from e
    finally:
        for hook in hooks:
            hook.remove()
    if y.numel() == 0:
        raise ModelConfigError(
            f"{collapse} to {'x'.join(str(d) for d in y.shape[1:])}; use a larger img_size"
        )
    return y

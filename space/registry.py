"""The competition's module names and argument orders, as data: ``MODULES[name] -> ModuleSpec``.

Every legacy convention lives here and nowhere else: which YAML arg is the output channel count (or
the rule that replaces it), whether ``width_multiple`` rounding applies, and whether a repeated row
carries its stride on the first repeat (inverted residuals) or the last one (Conv, as the
competition code did). Blocks keep timm-style signatures and know nothing of YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from torch import nn

from space.blocks import (
    Bottleneck,
    Conv,
    DWConv,
    Fire,
    GhostBottleneck,
    InvertedResidualv2,
    InvertedResidualv3,
    Linear,
    MBConv,
    ShuffleNetV2,
)
from space.errors import format_value
from space.layers import ACTIVATIONS, get_act

Args = Mapping[str, Any]
Build = Callable[[int, int, Args, Any], nn.Module]  # (in_chs, out_chs, args, stride) -> block


class _Required:
    """Marker default of an argument the YAML row must give."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def _is_int(v: Any) -> bool:
    """An int that is not a bool (YAML ``true`` must not pass as a channel count)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    """An int or float, not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_act(v: Any) -> bool:
    """A known activation name or null."""
    try:
        get_act(v)
    except ValueError:
        return False
    return True


# kind -> (accepts(value), what a valid value is); used for type errors that name the row.
KINDS: Mapping[str, tuple[Callable[[Any], bool], str]] = MappingProxyType(
    {
        "channels": (lambda v: _is_int(v) and v > 0, "a positive int (channels)"),
        "int": (lambda v: _is_int(v) and v > 0, "a positive int"),
        "stride12": (lambda v: _is_int(v) and v in (1, 2), "1 or 2"),
        "optional_int": (lambda v: v is None or (_is_int(v) and v > 0), "a positive int or null"),
        "padding": (lambda v: v is None or (_is_int(v) and v >= 0), "a non-negative int or null"),
        "ratio": (lambda v: _is_number(v) and v > 0, "a positive number"),
        "flag": (lambda v: v in (0, 1) and not isinstance(v, float), "0 or 1 (false/true)"),
        "act": (_check_act, f"an activation name ({', '.join(ACTIVATIONS)}) or null"),
        "prob": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    }
)


@dataclass(frozen=True)
class Arg:
    """One positional YAML argument: its name, its kind (a key of ``KINDS``) and its default."""

    name: str
    kind: str
    default: Any = REQUIRED

    def signature(self) -> str:
        """``name`` or ``name=default``, as the expected-signature part of error messages."""
        if self.default is REQUIRED:
            return self.name
        return f"{self.name}={format_value(self.default)}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not valid for this argument, or None when it is."""
        accepts, wanted = KINDS[self.kind]
        if accepts(value):
            return None
        if self.kind == "act":
            try:
                get_act(value)
            except ValueError as e:
                return f"arg {self.name}: {e}"
        shown = f"{format_value(value)} ({type(value).__name__})"
        return f"arg {self.name} must be {wanted}, got {shown}"


def _same(in_chs: int, args: Args) -> int:
    """Out-channel rule of shape-only rows; its identity also marks them (``keeps_channels``)."""
    return in_chs


@dataclass(frozen=True)
class ModuleSpec:
    """How one YAML module name becomes blocks: arg names, channel rules, stride placement.

    Attributes:
        block: the module class a row of this name builds (one per repeat).
        build: adapter from the bound YAML args to ``block``'s timm-style signature.
        out_chs: the output channel rule, ``(in_chs, bound args) -> out``.
        channel_args: args holding channel counts, rounded by ``width_multiple`` when
            ``round_channels`` (never for FixedConv / Linear, whose out is a class count).
        stride_on: which repeat of a row gets the stride: "first", "last" or "every".
        head: may carry the class count (``num_classes`` replaces its ``out``).
        check: extra consistency rule ``(in_chs, args) -> problem or None``.
        short: the name in one-line summaries and search parameter names ("IR3" -> "s2.ir3.k").
    """

    name: str
    block: type[nn.Module]
    args: tuple[Arg, ...]
    build: Build
    out_chs: Callable[[int, Args], int] = _same
    channel_args: tuple[str, ...] = ()
    round_channels: bool = True
    stride_arg: str | None = None
    stride_on: str = "every"
    head: bool = False
    check: Callable[[int, Args], str | None] | None = None
    short: str = ""

    @property
    def short_name(self) -> str:
        """``short``, or the module name when it is short enough already."""
        return self.short or self.name

    @property
    def keeps_channels(self) -> bool:
        """True for shape-only rows (pools, flatten, dropout) that pass channels through."""
        return self.out_chs is _same

    def signature(self) -> str:
        """``Conv(out, kernel, stride=1, ...)``: what a row of this module must look like."""
        return f"{self.name}({', '.join(a.signature() for a in self.args)})"

    def bind(self, values: Sequence[Any]) -> dict[str, Any]:
        """Positional YAML args -> complete ``{name: value}``; ValueError when they are wrong."""
        required = sum(a.default is REQUIRED for a in self.args)
        if not required <= len(values) <= len(self.args):
            count = str(required) if required == len(self.args) else f"{required}-{len(self.args)}"
            raise ValueError(
                f"{self.name} takes {count} args {self.signature()}, got {len(values)}"
            )
        bound = {a.name: a.default for a in self.args} | dict(
            zip((a.name for a in self.args), values, strict=False)
        )
        problems = [p for a in self.args if (p := a.problem(bound[a.name])) is not None]
        if problems:
            raise ValueError(f"{'; '.join(problems)}; expected {self.signature()}")
        return bound

    def positional(self, named: Args) -> list[Any]:
        """Named args -> a row's positional YAML args, up to the last one named (defaults fill
        the gaps): rows written by a program name their args instead of counting positions."""
        names = [a.name for a in self.args]
        unknown = sorted(set(named) - set(names))
        missing = [a.name for a in self.args if a.default is REQUIRED and a.name not in named]
        if unknown or missing:
            raise ValueError(
                f"{self.name} args {unknown or missing} are "
                f"{'unknown' if unknown else 'missing'}; expected {self.signature()}"
            )
        last = max((names.index(name) for name in named), default=-1)
        return [named.get(a.name, a.default) for a in self.args[: last + 1]]

    def strides(self, args: Args, repeat: int) -> list[Any]:
        """The stride given to each of ``repeat`` blocks (1 where the convention puts none)."""
        if self.stride_arg is None:
            return [None] * repeat
        stride, rest = args[self.stride_arg], 1
        if self.stride_on == "every":
            return [stride] * repeat
        if self.stride_on == "first":
            return [stride] + [rest] * (repeat - 1)
        return [rest] * (repeat - 1) + [stride]


def _groups_divide(in_chs: int, args: Args) -> str | None:
    """Conv groups must split both channel counts evenly, or torch fails without naming the row."""
    groups = args["groups"]
    if in_chs % groups or args["out"] % groups:
        return f"groups={groups} must divide the input channels ({in_chs}) and out ({args['out']})"
    return None


def _bottleneck_fits(in_chs: int, args: Args) -> str | None:
    """The hidden width int(out * expansion) must exist and suit the 3x3 conv's groups."""
    hidden = int(args["out"] * args["expansion"])
    if hidden < 1:
        return f"int(out * expansion) must be >= 1, got {hidden} (out={args['out']})"
    if hidden % args["groups"] or args["out"] % args["groups"]:
        return f"groups={args['groups']} must divide hidden ({hidden}) and out ({args['out']})"
    return None


def _even_split(in_chs: int, args: Args) -> str | None:
    """A stride-1 ShuffleNetV2 unit splits its input in two equal halves."""
    if args["stride"] == 1 and in_chs % 2:
        return f"stride 1 splits the input in half, so input channels must be even, got {in_chs}"
    return None


def _conv(in_chs: int, out_chs: int, a: Args, stride: Any) -> nn.Module:
    """Conv and FixedConv build the same block; only their channel rounding differs."""
    return Conv(
        in_chs,
        out_chs,
        kernel_size=a["kernel"],
        stride=stride,
        padding=a["padding"],
        groups=a["groups"],
        act_layer=get_act(a["activation"]),
    )


_CONV_ARGS = (
    Arg("out", "channels"),
    Arg("kernel", "int"),
    Arg("stride", "int", 1),
    Arg("padding", "padding", None),
    Arg("groups", "int", 1),
    Arg("activation", "act", "ReLU"),
)
_POOL_ARGS = (
    Arg("kernel", "int"),
    Arg("stride", "optional_int", None),
    Arg("padding", "padding", 0),
)
_IR_STRIDE = {"stride_arg": "s", "stride_on": "first"}


def _out(in_chs: int, a: Args) -> int:
    """Out channels given as ``out`` (Conv family, Linear)."""
    return a["out"]


def _c(in_chs: int, a: Args) -> int:
    """Out channels given as ``c`` (the inverted residual family, Ghost)."""
    return a["c"]


_SPECS = (
    ModuleSpec(
        "Conv",
        Conv,
        _CONV_ARGS,
        _conv,
        _out,
        ("out",),
        stride_arg="stride",
        stride_on="last",
        check=_groups_divide,
    ),
    ModuleSpec(
        "FixedConv",
        Conv,
        _CONV_ARGS,
        _conv,
        _out,
        ("out",),
        round_channels=False,
        stride_arg="stride",
        stride_on="last",
        head=True,
        check=_groups_divide,
    ),
    ModuleSpec(
        "DWConv",
        DWConv,
        (
            Arg("out", "channels"),
            Arg("kernel", "int"),
            Arg("stride", "int", 1),
            Arg("padding", "padding", None),
            Arg("activation", "act", "ReLU"),
        ),
        lambda i, o, a, s: DWConv(
            i,
            o,
            kernel_size=a["kernel"],
            stride=s,
            padding=a["padding"],
            act_layer=get_act(a["activation"]),
        ),
        _out,
        ("out",),
        stride_arg="stride",
        stride_on="last",
    ),
    ModuleSpec(
        "Bottleneck",
        Bottleneck,
        (
            Arg("out", "channels"),
            Arg("shortcut", "flag", True),
            Arg("groups", "int", 1),
            Arg("expansion", "ratio", 0.5),
            Arg("activation", "act", "ReLU"),
        ),
        lambda i, o, a, s: Bottleneck(
            i,
            o,
            shortcut=bool(a["shortcut"]),
            groups=a["groups"],
            expansion=a["expansion"],
            act_layer=get_act(a["activation"]),
        ),
        _out,
        ("out",),
        check=_bottleneck_fits,
    ),
    ModuleSpec(
        "InvertedResidualv2",
        InvertedResidualv2,
        (Arg("c", "channels"), Arg("t", "ratio"), Arg("s", "stride12")),
        lambda i, o, a, s: InvertedResidualv2(i, o, stride=s, exp_ratio=a["t"]),
        _c,
        ("c",),
        **_IR_STRIDE,
        short="IR2",
    ),
    ModuleSpec(
        "InvertedResidualv3",
        InvertedResidualv3,
        (
            Arg("k", "int"),
            Arg("t", "ratio"),
            Arg("c", "channels"),
            Arg("use_se", "flag"),
            Arg("use_hs", "flag"),
            Arg("s", "stride12"),
        ),
        lambda i, o, a, s: InvertedResidualv3(
            i,
            o,
            kernel_size=a["k"],
            stride=s,
            exp_ratio=a["t"],
            use_se=bool(a["use_se"]),
            act_layer=nn.Hardswish if a["use_hs"] else nn.ReLU,
        ),
        _c,
        ("c",),
        **_IR_STRIDE,
        short="IR3",
    ),
    ModuleSpec(
        "MBConv",
        MBConv,
        (Arg("t", "ratio"), Arg("c", "channels"), Arg("s", "stride12"), Arg("k", "int")),
        lambda i, o, a, s: MBConv(i, o, kernel_size=a["k"], stride=s, exp_ratio=a["t"]),
        _c,
        ("c",),
        **_IR_STRIDE,
    ),
    ModuleSpec(
        "ShuffleNetV2",
        ShuffleNetV2,
        (Arg("stride", "stride12"),),
        lambda i, o, a, s: ShuffleNetV2(i, o, stride=s),
        lambda i, a: i * a["stride"],
        stride_arg="stride",
        stride_on="first",
        check=_even_split,
        short="Shuffle",
    ),
    ModuleSpec(
        "GhostBottleneck",
        GhostBottleneck,
        (
            Arg("k", "int"),
            Arg("t", "ratio"),
            Arg("c", "channels"),
            Arg("use_se", "flag"),
            Arg("s", "stride12"),
        ),
        lambda i, o, a, s: GhostBottleneck(
            i, o, kernel_size=a["k"], stride=s, exp_ratio=a["t"], use_se=bool(a["use_se"])
        ),
        _c,
        ("c",),
        **_IR_STRIDE,
        short="Ghost",
    ),
    ModuleSpec(
        "Fire",
        Fire,
        (Arg("squeeze", "channels"), Arg("expand1x1", "channels"), Arg("expand3x3", "channels")),
        lambda i, o, a, s: Fire(i, a["squeeze"], a["expand1x1"], a["expand3x3"]),
        lambda i, a: a["expand1x1"] + a["expand3x3"],
        ("squeeze", "expand1x1", "expand3x3"),
    ),
    ModuleSpec(
        "MaxPool",
        nn.MaxPool2d,
        _POOL_ARGS,
        lambda i, o, a, s: nn.MaxPool2d(a["kernel"], s, a["padding"]),
        stride_arg="stride",
    ),
    ModuleSpec(
        "AvgPool",
        nn.AvgPool2d,
        _POOL_ARGS,
        lambda i, o, a, s: nn.AvgPool2d(a["kernel"], s, a["padding"]),
        stride_arg="stride",
    ),
    ModuleSpec(
        "GlobalAvgPool", nn.AdaptiveAvgPool2d, (), lambda i, o, a, s: nn.AdaptiveAvgPool2d(1)
    ),
    ModuleSpec("Flatten", nn.Flatten, (), lambda i, o, a, s: nn.Flatten()),
    ModuleSpec(
        "Linear",
        Linear,
        (Arg("out", "channels"), Arg("activation", "act", None)),
        lambda i, o, a, s: Linear(i, o, act_layer=get_act(a["activation"])),
        _out,
        ("out",),
        round_channels=False,
        head=True,
    ),
    ModuleSpec(
        "Dropout", nn.Dropout, (Arg("p", "prob", 0.5),), lambda i, o, a, s: nn.Dropout(a["p"])
    ),
)

MODULES: Mapping[str, ModuleSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})

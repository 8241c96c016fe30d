"""Model config -> torch model in two stages (as timm): pure ``decode`` then ``instantiate``.

``decode`` turns ``[repeat, Module, [args]]`` rows into JSON-able ``BlockSpec`` records with
``depth_multiple`` / ``width_multiple`` applied, every arg checked and named, and each row's
source file and number kept for errors. ``instantiate`` is the only step that touches torch.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from litenas.user_input import did_you_mean
from space.config_io import HEADER_KEYS, load_model_config
from space.errors import HeadRoundingWarning, ModelConfigError, row_label
from space.layers import make_divisible
from space.model import SpaceModel
from space.registry import MODULES, ModuleSpec
from space.spec import BlockSpec

# Repeats of one row, after depth_multiple: a lightweight model repeats a block a few times (the
# competition's largest is 4); a typo like 1000000 would build modules until memory runs out.
MAX_REPEAT = 100


def _number(cfg: Mapping[str, Any], key: str, default: float, source: str) -> float:
    """A positive multiple from the header (depth_multiple, width_multiple)."""
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ModelConfigError(f"{source}: {key} must be a positive number, got {value!r}")
    return value


def _read_header(cfg: Mapping[str, Any], source: str) -> tuple[list[Any], int, float, float]:
    """Validate the top-level keys; unknown keys warn (with the closest known one)."""
    if not isinstance(cfg, Mapping):
        raise ModelConfigError(
            f"{source}: a model config must be a mapping, got {type(cfg).__name__}"
        )
    backbone = cfg.get("backbone")
    if not isinstance(backbone, list) or not backbone:
        raise ModelConfigError(
            f"{source}: 'backbone' must be a non-empty list of "
            f"[repeat, Module, [args]] rows, got {backbone!r}"
        )
    for key in set(cfg) - {*HEADER_KEYS, "backbone"}:
        hint = did_you_mean(key, [*HEADER_KEYS, "backbone"], template=" (did you mean {!r}?)")
        warnings.warn(f"{source}: unknown key {key!r} ignored{hint}", UserWarning, stacklevel=3)
    in_chs = cfg.get("input_channel", 3)
    if isinstance(in_chs, bool) or not isinstance(in_chs, int) or in_chs <= 0:
        raise ModelConfigError(f"{source}: input_channel must be a positive int, got {in_chs!r}")
    depth = _number(cfg, "depth_multiple", 1.0, source)
    width = _number(cfg, "width_multiple", 1.0, source)
    return backbone, in_chs, depth, width


def _module_spec(row: Any, index: int, source: str) -> tuple[int, ModuleSpec, list[Any]]:
    """Check a row's shape ``[repeat, Module, [args]]`` and look its module up in the registry."""
    label = row_label(source, index, row)
    if not isinstance(row, (list, tuple)) or len(row) != 3:
        raise ModelConfigError(f"{label}: a row must be [repeat, Module, [args]]")
    repeat, name, args = row
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ModelConfigError(f"{label}: repeat must be a positive int, got {repeat!r}")
    if repeat > MAX_REPEAT:
        raise ModelConfigError(
            f"{label}: repeat must be at most {MAX_REPEAT} (a lightweight "
            f"model repeats a block a few times), got {repeat:,}"
        )
    if name not in MODULES:
        hint = did_you_mean(name, MODULES, cutoff=0.5, template=" Did you mean {!r}?")
        raise ModelConfigError(
            f"{label}: unknown module {name!r}; known modules: {', '.join(MODULES)}.{hint}"
        )
    if args is None:
        args = []
    if not isinstance(args, (list, tuple)):
        raise ModelConfigError(
            f"{label}: args must be a list such as {MODULES[name].signature()}, got {args!r}"
        )
    return repeat, MODULES[name], list(args)


def _head_index(rows: Sequence[tuple[int, ModuleSpec, list[Any]]]) -> int | None:
    """The last row that sets the channel count: the one carrying the class count."""
    for index in range(len(rows) - 1, -1, -1):
        if not rows[index][1].keeps_channels:
            return index
    return None


def _bind_row(
    index: int,
    raw: Any,
    parsed: tuple[int, ModuleSpec, list[Any]],
    in_chs: int,
    multiples: tuple[float, float],
    source: str,
) -> BlockSpec:
    """Bind and check one row's args, round its channels, scale its repeat."""
    repeat, spec, values = parsed
    depth, width = multiples
    label = row_label(source, index, raw)
    try:
        args = spec.bind(values)
    except ValueError as e:
        raise ModelConfigError(f"{label}: {e}") from e
    if spec.round_channels:
        args |= {name: make_divisible(args[name] * width) for name in spec.channel_args}
    problem = spec.check(in_chs, args) if spec.check else None
    if problem:
        raise ModelConfigError(f"{label}: {problem}")
    repeat = max(round(repeat * depth), 1) if repeat > 1 else repeat
    if repeat > MAX_REPEAT:
        raise ModelConfigError(
            f"{label}: depth_multiple {depth} makes {repeat:,} repeats, more "
            f"than {MAX_REPEAT}; use a smaller depth_multiple"
        )
    return BlockSpec(
        index, repeat, spec.name, args, in_chs, spec.out_chs(in_chs, args), list(raw), source
    )


def _set_classes(spec: BlockSpec, num_classes: int | None) -> BlockSpec:
    """Give the head row the data's class count, or warn when rounding changed the written one."""
    module = MODULES[spec.module]
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ModelConfigError(f"num_classes must be a positive int, got {num_classes!r}")
        if not module.head:
            raise ModelConfigError(
                f"{spec.label()}: num_classes={num_classes} replaces the class count of the final "
                f"FixedConv or Linear row, but the last row that sets channels is {spec.module}; "
                f"end the backbone with e.g. [1, FixedConv, [{num_classes}, 1, 1, null, 1, null]]"
                f" or [1, Linear, [{num_classes}]]"
            )
        args = spec.args | {"out": num_classes}
        return dataclasses.replace(spec, args=args, out_chs=module.out_chs(spec.in_chs, args))
    written = module.out_chs(spec.in_chs, module.bind(spec.row[2] or []))
    if written != spec.out_chs:
        warnings.warn(
            f"{spec.label()}: the model's output has {spec.out_chs} channels, not the {written} "
            f"written, because {spec.module} channels are rounded (make_divisible(c * "
            f"width_multiple, 8)); write a class head as FixedConv or Linear to keep its count",
            HeadRoundingWarning,
            stacklevel=3,
        )
    return spec


def decode(
    cfg: Mapping[str, Any], *, num_classes: int | None = None, source: str = "<dict>"
) -> list[BlockSpec]:
    """Model config -> checked, JSON-able row specs; touches no torch.

    Args:
        cfg: a parsed model config (``input_channel``, multiples, ``backbone`` rows).
        num_classes: replaces the class count of the final FixedConv / Linear row.
        source: the file name used in error messages.
    """
    backbone, in_chs, depth, width = _read_header(cfg, source)
    parsed = [_module_spec(row, i, source) for i, row in enumerate(backbone)]
    head = _head_index(parsed)
    specs: list[BlockSpec] = []
    for index, row in enumerate(backbone):
        spec = _bind_row(index, row, parsed[index], in_chs, (depth, width), source)
        if index == head:
            spec = _set_classes(spec, num_classes)
        specs.append(spec)
        in_chs = spec.out_chs
    if head is None and num_classes is not None:
        raise ModelConfigError(
            f"{source}: num_classes={num_classes} needs a FixedConv or Linear "
            f"head row, but no row sets the channel count"
        )
    return specs


def _build_row(spec: BlockSpec) -> nn.Module:
    """One row's blocks; a repeated row is an ``nn.Sequential`` of its repeats."""
    module = MODULES[spec.module]
    blocks, in_chs = [], spec.in_chs
    for stride in module.strides(spec.args, spec.repeat):
        try:
            blocks.append(module.build(in_chs, spec.out_chs, spec.args, stride))
        except (ValueError, RuntimeError, TypeError) as e:
            raise ModelConfigError(f"{spec.label()}: cannot build {spec.module}: {e}") from e
        in_chs = spec.out_chs
    return blocks[0] if len(blocks) == 1 else nn.Sequential(*blocks)


def _as_spec(spec: BlockSpec | Mapping[str, Any]) -> BlockSpec:
    """Accept specs back from JSON (``dataclasses.asdict`` output) as well as BlockSpec."""
    if isinstance(spec, BlockSpec):
        return spec
    try:
        return BlockSpec(**spec)
    except TypeError as e:
        raise ModelConfigError(f"not a block spec: {spec!r} ({e})") from e


def instantiate(
    specs: Iterable[BlockSpec | Mapping[str, Any]], input_channel: int = 3
) -> SpaceModel:
    """Row specs -> model; the only step of the build that creates torch modules."""
    specs = [_as_spec(s) for s in specs]
    if not specs:
        raise ModelConfigError("cannot instantiate an empty list of block specs")
    expected = input_channel
    for spec in specs:
        if spec.module not in MODULES:
            raise ModelConfigError(f"{spec.label()}: unknown module {spec.module!r}")
        if spec.in_chs != expected:
            raise ModelConfigError(
                f"{spec.label()}: expects {spec.in_chs} input channels but receives {expected}"
            )
        expected = spec.out_chs
    return SpaceModel([_build_row(s) for s in specs], specs, input_channel)


def build_model(
    cfg: str | os.PathLike[str] | Mapping[str, Any],
    *,
    num_classes: int | None = None,
    seed: int | None = None,
    source: str = "<dict>",
) -> SpaceModel:
    """YAML path or config dict -> model (``instantiate(decode(cfg))``).

    With `seed`, the initial weights depend on it alone (the global RNG is left as it was), so a
    trial or a training run can be repeated exactly. `source` names a dict's file in errors.
    """
    if isinstance(cfg, (str, os.PathLike)):
        source, cfg = str(cfg), load_model_config(cfg)
    specs = decode(cfg, num_classes=num_classes, source=source)
    if seed is None:
        return instantiate(specs, input_channel=specs[0].in_chs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return instantiate(specs, input_channel=specs[0].in_chs)

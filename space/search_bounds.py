"""Search-space bounds read from the YAML files under configs/search/ that users edit.

Bounds are validated once, when loaded, so a typo fails with the file and key named instead of
surfacing as an odd trial hours into a study.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from litenas.user_input import did_you_mean, read_yaml
from space.builder import MAX_REPEAT
from space.errors import UserError
from space.layers import ACTIVATIONS as ACTIVATION_LAYERS
from space.registry import MODULES

CHANNEL_STEP = 8
# Choices come from the registry, so a block or activation it gains is searchable at once. A stage
# block sets its own channels and takes a stride (pools keep channels, heads take the classes);
# "skip" leaves the slot empty (a max-pool when the slot must downsample).
BLOCK_TYPES = (
    *(
        name
        for name, spec in MODULES.items()
        if spec.stride_arg and not spec.keeps_channels and not spec.head
    ),
    "skip",
)
ACTIVATIONS = tuple(ACTIVATION_LAYERS)
HEAD_TYPES = tuple(name for name, spec in MODULES.items() if spec.head)
OPTIMIZERS = ("sgd", "adamw")
AUG_POLICIES = ("simple_augment_train", "randaugment_train")


class SearchSpaceError(UserError):
    """A search-space YAML that cannot be used; the message names the file and the key."""


@dataclasses.dataclass(frozen=True)
class ArchitectureBounds:
    """Bounds of the architecture space; ranges are inclusive (low, high) pairs."""

    stem_channels: tuple[int, int]
    stem_kernels: tuple[int, ...]
    stem_stride: int
    stem_acts: tuple[str, ...]
    num_stages: tuple[int, int]
    stage_channels: tuple[tuple[int, int], ...]
    blocks: tuple[str, ...]
    repeats: tuple[int, int]
    kernels: tuple[int, ...]
    expansions: tuple[int, ...]
    se: tuple[int, ...]
    acts: tuple[str, ...]
    min_feature: int
    max_feature: int
    head_types: tuple[str, ...]
    head_channels: tuple[int, int]
    img_sizes: tuple[int, ...] = ()  # empty: every trial uses the data YAML's IMG_SIZE
    widths: tuple[float, ...] = (1.0,)
    source: str = dataclasses.field(default="<bounds>", compare=False)  # the YAML, for errors


@dataclasses.dataclass(frozen=True)
class HyperBounds:
    """Bounds of the training-hyperparameter space (keys of the data YAML)."""

    optimizers: tuple[str, ...]
    sgd_lr: tuple[float, float]
    adamw_lr: tuple[float, float]
    weight_decay: tuple[float, float]
    batch_sizes: tuple[int, ...]
    epochs: tuple[int, int]
    img_sizes: tuple[int, ...]
    augs: tuple[str, ...]
    n_select: tuple[int, int]
    label_smoothing: tuple[float, float]


class _Reader:
    """Reads typed values from one YAML mapping, naming file and key in every error."""

    def __init__(self, raw: Mapping[str, Any], source: str, prefix: str = "") -> None:
        self.raw, self.source, self.prefix = raw, source, prefix

    def fail(self, key: str, rule: str, value: Any) -> SearchSpaceError:
        return SearchSpaceError(f"{self.source}: {self.prefix}{key} {rule}, got {value!r}")

    def get(self, key: str) -> Any:
        if key not in self.raw:
            raise SearchSpaceError(f"{self.source}: missing key {self.prefix}{key}")
        return self.raw[key]

    def child(self, key: str) -> _Reader:
        value = self.get(key)
        if not isinstance(value, Mapping):
            raise self.fail(key, "must be a mapping", value)
        return _Reader(value, self.source, f"{self.prefix}{key}.")

    def number(self, key: str, kind: type, low: float = 0) -> Any:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(
            value, (int, float) if kind is float else int
        ):
            raise self.fail(key, f"must be {'a number' if kind is float else 'an integer'}", value)
        if value < low:
            raise self.fail(key, f"must be >= {low}", value)
        return kind(value)

    def span(self, key: str, kind: type, low: float = 0, step: int = 1) -> tuple[Any, Any]:
        """A [low, high] range with low <= high, both >= `low` and multiples of `step`."""
        value = self.get(key)
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(key, "must be a [low, high] list", value)
        pair = _Reader({"low": value[0], "high": value[1]}, self.source, f"{self.prefix}{key}.")
        lo, hi = pair.number("low", kind, low), pair.number("high", kind, low)
        if lo > hi or (step > 1 and (lo % step or hi % step)):
            rule = f"must be [low, high] with low <= high and multiples of {step}"
            raise self.fail(key, rule, value)
        return lo, hi

    def choices(self, key: str, allowed: tuple[Any, ...] | type) -> tuple[Any, ...]:
        """A non-empty list; each item in `allowed` (names) or of type `allowed` (numbers)."""
        value = self.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(key, "must be a non-empty list", value)
        for item in value:
            if isinstance(allowed, type):
                kinds = (int, float) if allowed is float else allowed  # 1 is a fine float
                if isinstance(item, bool) or not isinstance(item, kinds) or item <= 0:
                    raise self.fail(key, f"items must be positive {allowed.__name__}s", item)
            elif item not in allowed:
                hint = did_you_mean(item, allowed, template=" (did you mean {!r}?)")
                raise self.fail(key, f"items must be among {list(allowed)}{hint}", item)
        return tuple(allowed(v) for v in value) if allowed in (int, float) else tuple(value)

    def optional(self, key: str, read: Any, default: Any) -> Any:
        """read(key) when the key is given, else default (keys added after a space shipped)."""
        return read(key) if key in self.raw else default

    def only(self, keys: tuple[str, ...]) -> None:
        """Reject keys the space does not use, so a misspelt bound is not silently ignored."""
        for key in self.raw:
            if key not in keys:
                hint = did_you_mean(key, keys, template="did you mean {!r}? ")
                where = f"{self.source}: unknown key {self.prefix}{key}"
                raise SearchSpaceError(f"{where}; {hint}valid: {', '.join(keys)}")


def _read_mapping(path: str | os.PathLike[str]) -> _Reader:
    """Parse a YAML file into a reader; errors name the file, and the line of a syntax error."""
    return _Reader(read_yaml(path, SearchSpaceError, "search-space YAML"), str(path))


def _stage_channels(reader: _Reader) -> tuple[tuple[int, int], ...]:
    stages = reader.get("stages")
    if not isinstance(stages, list) or not stages:
        raise reader.fail("stages", "must be a non-empty list of {channels: [low, high]}", stages)
    spans = []
    for index, stage in enumerate(stages):
        if not isinstance(stage, Mapping):
            raise reader.fail(
                f"stages[{index}]", "must be a mapping {channels: [low, high]}", stage
            )
        slot = _Reader(stage, reader.source, f"stages[{index}].")
        slot.only(("channels",))
        spans.append(slot.span("channels", int, CHANNEL_STEP, CHANNEL_STEP))
    return tuple(spans)


def _stem_fields(reader: _Reader) -> dict[str, Any]:
    stem = reader.child("stem")
    stem.only(("channels", "kernel_choices", "stride", "act_choices"))
    stride = stem.number("stride", int, 1)
    if stride not in (1, 2):
        raise stem.fail("stride", "must be 1 or 2", stride)
    return {
        "stem_channels": stem.span("channels", int, CHANNEL_STEP, CHANNEL_STEP),
        "stem_kernels": stem.choices("kernel_choices", int),
        "stem_stride": stride,
        "stem_acts": stem.choices("act_choices", ACTIVATIONS),
    }


def load_architecture_bounds(path: str | os.PathLike[str]) -> ArchitectureBounds:
    """Load configs/search/architecture.yaml (or a user's copy) and validate every bound."""
    reader = _read_mapping(path)
    reader.only(
        tuple(
            "stem num_stages stages block_choices repeats kernel_choices expansion_choices "
            "se_choices act_choices min_feature max_feature head img_size_choices "
            "width_choices".split()
        )
    )
    head = reader.child("head")
    head.only(("type_choices", "channels"))
    stage_channels = _stage_channels(reader)
    num_stages = reader.span("num_stages", int, 1)
    if num_stages[1] > len(stage_channels):
        rule = f"must not exceed the {len(stage_channels)} slots listed under stages"
        raise reader.fail("num_stages", rule, list(num_stages))
    min_feature, max_feature = (
        reader.number("min_feature", int, 1),
        reader.number("max_feature", int, 1),
    )
    if min_feature > max_feature:
        raise reader.fail("min_feature", f"must be <= max_feature ({max_feature})", min_feature)
    se = reader.choices("se_choices", (0, 1))
    repeats = reader.span("repeats", int, 1)
    if repeats[1] > MAX_REPEAT:
        rule = f"must stay within [1, {MAX_REPEAT}] (the most repeats a model row may have)"
        raise reader.fail("repeats", rule, list(repeats))
    return ArchitectureBounds(
        **_stem_fields(reader),
        num_stages=num_stages,
        stage_channels=stage_channels,
        blocks=reader.choices("block_choices", BLOCK_TYPES),
        repeats=repeats,
        kernels=reader.choices("kernel_choices", int),
        expansions=reader.choices("expansion_choices", int),
        se=se,
        acts=reader.choices("act_choices", ACTIVATIONS),
        min_feature=min_feature,
        max_feature=max_feature,
        head_types=head.choices("type_choices", HEAD_TYPES),
        head_channels=head.span("channels", int, CHANNEL_STEP, CHANNEL_STEP),
        img_sizes=reader.optional("img_size_choices", lambda k: reader.choices(k, int), ()),
        widths=reader.optional("width_choices", lambda k: reader.choices(k, float), (1.0,)),
        source=str(path),
    )


def load_hyper_bounds(path: str | os.PathLike[str]) -> HyperBounds:
    """Load configs/search/hyper.yaml (or a user's copy) and validate every bound."""
    reader = _read_mapping(path)
    reader.only(
        tuple(
            "optimizer_choices sgd_lr_log adamw_lr_log weight_decay_log batch_size_choices epochs "
            "img_size_choices aug_choices n_select label_smoothing".split()
        )
    )
    smoothing = reader.span("label_smoothing", float)
    if smoothing[1] > 0.5:
        raise reader.fail("label_smoothing", "must stay within [0, 0.5]", list(smoothing))
    return HyperBounds(
        optimizers=reader.choices("optimizer_choices", OPTIMIZERS),
        sgd_lr=reader.span("sgd_lr_log", float, 1e-9),
        adamw_lr=reader.span("adamw_lr_log", float, 1e-9),
        weight_decay=reader.span("weight_decay_log", float, 1e-12),
        batch_sizes=reader.choices("batch_size_choices", int),
        epochs=reader.span("epochs", int, 1),
        img_sizes=reader.choices("img_size_choices", int),
        augs=reader.choices("aug_choices", AUG_POLICIES),
        n_select=reader.span("n_select", int, 0),
        label_smoothing=smoothing,
    )

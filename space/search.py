"""Define-by-run search spaces: a trial's suggestions become model YAML rows and data-YAML keys.

The architecture space only emits rows of our model YAML format; it never builds modules, so a
sampled architecture is stored with its trial as plain data and exported by dumping those rows.
Parameter names are namespaced by stage slot and block type ("s2.block", "s2.mbconv.k") so that
conditional parameters of different block types never collide in the sampler's history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from torch import nn

from space.layers import ACTIVATIONS
from space.registry import MODULES
from space.search_bounds import CHANNEL_STEP, ArchitectureBounds, HyperBounds, SearchSpaceError

Row = list[Any]
# Activation names that mean hard-swish: InvertedResidualv3 takes a use_hs flag, not a name.
HARD_SWISH = tuple(name for name, layer in ACTIVATIONS.items() if layer is nn.Hardswish)


class Trial(Protocol):
    """The part of optuna.trial.Trial the spaces use (space/ does not import optuna)."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1) -> int: ...

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def downsample_range(img_size: int, bounds: ArchitectureBounds) -> tuple[int, int]:
    """How many stride-2 steps (stem included) keep the final map within [min, max]_feature.

    Sides shrink as ceil(side / 2), as a "same"-padded stride-2 conv does.
    """
    sides = [img_size]
    while (sides[-1] + 1) // 2 >= bounds.min_feature:
        sides.append((sides[-1] + 1) // 2)
    most = len(sides) - 1
    fewest = next((i for i, side in enumerate(sides) if side <= bounds.max_feature), most)
    if most < (bounds.stem_stride == 2):
        raise SearchSpaceError(
            f"IMG_SIZE {img_size} is too small for a stride-2 stem with min_feature "
            f"{bounds.min_feature}; use IMG_SIZE >= {2 * bounds.min_feature} or stem.stride 1"
        )
    return fewest, most


def check_sizes(bounds: ArchitectureBounds, img_size: int) -> None:
    """Refuse a space in which a value can never give a valid trial at the sizes it samples
    (img_size_choices, else the data YAML's `img_size`), before any trial fails on it.

    Each size must leave room for the stem's stride and min_feature, and each kernel choice must
    fit the largest image: a kernel larger than the image is refused by every trial.
    """
    sizes = bounds.img_sizes or (img_size,)
    where = f"{bounds.source}: " if bounds.source else ""
    for size in sizes:
        if bounds.min_feature > size:
            raise SearchSpaceError(
                f"{where}min_feature {bounds.min_feature} is larger than the {size} px images "
                f"(img sizes {list(sizes)}): no final feature map can be that large; lower "
                f"min_feature or use larger images"
            )
        try:
            downsample_range(size, bounds)
        except SearchSpaceError as e:
            raise SearchSpaceError(f"{where}{e}") from None
    largest = max(sizes)
    for key, kernels in (
        ("stem.kernel_choices", bounds.stem_kernels),
        ("kernel_choices", bounds.kernels),
    ):
        too_large = [k for k in kernels if k > largest]
        if too_large:
            raise SearchSpaceError(
                f"{where}{key} {too_large[0]} is larger than every image a trial sees (img "
                f"sizes {list(sizes)}): each trial that picks it would fail; use kernels of at "
                f"most {largest} (3, 5 and 7 are usual)"
            )


def _suggest_stride(trial: Trial, prefix: str, need: int, room: int, slots_left: int) -> int:
    """Stride of one stage: forced when the budget leaves no choice, else suggested."""
    if room <= 0:
        return 1
    if need >= slots_left:
        return 2
    return trial.suggest_categorical(f"{prefix}.stride", [1, 2])


def _row(repeat: int, module: str, **named: Any) -> Row:
    """One model YAML row, its args given by registry name (the registry knows their order)."""
    return [repeat, module, MODULES[module].positional(named)]


def _strided(repeat: int, module: str, named: dict[str, Any], stride: int) -> list[Row]:
    """Rows of a stage; the stride goes on its own first row so repeat semantics never matter."""
    at = MODULES[module].stride_arg
    if stride == 1 or repeat == 1:
        return [_row(repeat, module, **named, **{at: stride})]
    return [_row(1, module, **named, **{at: 2}), _row(repeat - 1, module, **named, **{at: 1})]


# A stage block's sampled args by registry name, in the order a trial suggests them: the order
# is part of a seeded study's history. Channels come first, the stride is placed by the stage.
_SUGGESTED: tuple[tuple[str, Callable[[Trial, str, ArchitectureBounds], Any]], ...] = (
    ("k", lambda trial, name, b: trial.suggest_categorical(f"{name}.k", list(b.kernels))),
    ("kernel", lambda trial, name, b: trial.suggest_categorical(f"{name}.k", list(b.kernels))),
    ("activation", lambda trial, name, b: trial.suggest_categorical(f"{name}.act", list(b.acts))),
    ("t", lambda trial, name, b: trial.suggest_categorical(f"{name}.t", list(b.expansions))),
    ("use_se", lambda trial, name, b: trial.suggest_categorical(f"{name}.se", list(b.se))),
    (
        "use_hs",
        lambda trial, name, b: int(
            trial.suggest_categorical(f"{name}.act", list(b.acts)) in HARD_SWISH
        ),
    ),
)


def _block_args(
    trial: Trial, prefix: str, block: str, channels: tuple[int, int], bounds: ArchitectureBounds
) -> dict[str, Any]:
    """The block's args but its stride, named "<slot>.<short name>.<what>" in the trial."""
    spec = MODULES[block]
    name = f"{prefix}.{spec.short_name.lower()}"
    named: dict[str, Any] = {}
    if spec.channel_args:
        low, high = channels
        named[spec.channel_args[0]] = trial.suggest_int(f"{name}.c", low, high, step=CHANNEL_STEP)
    takes = {arg.name for arg in spec.args}
    for arg, suggest in _SUGGESTED:
        if arg in takes:
            named[arg] = suggest(trial, name, bounds)
    return named


def _suggest_stage(
    trial: Trial, slot: int, stride: int, in_chs: int, bounds: ArchitectureBounds
) -> tuple[list[Row], int]:
    """Rows of stage `slot` (1-based) and its output channels (the registry's rule)."""
    prefix = f"s{slot}"
    block = trial.suggest_categorical(f"{prefix}.block", list(bounds.blocks))
    if block == "skip":
        return ([_row(1, "MaxPool", kernel=3, stride=2, padding=1)] if stride == 2 else []), in_chs
    repeat = trial.suggest_int(f"{prefix}.repeats", *bounds.repeats)
    named = _block_args(trial, prefix, block, bounds.stage_channels[slot - 1], bounds)
    rows = _strided(repeat, block, named, stride)
    spec = MODULES[block]
    return rows, spec.out_chs(in_chs, spec.bind(rows[0][2]))


def _suggest_head(trial: Trial, bounds: ArchitectureBounds, num_classes: int) -> list[Row]:
    """1x1 Conv, global pooling and a class layer that is never width-rounded.

    A FixedConv head's (N, C, 1, 1) output is flattened by the model, as in the competition.
    """
    channels = trial.suggest_int("head.c", *bounds.head_channels, step=CHANNEL_STEP)
    act = trial.suggest_categorical("head.act", list(bounds.acts))
    kind = trial.suggest_categorical("head.type", list(bounds.head_types))
    rows = [
        _row(1, "Conv", out=channels, kernel=1, stride=1, activation=act),
        _row(1, "GlobalAvgPool"),
    ]
    if kind == "FixedConv":
        return rows + [_row(1, "FixedConv", out=num_classes, kernel=1, stride=1, activation=None)]
    return rows + [_row(1, "Flatten"), _row(1, "Linear", out=num_classes)]


def suggest_backbone(
    trial: Trial, bounds: ArchitectureBounds, num_classes: int, *, img_size: int = 32
) -> list[Row]:
    """Sample one architecture as model YAML backbone rows (stem, stages, head).

    Stride-2 stages are placed so the final feature map stays within the bounds' feature range
    for `img_size`: a stride is suggested only while both choices keep that possible.
    """
    if num_classes < 2:
        raise SearchSpaceError(f"num_classes must be >= 2, got {num_classes=}")
    fewest, most = downsample_range(img_size, bounds)
    stem_c = trial.suggest_int("stem.c", *bounds.stem_channels, step=CHANNEL_STEP)
    stem_k = trial.suggest_categorical("stem.k", list(bounds.stem_kernels))
    stem_act = trial.suggest_categorical("stem.act", list(bounds.stem_acts))
    rows = [
        _row(1, "Conv", out=stem_c, kernel=stem_k, stride=bounds.stem_stride, activation=stem_act)
    ]
    done = int(bounds.stem_stride == 2)
    low, high = bounds.num_stages
    stages = trial.suggest_int("num_stages", min(max(low, fewest - done), high), high)
    channels = stem_c
    for slot in range(1, stages + 1):
        stride = _suggest_stride(trial, f"s{slot}", fewest - done, most - done, stages - slot + 1)
        stage_rows, channels = _suggest_stage(trial, slot, stride, channels, bounds)
        rows += stage_rows
        done += stride == 2
    return rows + _suggest_head(trial, bounds, num_classes)


def _pick(trial: Trial, name: str, choices: tuple[Any, ...]) -> Any:
    """A categorical suggestion; a single choice is taken as it is, without a parameter."""
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, list(choices))


def suggest_img_size(trial: Trial, bounds: ArchitectureBounds, default: int) -> int:
    """The trial's IMG_SIZE from the space's img_size_choices, else the data YAML's."""
    return int(_pick(trial, "img_size", bounds.img_sizes or (default,)))


def suggest_model_config(
    trial: Trial, bounds: ArchitectureBounds, num_classes: int, *, img_size: int = 32
) -> dict[str, Any]:
    """A complete model config (what a model YAML file holds) for one trial."""
    width = float(_pick(trial, "width", bounds.widths))
    backbone = suggest_backbone(trial, bounds, num_classes, img_size=img_size)
    return {
        "input_channel": 3,
        "depth_multiple": 1.0,
        "width_multiple": width,
        "backbone": backbone,
    }


def suggest_hyper(trial: Trial, bounds: HyperBounds) -> dict[str, Any]:
    """Sample a training recipe as data-YAML keys; the lr range follows the optimizer."""
    optimizer = trial.suggest_categorical("optimizer", list(bounds.optimizers))
    lr_range = bounds.sgd_lr if optimizer == "sgd" else bounds.adamw_lr
    aug = trial.suggest_categorical("aug", list(bounds.augs))
    keys: dict[str, Any] = {
        "OPTIMIZER": optimizer,
        "INIT_LR": trial.suggest_float(f"{optimizer}.lr", *lr_range, log=True),
        "WEIGHT_DECAY": trial.suggest_float("weight_decay", *bounds.weight_decay, log=True),
        "BATCH_SIZE": trial.suggest_categorical("batch_size", list(bounds.batch_sizes)),
        "EPOCHS": trial.suggest_int("epochs", *bounds.epochs),
        "IMG_SIZE": trial.suggest_categorical("img_size", list(bounds.img_sizes)),
        "AUG_TRAIN": aug,
        "AUG_TRAIN_PARAMS": {},
        "LABEL_SMOOTHING": trial.suggest_float("label_smoothing", *bounds.label_smoothing),
    }
    if aug == "randaugment_train":
        n_select = trial.suggest_int("randaugment.n_select", *bounds.n_select)
        keys["AUG_TRAIN_PARAMS"] = {"n_select": n_select, "level": None}
    return keys

"""The data YAML: the competition's training keys plus our optional extensions, validated once.

Users bring their competition data YAMLs unchanged, so the competition keys keep their names and
meaning; every extension has a default that reproduces the competition's training.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litenas.user_input import did_you_mean, read_yaml
from runner.data.images import DataError, check_fits_in_memory
from runner.data.trashnet import NAME as TRASHNET
from space.errors import UserError

AUG_TRAIN_POLICIES = ("simple_augment_train", "randaugment_train")
AUG_TEST_POLICIES = ("simple_augment_test",)
OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("onecycle", "cosine")
BALANCE_MODES = ("none", "loss", "sampler")
RANDAUGMENT_PARAMS = {"n_select": int, "level": int}
MAX_RANDAUGMENT_LEVEL = 30
# DATASET names of an image folder in the competition layout (any case); TrashNet's is fetched
# when missing. Any other name is a torchvision dataset, as in the competition's code.
IMAGE_FOLDERS = ("TACO", TRASHNET)


class DataConfigError(UserError):
    """A data YAML (or a DataConfig field) that cannot be used; the message says what would be."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """One training recipe: where the images are, how to augment them and how to train on them."""

    data_path: str
    dataset: str = "TACO"
    img_size: int = 64
    aug_train: str = "simple_augment_train"
    aug_train_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    aug_test: str = "simple_augment_test"
    batch_size: int = 64
    epochs: int = 100
    val_ratio: float = 0.0
    init_lr: float = 0.1
    fp16: bool = False
    download: bool = True
    test_ratio: float = 0.0
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: str = "onecycle"
    label_smoothing: float = 0.0
    balance: str = "none"
    cutout: float = 0.0
    cutmix: float = 0.0
    ema_decay: float = 0.0
    fixres_train_size: int = 0
    fixres_epochs: int = 0
    teacher: str = ""
    kd_weight: float = 0.5
    kd_temperature: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        _validate(self)

    def to_yaml_dict(self) -> dict[str, Any]:
        """The data YAML of this config (competition keys first); it loads back to an equal one."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name.upper()] = dict(value) if isinstance(value, Mapping) else value
        return out


COMPETITION_KEYS = (
    "DATA_PATH",
    "DATASET",
    "IMG_SIZE",
    "AUG_TRAIN",
    "AUG_TRAIN_PARAMS",
    "AUG_TEST",
    "BATCH_SIZE",
    "EPOCHS",
    "VAL_RATIO",
    "INIT_LR",
    "FP16",
)
VALID_KEYS = tuple(f.name.upper() for f in dataclasses.fields(DataConfig))


def is_torchvision(dataset: str) -> bool:
    """Whether DATASET names a torchvision dataset (DATA_PATH its root), not an image folder."""
    return dataset.casefold() not in {name.casefold() for name in IMAGE_FOLDERS}


def _check_type(name: str, value: Any, kind: type) -> None:
    """Reject a value of the wrong YAML type (bool is not a number, an int is a valid float)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if kind in (int, float) and isinstance(value, bool) or not isinstance(value, kind):
        raise DataConfigError(
            f"{name.upper()} must be {kind.__name__}, got {value!r} ({type(value).__name__})"
        )


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise DataConfigError(f"{name.upper()} must be in [{low}, {high}], got {value!r}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise DataConfigError(f"{name.upper()} must be one of {list(choices)}, got {value!r}")


def _validate_aug_params(policy: str, params: Mapping[str, Any]) -> None:
    """randaugment_train takes n_select and level (null = a random level each time)."""
    allowed = RANDAUGMENT_PARAMS if policy == "randaugment_train" else {}
    for key, value in params.items():
        if key not in allowed:
            raise DataConfigError(
                f"AUG_TRAIN_PARAMS key {key!r} is not used by {policy}; "
                f"valid keys: {sorted(allowed) or 'none'}"
            )
        if value is not None:
            _check_type(f"AUG_TRAIN_PARAMS.{key}", value, int)
    if params.get("n_select") is not None:
        _check_range("AUG_TRAIN_PARAMS.n_select", params["n_select"], 0, 14)
    if params.get("level") is not None:
        _check_range("AUG_TRAIN_PARAMS.level", params["level"], 0, MAX_RANDAUGMENT_LEVEL)


def _validate(cfg: DataConfig) -> None:
    """Check every field's type and range so a bad value fails at load, not mid-training."""
    for field in dataclasses.fields(cfg):
        kind = {"int": int, "float": float, "bool": bool, "str": str}.get(str(field.type), Mapping)
        _check_type(field.name, getattr(cfg, field.name), kind)
    for name in ("img_size", "batch_size", "epochs"):
        _check_range(name, getattr(cfg, name), 1, 1_000_000)
    try:  # a size that cannot train at all, before a decode or a study starts on it
        check_fits_in_memory(cfg.batch_size, cfg.img_size, "one training batch of BATCH_SIZE", 4)
    except DataError as e:
        raise DataConfigError(str(e)) from None
    _check_range("val_ratio", cfg.val_ratio, 0.0, 0.9)
    _check_range("test_ratio", cfg.test_ratio, 0.0, 0.9)
    _check_range("label_smoothing", cfg.label_smoothing, 0.0, 0.5)
    _check_range("cutout", cfg.cutout, 0.0, 1.0)
    _check_range("cutmix", cfg.cutmix, 0.0, 10.0)
    _check_range("momentum", cfg.momentum, 0.0, 0.999)
    _check_range("weight_decay", cfg.weight_decay, 0.0, 1.0)
    _check_range("ema_decay", cfg.ema_decay, 0.0, 0.99999)
    _check_range("fixres_train_size", cfg.fixres_train_size, 0, cfg.img_size)
    _check_range("fixres_epochs", cfg.fixres_epochs, 0, cfg.epochs)
    _check_range("kd_weight", cfg.kd_weight, 0.0, 1.0)
    _check_range("kd_temperature", cfg.kd_temperature, 0.1, 100.0)
    if not cfg.dataset.strip():
        raise DataConfigError(
            f"DATASET must name the data: TACO (an image folder), TrashNet, or a torchvision "
            f"dataset such as CIFAR10; got {cfg.dataset!r}"
        )
    if not 0.0 < cfg.init_lr <= 10.0:
        raise DataConfigError(f"INIT_LR must be in (0, 10], got {cfg.init_lr!r}")
    _check_choice("aug_train", cfg.aug_train, AUG_TRAIN_POLICIES)
    _check_choice("aug_test", cfg.aug_test, AUG_TEST_POLICIES)
    _check_choice("optimizer", cfg.optimizer, OPTIMIZERS)
    _check_choice("scheduler", cfg.scheduler, SCHEDULERS)
    _check_choice("balance", cfg.balance, BALANCE_MODES)
    _validate_aug_params(cfg.aug_train, cfg.aug_train_params)


def load_yaml_mapping(path: str | os.PathLike[str], what: str = "data YAML") -> dict[str, Any]:
    """A YAML mapping of data keys (a data YAML, or a recipe laid over one); errors name the
    file, and the line of a syntax error."""
    return read_yaml(path, DataConfigError, what, "a mapping of KEY: value")


def _to_fields(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Map YAML keys to field names; an unknown key names the closest valid one."""
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in VALID_KEYS:
            hint = did_you_mean(str(key).upper(), VALID_KEYS, template="did you mean {!r}? ")
            raise DataConfigError(
                f"{source}: unknown key {key!r}; {hint}valid keys: {', '.join(VALID_KEYS)}"
            )
        fields[key.lower()] = value
    if fields.get("aug_train_params") is None:
        fields.pop("aug_train_params", None)
    if "data_path" not in fields:
        raise DataConfigError(f"{source}: DATA_PATH is required (the folder holding train/)")
    fields["data_path"] = os.fspath(fields["data_path"])
    return fields


def data_config_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> DataConfig:
    """Build a DataConfig from data-YAML keys, naming the source in every error."""
    try:
        return DataConfig(**_to_fields(raw, source))
    except DataConfigError as e:
        if str(e).startswith(source):
            raise
        raise DataConfigError(f"{source}: {e}") from e


def load_data_config(path: str | os.PathLike[str]) -> DataConfig:
    """Load and validate a data YAML; nothing is read from DATA_PATH or fetched (for that, see
    runner.data.sources.load_data). Errors name the file."""
    path = Path(path)
    return data_config_from_dict(load_yaml_mapping(path), source=str(path))

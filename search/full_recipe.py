"""The full-training recipe of a front trial: the trial's own data config with keys on top.

A trial trains a few epochs, too few for strong regularisation to pay off; full training is
longer, and the keys of configs/search/full_training.yaml (or of a --recipe YAML) are what it adds.
search.export writes the result into each data.yaml and search.finalize trains with it, so both
give a front model the same recipe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.data.config import (
    DataConfig,
    DataConfigError,
    data_config_from_dict,
    load_yaml_mapping,
)
from search.front import FrontEntry

FULL_TRAINING = "configs/search/full_training.yaml"  # shipped; resolved by config_file
# Keys a recipe may not change: they decide what the trial's model and MACs are.
FIXED_KEYS = ("DATA_PATH", "IMG_SIZE")
RECIPE_HELP = (
    "a YAML of data keys laid over each trial's recipe for full training, e.g. "
    "'CUTMIX: 0' or 'EPOCHS: 90' (default: %(default)s)"
)


@dataclasses.dataclass(frozen=True)
class FullRecipe:
    """How a front trial is trained fully: its own recipe with `keys` (and EPOCHS) on top."""

    keys: Mapping[str, Any]
    epochs: int | None = None
    source: str = "recipe"

    @classmethod
    def load(cls, path: Path, epochs: int | None = None) -> FullRecipe:
        """The recipe YAML at `path`, checked to leave the trial's model alone."""
        keys = load_yaml_mapping(path, "recipe YAML")
        fixed = sorted(set(keys) & set(FIXED_KEYS))
        if fixed:
            raise DataConfigError(
                f"{path}: a recipe may not set {fixed}: they define the trial's model"
            )
        return cls(keys, epochs, str(path))

    def config(self, entry: FrontEntry) -> DataConfig:
        """The entry's full-training data config, validated before anything is written."""
        raw = {**entry.data_config, **self.keys}
        if self.epochs is not None:
            raw["EPOCHS"] = self.epochs
        return data_config_from_dict(
            raw, source=f"trial {entry.number} data config + {self.source}"
        )


TRIAL_RECIPE = FullRecipe({}, source="no recipe")  # the trial's own recipe, nothing on top

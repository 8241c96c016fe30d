"""Data: the data YAML, image folders, TrashNet and torchvision sources, splits, augmentation.

Parsing a data YAML (config) reads only the YAML; load_data (sources) also makes sure the images
are there, fetching TrashNet or a torchvision dataset when DOWNLOAD allows. The splits loader
(splits) decodes once into the on-disk cache (cache) and hands out uint8 tensors that
augmentation (augment) turns into training batches.
"""

from runner.data.config import (
    DataConfig,
    DataConfigError,
    data_config_from_dict,
    load_data_config,
)
from runner.data.images import DataError
from runner.data.sources import load_data
from runner.data.splits import Splits, load_splits, load_unlabelled
from runner.data.splits_cache import SplitsCache

__all__ = [
    "DataConfig",
    "DataConfigError",
    "DataError",
    "Splits",
    "SplitsCache",
    "data_config_from_dict",
    "load_data",
    "load_data_config",
    "load_splits",
    "load_unlabelled",
]

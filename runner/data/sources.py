"""Making sure a data config's images are there: an image folder, TrashNet, a torchvision dataset.

Parsing a data YAML (runner.data.config) reads only the YAML; this is the step that looks at
DATA_PATH and fetches what DOWNLOAD allows, so a study fails (or downloads) before its first trial.
"""

from __future__ import annotations

import os
from pathlib import Path

from runner.data.config import (
    TRASHNET,
    DataConfig,
    DataConfigError,
    is_torchvision,
    load_data_config,
)
from runner.data.images import DataError
from runner.data.trashnet import fetch_trashnet
from runner.data.tv_datasets import open_splits


def check_data(cfg: DataConfig) -> None:
    """DATA_PATH holds the data, or the data is fetched now (DOWNLOAD): TrashNet into the cache,
    linked at DATA_PATH; a torchvision dataset into DATA_PATH by torchvision. A study thus fails
    (or downloads) before its first trial, not in it."""
    folder = Path(cfg.data_path)
    if is_torchvision(cfg.dataset):
        if folder.is_dir() or cfg.download:
            open_splits(cfg.dataset, folder, cfg.download)
            return
        hint = f"set DOWNLOAD: true to let torchvision download {cfg.dataset} into it"
    elif folder.is_dir():
        return
    elif cfg.dataset.casefold() == TRASHNET.casefold() and cfg.download:
        fetch_trashnet(folder)
        return
    elif cfg.dataset.casefold() == TRASHNET.casefold():
        hint = f"set DOWNLOAD: true to fetch {TRASHNET} there, or point it at your copy"
    else:
        hint = "point it at the folder holding train/<class>/ images"
    raise DataError(
        f"DATA_PATH {cfg.data_path!r} is not a folder (resolved from the current directory "
        f"{Path.cwd()}); {hint}"
    )


def load_data(path: str | os.PathLike[str]) -> DataConfig:
    """Load a data YAML and make sure its data is there (fetching what DOWNLOAD allows);
    DATA_PATH is relative to the current directory. Errors name the file."""
    cfg = load_data_config(path)
    try:
        check_data(cfg)
    except DataError as e:
        raise DataConfigError(f"{path}: {e}") from e
    return cfg

"""Train/val splits as uint8 tensors, decoded once per (dataset, size) into an on-disk cache.

Hundreds of brief trials read the same images: decoding them every epoch (as the old code did)
cost more than the models. The cache is keyed by the file list, sizes, mtimes and image size, so a
changed dataset is decoded afresh, and it is written atomically so concurrent workers can share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from runner.config import DataConfig
from runner.files import save_atomic
from runner.images import DataError, class_folders, decode_images, list_images, scan_split

CACHE_VERSION = 1
SPLIT_SEED = 0
DEFAULT_CACHE_DIR = Path(".cache")


@dataclasses.dataclass(frozen=True)
class Splits:
    """Decoded train and val images ([N, 3, S, S] uint8) with int64 labels and class names."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    classes: list[str]


def _cache_key(root: Path, files: Sequence[Path], size: int) -> str:
    """A digest of what decoding depends on: paths, sizes, mtimes and the output size."""
    digest = hashlib.sha256(f"v{CACHE_VERSION} size={size}\n".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def decode_cached(
    root: Path, files: Sequence[Path], size: int, cache_dir: Path, *, progress: bool = True
) -> tuple[torch.Tensor, list[int]]:
    """Images of files as uint8 [N, 3, S, S] plus the indexes kept, from the cache when valid."""
    target = cache_dir / f"{root.name}-{size}px-{_cache_key(root, files, size)}.pt"
    if target.is_file():
        try:
            payload = torch.load(target, weights_only=True)
            if payload["skipped"]:
                warnings.warn(
                    f"skipped {len(payload['skipped'])} unreadable or corrupt image(s): "
                    f"{', '.join(payload['skipped'])}",
                    stacklevel=3,
                )
            return payload["images"], payload["kept"]
        except Exception as e:  # torch.load reports damage as many types (IndexError, ...)
            warnings.warn(f"{target}: damaged decode cache ({e}); decoding the images again",
                          stacklevel=3)  # fmt: skip
    images, kept = decode_images(files, size, progress=progress, desc=f"decode {root.name}")
    skipped = sorted(set(map(str, files)) - {str(files[i]) for i in kept})
    save_atomic({"images": images, "kept": kept, "skipped": skipped}, target)
    return images, kept


def stratified_split(
    labels: torch.Tensor, ratio: float, seed: int = SPLIT_SEED
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indexes (first, held_out): ratio of each class held out (at least one), seeded."""
    generator = torch.Generator().manual_seed(seed)
    first, held = [], []
    for label in labels.unique(sorted=True).tolist():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_held = min(len(members) - 1, max(1, round(len(members) * ratio)))
        held.append(members[:n_held])
        first.append(members[n_held:])
    return torch.cat(first).sort().values, torch.cat(held).sort().values


def _split_files(root: Path, cfg: DataConfig) -> tuple[list[str], list[Path], list[int], int]:
    """Classes, all files and labels (train first), and how many of them are train files."""
    classes = class_folders(root / "train")
    files, labels = scan_split(root / "train", classes)
    n_train = len(files)
    if (root / "val").is_dir():
        val_files, val_labels = scan_split(root / "val", classes)
        files, labels = files + val_files, labels + val_labels
    elif cfg.val_ratio <= 0:
        raise DataError(
            f"{root} has no val/ folder and VAL_RATIO is {cfg.val_ratio}: add {root}/val/<class>/ "
            "or set VAL_RATIO (e.g. 0.2) to hold out a stratified part of train/"
        )
    return classes, files, labels, n_train


def load_splits(
    cfg: DataConfig,
    *,
    img_size: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Splits:
    """The config's train and val splits; val/ if present, else a stratified VAL_RATIO split."""
    root = Path(cfg.data_path)
    size = img_size or cfg.img_size
    classes, files, labels, n_train = _split_files(root, cfg)
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    images, kept = decode_cached(root, files, size, cache, progress=progress)
    kept_t = torch.tensor(kept, dtype=torch.long)
    y = torch.tensor(labels, dtype=torch.long)[kept_t]
    is_train = kept_t < n_train
    if n_train == len(files):
        train_idx, val_idx = stratified_split(y, cfg.val_ratio)
    else:
        train_idx, val_idx = is_train.nonzero().flatten(), (~is_train).nonzero().flatten()
    for name, idx in (("train", train_idx), ("val", val_idx)):
        if len(idx) == 0:
            raise DataError(f"{root}: the {name} split has no readable images")
    return Splits(images[train_idx], y[train_idx], images[val_idx], y[val_idx], classes)


def load_unlabelled(
    folder: str | os.PathLike[str], img_size: int, *, progress: bool = True
) -> tuple[torch.Tensor, list[Path]]:
    """Images of an unlabelled folder (e.g. test/NoLabel) and their paths, for prediction."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder of images")
    files = list_images(folder)
    if not files:
        raise DataError(f"{folder} holds no images (.jpg, .png, ...)")
    images, kept = decode_images(files, img_size, progress=progress, desc=f"decode {folder.name}")
    return images, [files[i] for i in kept]

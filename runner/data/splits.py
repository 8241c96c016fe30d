"""Train/val/test splits as uint8 tensors, decoded once per (dataset, size) into an on-disk cache.

Hundreds of brief trials read the same images: decoding them every epoch (as the old code did)
cost more than the models. The data is an image folder in the competition layout (DATASET: TACO,
or TrashNet) or a torchvision dataset named by DATASET (runner.data.tv_datasets); both decode
into the same tensor cache (runner.data.cache) and are split here by the same rules.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from runner.data.cache import cached, default_cache_dir, files_key
from runner.data.config import DataConfig, is_torchvision
from runner.data.images import (
    DataError,
    decode_images,
    list_images,
    scan_split,
    training_classes,
)
from runner.data.sources import check_data
from runner.data.tv_datasets import DEFAULT_VAL_RATIO, load_torchvision

SPLIT_SEED = 0
TEST_SEED = 1  # TEST_RATIO draws apart from VAL_RATIO
UNLABELLED = "NoLabel"  # test/NoLabel/: images to predict, not to score


@dataclasses.dataclass(frozen=True)
class Splits:
    """Decoded train, val and (optional) test images ([N, 3, S, S] uint8), labels, class names.

    test holds images that neither a study nor training may look at: DATA_PATH/test/<class>/
    when the data has one, else TEST_RATIO of train/ held out. It is empty without either.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    classes: list[str]
    test_x: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0, 3, 1, 1))
    test_y: torch.Tensor = dataclasses.field(
        default_factory=lambda: torch.empty(0, dtype=torch.long)
    )


def decode_cached(
    root: Path, files: Sequence[Path], size: int, cache_dir: Path, *, progress: bool = True
) -> tuple[torch.Tensor, list[int]]:
    """Images of files as uint8 [N, 3, S, S] plus the indexes kept, from the cache when valid."""

    def decode() -> dict[str, object]:
        images, kept = decode_images(files, size, progress=progress, desc=f"decode {root.name}")
        skipped = sorted(set(map(str, files)) - {str(files[i]) for i in kept})
        return {"images": images, "kept": kept, "skipped": skipped}

    target = cache_dir / f"{root.name}-{size}px-{files_key(root, files, size)}.pt"
    payload, from_cache = cached(target, decode, ("images", "kept", "skipped"))
    if from_cache and payload["skipped"]:  # a fresh decode has warned already
        warnings.warn(
            f"skipped {len(payload['skipped'])} unreadable or corrupt image(s): "
            f"{', '.join(payload['skipped'])}",
            stacklevel=2,
        )
    return payload["images"], payload["kept"]


def shuffled_classes(labels: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """Each class's indexes in a seeded random order (classes in label order): the one draw
    behind every stratified split and subset, so each is the same on every machine."""
    generator = torch.Generator().manual_seed(seed)
    shuffled = []
    for label in labels.unique(sorted=True).tolist():
        members = (labels == label).nonzero().flatten()
        shuffled.append(members[torch.randperm(len(members), generator=generator)])
    return shuffled


def stratified_split(
    labels: torch.Tensor, ratio: float, seed: int = SPLIT_SEED
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indexes (first, held_out): ratio of each class held out (at least one), seeded."""
    first, held = [], []
    for members in shuffled_classes(labels, seed):
        n_held = min(len(members) - 1, max(1, round(len(members) * ratio)))
        held.append(members[:n_held])
        first.append(members[n_held:])
    return torch.cat(first).sort().values, torch.cat(held).sort().values


def labelled_test_dir(root: Path) -> Path | None:
    """DATA_PATH/test when it holds class folders (not only the unlabelled test/NoLabel/)."""
    test = root / "test"
    if not test.is_dir():
        return None
    names = [p.name for p in test.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return test if names and names != [UNLABELLED] else None


def _split_files(
    root: Path, cfg: DataConfig
) -> tuple[list[str], list[Path], list[int], list[str]]:
    """Classes, every file with its label, and the folder split (train, val, test) of each."""
    classes = training_classes(root / "train")
    files, labels = scan_split(root / "train", classes)
    split = ["train"] * len(files)
    for name, folder in (("val", root / "val"), ("test", labelled_test_dir(root))):
        if folder is not None and folder.is_dir():
            more, more_labels = scan_split(folder, classes)
            files, labels, split = files + more, labels + more_labels, split + [name] * len(more)
    val_labels = [y for y, s in zip(labels, split, strict=True) if s == "val"]
    _warn_missing_classes(root / "val", classes, val_labels)
    if "val" not in split and cfg.val_ratio <= 0:
        raise DataError(
            f"{root} has no val/ folder and VAL_RATIO is {cfg.val_ratio}: add {root}/val/<class>/ "
            "or set VAL_RATIO (e.g. 0.2) to hold out a stratified part of train/"
        )
    return classes, files, labels, split


def _warn_missing_classes(folder: Path, classes: Sequence[str], labels: Sequence[int]) -> None:
    """Warn when val/ lacks classes of train/: its macro F1 cannot score them."""
    if not labels:
        return
    present = set(labels)
    missing = [name for i, name in enumerate(classes) if i not in present]
    if missing:
        warnings.warn(
            f"{folder} has no images of class(es) {', '.join(map(repr, missing))} of train/: the "
            "validation F1 cannot score them; add some, or drop val/ and set VAL_RATIO",
            stacklevel=3,
        )


def _hold_out(
    train_idx: torch.Tensor, y: torch.Tensor, ratio: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held out) indexes: a stratified share of train_idx, the same on every machine."""
    kept, held = stratified_split(y[train_idx], ratio, seed)
    return train_idx[kept], train_idx[held]


def _check_readable_classes(
    root: Path,
    classes: Sequence[str],
    labels: Sequence[int],
    split: Sequence[str],
    kept: Sequence[int],
) -> None:
    """Every train/ class keeps at least one decodable image: a class whose images are all
    corrupt is as empty as an empty folder, and training on it would silently learn nothing."""
    readable = {labels[i] for i in kept if split[i] == "train"}
    for label, name in enumerate(classes):
        if label not in readable:
            raise DataError(
                f"{root / 'train' / name}: class {name!r} has no readable images (every file "
                "failed to decode; see the warning above for the list)"
            )


def _folder_data(
    root: Path, cfg: DataConfig, size: int, cache: Path, progress: bool
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Images, labels, folder split of each image and class names of an image folder."""
    classes, files, labels, split = _split_files(root, cfg)
    images, kept = decode_cached(root, files, size, cache, progress=progress)
    _check_readable_classes(root, classes, labels, split, kept)
    kept_split = [split[i] for i in kept]
    if lost := sorted(set(split) - set(kept_split)):  # else it would be drawn from train/
        raise DataError(f"{root / lost[0]}: the {lost[0]} split has no readable images")
    y = torch.tensor(labels, dtype=torch.long)[torch.tensor(kept, dtype=torch.long)]
    return images, y, kept_split, classes


def load_splits(
    cfg: DataConfig,
    *,
    img_size: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Splits:
    """The config's splits: val/ if present, else VAL_RATIO of train/; test/<class>/ if present,
    else TEST_RATIO of train/ (held out first, so val never depends on it). A torchvision dataset
    has its test split as test and VAL_RATIO (DEFAULT_VAL_RATIO when 0) of its train split as val.
    """
    root = Path(cfg.data_path)
    size = img_size or cfg.img_size
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not root.is_dir():  # a config from a study's storage, made on a machine that had it
        check_data(cfg)
    val_ratio = cfg.val_ratio
    if is_torchvision(cfg.dataset):
        images, y, split, classes = load_torchvision(
            cfg.dataset,
            root,
            download=cfg.download,
            size=size,
            cache_dir=cache,
            progress=progress,
        )
        val_ratio = val_ratio or DEFAULT_VAL_RATIO
    else:
        images, y, split, classes = _folder_data(root, cfg, size, cache, progress)
    index = {
        name: torch.tensor([i for i, s in enumerate(split) if s == name], dtype=torch.long)
        for name in ("train", "val", "test")
    }
    if "test" not in split and cfg.test_ratio > 0:
        index["train"], index["test"] = _hold_out(index["train"], y, cfg.test_ratio, TEST_SEED)
    if "val" not in split:
        index["train"], index["val"] = _hold_out(index["train"], y, val_ratio, SPLIT_SEED)
    for name in ("train", "val"):
        if len(index[name]) == 0:
            raise DataError(f"{root}: the {name} split has no readable images")
    x = {name: images[idx] for name, idx in index.items()}
    return Splits(
        x["train"],
        y[index["train"]],
        x["val"],
        y[index["val"]],
        classes,
        test_x=x["test"],
        test_y=y[index["test"]],
    )


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
    if not kept:
        raise DataError(
            f"{folder}: none of its {len(files)} images can be decoded (the warning above lists "
            "them)"
        )
    return images, [files[i] for i in kept]

"""torchvision classification datasets named by DATASET (CIFAR10, STL10, SVHN, FashionMNIST, ...).

The competition's data YAML allowed any torchvision dataset by name, with DATA_PATH as its root;
DOWNLOAD lets torchvision fetch it there. Its train split is train (VAL_RATIO of it val) and its
test split, when it has one, the held-out test. Images are decoded once (square, resized, RGB,
so grayscale sets get 3 channels) into the same tensor cache as image folders, so a trial cannot
tell the two apart.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from litenas.user_input import did_you_mean
from runner.data.cache import cached, files_key
from runner.data.images import DataError, check_fits_in_memory, square_resize

DEFAULT_VAL_RATIO = 0.1  # VAL_RATIO 0 (the competition's default) would leave val empty
# torchvision classes that are not a named dataset: image folders are DATASET: TACO here.
NOT_NAMED = frozenset({"VisionDataset", "DatasetFolder", "ImageFolder", "FakeData"})
TRAIN_SPLITS = ("train", "trainval")  # split= values, first accepted wins
TEST_SPLITS = ("test", "val")
EXAMPLES = "CIFAR10, CIFAR100, STL10, SVHN, FashionMNIST"


def dataset_class(name: str) -> type:
    """torchvision.datasets' class called name (exactly, else ignoring case)."""
    from torchvision import datasets

    names = sorted(
        n
        for n in dir(datasets)
        if isinstance(getattr(datasets, n), type)
        and issubclass(getattr(datasets, n), datasets.VisionDataset)
        and n not in NOT_NAMED
    )
    match = [n for n in names if n == name] or [
        n for n in names if n.casefold() == name.casefold()
    ]
    if not match:
        hint = did_you_mean(name, names, template="did you mean {!r}? ")
        raise DataError(
            f"DATASET {name!r} is not an image folder (TACO, TrashNet) nor a torchvision dataset; "
            f"{hint}torchvision's include {EXAMPLES}"
        )
    return getattr(datasets, match[0])


def _construct(cls: type, root: Path, download: bool, split: dict[str, Any]) -> Any:
    """One split of the dataset; torchvision's own errors become one-line DataErrors."""
    kwargs = dict(split)
    if "download" in inspect.signature(cls).parameters:
        kwargs["download"] = download
    name = cls.__name__
    try:
        return cls(str(root), **kwargs)
    except RuntimeError as e:  # "Dataset not found or corrupted. You can use download=True ..."
        hint = "" if download else "; set DOWNLOAD: true to let torchvision fetch it"
        said = " ".join(str(e).split())  # a failed download lists each mirror on its own line
        raise DataError(f"{name} at {root}: {said}{hint}") from e
    except TypeError as e:
        raise DataError(
            f"DATASET {name}: torchvision's {name} needs arguments litenas does not pass ({e}); "
            "save it as image folders and use DATASET: TACO"
        ) from e
    except OSError as e:
        raise DataError(
            f"cannot download {name} into {root} ({e}); without network, put its files there as "
            "torchvision's documentation of the dataset says, and set DOWNLOAD: false"
        ) from e


def _with_split(cls: type, root: Path, download: bool, choices: tuple[str, ...]) -> Any:
    """The first split of choices the dataset accepts, or None when it accepts none."""
    for choice in choices:
        try:
            return _construct(cls, root, download, {"split": choice})
        except ValueError as e:
            if isinstance(e, DataError) or not _refused_split(e):
                raise
    return None


def _refused_split(error: ValueError) -> bool:
    """Whether torchvision's verify_str_arg raised `error` for the split argument, read from the
    raising frame's arguments rather than from the message's wording."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or tb.tb_frame.f_code.co_name != "verify_str_arg":
        return False
    return tb.tb_frame.f_locals.get("arg") == "split"


def open_splits(name: str, root: Path, download: bool) -> tuple[Any, Any | None]:
    """(train, test) datasets, downloading them when asked; test is None when the dataset has
    one split (TEST_RATIO then holds part of train out)."""
    cls = dataset_class(name)
    params = inspect.signature(cls).parameters
    if "train" in params:  # CIFAR, MNIST and kin
        return _construct(cls, root, download, {"train": True}), _construct(
            cls, root, download, {"train": False}
        )
    if "split" in params:  # STL10, SVHN and most newer ones
        train = _with_split(cls, root, download, TRAIN_SPLITS)
        if train is None:
            raise DataError(f"DATASET {name}: none of the splits {TRAIN_SPLITS} exists")
        return train, _with_split(cls, root, download, TEST_SPLITS)
    return _construct(cls, root, download, {}), None


def _label(target: Any, desc: str) -> int:
    if isinstance(target, (int, np.integer)) or torch.is_tensor(target) and target.ndim == 0:
        return int(target)
    raise DataError(
        f"{desc} gives targets of type {type(target).__name__}, not class indexes: litenas "
        "trains classifiers"
    )


def _decode(dataset: Any, size: int, desc: str, progress: bool) -> tuple[torch.Tensor, list[int]]:
    """Every image of dataset as [N, 3, size, size] uint8 (square_resize), and its labels."""
    check_fits_in_memory(len(dataset), size, f"decoding {desc}")
    out = torch.empty((len(dataset), size, size, 3), dtype=torch.uint8)
    labels = []
    for i in tqdm(range(len(dataset)), desc=desc, disable=not progress):
        image, target = dataset[i]
        if not isinstance(image, Image.Image):
            raise DataError(f"{desc}: item {i} is a {type(image).__name__}, not an image")
        out[i] = torch.from_numpy(square_resize(image, size))
        labels.append(_label(target, desc))
    return out.permute(0, 3, 1, 2).contiguous(), labels


def _class_names(dataset: Any, labels: list[int]) -> list[str]:
    """The dataset's class names; SVHN and a few others have none, so their labels stand in."""
    names = getattr(dataset, "classes", None)
    if isinstance(names, (list, tuple)) and len(names) > max(labels, default=-1):
        return [str(n) for n in names]
    return [str(i) for i in range(max(labels, default=-1) + 1)]


def load_torchvision(
    name: str, root: Path, *, download: bool, size: int, cache_dir: Path, progress: bool = True
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Images [N, 3, S, S] uint8, labels, each image's split ('train' or 'test') and the class
    names of a torchvision dataset, decoded once per (files, size) into cache_dir."""
    train, test = open_splits(name, root, download)
    canonical = type(train).__name__
    files = sorted(p for p in root.rglob("*") if p.is_file())
    key = files_key(root, files, size, extra=f"torchvision {canonical} {train!r} {test!r}\n")

    def decode() -> dict[str, Any]:
        images, labels = _decode(train, size, canonical, progress)
        n_train = len(labels)
        if test is not None:
            more, more_labels = _decode(test, size, f"{canonical} test", progress)
            images, labels = torch.cat([images, more]), labels + more_labels
        classes = _class_names(train, labels)
        return {"images": images, "labels": labels, "n_train": n_train, "classes": classes}

    payload, _ = cached(
        cache_dir / f"{canonical}-{size}px-{key}.pt",
        decode,
        ("images", "labels", "n_train", "classes"),
    )
    n_train, n_all = payload["n_train"], len(payload["labels"])
    split = ["train"] * n_train + ["test"] * (n_all - n_train)
    labels = torch.tensor(payload["labels"], dtype=torch.long)
    return payload["images"], labels, split, list(payload["classes"])

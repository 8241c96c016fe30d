"""Finding image files in the competition's folder layout and decoding them to square uint8 arrays.

Decoding is the slow part of the old pipeline, so it happens once per (dataset, size) and feeds the
tensor cache; a small thread pool overlaps it because Pillow releases the GIL while decoding.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from space.errors import UserError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
DECODE_THREADS = 4


class DataError(UserError):
    """An image folder that cannot be used as a dataset; the message names the folder."""


def memory_bytes() -> int | None:
    """This machine's physical memory, or None where the OS does not say (then nothing is
    bounded by it)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_in_memory(count: int, size: int, what: str, bytes_per_value: int = 1) -> None:
    """Refuse `count` images of size x size x 3 (uint8, or float32 with 4 bytes per value) that
    cannot fit in this machine's memory, before allocating them, with the figures."""
    memory = memory_bytes()
    need = count * 3 * size * size * bytes_per_value
    if memory is None or need <= memory:
        return
    largest = math.isqrt(memory // max(1, count * 3 * bytes_per_value))
    raise DataError(
        f"IMG_SIZE {size}: {what} ({count:,} images of {size}x{size}x3) takes "
        f"{need / 1e9:,.1f} GB, more than this machine's {memory / 1e9:,.1f} GB of memory; use "
        f"an IMG_SIZE of at most {largest}"
    )


def list_images(folder: Path) -> list[Path]:
    """Image files under folder (recursively, sorted); other files and hidden ones are ignored."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def class_folders(split_dir: Path) -> list[str]:
    """Class names of a split: its subfolders in sorted order."""
    if not split_dir.is_dir():
        raise DataError(f"{split_dir} is not a folder; expected {split_dir}/<class>/*.jpg")
    names = sorted(
        p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if not names:
        raise DataError(f"{split_dir} has no class folders; expected {split_dir}/<class>/*.jpg")
    return names


def training_classes(train_dir: Path) -> list[str]:
    """Class names of train/: at least two, since one class leaves nothing to tell apart (and
    scores a perfect macro F1)."""
    names = class_folders(train_dir)
    if len(names) < 2:
        raise DataError(
            f"{train_dir} has one class folder ({names[0]!r}); a classifier needs at least 2: "
            f"add {train_dir}/<other class>/*.jpg"
        )
    return names


def scan_split(split_dir: Path, classes: Sequence[str]) -> tuple[list[Path], list[int]]:
    """Files and labels of one split; an empty class folder or an unknown class is an error."""
    known = {name: i for i, name in enumerate(classes)}
    files: list[Path] = []
    labels: list[int] = []
    for name in class_folders(split_dir):
        if name not in known:
            raise DataError(
                f"{split_dir / name}: class {name!r} is not among the training classes "
                f"{list(classes)}"
            )
        found = list_images(split_dir / name)
        if not found:
            raise DataError(f"{split_dir / name}: class {name!r} has no images (.jpg, .png, ...)")
        files += found
        labels += [known[name]] * len(found)
    return files, labels


def square_resize(image: Image.Image, size: int) -> np.ndarray:
    """Pad to a centred square with black (the competition's SquarePad), then resize to size."""
    image.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale, much faster
    image = image.convert("RGB")
    side = max(image.size)
    if image.size != (side, side):
        canvas = Image.new("RGB", (side, side))
        canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        image = canvas
    return np.array(image.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def _decode_one(path: Path, size: int) -> np.ndarray | str:
    """One image as HxWx3 uint8, or why it cannot be used (unreadable, corrupt, too large)."""
    try:
        with Image.open(path) as image:
            return square_resize(image, size)
    except Image.DecompressionBombError:  # a valid image over Pillow's safety limit
        return (
            f"{path} (over Pillow's limit of {2 * Image.MAX_IMAGE_PIXELS:,} pixels against "
            "decompression bombs; resize it)"
        )
    except (OSError, ValueError, UnidentifiedImageError):
        return str(path)


def decode_images(
    files: Sequence[Path], size: int, *, progress: bool = True, desc: str = "decode"
) -> tuple[torch.Tensor, list[int]]:
    """Decode files to a [N, 3, size, size] uint8 tensor; returns it and the indexes it kept.

    Unreadable files are left out with one warning that lists them all.
    """
    check_fits_in_memory(len(files), size, f"decoding {desc}")
    out = torch.empty((len(files), size, size, 3), dtype=torch.uint8)
    kept: list[int] = []
    bad: list[str] = []
    threads = max(1, min(DECODE_THREADS, os.cpu_count() or 1))
    with ThreadPoolExecutor(threads) as pool:
        results = pool.map(lambda p: _decode_one(p, size), files)
        bar = tqdm(results, total=len(files), desc=desc, disable=not progress)
        for i, array in enumerate(bar):
            if isinstance(array, str):
                bad.append(array)
                continue
            out[len(kept)] = torch.from_numpy(array)
            kept.append(i)
    if bad:
        warnings.warn(
            f"skipped {len(bad)} unreadable, corrupt or too large image(s): {', '.join(bad)}",
            stacklevel=2,
        )
    return out[: len(kept)].permute(0, 3, 1, 2).contiguous(), kept

"""The on-disk cache of decoded images, shared by image folders and torchvision datasets.

An entry is keyed by what decoding depends on (file paths, sizes, mtimes, the output size), so a
changed dataset is decoded afresh, and written atomically so concurrent workers can share it.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from litenas.resources import user_cache
from runner.files import save_atomic

CACHE_VERSION = 1
CACHE_HELP = "decoded-image cache (default: decoded/ in $LITENAS_CACHE, else ~/.cache/litenas)"


def default_cache_dir() -> Path:
    """decoded/ in the user cache, beside the TrashNet download: shared by every folder a
    command runs from, so a second project on the same images decodes nothing."""
    return user_cache() / "decoded"


def files_key(root: Path, files: Sequence[Path], size: int, extra: str = "") -> str:
    """A digest of the files' paths (under root), sizes and mtimes, the output size and extra."""
    digest = hashlib.sha256(f"v{CACHE_VERSION} size={size}\n{extra}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cached(
    target: Path, make: Callable[[], dict[str, Any]], keys: Sequence[str]
) -> tuple[dict[str, Any], bool]:
    """target's payload and True, or make()'s (saved to target) and False when target is missing
    or damaged (unreadable, or without one of keys)."""
    if target.is_file():
        try:
            payload = torch.load(target, weights_only=True)
            if missing := set(keys) - payload.keys():
                raise KeyError(f"no {sorted(missing)}")
            return payload, True
        except Exception as e:  # torch.load reports damage as many types (IndexError, ...)
            warnings.warn(
                f"{target}: damaged decode cache ({e}); decoding the images again", stacklevel=3
            )
    payload = make()
    save_atomic(payload, target)
    return payload, False

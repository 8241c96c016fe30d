"""Atomic file writes, so a reader (another worker, a resumed run) never sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch


def write_atomic(target: Path, write: Callable[[IO[bytes]], None]) -> None:
    """write() into a temporary file beside target, then rename it over target."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(payload: Any, target: Path) -> None:
    """torch.save, written whole."""
    write_atomic(target, lambda handle: torch.save(payload, handle))


def write_text_atomic(text: str, target: Path) -> None:
    """A text file (UTF-8), written whole."""
    write_atomic(target, lambda handle: handle.write(text.encode()))

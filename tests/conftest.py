"""Shared fixtures: a tiny synthetic image folder made by the tests, and the real data's path."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TINY_CLASSES = ("bottle", "can", "paper")


def make_image_folder(
    root: Path,
    classes: tuple[str, ...] = TINY_CLASSES,
    per_class: dict[str, int] | None = None,
    splits: tuple[str, ...] = ("train", "val"),
    seed: int = 0,
) -> Path:
    """Write small JPEGs of varied sizes in the competition layout; each class has its own colour.

    The colour makes the classes learnable, so a few epochs of training reach a high F1.
    """
    rng = np.random.default_rng(seed)
    counts = per_class or {"train": 12, "val": 6}
    for split in splits:
        for index, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            base = np.zeros(3)
            base[index % 3] = 200
            for i in range(counts[split]):
                h, w = int(rng.integers(20, 48)), int(rng.integers(20, 48))
                noise = rng.integers(0, 55, size=(h, w, 3))
                pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{name}_{i:03d}.jpg", quality=90)
    return root


@contextlib.contextmanager
def bench_script(name: str) -> Iterator[ModuleType]:
    """bench/<name>.py loaded by path (bench/ holds scripts, not a package); it is in
    sys.modules (as bench_<name>) while in use, as its dataclasses need."""
    module_name = f"bench_{name}"
    spec = importlib.util.spec_from_file_location(module_name, REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[module_name]


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """$LITENAS_CACHE of this test session: the tests never write to (or read from) the real
    user cache, and the decoded real data is shared by the tests of one session."""
    folder = tmp_path_factory.mktemp("user-cache")
    before = os.environ.get("LITENAS_CACHE")
    os.environ["LITENAS_CACHE"] = str(folder)
    yield folder
    if before is None:
        del os.environ["LITENAS_CACHE"]
    else:
        os.environ["LITENAS_CACHE"] = before


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """A 3-class train/val folder of small JPEGs, made fresh for each test."""
    return make_image_folder(tmp_path / "tiny")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real TrashNet folder: $DATA_PATH, else the gitignored link data/trashnet.

    Skipped when absent on a developer machine; in CI (CI=true) its absence is a failure.
    """
    path = Path(os.environ.get("DATA_PATH", REPO / "data" / "trashnet"))
    if not (path / "train").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real data not found at {path}: .ci/run links ../shared/data/trashnet")
        pytest.skip(f"real data not found at {path} (set DATA_PATH)")
    return path

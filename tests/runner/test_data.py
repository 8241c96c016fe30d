"""Decode-once splits: layout, cache reuse and invalidation, bad files, stratified splits."""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import runner.data.splits
from runner.data.config import DataConfig
from runner.data.images import DataError, square_resize
from runner.data.splits import load_splits, load_unlabelled, stratified_split
from tests.conftest import TINY_CLASSES, make_image_folder


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many files each decode call gets."""
    calls: list[int] = []
    real = runner.data.splits.decode_images

    def spy(files: list[Path], size: int, **kwargs: Any) -> tuple[torch.Tensor, list[int]]:
        calls.append(len(files))
        return real(files, size, **kwargs)

    monkeypatch.setattr(runner.data.splits, "decode_images", spy)
    return calls


def test_splits_shapes_labels_and_sorted_classes(tiny_cfg: DataConfig, tmp_path: Path) -> None:
    splits = load_splits(tiny_cfg, cache_dir=tmp_path / "c", progress=False)
    assert splits.classes == sorted(TINY_CLASSES)
    assert splits.train_x.shape == (36, 3, 24, 24) and splits.train_x.dtype == torch.uint8
    assert splits.val_x.shape == (18, 3, 24, 24) and splits.val_y.dtype == torch.int64
    assert torch.bincount(splits.train_y).tolist() == [12, 12, 12]
    # each class has its own colour channel: the label says which channel is brightest
    brightest = splits.train_x.float().mean((2, 3)).argmax(1)
    assert torch.equal(brightest, splits.train_y % 3)


def test_cache_is_reused_then_invalidated_by_a_change(
    tiny_cfg: DataConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_decodes(monkeypatch)
    cache = tmp_path / "c"
    first = load_splits(tiny_cfg, cache_dir=cache, progress=False)
    second = load_splits(tiny_cfg, cache_dir=cache, progress=False)
    assert calls == [54] and torch.equal(first.train_x, second.train_x)
    assert not list(cache.glob(".*.tmp")), "temporary files must be renamed or removed"
    load_splits(tiny_cfg, img_size=16, cache_dir=cache, progress=False)
    assert calls == [54, 54], "another IMG_SIZE is another cache entry"
    image = next((Path(tiny_cfg.data_path) / "train" / "can").iterdir())
    os.utime(image, ns=(1, 1))
    load_splits(tiny_cfg, cache_dir=cache, progress=False)
    assert calls == [54, 54, 54], "a changed mtime must invalidate the cache"


def test_damaged_cache_is_rebuilt_with_a_warning_naming_it(
    tiny_cfg: DataConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_decodes(monkeypatch)
    cache = tmp_path / "c"
    first = load_splits(tiny_cfg, cache_dir=cache, progress=False)
    (entry,) = cache.glob("*.pt")
    entry.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match=rf"{entry}: damaged decode cache"):
        again = load_splits(tiny_cfg, cache_dir=cache, progress=False)
    assert calls == [54, 54] and torch.equal(first.train_x, again.train_x)


def test_corrupt_images_skipped_with_one_warning(tiny_cfg: DataConfig, tmp_path: Path) -> None:
    root = Path(tiny_cfg.data_path)
    (root / "train" / "can" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "val" / "paper" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "train" / "can" / "notes.txt").write_text("not an image: ignored")
    for _ in range(2):  # cold and warm cache both report the skipped files
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            splits = load_splits(tiny_cfg, cache_dir=tmp_path / "c", progress=False)
        messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
        assert len(messages) == 1
        assert "broken.jpg" in messages[0] and "truncated.png" in messages[0]
        assert "notes.txt" not in messages[0]
        assert (len(splits.train_y), len(splits.val_y)) == (36, 18)


def test_odd_but_valid_images_decode_to_rgb(tiny_cfg: DataConfig, tmp_path: Path) -> None:
    """Alpha, grayscale, CMYK, palette, 16-bit and 1x1 images are all photos a user may have."""
    folder = Path(tiny_cfg.data_path) / "train" / "can"
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, size=(30, 20, 4), dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(folder / "alpha.png")
    Image.fromarray(pixels[..., 0], "L").save(folder / "gray.jpg")
    Image.fromarray(pixels, "RGBA").convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(pixels[..., :3]).convert("P").save(folder / "palette.gif")
    Image.fromarray(pixels[..., 0].astype(np.uint16) * 200).save(folder / "deep.png")
    Image.new("RGB", (1, 1), (9, 9, 9)).save(folder / "dot.png")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, nothing warned
        splits = load_splits(tiny_cfg, cache_dir=tmp_path / "c", progress=False)
    assert len(splits.train_y) == 36 + 6 and splits.train_x.shape[1:] == (3, 24, 24)
    assert splits.train_x.dtype == torch.uint8


def test_empty_class_is_an_error(tiny_cfg: DataConfig, tmp_path: Path) -> None:
    (Path(tiny_cfg.data_path) / "train" / "glass").mkdir()
    with pytest.raises(DataError, match=r"glass.*has no images"):
        load_splits(tiny_cfg, cache_dir=tmp_path / "c", progress=False)


def test_class_with_only_unreadable_images_is_an_error(
    tiny_cfg: DataConfig, tmp_path: Path
) -> None:
    folder = Path(tiny_cfg.data_path) / "train" / "glass"
    folder.mkdir()
    for i in range(3):
        (folder / f"truncated_{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    with pytest.warns(UserWarning, match="truncated_0.jpg"):
        with pytest.raises(DataError, match=r"train/glass: class 'glass' has no readable images"):
            load_splits(tiny_cfg, cache_dir=tmp_path / "c", progress=False)


def test_val_folder_with_only_unreadable_images_is_an_error(
    tiny_cfg: DataConfig, tmp_path: Path
) -> None:
    """Not a silent fallback to holding part of train/ out, which VAL_RATIO 0 does not ask for."""
    for image in (Path(tiny_cfg.data_path) / "val").rglob("*.jpg"):
        image.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    with pytest.warns(UserWarning, match="unreadable"):
        with pytest.raises(DataError, match=r"tiny/val: the val split has no readable images"):
            load_splits(tiny_cfg, cache_dir=tmp_path / "c", progress=False)


def test_missing_data_folder_is_named(tmp_path: Path) -> None:
    cfg = DataConfig(data_path=str(tmp_path / "gone"), img_size=16)
    with pytest.raises(DataError, match=r"DATA_PATH '.*gone' is not a folder .* train/<class>/"):
        load_splits(cfg, cache_dir=tmp_path / "c", progress=False)


def test_single_class_is_an_error(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "one", classes=("bottle",))
    cfg = DataConfig(data_path=str(root), img_size=16)
    with pytest.raises(DataError, match=r"one class folder \('bottle'\).*at least 2"):
        load_splits(cfg, cache_dir=tmp_path / "c", progress=False)


def test_unknown_val_class_is_an_error(tiny_cfg: DataConfig, tmp_path: Path) -> None:
    make_image_folder(Path(tiny_cfg.data_path), classes=("metal",), splits=("val",))
    with pytest.raises(DataError, match="'metal' is not among the training classes"):
        load_splits(tiny_cfg, cache_dir=tmp_path / "c", progress=False)


def test_no_val_folder_gives_a_seeded_stratified_split(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", per_class={"train": 10}, splits=("train",))
    cfg = DataConfig(data_path=str(root), img_size=16, val_ratio=0.2)
    first = load_splits(cfg, cache_dir=tmp_path / "c", progress=False)
    assert torch.bincount(first.val_y).tolist() == [2, 2, 2]
    assert torch.bincount(first.train_y).tolist() == [8, 8, 8]
    again = load_splits(cfg, cache_dir=tmp_path / "c", progress=False)
    assert torch.equal(first.val_x, again.val_x)
    with pytest.raises(DataError, match="no val/ folder and VAL_RATIO is 0.0"):
        load_splits(dataclasses.replace(cfg, val_ratio=0.0), cache_dir=tmp_path / "c")


def test_stratified_split_keeps_a_member_of_each_class_on_both_sides() -> None:
    labels = torch.tensor([0] * 50 + [1] * 3 + [2] * 2)
    first, held = stratified_split(labels, 0.1)
    assert torch.bincount(labels[held]).tolist() == [5, 1, 1]
    assert sorted(torch.cat([first, held]).tolist()) == list(range(55))


def test_square_resize_pads_like_square_pad() -> None:
    wide = Image.fromarray(np.full((10, 30, 3), 200, dtype=np.uint8))
    out = square_resize(wide, 30)
    assert out.shape == (30, 30, 3)
    assert out[:8].max() == 0 and out[-8:].max() == 0, "black bars above and below"
    assert (out[12:18] == 200).all()


def test_load_unlabelled_reads_a_flat_folder(tmp_path: Path) -> None:
    root = make_image_folder(
        tmp_path / "t", classes=("NoLabel",), splits=("test",), per_class={"test": 5}
    )
    images, files = load_unlabelled(root / "test" / "NoLabel", 16, progress=False)
    assert images.shape == (5, 3, 16, 16) and [f.name for f in files][0] == "NoLabel_000.jpg"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_unlabelled(tmp_path / "empty", 16, progress=False)


def test_test_ratio_holds_out_part_of_train_apart_from_val(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", per_class={"train": 10, "val": 4})
    base = DataConfig(data_path=str(root), img_size=16)
    plain = load_splits(base, cache_dir=tmp_path / "c", progress=False)
    held = load_splits(
        dataclasses.replace(base, test_ratio=0.2), cache_dir=tmp_path / "c", progress=False
    )
    assert len(plain.test_y) == 0 and torch.bincount(plain.train_y).tolist() == [10, 10, 10]
    assert torch.bincount(held.test_y).tolist() == [2, 2, 2]
    assert torch.bincount(held.train_y).tolist() == [8, 8, 8]
    assert torch.equal(held.val_x, plain.val_x), "val/ is untouched"
    train_and_test = torch.cat([held.train_x, held.test_x]).flatten(1)
    assert len(train_and_test.unique(dim=0)) == 30, "no test image is also a train image"


def test_labelled_test_folder_is_the_test_split_and_no_label_is_not(tmp_path: Path) -> None:
    root = make_image_folder(
        tmp_path / "d",
        per_class={"train": 6, "val": 3, "test": 2},
        splits=("train", "val", "test"),
    )
    cfg = DataConfig(data_path=str(root), img_size=16, test_ratio=0.5)
    splits = load_splits(cfg, cache_dir=tmp_path / "c", progress=False)
    assert torch.bincount(splits.test_y).tolist() == [2, 2, 2], "test/ wins over TEST_RATIO"
    assert len(splits.train_y) == 18
    unlabelled = make_image_folder(tmp_path / "u", per_class={"train": 6, "val": 3})
    make_image_folder(unlabelled, classes=("NoLabel",), splits=("test",), per_class={"test": 4})
    splits = load_splits(
        DataConfig(data_path=str(unlabelled), img_size=16),
        cache_dir=tmp_path / "c",
        progress=False,
    )
    assert len(splits.test_y) == 0, "test/NoLabel/ holds images to predict, not to score"

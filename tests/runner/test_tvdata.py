"""torchvision datasets by name: small fake datasets in torchvision's own on-disk formats.

torchvision checks each file's md5 against the real dataset's; the tests write their own small
files, so they put those files' md5s in the dataset class's table (monkeypatch), which keeps the
check itself running.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torchvision import datasets

import runner.data.tv_datasets
from runner.data.config import DataConfigError
from runner.data.sources import load_data
from runner.data.splits import load_splits
from tests.runner.local_http import serve

RNG = np.random.default_rng(0)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def data_yaml(tmp_path: Path, name: str, root: Path, extra: str = "", img_size: int = 32) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"DATA_PATH: {root}\nDATASET: {name}\nIMG_SIZE: {img_size}\n{extra}")
    return path


def images(n: int, shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def fake_cifar10(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """cifar-10-batches-py/: five train batches of 6 images, a test batch of 4, 3 class names."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i}": 6 for i in range(1, 6)} | {"test_batch": 4}
    written: dict[str, Any] = {}
    for name, n in batches.items():
        hwc = images(n, (32, 32, 3))
        labels = [i % 3 for i in range(n)]
        flat = hwc.transpose(0, 3, 1, 2).reshape(n, -1)  # CIFAR stores CHW rows
        (folder / name).write_bytes(pickle.dumps({"data": flat, "labels": labels}))
        written[name] = (hwc, labels)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["cat", "dog", "frog"]}))
    table = [[name, md5(folder / name)] for name in batches]
    monkeypatch.setattr(datasets.CIFAR10, "train_list", table[:5])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", table[5:])
    monkeypatch.setattr(
        datasets.CIFAR10,
        "meta",
        {
            "filename": "batches.meta",
            "key": "label_names",
            "md5": md5(folder / "batches.meta"),
        },
    )
    return written


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = runner.data.tv_datasets._decode

    def spy(dataset: Any, size: int, desc: str, progress: bool) -> Any:
        calls.append(desc)
        return real(dataset, size, desc, progress)

    monkeypatch.setattr(runner.data.tv_datasets, "_decode", spy)
    return calls


def test_cifar10_by_name_decodes_once_with_its_classes_and_test_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = fake_cifar10(tmp_path / "cifar", monkeypatch)
    calls = count_decodes(monkeypatch)
    cfg = load_data(data_yaml(tmp_path, "CIFAR10", tmp_path / "cifar", "VAL_RATIO: 0.2\n"))
    first = load_splits(cfg, cache_dir=tmp_path / "c", progress=False)
    assert first.classes == ["cat", "dog", "frog"]
    assert (len(first.train_y), len(first.val_y), len(first.test_y)) == (24, 6, 4)
    assert torch.bincount(first.val_y).tolist() == [2, 2, 2], "val is stratified"
    hwc, labels = written["test_batch"]  # 32 px at IMG_SIZE 32: the pixels themselves
    assert torch.equal(first.test_x, torch.from_numpy(hwc).permute(0, 3, 1, 2))
    assert first.test_y.tolist() == labels
    second = load_splits(cfg, cache_dir=tmp_path / "c", progress=False)
    assert calls == ["CIFAR10", "CIFAR10 test"], "the second load comes from the tensor cache"
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.val_y, second.val_y)


def test_val_ratio_zero_holds_out_the_default_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_cifar10(tmp_path / "cifar", monkeypatch)
    cfg = load_data(data_yaml(tmp_path, "cifar10", tmp_path / "cifar"))  # any case
    splits = load_splits(cfg, cache_dir=tmp_path / "c", progress=False)
    assert len(splits.val_y) == 3 and len(splits.train_y) == 27, "10% of 30, one per class"


def write_idx(path: Path, array: np.ndarray) -> None:
    """An MNIST idx file: magic (0, 0, 0x08 = ubyte, ndim), big-endian dims, the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + array.tobytes())


def fashion_files(folder: Path) -> dict[str, np.ndarray]:
    """FashionMNIST's four raw files (9 train, 4 test images of 28x28 gray)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": images(9, (28, 28)),
        "train-labels-idx1-ubyte": np.array([0, 1, 2] * 3, dtype=np.uint8),
        "t10k-images-idx3-ubyte": images(4, (28, 28)),
        "t10k-labels-idx1-ubyte": np.array([2, 1, 0, 9], dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array)
    return arrays


def test_fashionmnist_gray_images_get_three_equal_channels(tmp_path: Path) -> None:
    fashion_files(tmp_path / "fm" / "FashionMNIST" / "raw")
    cfg = load_data(data_yaml(tmp_path, "FashionMNIST", tmp_path / "fm", img_size=28))
    splits = load_splits(cfg, cache_dir=tmp_path / "c", progress=False)
    assert splits.classes == datasets.FashionMNIST.classes
    assert splits.test_y.tolist() == [2, 1, 0, 9] and splits.train_x.shape[1:] == (3, 28, 28)
    assert torch.equal(splits.train_x[:, 0], splits.train_x[:, 2])


def test_download_fetches_into_data_path_from_the_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = fashion_files(tmp_path / "raw")
    resources = []
    for name in arrays:
        packed = tmp_path / "mirror" / f"{name}.gz"
        packed.parent.mkdir(exist_ok=True)
        packed.write_bytes(gzip.compress((tmp_path / "raw" / name).read_bytes()))
        resources.append((packed.name, md5(packed)))
    monkeypatch.setattr(datasets.FashionMNIST, "resources", resources)
    with serve(tmp_path / "mirror") as served:
        monkeypatch.setattr(datasets.FashionMNIST, "mirrors", [f"{served.url}/"])
        root = tmp_path / "not" / "yet"
        cfg = load_data(data_yaml(tmp_path, "FashionMNIST", root, "DOWNLOAD: true"))
        assert set(served.requests) == {f"/{name}.gz" for name in arrays}  # + redirect probes
    assert (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert len(load_splits(cfg, cache_dir=tmp_path / "c", progress=False).test_y) == 4


def test_stl10_split_argument_and_96px_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "stl" / "stl10_binary"
    folder.mkdir(parents=True)
    for split, n in (("train", 6), ("test", 3)):
        images(n, (3, 96, 96)).transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")
        np.array([1, 2, 3] * (n // 3), dtype=np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "unlabeled_X.bin").write_bytes(b"")
    (folder / "class_names.txt").write_text("airplane\nbird\ncar\n")
    table = lambda *names: [[n, md5(folder / n)] for n in names]  # noqa: E731
    monkeypatch.setattr(
        datasets.STL10, "train_list", table("train_X.bin", "train_y.bin", "unlabeled_X.bin")
    )
    monkeypatch.setattr(datasets.STL10, "test_list", table("test_X.bin", "test_y.bin"))
    cfg = load_data(data_yaml(tmp_path, "STL10", tmp_path / "stl", "VAL_RATIO: 0.5"))
    splits = load_splits(cfg, img_size=24, cache_dir=tmp_path / "c", progress=False)
    assert splits.classes == ["airplane", "bird", "car"] and splits.val_x.shape == (3, 3, 24, 24)
    assert splits.test_y.tolist() == [0, 1, 2]


def test_svhn_without_class_names_uses_its_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    savemat = pytest.importorskip("scipy.io").savemat
    root = tmp_path / "svhn"
    root.mkdir()
    for split, labels in (("train", [10, 1, 2, 3] * 2), ("test", [3, 10])):
        x = images(len(labels), (32, 32, 3)).transpose(1, 2, 3, 0)  # SVHN stores HWCN
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": np.array(labels)[:, None]})
        entry = datasets.SVHN.split_list[split]
        monkeypatch.setitem(
            datasets.SVHN.split_list, split, [entry[0], entry[1], md5(root / entry[1])]
        )
    cfg = load_data(data_yaml(tmp_path, "SVHN", root, "VAL_RATIO: 0.25"))
    splits = load_splits(cfg, cache_dir=tmp_path / "c", progress=False)
    assert splits.classes == ["0", "1", "2", "3"] and splits.test_y.tolist() == [3, 0]


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("CIFR10", "DOWNLOAD: true", r"DATASET 'CIFR10' is not .* did you mean 'CIFAR10'"),
        ("CIFAR10", "DOWNLOAD: false", r"'.*missing' is not a folder .* set DOWNLOAD: true"),
    ],
)
def test_unknown_name_or_missing_root_without_download(
    tmp_path: Path, name: str, extra: str, message: str
) -> None:
    with pytest.raises(DataConfigError, match=message):
        load_data(data_yaml(tmp_path, name, tmp_path / "missing", extra))


def test_missing_files_without_download_say_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataConfigError, match="CIFAR10 at .* not found .* set DOWNLOAD: true"):
        load_data(data_yaml(tmp_path, "CIFAR10", tmp_path / "empty", "DOWNLOAD: false"))


class _SplitOnlyTest:
    """A dataset that, like torchvision's, checks its split with verify_str_arg."""

    def __init__(self, root: str, split: str, download: bool = False) -> None:
        from torchvision.datasets.utils import verify_str_arg

        self.split = verify_str_arg(split, "split", ("test",))
        if download:
            raise ValueError("a library's own ValueError, not about the split")


def test_a_refused_split_is_skipped_any_other_value_error_propagates(tmp_path: Path) -> None:
    from runner.data.tv_datasets import _with_split

    assert _with_split(_SplitOnlyTest, tmp_path, False, ("train", "test")).split == "test"
    assert _with_split(_SplitOnlyTest, tmp_path, False, ("train", "extra")) is None
    with pytest.raises(ValueError, match="own ValueError"):
        _with_split(_SplitOnlyTest, tmp_path, True, ("test",))

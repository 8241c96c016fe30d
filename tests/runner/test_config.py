"""The data YAML: competition files load unchanged, mistakes name the file, key and value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from runner.data.config import (
    COMPETITION_KEYS,
    DataConfig,
    DataConfigError,
    is_torchvision,
    load_data_config,
)
from runner.data.sources import load_data

COMPETITION_YAML = """\
DATA_PATH: "{path}"
DATASET: "TACO"
IMG_SIZE: 64
AUG_TRAIN: "randaugment_train"
AUG_TRAIN_PARAMS: {{n_select: 2, level: null}}
AUG_TEST: "simple_augment_test"
BATCH_SIZE: 64
EPOCHS: 100
VAL_RATIO: 0.0
INIT_LR: 0.1
FP16: true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.yaml"
    path.write_text(text)
    return path


def test_competition_yaml_loads_unchanged(tmp_path: Path, tiny_data: Path) -> None:
    cfg = load_data_config(write(tmp_path, COMPETITION_YAML.format(path=tiny_data)))
    assert (cfg.img_size, cfg.aug_train, cfg.batch_size, cfg.epochs) == (
        64,
        "randaugment_train",
        64,
        100,
    )
    assert cfg.aug_train_params == {"n_select": 2, "level": None}
    assert cfg.fp16 is True and cfg.optimizer == "sgd"


def test_to_yaml_dict_round_trips(tmp_path: Path, tiny_data: Path) -> None:
    cfg = dataclasses.replace(
        load_data_config(write(tmp_path, COMPETITION_YAML.format(path=tiny_data))),
        optimizer="adamw",
        balance="sampler",
        cutmix=1.0,
        download=False,
    )
    written = cfg.to_yaml_dict()
    assert list(written)[: len(COMPETITION_KEYS)] == list(COMPETITION_KEYS)
    again = load_data_config(write(tmp_path, yaml.safe_dump(written)))
    assert again == cfg


def test_data_path_is_relative_to_the_current_directory(
    tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tiny_data.parent)
    cfg = load_data_config(write(tmp_path, f"DATA_PATH: {tiny_data.name}\n"))
    assert Path(cfg.data_path).resolve() == tiny_data.resolve()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("EPOCH: 10", "did you mean 'EPOCHS'"),
        ("IMG_SIZE: '64'", "IMG_SIZE must be int, got '64'"),
        ("FP16: 1", "FP16 must be bool, got 1"),
        ("OPTIMIZER: adam", "OPTIMIZER must be one of ['sgd', 'adamw'], got 'adam'"),
        ("VAL_RATIO: 1.5", "VAL_RATIO must be in [0.0, 0.9], got 1.5"),
        ("AUG_TRAIN_PARAMS: {n_select: 2, levle: 3}", "key 'levle' is not used"),
        ("AUG_TRAIN_PARAMS: {n_select: 2, level: 99}", "AUG_TRAIN_PARAMS.LEVEL must be in"),
    ],
)
def test_bad_values_name_file_key_and_value(
    tmp_path: Path, tiny_data: Path, line: str, expected: str
) -> None:
    path = write(tmp_path, f"DATA_PATH: {tiny_data}\nAUG_TRAIN: randaugment_train\n{line}\n")
    with pytest.raises(DataConfigError) as info:
        load_data_config(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_exponent_floats_without_a_dot_are_numbers(tmp_path: Path, tiny_data: Path) -> None:
    """PyYAML reads 3e-4 as a string (YAML 1.1); users write it that way in float keys."""
    cfg = load_data_config(
        write(tmp_path, f"DATA_PATH: {tiny_data}\nINIT_LR: 3e-4\nWEIGHT_DECAY: 5E-2\n")
    )
    assert (cfg.init_lr, cfg.weight_decay) == (3e-4, 5e-2)
    with pytest.raises(DataConfigError, match=r"INIT_LR must be in \(0, 10\], got 1000000\.0"):
        load_data_config(write(tmp_path, f"DATA_PATH: {tiny_data}\nINIT_LR: 1e6\n"))


def test_missing_data_folder_names_the_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "DATA_PATH: no/such/folder\n")
    with pytest.raises(DataConfigError, match=r"data\.yaml: DATA_PATH 'no/such/folder' is not"):
        load_data(path)


def test_parsing_a_trashnet_yaml_fetches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a config (a study's stored recipe, an export) must not start a download."""
    monkeypatch.setenv("LITENAS_TRASHNET_URL", "http://127.0.0.1:9/unreachable.zip")
    monkeypatch.setenv("LITENAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "DATA_PATH: data/trashnet\nDATASET: TrashNet\n")
    cfg = load_data_config(path)
    assert (cfg.dataset, cfg.download) == ("TrashNet", True)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "data").exists()
    with pytest.raises(DataConfigError, match="unreachable.zip"):
        load_data(path)  # the step that fetches does try


@pytest.mark.parametrize("dataset", ["TACO", "taco", "TrashNet", "TRASHNET"])
def test_image_folder_datasets_with_a_folder_use_it_and_fetch_nothing(
    tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch, dataset: str
) -> None:
    monkeypatch.setenv("LITENAS_TRASHNET_URL", "http://127.0.0.1:9/unreachable.zip")
    monkeypatch.setenv("LITENAS_CACHE", str(tmp_path / "cache"))
    cfg = load_data_config(write(tmp_path, f"DATA_PATH: {tiny_data}\nDATASET: {dataset}\n"))
    assert not is_torchvision(cfg.dataset) and cfg.download is True
    assert not (tmp_path / "cache").exists()


def test_taco_never_fetches_and_says_where_the_folder_should_be(tmp_path: Path) -> None:
    path = write(tmp_path, "DATA_PATH: no/such/folder\nDATASET: TACO\nDOWNLOAD: true\n")
    with pytest.raises(DataConfigError, match="point it at the folder holding train/<class>/"):
        load_data(path)


def test_any_other_dataset_is_a_torchvision_name_and_empty_is_refused() -> None:
    assert is_torchvision("CIFAR10") and is_torchvision("FashionMNIST")
    with pytest.raises(DataConfigError, match="DATASET must name the data"):
        DataConfig(data_path=".", dataset=" ")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "DATA_PATH: x\nIMG_SIZE: [64\n")
    with pytest.raises(DataConfigError, match=r"data\.yaml:3:\d+: invalid YAML"):
        load_data_config(path)


def test_dataclass_validates_direct_construction() -> None:
    with pytest.raises(DataConfigError, match="BALANCE must be one of"):
        DataConfig(data_path=".", balance="oversample")

"""Bounds YAML errors name the file and the key, and say what would be right."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from space.search_bounds import SearchSpaceError, load_architecture_bounds, load_hyper_bounds

REPO = Path(__file__).resolve().parents[2]
ARCH = REPO / "configs" / "search" / "architecture.yaml"
HYPER = REPO / "configs" / "search" / "hyper.yaml"


def _edited(tmp_path: Path, source: Path, edit: dict) -> Path:
    raw = yaml.safe_load(source.read_text())
    for dotted, value in edit.items():
        *parents, last = dotted.split(".")
        node = raw
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    path = tmp_path / source.name
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"repeats": [3, 1]}, "repeats must be [low, high] with low <= high"),
        ({"img_size_choices": [32, -1]}, "img_size_choices items must be positive ints, got -1"),
        ({"width_choices": [1, "x"]}, "width_choices items must be positive floats, got 'x'"),
        ({"stem.channels": [8, 20]}, "multiples of 8, got [8, 20]"),
        ({"block_choices": ["MBConv", "MBconv"]}, "did you mean 'MBConv'?"),
        ({"act_choices": []}, "act_choices must be a non-empty list"),
        ({"num_stages": [2, 9]}, "num_stages must not exceed the 5 slots"),
        ({"min_feature": 16}, "min_feature must be <= max_feature (8)"),
        ({"head.channels": KeyError}, "missing key head.channels"),
        ({"kernel_choise": [3]}, "unknown key kernel_choise; did you mean 'kernel_choices'?"),
        ({"stem.stride": 3}, "stem.stride must be 1 or 2, got 3"),
        ({"se_choices": [0, 2]}, "se_choices items must be among [0, 1], got 2"),
    ],
)
def test_architecture_bounds_errors(tmp_path: Path, edit: dict, expected: str) -> None:
    path = _edited(tmp_path, ARCH, edit)
    with pytest.raises(SearchSpaceError) as info:
        load_architecture_bounds(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"optimizer_choices": ["sgd", "adam"]}, "did you mean 'adamw'?"),
        ({"sgd_lr_log": [0.0, 0.1]}, "sgd_lr_log.low must be >= 1e-09"),
        ({"label_smoothing": [0.0, 0.8]}, "label_smoothing must stay within [0, 0.5]"),
        ({"batch_size_choices": [32, "64"]}, "items must be positive ints, got '64'"),
        ({"epochs": 5}, "epochs must be a [low, high] list, got 5"),
    ],
)
def test_hyper_bounds_errors(tmp_path: Path, edit: dict, expected: str) -> None:
    path = _edited(tmp_path, HYPER, edit)
    with pytest.raises(SearchSpaceError) as info:
        load_hyper_bounds(path)
    assert expected in str(info.value)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "arch.yaml"
    path.write_text("stem:\n  channels: [8, 16\nrepeats: [1, 2]\n")
    with pytest.raises(SearchSpaceError, match=rf"{path}:\d+:\d+: invalid YAML"):
        load_architecture_bounds(path)


def test_shipped_bounds_load() -> None:
    assert load_architecture_bounds(ARCH).num_stages == (2, 5)
    assert 32 in load_hyper_bounds(HYPER).img_sizes


def test_size_and_width_choices_are_optional_for_older_spaces(tmp_path: Path) -> None:
    older = load_architecture_bounds(
        _edited(tmp_path, ARCH, {"img_size_choices": KeyError, "width_choices": KeyError})
    )
    assert older.img_sizes == () and older.widths == (1.0,)
    shipped = load_architecture_bounds(ARCH)
    assert shipped.img_sizes == (32, 48, 64) and all(isinstance(w, float) for w in shipped.widths)

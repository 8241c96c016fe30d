"""Bad model configs fail with a ModelConfigError that names the file, the row and the fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from space import HeadRoundingWarning, ModelConfigError, build_model, count_cost

STEM = [1, "Conv", [16, 3, 2]]
HEAD = [[1, "GlobalAvgPool", []], [1, "Linear", [3]]]
Writer = Callable[[Any, str], Path]


def _build_rows(write_yaml: Writer, *rows: list, **kwargs: Any) -> Any:
    return build_model(write_yaml({"backbone": [STEM, *rows, *HEAD]}, "net.yaml"), **kwargs)


def test_yaml_syntax_error_names_file_and_line(write_yaml: Writer) -> None:
    path = write_yaml(
        "input_channel: 3\nbackbone:\n  - [1, Conv, [16, 3, 2]]\n   - [1, Linear, [6]]\n",
        "broken.yaml",
    )
    with pytest.raises(ModelConfigError, match=r"broken\.yaml:4:\d+: invalid YAML"):
        build_model(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ModelConfigError, match=r"nope\.yaml: cannot read the model config"):
        build_model(tmp_path / "nope.yaml")


def test_unknown_module_lists_known_ones_and_the_closest(write_yaml: Writer) -> None:
    with pytest.raises(ModelConfigError) as err:
        _build_rows(write_yaml, [1, "InvertedResidualV3", [3, 4, 24, 0, 0, 2]])
    message = str(err.value)
    assert "net.yaml, backbone row 1 [1, InvertedResidualV3, [3, 4, 24, 0, 0, 2]]" in message
    assert "known modules: Conv, FixedConv" in message and "MBConv" in message
    assert "Did you mean 'InvertedResidualv3'?" in message


def test_wrong_arg_count_shows_the_expected_signature(write_yaml: Writer) -> None:
    expected = (
        "net.yaml, backbone row 1 [1, InvertedResidualv3, [3, 4, 24]]: "
        "InvertedResidualv3 takes 6 args InvertedResidualv3(k, t, c, use_se, use_hs, s)"
        ", got 3"
    )
    with pytest.raises(ModelConfigError, match=re.escape(expected)):
        _build_rows(write_yaml, [1, "InvertedResidualv3", [3, 4, 24]])


def test_too_many_args_names_the_optional_range(write_yaml: Writer) -> None:
    with pytest.raises(ModelConfigError, match=r"Conv takes 2-6 args Conv\(out, kernel, stride=1"):
        _build_rows(write_yaml, [1, "Conv", [16, 3, 1, None, 1, "ReLU", 7]])


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ([1, "Conv", ["16", 3]], r"arg out must be a positive int \(channels\), got 16 \(str\)"),
        ([1, "MBConv", [6, 24, 3, 3]], r"arg s must be 1 or 2, got 3 \(int\)"),
        ([1, "InvertedResidualv3", [3, 4, 24, 2, 0, 1]], r"arg use_se must be 0 or 1"),
        (
            [1, "Conv", [16, 3, 1, None, 1, "Relu"]],
            r"arg activation: unknown activation 'Relu'.*"
            r"Did you mean 'ReLU'\?",
        ),
        ([1, "Dropout", [1.5]], r"arg p must be a number in \[0, 1\), got 1.5"),
    ],
)
def test_wrong_arg_type_names_the_row_and_signature(
    write_yaml: Writer, row: list, pattern: str
) -> None:
    with pytest.raises(ModelConfigError, match=r"net\.yaml, backbone row 1 .*" + pattern):
        _build_rows(write_yaml, row)


@pytest.mark.parametrize(
    "row", [[1, "Conv", [0, 3]], [1, "InvertedResidualv2", [-8, 6, 1]], [1, "Fire", [16, 0, 32]]]
)
def test_non_positive_channels_are_rejected(write_yaml: Writer, row: list) -> None:
    with pytest.raises(
        ModelConfigError,
        match=r"backbone row 1 .* must be a positive int "
        r"\(channels\), got -?\d",
    ):
        _build_rows(write_yaml, row)


def test_non_positive_class_count_is_rejected(write_yaml: Writer) -> None:
    path = write_yaml({"backbone": [STEM, [1, "GlobalAvgPool", []], [1, "Linear", [0]]]}, "n.yaml")
    with pytest.raises(ModelConfigError, match=r"row 2 \[1, Linear, \[0\]\]: arg out must be"):
        build_model(path)
    with pytest.raises(ModelConfigError, match="num_classes must be a positive int, got 0"):
        build_model(write_yaml({"backbone": [STEM, *HEAD]}, "ok.yaml"), num_classes=0)


def test_rounded_conv_head_warns_with_the_fix(write_yaml: Writer) -> None:
    path = write_yaml(
        {"backbone": [STEM, [1, "GlobalAvgPool", []], [1, "Conv", [9, 1, 1]]]}, "old.yaml"
    )
    with pytest.warns(
        HeadRoundingWarning,
        match=r"old\.yaml, backbone row 2 .*has 16 channels, "
        r"not the 9 written.*FixedConv or Linear",
    ):
        model = build_model(path)
    assert model.eval()(torch.zeros(1, 3, 16, 16)).shape == (1, 16)  # as the old code built it


def test_num_classes_with_a_rounded_head_is_an_error(write_yaml: Writer) -> None:
    path = write_yaml(
        {"backbone": [STEM, [1, "GlobalAvgPool", []], [1, "Conv", [9, 1, 1]]]}, "old.yaml"
    )
    with pytest.raises(
        ModelConfigError,
        match=r"backbone row 2 .*num_classes=6 .*last row that "
        r"sets channels is Conv.*FixedConv, \[6, 1, 1",
    ):
        build_model(path, num_classes=6)


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ([1, "Conv", [24, 3, 1, None, 5]], r"groups=5 must divide the input channels \(16\)"),
        ([1, "Conv", [16, 3]], None),
    ],
)
def test_conv_groups_must_divide_channels(write_yaml: Writer, row: list, pattern: str) -> None:
    if pattern is None:
        _build_rows(write_yaml, row)
        return
    with pytest.raises(ModelConfigError, match=pattern):
        _build_rows(write_yaml, row)


def test_shufflenet_stride_one_needs_even_channels(write_yaml: Writer) -> None:
    with pytest.raises(ModelConfigError, match=r"input channels must be even, got 3"):
        build_model(write_yaml({"input_channel": 3, "backbone": [[1, "ShuffleNetV2", [1]]]}))


@pytest.mark.parametrize(
    ("cfg", "pattern"),
    [
        ({"backbone": []}, r"'backbone' must be a non-empty list"),
        ({"width_multiple": -1, "backbone": [STEM]}, r"width_multiple must be a positive number"),
        ({"input_channel": 0, "backbone": [STEM]}, r"input_channel must be a positive int"),
        ({"backbone": [[1, "Conv"]]}, r"row 0 \[1, Conv\]: a row must be \[repeat, Module, "),
        ({"backbone": [[0, "Conv", [16, 3]]]}, r"row 0 .*repeat must be a positive int, got 0"),
        ({"backbone": [[1, "Conv", 16]]}, r"args must be a list such as Conv\(out, kernel"),
    ],
)
def test_malformed_configs(write_yaml: Writer, cfg: dict, pattern: str) -> None:
    with pytest.raises(ModelConfigError, match=pattern):
        build_model(write_yaml(cfg, "bad.yaml"))


def test_misspelt_header_key_warns(write_yaml: Writer) -> None:
    with pytest.warns(UserWarning, match=r"unknown key 'width_multiplier'.*'width_multiple'"):
        build_model(write_yaml({"width_multiplier": 0.5, "backbone": [STEM, *HEAD]}))


def _pooling_net(write_yaml: Writer) -> Any:
    return build_model(
        write_yaml(
            {
                "backbone": [
                    [1, "Conv", [8, 3, 2]],
                    [1, "MaxPool", [2, 2]],
                    [1, "MaxPool", [2, 2]],
                    *HEAD,
                ]
            },
            "tiny.yaml",
        )
    )


def test_image_too_small_names_the_collapsing_row(write_yaml: Writer) -> None:
    model = _pooling_net(write_yaml)
    pattern = (
        r"tiny\.yaml, backbone row 2 \[1, MaxPool, \[2, 2\]\]: at img_size=4 this row "
        r"receives a 8x1x1 feature map and collapses it.*use a larger img_size"
    )
    _count_and_summary_refuse(model, 4, pattern)


def _count_and_summary_refuse(model: Any, img_size: int, pattern: str) -> None:
    """Both ways of measuring a model raise the same row-naming error."""
    with pytest.raises(ModelConfigError, match=pattern):
        count_cost(model, img_size)
    with pytest.raises(ModelConfigError, match=pattern):
        model.summary(img_size)


def test_kernel_larger_than_the_image_is_refused_before_any_forward(write_yaml: Writer) -> None:
    """A 1000x1000 kernel is legal to torch with 'same' padding and aborts the process."""
    model = build_model(
        write_yaml(
            {"backbone": [[1, "Conv", [8, 1000, 1]], [1, "GlobalAvgPool", []], *HEAD]}, "huge.yaml"
        )
    )
    ran: list[str] = []
    model.rows[0].register_forward_pre_hook(lambda module, args: ran.append("forward"))
    pattern = (
        r"huge\.yaml, backbone row 0 \[1, Conv, \[8, 1000, 1\]\]: kernel 1000 is larger "
        r"than the 32x32 input image"
    )
    _count_and_summary_refuse(model, 32, pattern)
    assert not ran


@pytest.mark.parametrize(
    ("cfg", "pattern"),
    [
        (
            {"backbone": [[100_000_000, "Conv", [8, 3]], *HEAD]},
            r"backbone row 0 .*repeat must be at most 100 .*got 100,000,000",
        ),
        (
            {"depth_multiple": 1000, "backbone": [[2, "Conv", [8, 3]], *HEAD]},
            r"depth_multiple 1000 makes 2,000 repeats",
        ),
    ],
)
def test_huge_repeats_are_refused_before_building(
    write_yaml: Writer, cfg: dict, pattern: str
) -> None:
    with pytest.raises(ModelConfigError, match=pattern):
        build_model(write_yaml(cfg, "deep.yaml"))


def test_a_failed_count_leaves_the_model_usable(write_yaml: Writer) -> None:
    model = _pooling_net(write_yaml)
    with pytest.raises(ModelConfigError):
        count_cost(model, 4)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    assert count_cost(model, 32).macs > 0
    assert not [k for k in model.state_dict() if "total_" in k]


def test_linear_on_an_unpooled_map_says_to_pool_first(write_yaml: Writer) -> None:
    model = build_model(write_yaml({"backbone": [STEM, [1, "Linear", [3]]]}, "flat.yaml"))
    with pytest.raises(
        ModelConfigError,
        match=r"flat\.yaml, backbone row 1 \[1, Linear, \[3\]\]: "
        r"cannot run on a 16x16x16 input.*GlobalAvgPool",
    ):
        count_cost(model, 32)

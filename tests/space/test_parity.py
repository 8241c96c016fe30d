"""Configs in the competition's style build with the parameter count the competition code gives.

The expected counts are derived by hand from the structures model-yaml.md states (conv weights,
BatchNorm's two parameters per channel, biases), never by running our builder, so a change to a
block's structure (and so to users' checkpoints) fails here.
"""

from __future__ import annotations

import math

import pytest

from space import build_model


def conv_bn(cin: int, cout: int, k: int = 1, groups: int = 1) -> int:
    """Conv2d without bias + BatchNorm2d (weight and bias)."""
    return cin // groups * cout * k * k + 2 * cout


def conv_bias(cin: int, cout: int, k: int = 1) -> int:
    """Conv2d with bias, no BatchNorm (SE convs, Fire)."""
    return cin * cout * k * k + cout


def se(ch: int, rd: int) -> int:
    return conv_bias(ch, rd) + conv_bias(rd, ch)


def ghost_module(cin: int, cout: int) -> int:
    init = math.ceil(cout / 2)
    return conv_bn(cin, init) + conv_bn(init, init, 3, init)


def shuffle_unit(cin: int, stride: int) -> int:
    branch = cin * stride // 2
    main_in = branch if stride == 1 else cin
    main = conv_bn(main_in, branch) + conv_bn(branch, branch, 3, branch) + conv_bn(branch, branch)
    proj = 0 if stride == 1 else conv_bn(cin, cin, 3, cin) + conv_bn(cin, branch)
    return main + proj


def test_the_documented_example_by_hand() -> None:
    """The documented example: 464 + 3,440 + 14,976 + 0 + 5,202 (9 classes) = 24,082."""
    stem = 3 * 16 * 9 + 2 * 16  # 464
    ir3 = (16 * 64 + 128) + (64 * 9 + 128) + (64 * 24 + 48)  # hidden 64: 3,440
    conv = 24 * 576 + 2 * 576  # 14,976
    head = 576 * 9 + 2 * 9  # FixedConv: 5,202
    cfg = {
        "input_channel": 3,
        "depth_multiple": 1.0,
        "width_multiple": 1.0,
        "backbone": [
            [1, "Conv", [16, 3, 2, None, 1, "HardSwish"]],
            [1, "InvertedResidualv3", [3, 4, 24, 0, 0, 2]],
            [1, "Conv", [576, 1, 1]],
            [1, "GlobalAvgPool", []],
            [1, "FixedConv", [9, 1, 1, None, 1, None]],
        ],
    }
    assert _params(cfg) == stem + ir3 + conv + head
    assert _params(cfg, num_classes=6) == stem + ir3 + conv + (576 * 6 + 2 * 6)


MIXED_ROWS = [
    [1, "Conv", [16, 3, 2, None, 1, "HardSwish"]],
    [1, "DWConv", [32, 3, 1]],
    [2, "Bottleneck", [32]],
    [1, "InvertedResidualv2", [24, 6, 2]],
    [2, "InvertedResidualv3", [5, 3, 40, 1, 1, 2]],
    [1, "MBConv", [6, 48, 1, 3]],
    [1, "ShuffleNetV2", [2]],
    [2, "GhostBottleneck", [3, 2, 96, 1, 1]],
    [1, "Fire", [16, 48, 48]],
    [1, "MaxPool", [3, 2, 1]],
    [1, "AvgPool", [2, 2]],
    [1, "Conv", [256, 1, 1]],
    [1, "GlobalAvgPool", []],
    [1, "Flatten", []],
    [1, "Dropout", [0.2]],
    [1, "Linear", [9]],
]


def _params(cfg: dict, num_classes: int | None = None) -> int:
    return sum(p.numel() for p in build_model(cfg, num_classes=num_classes).parameters())


def test_every_module_type_at_width_one() -> None:
    expected = sum(
        [
            conv_bn(3, 16, 3),
            conv_bn(16, 32, 3, groups=16),  # DWConv: gcd(16, 32)
            2 * (conv_bn(32, 16) + conv_bn(16, 32, 3)),  # Bottleneck hidden 16
            conv_bn(32, 192) + conv_bn(192, 192, 3, 192) + conv_bn(192, 24),  # IRv2 hidden 192
            # IRv3 hidden make_divisible(24 * 3) = 72, SE make_divisible(72 // 4) = 24 (18 -> 24)
            conv_bn(24, 72) + conv_bn(72, 72, 5, 72) + se(72, 24) + conv_bn(72, 40),
            # second repeat: hidden 120, SE make_divisible(30) = 32
            conv_bn(40, 120) + conv_bn(120, 120, 5, 120) + se(120, 32) + conv_bn(120, 40),
            # MBConv hidden 240, SE reduced from the INPUT: 40 // 4 = 10
            conv_bn(40, 240) + conv_bn(240, 240, 3, 240) + se(240, 10) + conv_bn(240, 48),
            shuffle_unit(48, 2),  # 48 -> 96
            # Ghost hidden make_divisible(96 * 2) = 192, SE make_divisible(48, 4) = 48, id skip
            2 * (ghost_module(96, 192) + se(192, 48) + ghost_module(192, 96)),
            conv_bias(96, 16) + conv_bias(16, 48) + conv_bias(16, 48, 3),  # Fire -> 96
            conv_bn(96, 256),
            256 * 9 + 9,  # Linear
        ]
    )
    assert _params({"backbone": MIXED_ROWS}) == expected


def test_every_module_type_at_half_width_and_depth() -> None:
    """Channels by hand: 16->8, 32->16, 24->12->16, 40->20->24, 48->24, 96->48, Fire 8/24/24,
    256->128; the Linear head keeps 9; repeats of 2 become 1."""
    expected = sum(
        [
            conv_bn(3, 8, 3),
            conv_bn(8, 16, 3, groups=8),
            conv_bn(16, 8) + conv_bn(8, 16, 3),
            conv_bn(16, 96) + conv_bn(96, 96, 3, 96) + conv_bn(96, 16),
            conv_bn(16, 48) + conv_bn(48, 48, 5, 48) + se(48, 16) + conv_bn(48, 24),
            conv_bn(24, 144) + conv_bn(144, 144, 3, 144) + se(144, 6) + conv_bn(144, 24),
            shuffle_unit(24, 2),  # 24 -> 48
            # Ghost 48 -> 48: hidden 96, SE make_divisible(24, 4) = 24
            ghost_module(48, 96) + se(96, 24) + ghost_module(96, 48),
            conv_bias(48, 8) + conv_bias(8, 24) + conv_bias(8, 24, 3),  # Fire -> 48
            conv_bn(48, 128),
            128 * 9 + 9,
        ]
    )
    cfg = {"depth_multiple": 0.5, "width_multiple": 0.5, "backbone": MIXED_ROWS}
    assert _params(cfg) == expected


@pytest.mark.parametrize(("stride", "cin", "cout"), [(1, 24, 40), (2, 24, 40), (2, 40, 40)])
def test_ghost_shortcut_projects_when_stride_or_channels_change(
    stride: int, cin: int, cout: int
) -> None:
    hidden = 72 if cin == 24 else 120  # make_divisible(cin * 3)
    dw = conv_bn(hidden, hidden, 5, hidden) if stride == 2 else 0
    skip = conv_bn(cin, cin, 5, cin) + conv_bn(cin, cout)
    expected = conv_bn(3, cin, 3) + ghost_module(cin, hidden) + dw + ghost_module(hidden, cout)
    expected += skip
    cfg = {"backbone": [[1, "Conv", [cin, 3, 1]], [1, "GhostBottleneck", [5, 3, cout, 0, stride]]]}
    assert _params(cfg) == expected

"""The shipped baselines rebuild torchvision's models: same parameters, MACs within 1%."""

from __future__ import annotations

import pytest

from space import build_model, count_cost
from tests.conftest import REPO

TWINS = ("mobilenet_v3_small", "shufflenet_v2_x0_5")


@pytest.mark.parametrize("num_classes", [6, 9])
@pytest.mark.parametrize("name", TWINS)
def test_twin_matches_torchvision(name: str, num_classes: int) -> None:
    from torchvision import models

    reference = getattr(models, name)(num_classes=num_classes)
    twin = build_model(REPO / "configs" / "model" / f"{name}.yaml", num_classes=num_classes)
    assert sum(p.numel() for p in twin.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )
    for img_size in (32, 64):
        ours, theirs = count_cost(twin, img_size), count_cost(reference, img_size)
        assert ours.params == theirs.params
        assert abs(ours.macs - theirs.macs) <= 0.01 * theirs.macs, (img_size, ours, theirs)


def test_twin_macs_match_the_documented_thop_counts() -> None:
    """environment.md lists thop on torchvision's mobilenet_v3_small, 9 classes, at 32 and 64."""
    twin = build_model(REPO / "configs" / "model" / "mobilenet_v3_small.yaml", num_classes=9)
    assert count_cost(twin, 32).macs == 2_293_368
    assert count_cost(twin, 64).macs == 5_991_480

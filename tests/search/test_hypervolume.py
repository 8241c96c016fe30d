"""Hypervolume by hand: rectangles in the normalised (MACs / reference, F1) box."""

from __future__ import annotations

import math

import pytest

from runner.training.metrics import REF_MACS
from search.front import hypervolume

M = 1_000_000  # MACs of the hand examples, with a reference of 10 M


def test_single_point_is_its_rectangle() -> None:
    # box [0, 10M] x [0, 1]; the point dominates MACs 2M..10M below F1 0.5: 0.8 * 0.5
    assert hypervolume([(0.5, 2 * M)], ref=(0.0, 10 * M)) == pytest.approx(0.4)


def test_two_points_union_not_sum() -> None:
    # A (0.8, 5M): 0.5 * 0.8 = 0.40; B (0.6, 2M): 0.8 * 0.6 = 0.48; overlap 0.5 * 0.6 = 0.30
    points = [(0.6, 2 * M), (0.8, 5 * M)]
    assert hypervolume(points, ref=(0.0, 10 * M)) == pytest.approx(0.58)


def test_order_duplicates_and_dominated_points_change_nothing() -> None:
    front = [(0.6, 2 * M), (0.8, 5 * M)]
    noisy = [(0.8, 5 * M), (0.5, 6 * M), (0.6, 2 * M), (0.6, 2 * M), (0.7, 5 * M)]
    assert hypervolume(noisy, ref=(0.0, 10 * M)) == hypervolume(front, ref=(0.0, 10 * M))


def test_points_outside_the_box_add_nothing() -> None:
    inside = [(0.6, 2 * M)]
    outside = [(0.9, 10 * M), (0.95, 12 * M), (0.0, 1 * M), (0.3, 1 * M)]
    ref = (0.4, 10 * M)
    # (0.6 - 0.4) * 0.8 = 0.16 of a box of height 0.6
    assert hypervolume(inside + outside, ref=ref) == pytest.approx(0.16 / 0.6)


def test_default_reference_is_the_competition_model() -> None:
    assert hypervolume([(1.0, 0)]) == pytest.approx(1.0)
    assert hypervolume([(0.5, REF_MACS // 2)]) == pytest.approx(0.25, rel=1e-6)
    assert hypervolume([]) == 0.0


def test_more_points_never_shrink_it() -> None:
    base = [(0.6, 2 * M), (0.8, 5 * M)]
    assert hypervolume([*base, (0.7, 3 * M)], ref=(0.0, 10 * M)) > hypervolume(
        base, ref=(0.0, 10 * M)
    )


@pytest.mark.parametrize("ref", [(1.0, 10 * M), (-0.1, 10 * M), (0.0, 0), (0.0, math.inf)])
def test_bad_reference_is_refused(ref: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="reference"):
        hypervolume([(0.5, M)], ref=ref)


def test_nan_point_is_refused() -> None:
    with pytest.raises(ValueError, match="numeric"):
        hypervolume([(math.nan, M)])


def test_points_are_clipped_to_the_box() -> None:
    """F1 above 1 counts as 1, MACs below 0 as 0 (the box's edges), exactly."""
    assert hypervolume([(1.0, 0)], ref=(0.0, 10.0)) == 1.0
    assert hypervolume([(1.5, -5.0)], ref=(0.0, 10.0)) == 1.0
    assert hypervolume([(0.5, 0.25)], ref=(0.0, 0.5)) == pytest.approx(0.25), "ref below 1 MAC"

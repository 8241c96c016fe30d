"""Spearman and Kendall against values worked out by hand (and scipy's, where it is installed)."""

from __future__ import annotations

import math

import pytest

from search.front import kendall, spearman


def test_perfect_and_reversed_orders() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert kendall([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert kendall([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_known_values_with_ties() -> None:
    # x ranks 1..5; y = [1, 3, 2, 5, 4]: d^2 sums to 4 -> rho = 1 - 6 * 4 / (5 * 24) = 0.8;
    # of the 10 pairs, 8 concordant and 2 discordant -> tau = 0.6.
    assert spearman([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]) == pytest.approx(0.8)
    assert kendall([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]) == pytest.approx(0.6)
    # scipy.stats: spearmanr([1,2,2,3],[1,3,2,4]) = 0.9486833, kendalltau(...) = 0.9128709 (tau-b)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9486833, abs=1e-6)
    assert kendall([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9128709, abs=1e-6)


def test_constant_side_and_bad_input() -> None:
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match="needs pairs"):
        spearman([1, 2], [1])
    with pytest.raises(ValueError, match="at least 2"):
        kendall([1], [1])

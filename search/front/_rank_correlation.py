"""Rank correlations between a study's objective and what full training gives (ties averaged).

Spearman's rho is the Pearson correlation of the ranks; Kendall's tau-b counts concordant minus
discordant pairs, corrected for ties (scipy.stats.kendalltau's default). Both are a few lines of
numpy, so the search does not need scipy for them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1, tied values sharing the mean of their ranks."""
    data = np.asarray(values, dtype=float)
    order = data.argsort(kind="stable")
    ranks = np.empty(len(data))
    ranks[order] = np.arange(1, len(data) + 1)
    for value in np.unique(data):
        tied = data == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _check(x: Sequence[float], y: Sequence[float]) -> None:
    if len(x) != len(y):
        raise ValueError(f"rank correlation needs pairs, got {len(x)} and {len(y)} values")
    if len(x) < 2:
        raise ValueError(f"rank correlation needs at least 2 pairs, got {len(x)}")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho in [-1, 1]; nan when either side is constant."""
    _check(x, y)
    rx, ry = _ranks(x) - (len(x) + 1) / 2, _ranks(y) - (len(y) + 1) / 2
    denom = float(np.sqrt((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denom) if denom else float("nan")


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b in [-1, 1]; nan when either side is constant."""
    _check(x, y)
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    dx = np.sign(a[:, None] - a[None, :])
    dy = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), k=1)
    sx, sy = dx[upper], dy[upper]
    denom = float(np.sqrt((sx != 0).sum() * (sy != 0).sum()))
    return float((sx * sy).sum() / denom) if denom else float("nan")

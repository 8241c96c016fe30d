"""Hypervolume of an (F1, MACs) front: one number that says how good a whole front is.

Two fronts (with and without early stopping, or two samplers) are compared by the share of a fixed
reference box they dominate. The box is F1 from `ref` F1 to 1 (maximised) by MACs from 0 to
`ref` MACs (minimised); MACs are divided by the reference MACs, so the box is the unit square when
the reference is the default (F1 0, the competition's reference model's 13,863,553 MACs), and the
result is the dominated share of that box, in [0, 1]. Points outside the box (F1 at or below the
reference F1, or MACs at or above the reference MACs) dominate nothing there and add nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from runner.training.metrics import REF_MACS

DEFAULT_REF: tuple[float, float] = (0.0, float(REF_MACS))


def _check_ref(ref: tuple[float, float]) -> tuple[float, float]:
    """The reference point must leave a non-empty box: F1 in [0, 1), MACs > 0."""
    ref_f1, ref_macs = float(ref[0]), float(ref[1])
    if not 0.0 <= ref_f1 < 1.0:
        raise ValueError(f"the reference F1 must be in [0, 1), got {ref_f1!r}")
    if not (math.isfinite(ref_macs) and ref_macs > 0):
        raise ValueError(f"the reference MACs must be a positive number, got {ref[1]!r}")
    return ref_f1, ref_macs


def hypervolume(
    points: Iterable[tuple[float, float]], *, ref: tuple[float, float] = DEFAULT_REF
) -> float:
    """Share of the reference box dominated by `points` (F1 maximised, MACs minimised).

    Args:
        points: (f1, macs) pairs, in any order; dominated points and duplicates are harmless.
        ref: (f1, macs) reference point; the box spans F1 in [ref f1, 1] and MACs in [0, ref macs].

    Exact 2-D sweep: visiting points by falling F1, each one that is cheaper than every point
    seen so far adds the strip between its MACs and the cheapest MACs so far.
    """
    ref_f1, ref_macs = _check_ref(ref)
    inside = []
    for f1, macs in points:
        if math.isnan(f1) or math.isnan(macs):
            raise ValueError(f"hypervolume needs numeric points, got (f1={f1}, macs={macs})")
        if f1 > ref_f1 and macs < ref_macs:
            inside.append((min(float(f1), 1.0), max(float(macs), 0.0) / ref_macs))
    area, cheapest = 0.0, 1.0
    for f1, cost in sorted(inside, key=lambda p: (-p[0], p[1])):
        if cost < cheapest:
            area += (cheapest - cost) * (f1 - ref_f1)
            cheapest = cost
    return area / (1.0 - ref_f1)

"""Meeting a MACs target: bisect one knob (pruning ratio, rank fraction) on counted MACs.

Both methods shrink a model by one number in (0, 1], and counted MACs move with it almost
monotonically (rounding to whole channels makes small steps), so bisection finds the least
compression whose counted MACs are at or under the target in a dozen counts.
"""

from __future__ import annotations

from collections.abc import Callable

from tqdm import tqdm

from runner.deploy.compression.record import CompressionError

STEPS = 14


def bisect_knob(
    macs_at: Callable[[float], int],
    target: int,
    *,
    shrinks_with_knob: bool,
    low: float,
    high: float,
    what: str,
    progress: bool = True,
) -> float:
    """The knob in [low, high] nearest the uncompressed end whose MACs are <= target.

    shrinks_with_knob: MACs fall as the knob grows (a pruning ratio) rather than rise (a rank
    fraction). CompressionError when even the strongest setting stays above the target.
    """
    strongest = high if shrinks_with_knob else low
    floor = macs_at(strongest)
    if floor > target:
        raise CompressionError(
            f"{what} cannot reach {target:,} MACs: its strongest setting leaves {floor:,}; "
            "pass a larger --macs-target or the other --method"
        )
    fits, misses = strongest, (low if shrinks_with_knob else high)
    for _ in tqdm(range(STEPS), desc=f"{what}: searching the MACs target", disable=not progress):
        middle = (fits + misses) / 2
        if macs_at(middle) <= target:
            fits = middle
        else:
            misses = middle
    return fits

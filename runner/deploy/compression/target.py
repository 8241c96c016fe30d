"""Meeting a MACs target: bisect one knob (pruning ratio, rank fraction) on counted MACs.

Both methods shrink a model by one number in (0, 1], and counted MACs mostly move with it
(rounding to whole channels makes small steps, and pruning leaves a group whole rather than
empty it), so a coarse scan then bisection finds nearly the least compression whose counted
MACs are at or under the target in a few dozen counts.
"""

from __future__ import annotations

from collections.abc import Callable

from tqdm import tqdm

from runner.deploy.compression.record import CompressionError

SCAN = 6  # coarse settings tried from the mild end
STEPS = 10  # bisection steps inside the scan's last step (1/6 of the range / 2**10)


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
    """A knob in [low, high] near the uncompressed end whose MACs are <= target.

    shrinks_with_knob: MACs fall as the knob grows (a pruning ratio) rather than rise (a rank
    fraction). MACs need not fall steadily all the way: a group of few channels that a strong
    setting would empty is left whole instead, so the strongest setting can count more than a
    milder one. A coarse scan from the mild end finds the first setting that fits, then
    bisection narrows the step before it. CompressionError when no setting of the scan fits.
    """
    weak, strong = (low, high) if shrinks_with_knob else (high, low)
    scan = [weak + (strong - weak) * (i + 1) / SCAN for i in range(SCAN)]
    misses, fits, counted = weak, None, []
    for knob in scan:
        counted.append(macs_at(knob))
        if counted[-1] <= target:
            fits = knob
            break
        misses = knob
    if fits is None:
        raise CompressionError(
            f"{what} cannot reach {target:,} MACs: its strongest settings leave at least "
            f"{min(counted):,}; pass a larger --macs-target or the other --method"
        )
    for _ in tqdm(range(STEPS), desc=f"{what}: searching the MACs target", disable=not progress):
        middle = (fits + misses) / 2
        if macs_at(middle) <= target:
            fits = middle
        else:
            misses = middle
    return fits

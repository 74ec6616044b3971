"""Adaptive stop rules: the timed loop's precision target, and the end of a warm-up that detects warmth.

Precision target (`protocol.target_ci`): the loop looks at its latencies at a fixed geometric schedule of
iteration counts n_1 < ... < n_K (from the floor, each GROWTH times the last, up to the iteration cap). At a look
it forms the distribution-free order-statistics interval of the median (embench.stats.median_ci_ranks) at the
confidence 1 - 0.05 / L, L = K + 1, and stops as soon as the interval's half-width, (high - low) / 2, is at most
the target times the sample median. Bonferroni over the looks: each look's interval misses the true median with
probability at most 0.05 / L for independent latencies of any continuous distribution, so the chance that any
of them misses, and with it the interval the rule stops on, is at most 0.05, however the stop depends on the data.
The +1 is the interval at the final count of a run cut by the time cap between two looks.

The looks end where the time cap would stop the loop at the warm-up's pace (twice the calls that pace fits
in max_duration_s, `affordable`): a look the loop never reaches would only lower every look's level. The warm-up's
calls are not the timed ones, so the schedule is fixed before the first timed call and the bound above holds.

Warm-up (`protocol.warmup: detect`): it ends once the medians of the last two windows of calls differ by at most
`warmup_tolerance` of the later one: two successive windows agree. A window is `warmup_window` calls, fewer
for slow calls (no longer than WINDOW_S, never under MIN_WINDOW calls): a network of a second a call is
warm after a few calls, and 40 of them would outlast the timed loop.
"""

import math
import statistics
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from embench.stats import median_ci_ranks

GROWTH = 1.2  # each look 20 % more iterations than the last: at most 20 % past the count the target needed
FIRST_LOOK = 20  # no look before: below 12 values no interval reaches 1 - 0.05 / L for any schedule
CONFIDENCE = 0.95  # what the reported interval keeps over all the looks
PACE_MARGIN = 2.0  # looks go up to this many times the calls the warm-up's pace fits in the time cap
WINDOW_S = 0.5  # the longest a warm-up window lasts...
MIN_WINDOW = 3  # ...unless it would have fewer calls than this


@dataclass(frozen=True)
class Plan:
    """The looks of a precision target and the confidence of each look's interval."""

    target: float  # half-width of the interval over the median
    looks: tuple[int, ...]  # iteration counts at which the rule looks
    confidence: float  # each look's nominal level: 1 - 0.05 / (len(looks) + 1) for the Bonferroni rule


def schedule(min_iterations: int, max_iterations: int, growth: float = GROWTH) -> tuple[int, ...]:
    """Look counts: from max(min_iterations, FIRST_LOOK), each ceil(growth x) the last, ending at max_iterations."""
    looks = [min(max(min_iterations, FIRST_LOOK), max_iterations)]
    while looks[-1] < max_iterations:
        looks.append(min(max(looks[-1] + 1, math.ceil(looks[-1] * growth)), max_iterations))
    return tuple(looks)


def plan(target: float, min_iterations: int, max_iterations: int, bonferroni: bool = True) -> Plan:
    """The Bonferroni rule's plan; bonferroni=False is the naive rule (95 % at every look), which under-covers."""
    looks = schedule(min_iterations, max_iterations)
    confidence = 1 - (1 - CONFIDENCE) / (len(looks) + 1) if bonferroni else CONFIDENCE
    return Plan(target, looks, confidence)


def affordable(max_iterations: int, max_duration_s: float, pace_s: float) -> int:
    """The last look's count: the iteration cap, or PACE_MARGIN times the calls of `pace_s` the time cap holds."""
    if pace_s <= 0:
        return max_iterations
    return min(max_iterations, max(FIRST_LOOK, math.ceil(PACE_MARGIN * max_duration_s / pace_s)))


def window(pace_s: float, most: int) -> int:
    """Calls per warm-up window at `pace_s` a call: `most`, or as many as WINDOW_S holds, at least MIN_WINDOW."""
    if pace_s <= 0:
        return most
    return max(MIN_WINDOW, min(most, int(WINDOW_S / pace_s)))


@lru_cache(maxsize=4096)
def _ranks(n: int, confidence: float) -> tuple[int, int, float]:
    return median_ci_ranks(n, confidence)


def interval(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Sample median, order-statistics interval of the median and its exact coverage, along the last axis.

    Where no pair of ranks reaches `confidence` (too few values) the interval is (min, max), with the coverage it has.
    """
    n = values.shape[-1]
    lo, hi, coverage = _ranks(n, confidence)
    middle = sorted({(n - 1) // 2, n // 2})
    ordered = np.partition(values, sorted({lo, hi, *middle}), axis=-1)
    return ordered[..., middle].mean(axis=-1), ordered[..., lo], ordered[..., hi], coverage


def relative_halfwidth(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(high - low) / 2 / median, low, high, and whether the interval reaches `confidence`."""
    median, low, high, coverage = interval(values, confidence)
    return (high - low) / (2 * median), low, high, coverage >= confidence


def precise(values: np.ndarray, rule: Plan) -> np.ndarray:
    """The stop decision at a look, for one run (1-D) or many (rows): the interval is as narrow as the target."""
    relative, _, _, reaches = relative_halfwidth(values, rule.confidence)
    return (relative <= rule.target) & reaches


def settled(latencies: Sequence[float], window: int, tolerance: float) -> bool:
    """Whether the medians of the last two windows of `window` values agree within `tolerance` of the later one."""
    if len(latencies) < 2 * window:
        return False
    earlier, later = statistics.median(latencies[-2 * window:-window]), statistics.median(latencies[-window:])
    return abs(later - earlier) <= tolerance * later

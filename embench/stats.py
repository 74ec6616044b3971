"""Latency statistics: central values, spread, tail percentiles and an interval of the median.

One percentile definition everywhere: nearest rank. The p-th percentile of n values is the
ceil(p * n / 100)-th smallest, the smallest value with at least p % of the sample at or below it
(numpy's method="inverted_cdf"). A percentile is given only where the sample can hold it, where
at least one value lies above its rank: n >= 100 / (100 - p), so p90 from 10 values, p95 from 20,
p99 from 100. Below that it would be the maximum, which latency_max_ms already is.
"""

import math

import numpy as np
from scipy.special import bdtr

from embench.names import (
    LATENCY_CV,
    LATENCY_DRIFT,
    LATENCY_MAX_MS,
    LATENCY_MEDIAN_MS,
    LATENCY_MIN_MS,
    LATENCY_PERCENTILE_MS,
)

TAILS = (90, 95, 99)


def holds(n: int, percent: int) -> bool:
    """Whether n values hold their p-th percentile: at least one value above its rank."""
    return n * (100 - percent) >= 100


def nearest_rank(ordered: np.ndarray, percent: int) -> float:
    """The p-th percentile of sorted values: the ceil(p * n / 100)-th smallest."""
    return float(ordered[max(-(-percent * ordered.size // 100), 1) - 1])


def tail_percentiles(values: np.ndarray, name: str, percents: tuple[int, ...] = TAILS) -> dict[str, float]:
    """Nearest-rank percentiles of `values` that their sample holds, named name.format(p)."""
    ordered = np.sort(values)
    return {name.format(p): nearest_rank(ordered, p) for p in percents if holds(ordered.size, p)}


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int, float]:
    """0-based ranks (lo, hi) of a distribution-free interval of the median, and its exact coverage.

    The count of values below the median is B ~ Binomial(n, 1/2), so [x_lo, x_(n-1-lo)] covers it
    with probability 1 - 2 P(B <= lo). lo is the largest rank that keeps this >= `confidence`;
    where no rank does (n <= 5 at 95 %), the interval is (min, max) with the coverage it has.
    """
    tail = (1.0 - confidence) / 2.0
    lo = max(math.floor(n / 2.0 - 1.959963984540054 * math.sqrt(n) / 2.0) - 1, 0)  # near the answer
    while lo > 0 and bdtr(lo, n, 0.5) > tail:
        lo -= 1
    while lo + 1 < n // 2 and bdtr(lo + 1, n, 0.5) <= tail:
        lo += 1
    return lo, n - 1 - lo, float(1.0 - 2.0 * bdtr(lo, n, 0.5))


def summarize(latencies_ns: list[int]) -> dict[str, float]:
    """Statistics of per-iteration latencies, in milliseconds (cv and coverage are plain ratios)."""
    if not latencies_ns:
        raise ValueError("no latencies to summarize")
    in_order = np.asarray(latencies_ns, dtype=np.float64) / 1e6
    ms = np.sort(in_order)
    n = ms.size
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if n > 1 else 0.0
    stats = {
        "latency_mean_ms": mean,
        LATENCY_MEDIAN_MS: float(np.median(ms)),
        **tail_percentiles(ms, LATENCY_PERCENTILE_MS),
        LATENCY_MIN_MS: float(ms[0]),
        LATENCY_MAX_MS: float(ms[-1]),
        "latency_std_ms": std,
        LATENCY_CV: std / mean if mean > 0 else 0.0,
        LATENCY_DRIFT: _drift(in_order),
        "iterations": float(n),
    }
    if holds(n, 75):
        stats["latency_iqr_ms"] = nearest_rank(ms, 75) - nearest_rank(ms, 25)
    lo, hi, coverage = median_ci_ranks(n)
    if coverage >= 0.95:
        stats["latency_median_ci95_low_ms"], stats["latency_median_ci95_high_ms"] = float(ms[lo]), float(ms[hi])
    stats["latency_median_ci_coverage"] = coverage  # of the ci95 pair, or where there is none, of (min, max)
    return stats


def _drift(ms: np.ndarray) -> float:
    """Median of the loop's second half over its first, minus 1: a slow change the CV can miss."""
    if ms.size < 4:
        return 0.0
    half = ms.size // 2
    return float(np.median(ms[half:]) / np.median(ms[:half]) - 1.0)

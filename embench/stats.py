"""Latency statistics: central values, spread, tail percentiles and a CI of the median."""

import math

import numpy as np

_Z95 = 1.959963984540054


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """0-based order-statistic ranks (lo, hi) of a distribution-free CI of the median.

    The count of samples below the median is Binomial(n, 1/2); [x_lo, x_(n-1-lo)] covers the
    median with at least `confidence` when P(B <= lo) <= (1 - confidence) / 2. Exact for
    n <= 1000, normal approximation above. Below n = 6 no such interval exists: (0, n - 1).
    """
    tail = (1.0 - confidence) / 2.0
    if n <= 1000:
        cumulative, first_over = 0.0, 0
        while first_over < n:
            cumulative += math.comb(n, first_over) / 2.0**n
            if cumulative > tail:
                break
            first_over += 1
        lo = max(first_over - 1, 0)
    else:
        lo = max(math.floor(n / 2.0 - _Z95 * math.sqrt(n) / 2.0) - 1, 0)
    return lo, n - 1 - lo


def summarize(latencies_ns: list[int]) -> dict[str, float]:
    """Statistics of per-iteration latencies, in milliseconds (cv is a plain ratio)."""
    if not latencies_ns:
        raise ValueError("no latencies to summarize")
    ms = np.asarray(latencies_ns, dtype=np.float64) / 1e6
    n = ms.size
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if n > 1 else 0.0
    q25, median, q75, p90, p95, p99 = np.percentile(ms, [25, 50, 75, 90, 95, 99])
    ordered = np.sort(ms)
    lo, hi = median_ci_ranks(n)
    return {
        "latency_mean_ms": mean,
        "latency_median_ms": float(median),
        "latency_p90_ms": float(p90),
        "latency_p95_ms": float(p95),
        "latency_p99_ms": float(p99),
        "latency_min_ms": float(ordered[0]),
        "latency_max_ms": float(ordered[-1]),
        "latency_std_ms": std,
        "latency_cv": std / mean if mean > 0 else 0.0,
        "latency_iqr_ms": float(q75 - q25),
        "latency_median_ci95_low_ms": float(ordered[lo]),
        "latency_median_ci95_high_ms": float(ordered[hi]),
        "latency_drift": _drift(ms),
        "iterations": float(n),
    }


def _drift(ms: np.ndarray) -> float:
    """Median of the loop's second half over its first, minus 1: a slow change the CV can miss."""
    if ms.size < 4:
        return 0.0
    half = ms.size // 2
    return float(np.median(ms[half:]) / np.median(ms[:half]) - 1.0)

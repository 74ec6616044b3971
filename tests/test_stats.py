"""Statistics on data whose answers are known."""

import numpy as np
import pytest

from embench.stats import median_ci_ranks, summarize


def test_summary_of_one_to_a_hundred_ms():
    stats = summarize([ms * 1_000_000 for ms in range(1, 101)])
    assert stats["latency_mean_ms"] == pytest.approx(50.5)
    assert stats["latency_median_ms"] == pytest.approx(50.5)
    assert stats["latency_min_ms"] == 1.0 and stats["latency_max_ms"] == 100.0
    assert stats["latency_p90_ms"] == pytest.approx(90.1)  # linear interpolation between order statistics
    assert stats["latency_p95_ms"] == pytest.approx(95.05)
    assert stats["latency_p99_ms"] == pytest.approx(99.01)
    assert stats["latency_std_ms"] == pytest.approx(29.011491975882016)  # sample std (n - 1)
    assert stats["latency_cv"] == pytest.approx(29.011491975882016 / 50.5)
    assert stats["latency_iqr_ms"] == pytest.approx(49.5)
    # Textbook 95% CI of the median for n = 100: the 40th and 61st order statistics.
    assert (stats["latency_median_ci95_low_ms"], stats["latency_median_ci95_high_ms"]) == (40.0, 61.0)
    assert stats["iterations"] == 100


def test_constant_latencies_have_no_spread():
    stats = summarize([2_000_000] * 10)
    assert stats["latency_std_ms"] == 0.0 and stats["latency_cv"] == 0.0
    assert stats["latency_median_ci95_low_ms"] == stats["latency_median_ci95_high_ms"] == 2.0


def test_a_single_sample():
    stats = summarize([3_000_000])
    assert stats["latency_median_ms"] == 3.0 and stats["latency_std_ms"] == 0.0


def test_no_samples_is_an_error():
    with pytest.raises(ValueError):
        summarize([])


@pytest.mark.parametrize("n, ranks", [(5, (0, 4)), (6, (0, 5)), (10, (1, 8)), (100, (39, 60)), (1000, (468, 531))])
def test_median_ci_ranks(n, ranks):
    assert median_ci_ranks(n) == ranks


def test_median_ci_covers_the_true_median_at_least_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_median = np.log(2.0)  # of an exponential distribution with rate 1
    trials, n, covered = 4000, 31, 0
    lo, hi = median_ci_ranks(n)
    for _ in range(trials):
        sample = np.sort(rng.exponential(size=n))
        covered += sample[lo] <= true_median <= sample[hi]
    assert covered / trials >= 0.94  # nominal >= 0.95, minus sampling noise of 4000 trials


def test_normal_approximation_agrees_with_the_exact_ranks_at_the_switch():
    exact_lo, _ = median_ci_ranks(1000)
    approx_lo, _ = median_ci_ranks(1001)
    assert abs(exact_lo - approx_lo) <= 1


def test_drift_compares_the_second_half_with_the_first():
    steady = summarize([10_000_000] * 50)
    slowing = summarize([10_000_000] * 25 + [11_000_000] * 25)
    assert steady["latency_drift"] == 0.0
    assert slowing["latency_drift"] == pytest.approx(0.10)

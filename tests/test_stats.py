"""Statistics on data whose answers are known."""

import csv

import numpy as np
import pytest
from conftest import PLUGINS, results, write_user_backend

from embench.stats import median_ci_ranks, summarize


def ms_samples(values_ms) -> list[int]:
    return [round(ms * 1_000_000) for ms in values_ms]


def test_summary_of_one_to_a_hundred_ms():
    stats = summarize(ms_samples(range(1, 101)))
    assert stats["latency_mean_ms"] == pytest.approx(50.5)
    assert stats["latency_median_ms"] == pytest.approx(50.5)
    assert stats["latency_min_ms"] == 1.0 and stats["latency_max_ms"] == 100.0
    # nearest rank, as LoadGen: the smallest value with at least p % of the sample at or below it
    assert (stats["latency_p90_ms"], stats["latency_p95_ms"], stats["latency_p99_ms"]) == (90.0, 95.0, 99.0)
    assert stats["latency_std_ms"] == pytest.approx(29.011491975882016)  # sample std (n - 1)
    assert stats["latency_cv"] == pytest.approx(29.011491975882016 / 50.5)
    assert stats["latency_iqr_ms"] == 50.0  # nearest-rank quartiles: 75 - 25
    # Textbook 95% CI of the median for n = 100: the 40th and 61st order statistics, coverage 0.9648.
    assert (stats["latency_median_ci95_low_ms"], stats["latency_median_ci95_high_ms"]) == (40.0, 61.0)
    assert stats["latency_median_ci_coverage"] == pytest.approx(0.9648, abs=1e-4)
    assert stats["iterations"] == 100


def test_percentiles_are_nearest_rank_whatever_the_order():
    """Nearest rank is a value of the sample: 20 values 10, 20, ..., 200 shuffled: p90 is the 18th, p95 the 19th."""
    values = [10.0 * k for k in (7, 3, 20, 11, 1, 15, 9, 18, 2, 13, 5, 19, 16, 4, 12, 8, 14, 6, 17, 10)]
    stats = summarize(ms_samples(values))
    assert (stats["latency_p90_ms"], stats["latency_p95_ms"]) == (180.0, 190.0)


def test_fifty_values_hold_no_p99_but_a_p90_and_p95():
    """p99 of 50 values would be their maximum: left out, the maximum kept; p90 and p95 are the 45th and 48th."""
    stats = summarize(ms_samples(range(1, 51)))
    assert "latency_p99_ms" not in stats and stats["latency_max_ms"] == 50.0
    assert (stats["latency_p90_ms"], stats["latency_p95_ms"]) == (45.0, 48.0)


@pytest.mark.parametrize("n, logged", [(9, set()), (10, {"p90"}), (19, {"p90"}), (20, {"p90", "p95"}),
                                       (99, {"p90", "p95"}), (100, {"p90", "p95", "p99"})])
def test_a_percentile_is_logged_only_from_the_sample_that_holds_it(n, logged):
    stats = summarize(ms_samples(range(1, n + 1)))
    assert {name for name in ("p90", "p95", "p99") if f"latency_{name}_ms" in stats} == logged


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_three_timed_calls_give_no_95_percent_interval(n):
    """Below 6 values no interval of order statistics covers the median 95 % of the time: (min, max) covers
    it unless every value falls on one side of it, 1 - 2 * 0.5^n (0.75 at n = 3, protocol=quick)."""
    stats = summarize(ms_samples(range(1, n + 1)))
    assert not [name for name in stats if "ci95" in name]
    assert stats["latency_median_ci_coverage"] == pytest.approx(1 - 2 * 0.5**n)
    assert stats["latency_min_ms"] == 1.0 and stats["latency_max_ms"] == n


def test_six_values_are_the_fewest_with_a_95_percent_interval():
    stats = summarize(ms_samples(range(1, 7)))
    assert (stats["latency_median_ci95_low_ms"], stats["latency_median_ci95_high_ms"]) == (1.0, 6.0)
    assert stats["latency_median_ci_coverage"] == pytest.approx(1 - 2 / 64)


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
    assert median_ci_ranks(n)[:2] == ranks


def test_median_ci_covers_the_true_median_at_least_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_median = np.log(2.0)  # of an exponential distribution with rate 1
    trials, n, covered = 4000, 31, 0
    lo, hi = median_ci_ranks(n)[:2]
    for _ in range(trials):
        sample = np.sort(rng.exponential(size=n))
        covered += sample[lo] <= true_median <= sample[hi]
    assert covered / trials >= 0.94  # nominal >= 0.95, minus sampling noise of 4000 trials


def test_large_samples_get_the_exact_interval_too():
    """Past 1000 values (2^-n underflows a float) the ranks stay exact: n = 10000 by the normal bound
    n/2 -+ 1.96 sqrt(n)/2 = 4902 and 5098 (1-based), 95.0 % to 95.2 % coverage."""
    lo, hi, coverage = median_ci_ranks(10_000)
    assert (lo + 1, hi + 1) in ((4901, 5100), (4902, 5099), (4901, 5099), (4902, 5100))
    assert 0.95 <= coverage < 0.953


def test_drift_compares_the_second_half_with_the_first():
    steady = summarize([10_000_000] * 50)
    slowing = summarize([10_000_000] * 25 + [11_000_000] * 25)
    assert steady["latency_drift"] == 0.0
    assert slowing["latency_drift"] == pytest.approx(0.10)


def test_three_timed_calls_log_no_tail_and_no_95_percent_interval(run_cli, tmp_path):
    """protocol=quick's three 20 ms calls: no p90/p95/p99 and no ci95 in the run, the median interval's coverage
    0.75 (1 - 2 * 0.5^3); the run's line and the sweep's summary show the maximum where the p99 is missing."""
    write_user_backend(tmp_path / "my_conf", "fixed_step", "fixed_step_backend.FixedStep")
    result = run_cli("--config-dir", str(tmp_path / "my_conf"), "-m", "backend=fixed_step", "model=squeezenet1_1",
                     "protocol=quick", "protocol.min_iterations=3", "protocol.max_iterations=3",
                     "protocol.profile_iterations=0", PYTHONPATH=PLUGINS)
    assert result.returncode == 0, result.output
    [record] = results(tmp_path)
    metrics = record["metrics"]
    assert metrics["iterations"] == 3
    assert not [name for name in metrics if name.startswith(("latency_p9", "latency_median_ci95"))], sorted(metrics)
    assert metrics["latency_median_ci_coverage"] == pytest.approx(0.75)
    assert 20.0 <= metrics["latency_max_ms"] < 30.0 and f"max {metrics['latency_max_ms']:.3f}, CV" in result.output
    [summary] = tmp_path.glob("outputs/**/sweep_summary.csv")
    [row] = csv.DictReader(summary.open())
    assert row["p99_ms"] == "" and float(row["median_ms"]) == pytest.approx(metrics["latency_median_ms"])

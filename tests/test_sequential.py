"""Adaptive stop rules against known truths: the precision rule's coverage over 10,000 simulated runs of known
distributions, the warm-up detector on steps whose first calls are slow, and both through the real CLI."""

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import PLUGINS, only_result, write_user_backend

from embench import sequential
from embench.measure import StopRule, time_loop
from embench.stats import median_ci_ranks

RUNS, MAX_ITERATIONS = 10_000, 1000


def simulate(rule: sequential.Plan, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The interval each row (one run's latencies) stops on, and its count, as time_loop decides: at the first look
    where sequential.precise holds, else at the last look (the iteration cap)."""
    runs = draws.shape[0]
    live = np.ones(runs, bool)
    low, high, stopped_at = np.empty(runs), np.empty(runs), np.zeros(runs, int)
    for n in rule.looks:
        rows = np.flatnonzero(live)
        values = draws[rows, :n]
        stop = sequential.precise(values, rule) | (n == rule.looks[-1])
        _, lo, hi, _ = sequential.relative_halfwidth(values[stop], rule.confidence)
        low[rows[stop]], high[rows[stop]], stopped_at[rows[stop]] = lo, hi, n
        live[rows[stop]] = False
        if not live.any():
            break
    return low, high, stopped_at


def coverage(target: float, draws: np.ndarray, median: float, bonferroni: bool,
             last_look: int = MAX_ITERATIONS) -> tuple[float, float]:
    """Share of the runs whose stopped interval holds the true median, and the runs' median count."""
    low, high, stopped_at = simulate(sequential.plan(target, 20, last_look, bonferroni), draws)
    return float(np.mean((low <= median) & (median <= high))), float(np.median(stopped_at))


def lognormal(rng):  # median 1 (exp 0), a network's latencies on a quiet core: CV about 10 %
    return rng.lognormal(0.0, 0.1, (RUNS, MAX_ITERATIONS))


def heavy_tailed(rng):  # 1 + 0.05 |Cauchy|: median 1.05 (tan(pi / 4) = 1), a tail with no mean
    return 1.0 + 0.05 * np.abs(rng.standard_cauchy((RUNS, MAX_ITERATIONS)))


def bimodal(rng):  # two clock states, half the calls each: the true median, 1.05, lies in the gap between them
    fast = rng.random((RUNS, MAX_ITERATIONS)) < 0.5
    return np.where(fast, 1.0, 1.1) + rng.normal(0.0, 0.01, (RUNS, MAX_ITERATIONS))


@pytest.mark.parametrize("distribution, median", [(lognormal, 1.0), (heavy_tailed, 1.05), (bimodal, 1.05)])
def test_stopped_interval_covers_the_true_median_95_percent_of_10000_runs(distribution, median):
    """10,000 runs per distribution, each stopped by the rule's looks at a 2 % target: the interval it stops on holds
    the true median in at least 95 % of them (measured 99.8 %, 99.8 %, 98.4 %). The naive rule, the plain 95 % interval
    at every look, stops on a lucky narrow interval too often and fails the same test (93.8 %, 94.3 %, 72.8 %)."""
    draws = distribution(np.random.default_rng(2023))
    covered, stopped_at = coverage(0.02, draws, median, bonferroni=True)
    assert covered >= 0.95, (covered, stopped_at)
    assert stopped_at < MAX_ITERATIONS or distribution is bimodal  # it stops early where the target is within reach
    naive, _ = coverage(0.02, draws, median, bonferroni=False)
    assert naive < 0.95, naive


@pytest.mark.parametrize("distribution, median", [(lognormal, 1.0), (heavy_tailed, 1.05), (bimodal, 1.05)])
def test_a_schedule_cut_short_by_the_time_cap_covers_too(distribution, median):
    """Looks from 20 to 60 calls only (what a 30 s cap allows at a second a call, sequential.affordable): 7 looks, so
    each at a lower level (99.4 %), and the interval the rule stops on still holds the true median 95 % of the time."""
    draws = distribution(np.random.default_rng(7))[:, :60]
    covered, _ = coverage(0.02, draws, median, bonferroni=True, last_look=60)
    assert covered >= 0.95, covered


def test_the_last_look_is_where_the_time_cap_stops_the_loop_at_the_warm_ups_pace():
    assert sequential.affordable(100_000, 30.0, 1.0) == 60  # twice the 30 calls of a second that 30 s hold
    assert sequential.affordable(100_000, 30.0, 0.001) == 60_000
    assert sequential.affordable(1000, 30.0, 0.001) == 1000  # the iteration cap comes first
    assert sequential.affordable(100_000, 30.0, 10.0) == 20  # never below the first look
    assert sequential.affordable(100_000, 30.0, 0.0) == 100_000  # no warm-up call: no pace


def test_looks_are_geometric_from_the_floor_to_the_cap_and_their_level_bonferroni():
    looks = sequential.schedule(50, 100_000)
    assert looks[0] == 50 and looks[-1] == 100_000 and looks == tuple(sorted(set(looks)))
    assert all(later <= max(earlier + 1, np.ceil(earlier * 1.2)) for earlier, later in zip(looks, looks[1:]))
    rule = sequential.plan(0.01, 50, 100_000)
    assert rule.confidence == pytest.approx(1 - 0.05 / (len(looks) + 1)) and len(looks) < 50
    assert sequential.schedule(1, 10) == (10,)  # a cap below the first look: one look, at the cap


def test_interval_is_the_order_statistics_interval_of_the_median():
    values = np.arange(1.0, 101.0)[::-1].copy()  # 1..100 in reverse: the ranks must sort them
    lo, hi, level = median_ci_ranks(100, 0.99)
    median, low, high, covers = sequential.interval(values, 0.99)
    assert (median, low, high, covers) == (50.5, lo + 1.0, hi + 1.0, level)
    relative, *_ = sequential.relative_halfwidth(values, 0.99)
    assert relative == pytest.approx((hi - lo) / 2 / 50.5)


def test_windows_settle_after_the_slow_calls_and_not_on_a_trend():
    slow_then_fast = [5.0] * 20 + [1.0] * 40
    ends = [n for n in range(1, 61) if sequential.settled(slow_then_fast[:n], 20, 0.02)]
    assert ends[0] == 51  # 20 slow, then 31 fast: the earlier window's median is fast once 11 of its 20 calls are
    trend = list(1.01 ** np.arange(200))  # 1 % slower each call: successive windows always differ by 22 %
    assert not any(sequential.settled(trend[:n], 20, 0.02) for n in range(1, 201))


def busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def rule(**overrides) -> StopRule:
    base = dict(warmup_iterations=1, warmup_duration_s=0.0, min_iterations=10, min_duration_s=0.0,
                max_iterations=1000, max_duration_s=5.0, warmup="detect", warmup_window=20, warmup_tolerance=0.02)
    return StopRule(**{**base, **overrides})


def test_detected_warm_up_ends_after_the_slow_calls():
    """The first 20 calls take 5 ms, the rest 1 ms: the cold call and 19 warm-up calls are slow, and the windows of 20
    agree from 50 warm-up calls (11 fast in the earlier window). No timed call is a slow one."""
    calls = []

    def step():
        busy_wait(0.005 if len(calls) < 20 else 0.001)
        calls.append(1)

    timing = time_loop(step, lambda: None, rule())
    assert timing.warmup_end == "settled"
    assert 19 <= timing.warmup_iterations <= 19 + 40, timing.warmup_iterations
    assert max(timing.latencies_ns) < 4e6


def test_warm_up_windows_of_slow_calls_are_shorter():
    """40 ms calls: a window is the 12 calls that 0.5 s holds (not 20), so warm-up settles after about 24 calls, not
    40; the first two calls (80 ms) fall in the earlier window and leave its median alone."""
    assert (sequential.window(0.001, 20), sequential.window(0.04, 20), sequential.window(1.0, 20)) == (20, 12, 3)
    calls = []

    def step():
        busy_wait(0.08 if len(calls) < 3 else 0.04)
        calls.append(1)

    timing = time_loop(step, lambda: None, rule(max_iterations=100, min_iterations=1))
    assert timing.warmup_end == "settled" and 2 * 10 <= timing.warmup_iterations <= 2 * 13, timing.warmup_iterations


def test_warm_up_that_never_settles_ends_at_a_cap_and_says_so():
    calls = []

    def slowing():  # 1 % slower each call, from 0.2 ms
        busy_wait(0.0002 * 1.01 ** len(calls))
        calls.append(1)

    by_count = time_loop(slowing, lambda: None, rule(max_iterations=150, min_iterations=1))
    assert (by_count.warmup_end, by_count.warmup_iterations) == ("cap max_iterations", 150)
    calls.clear()
    by_time = time_loop(slowing, lambda: None, rule(max_iterations=100_000, max_duration_s=0.1, min_iterations=1))
    assert by_time.warmup_end == "cap max_duration_s" and by_time.warmup_ns >= 0.1e9


def test_fixed_warm_up_ends_at_its_floors():
    timing = time_loop(lambda: None, lambda: None, rule(warmup="fixed", warmup_iterations=7))
    assert (timing.warmup_end, timing.warmup_iterations) == ("fixed", 7)


def test_target_stops_a_steady_loop_at_the_first_look_and_a_noisy_one_at_the_cap():
    steady = time_loop(lambda: busy_wait(0.001), lambda: None, rule(target_ci=0.05, min_iterations=20))
    assert steady.stop_reason == "target_ci_reached" and len(steady.latencies_ns) == 20  # the first look
    assert steady.precision.reached and steady.precision.relative_halfwidth <= 0.05
    assert steady.precision.low_ns <= np.median(steady.latencies_ns) <= steady.precision.high_ns
    rng = np.random.default_rng(0)
    noisy = time_loop(lambda: busy_wait(0.0005 * rng.lognormal(0.0, 1.0)), lambda: None,
                      rule(target_ci=0.01, max_duration_s=0.3))
    assert noisy.stop_reason == "max_duration_s" and not noisy.precision.reached
    assert noisy.precision.relative_halfwidth > 0.01 and noisy.loop_ns >= 0.3e9


def test_the_check_costs_little(record_property):
    """A look at 1,000 and at 100,000 latencies: well under a millisecond and 20 ms (measured 37 us and 4.3 ms)."""
    rule = sequential.plan(0.01, 50, 100_000)
    for n, limit_s in ((1000, 1e-3), (100_000, 20e-3)):
        latencies = [int(x) for x in np.random.default_rng(0).lognormal(15.0, 0.1, n)]
        best = min(_timed(lambda: sequential.precise(np.asarray(latencies, np.float64), rule)) for _ in range(5))
        record_property(f"check_s_{n}", best)
        assert best < limit_s, (n, best)


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def cli_run(run_cli, tmp_path, backend: str, target: str, *overrides: str):
    write_user_backend(tmp_path / "my_conf", backend, target)
    return run_cli("--config-dir", str(tmp_path / "my_conf"), f"backend={backend}", "model=squeezenet1_1",
                   "protocol=adaptive", "protocol.profile_iterations=0", *overrides, PYTHONPATH=PLUGINS)


@pytest.mark.slow  # about 12 s and 10 s on 2 shared cores, most of it the CLI's start-up
def test_adaptive_protocol_stops_a_steady_backend_early(run_cli, tmp_path):
    """20 ms steps (no spread): the first look past the floors (20 calls and 0.5 s), 29 calls in 0.6 s, reaches +-1 %,
    where the fixed `latency` rule would time 5 s and the cap is 60 s. Warm-up settles after its two windows of 20."""
    result = cli_run(run_cli, tmp_path, "fixed_step", "fixed_step_backend.FixedStep")
    assert result.returncode == 0, result.output
    record = only_result(tmp_path)
    metrics, tags = record["metrics"], record["tags"]
    assert tags["precision_target"] == "reached" and tags["stop_reason"] == "target_ci_reached"
    assert metrics["iterations"] == 29 and metrics["measure_s"] < 1.5
    assert metrics["latency_median_ci_rel_halfwidth"] <= 0.01
    assert metrics["latency_median_ci_seq_low_ms"] <= metrics["latency_median_ms"] <= metrics["latency_median_ci_seq_high_ms"]
    assert metrics["latency_median_ci_seq_level"] > 0.998
    assert tags["warmup_end"] == "settled" and 40 <= metrics["warmup_iterations"] < 60


@pytest.mark.slow  # about 12 s and 10 s on 2 shared cores, most of it the CLI's start-up
def test_adaptive_protocol_on_a_noisy_backend_reaches_the_cap_and_says_so(run_cli, tmp_path):
    result = cli_run(run_cli, tmp_path, "noisy_step", "noisy_step_backend.NoisyStep", "protocol.max_duration_s=1.5")
    assert result.returncode == 0, result.output
    record = only_result(tmp_path)
    assert record["tags"]["precision_target"] == "not reached: cap max_duration_s"
    assert record["metrics"]["latency_median_ci_rel_halfwidth"] > 0.01
    assert 1.5 <= record["metrics"]["measure_s"] < 3.0
    [warning] = [line for line in result.output.splitlines() if "precision target not reached" in line]
    assert "protocol.target_ci=0.01" in warning and "max_duration_s" in warning


@pytest.mark.parametrize("setting, valid", [("protocol.target_ci=0", "> 0 and <= 0.5"),
                                            ("protocol.warmup=always", "valid: fixed, detect")])
def test_bad_settings_are_one_line_errors(run_cli, tmp_path, setting, valid):
    result = run_cli("model=squeezenet1_1", "protocol=adaptive", setting)
    assert result.returncode == 2
    [line] = [line for line in result.output.splitlines() if line.startswith("embench: error:")]
    assert setting.split("=")[0] in line and valid in line, line


def test_target_needs_latency_mode(run_cli, tmp_path):
    result = run_cli("model=squeezenet1_1", "protocol=throughput", "protocol.target_ci=0.01")
    assert result.returncode == 2 and "protocol.target_ci=0.01 needs protocol.mode=latency" in result.output


def test_the_study_measures_to_a_target_and_latency_and_paper_keep_their_fixed_rules():
    """experiment=embench2019 gets the adaptive rules with no flag; protocol=latency and protocol=paper do not."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from embench.scenarios import own_loop

    conf = str(Path(__file__).parent.parent / "conf")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=conf, version_base="1.3"):
            study = compose(config_name="config", overrides=["experiment=embench2019"])
            fixed = [compose(config_name="config", overrides=["experiment=embench2019", f"protocol={name}"])
                     for name in ("latency", "paper")]
    finally:
        GlobalHydra.instance().clear()
    assert (study.protocol.name, study.protocol.target_ci, study.protocol.warmup) == ("study", 0.01, "detect")
    assert study.protocol.max_duration_s == 30.0 and own_loop(study.scenario, study.protocol)  # not LoadGen's rules
    assert [(cfg.protocol.target_ci, cfg.protocol.warmup) for cfg in fixed] == [(None, "fixed")] * 2

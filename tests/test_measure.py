"""The timed loop against synthetic work of known duration, and its stop rule."""

import time

import pytest

from embench.measure import StopRule, time_loop
from embench.stats import summarize


def busy_wait(seconds: float):
    def step():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    return step


def rule(**overrides) -> StopRule:
    base = dict(
        warmup_iterations=2, warmup_duration_s=0.0, min_iterations=10, min_duration_s=0.0,
        max_iterations=1000, max_duration_s=10.0,
    )
    base.update(overrides)
    return StopRule(**base)


def test_median_of_a_2ms_busy_wait_is_2ms():
    timing = time_loop(busy_wait(0.002), lambda: None, rule(min_iterations=200))
    median = summarize(timing.latencies_ns)["latency_median_ms"]
    assert median == pytest.approx(2.0, rel=0.03)


def test_loop_runs_until_both_minimums_are_reached():
    timing = time_loop(busy_wait(0.001), lambda: None, rule(min_iterations=5, min_duration_s=0.1))
    assert len(timing.latencies_ns) >= 5
    assert sum(timing.latencies_ns) >= 0.1e9
    assert timing.stop_reason == "minimums_reached"


def test_max_iterations_caps_the_loop():
    timing = time_loop(lambda: None, lambda: None, rule(min_iterations=50, max_iterations=50, min_duration_s=5.0))
    assert len(timing.latencies_ns) == 50
    assert timing.stop_reason == "max_iterations"


def test_max_duration_caps_the_loop_before_min_iterations():
    timing = time_loop(busy_wait(0.01), lambda: None, rule(min_iterations=1000, max_duration_s=0.1))
    assert 5 <= len(timing.latencies_ns) < 1000
    assert timing.stop_reason == "max_duration_s"


def test_warmup_and_first_inference_are_apart_from_the_timed_loop():
    calls = []
    timing = time_loop(lambda: calls.append(1), lambda: None, rule(warmup_iterations=7, min_iterations=10, max_iterations=10))
    assert timing.warmup_iterations == 7
    assert len(calls) == 1 + 7 + 10  # first inference, warm-up, timed


def test_warmup_runs_for_its_minimum_duration():
    timing = time_loop(busy_wait(0.001), lambda: None, rule(warmup_iterations=1, warmup_duration_s=0.05))
    assert timing.warmup_ns >= 0.05e9 and timing.warmup_iterations > 1


def test_latency_mode_syncs_every_iteration_and_throughput_mode_once():
    syncs = []
    latency = time_loop(lambda: None, lambda: syncs.append(1), rule(warmup_iterations=0, min_iterations=20, max_iterations=20))
    assert len(syncs) == 1 + 20 + 1 and len(latency.latencies_ns) == 20  # first, each timed, end of loop
    syncs.clear()
    time_loop(lambda: None, lambda: syncs.append(1), rule(warmup_iterations=0, min_iterations=20, max_iterations=20, sync_each_iteration=False))
    assert len(syncs) == 2  # first inference and end of loop


def test_first_inference_is_timed():
    state = {"first": True}

    def step():
        busy_wait(0.02 if state["first"] else 0.001)()
        state["first"] = False

    timing = time_loop(step, lambda: None, rule())
    assert timing.first_ns >= 0.02e9
    assert max(timing.latencies_ns) < 0.02e9


def test_warmup_is_capped_by_max_duration_too():
    """A slow network does not spend longer warming up than measuring may take."""
    timing = time_loop(busy_wait(0.02), lambda: None, rule(warmup_iterations=1000, max_duration_s=0.1, min_iterations=1))
    assert timing.warmup_ns < 0.15e9 and timing.warmup_iterations < 10


class WindowMeter:
    """Records when it was entered and left, like the energy and contention meters."""

    def __enter__(self):
        self.entered = time.perf_counter_ns()
        return self

    def __exit__(self, *exc):
        self.left = time.perf_counter_ns()


def test_meters_cover_the_timed_loop_and_not_the_warm_up():
    """Energy divided by the timed loop must be metered over the timed loop: 0.2 s of warm-up stays out."""
    meter = WindowMeter()
    timing = time_loop(busy_wait(0.01), lambda: None, rule(warmup_iterations=20, min_iterations=10, max_iterations=10),
                       meters=(meter,))
    assert timing.warmup_ns >= 0.2e9
    assert abs((meter.left - meter.entered) - timing.loop_ns) < 0.005e9


def test_cooloff_pauses_outside_the_timed_window():
    """1 ms steps with 20 ms pauses: no pause in any latency, in the loop's time or in the stop rule's duration."""
    timing = time_loop(busy_wait(0.001), lambda: None, rule(warmup_iterations=0, min_iterations=10, max_iterations=10,
                                                            cooloff_s=0.02))
    assert len(timing.latencies_ns) == 10 and max(timing.latencies_ns) < 0.01e9
    assert timing.loop_ns < 0.05e9  # 9 pauses of 20 ms happened, none is counted
    short = time_loop(busy_wait(0.001), lambda: None, rule(warmup_iterations=0, min_iterations=1, min_duration_s=0.03,
                                                           max_iterations=1000, cooloff_s=0.005))
    assert len(short.latencies_ns) >= 25  # 30 ms of timed 1 ms steps, however long the pauses took

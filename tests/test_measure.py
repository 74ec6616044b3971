"""The timed loop against synthetic work of known duration, and its stop rule."""

import time

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
    """Each step spins until 2 ms have passed, so none is timed shorter; the timed steps fit in the wall time
    around the call, whatever else the host runs. A loop that mis-scaled or double-counted a step fails."""
    started = time.perf_counter_ns()
    timing = time_loop(busy_wait(0.002), lambda: None, rule(min_iterations=200))
    wall_ns = time.perf_counter_ns() - started
    median = summarize(timing.latencies_ns)["latency_median_ms"]
    assert min(timing.latencies_ns) >= 1.999e6 and 2.0 <= median < 4.0, median
    assert timing.first_ns + timing.warmup_ns + sum(timing.latencies_ns) <= wall_ns


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
    assert len(timing.latencies_ns) <= 10 and timing.loop_ns >= 0.1e9  # 10 ms steps: 0.1 s holds 10 at most
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
        busy_wait(0.5 if state["first"] else 0.001)()
        state["first"] = False

    timing = time_loop(step, lambda: None, rule())
    assert timing.first_ns >= 0.5e9
    assert max(timing.latencies_ns) < 0.5e9  # 1 ms steps: even a busy host's pre-emptions stay far below 0.5 s


def test_warmup_is_capped_by_max_duration_too():
    """A slow network does not spend longer warming up than measuring may take."""
    timing = time_loop(busy_wait(0.02), lambda: None, rule(warmup_iterations=1000, max_duration_s=0.1, min_iterations=1))
    assert timing.warmup_ns >= 0.1e9 and timing.warmup_iterations <= 5  # 5 steps of 20 ms or more fill 0.1 s


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
    started = time.perf_counter_ns()
    timing = time_loop(busy_wait(0.01), lambda: None, rule(warmup_iterations=20, min_iterations=10, max_iterations=10),
                       meters=(meter,))
    assert timing.warmup_ns >= 0.2e9
    assert meter.entered - started >= timing.first_ns + timing.warmup_ns  # entered after the warm-up...
    assert timing.loop_ns <= meter.left - meter.entered < timing.loop_ns + 0.2e9  # ...and it holds the timed loop


def test_cooloff_pauses_outside_the_timed_window():
    """10 ms steps with 200 ms pauses: no pause in any latency, in the loop's time or in the stop rule's duration.
    The pauses (sleeps never end early) fill at least 1.8 s of the wall time; the loop's time is its steps'."""
    started = time.perf_counter_ns()
    timing = time_loop(busy_wait(0.01), lambda: None, rule(warmup_iterations=0, min_iterations=10, max_iterations=10,
                                                           cooloff_s=0.2))
    wall_ns = time.perf_counter_ns() - started
    assert len(timing.latencies_ns) == 10 and min(timing.latencies_ns) >= 0.01e9
    assert wall_ns >= 10 * 0.01e9 + 9 * 0.2e9  # the 9 pauses happened...
    assert sum(timing.latencies_ns) <= timing.loop_ns <= wall_ns - 9 * 0.2e9  # ...and none is counted
    assert max(timing.latencies_ns) < 0.2e9  # no latency holds a pause
    short = time_loop(busy_wait(0.001), lambda: None, rule(warmup_iterations=0, min_iterations=1, min_duration_s=0.03,
                                                           max_iterations=1000, cooloff_s=0.005))
    # 30 ms of timed steps, however long the pauses took (counting the pauses would stop it after about 5 steps)
    assert short.loop_ns >= 0.03e9 and short.stop_reason == "minimums_reached"

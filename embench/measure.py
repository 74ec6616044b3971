"""The timed loop: first inference, warm-up, then timed iterations until the stop rule is met."""

import time
from collections import deque
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from embench import sequential

_NS = 1_000_000_000


@dataclass(frozen=True)
class StopRule:
    """When warm-up and the timed loop end (see conf/protocol/*.yaml)."""

    warmup_iterations: int
    warmup_duration_s: float
    min_iterations: int
    min_duration_s: float
    max_iterations: int
    max_duration_s: float
    sync_each_iteration: bool = True
    cooloff_s: float = 0.0  # pause after each timed iteration, outside the timed window (the paper's 2 s)
    target_ci: float | None = None  # stop at this relative half-width of the median's interval (embench.sequential)
    warmup: str = "fixed"  # fixed: the floors end it | detect: it ends when two successive windows agree
    warmup_window: int = 20  # calls per window (detect)
    warmup_tolerance: float = 0.02  # the largest relative difference of the windows' medians (detect)

    @classmethod
    def from_protocol(cls, protocol) -> "StopRule":
        return cls(
            warmup_iterations=int(protocol.warmup_iterations),
            warmup_duration_s=float(protocol.warmup_duration_s),
            min_iterations=int(protocol.min_iterations),
            min_duration_s=float(protocol.min_duration_s),
            max_iterations=int(protocol.max_iterations),
            max_duration_s=float(protocol.max_duration_s),
            sync_each_iteration=protocol.mode == "latency",
            cooloff_s=float(protocol.cooloff_s),
            target_ci=protocol.get("target_ci"),  # a user's own protocol written before these keys: the fixed rules
            warmup=protocol.get("warmup", "fixed"),
            warmup_window=int(protocol.get("warmup_window", 20)),
            warmup_tolerance=float(protocol.get("warmup_tolerance", 0.02)),
        )


@dataclass(frozen=True)
class Precision:
    """The interval of the median the precision rule stopped on (embench.sequential), in nanoseconds."""

    target: float
    confidence: float  # its nominal level at each look: 1 - 0.05 / looks
    looks: int
    low_ns: float
    high_ns: float
    relative_halfwidth: float  # (high - low) / 2 / the sample median
    reached: bool


@dataclass
class Timing:
    """Raw timings of one measurement, in nanoseconds of the monotonic clock."""

    first_ns: int
    warmup_iterations: int
    warmup_ns: int
    latencies_ns: list[int] = field(default_factory=list)
    loop_ns: int = 0  # wall time of the whole timed loop, for back-to-back throughput
    stop_reason: str = ""
    warmup_end: str = ""  # fixed (the floors, or max_duration_s) | detect: settled, cap max_duration_s, cap max_iterations
    pace_ns: float = 0.0  # median of the warm-up's last window of calls (0: no warm-up call)
    precision: Precision | None = None  # under protocol.target_ci


def _warm_up(step: Callable[[], object], sync: Callable[[], None], rule: StopRule) -> tuple[int, int, str, float]:
    """Runs the step until its floors, warmup_iterations and warmup_duration_s, are reached (`fixed`), and under
    `detect` until two successive windows of calls agree too (embench.sequential.settled, windows of
    sequential.window calls); at most max_duration_s (and max_iterations under `detect`). Returns the calls, their
    time, how warm-up ended and the pace of its last window (ns a call)."""
    clock = time.perf_counter_ns
    start = clock()
    min_ns, max_ns = int(rule.warmup_duration_s * _NS), int(rule.max_duration_s * _NS)
    detect = rule.warmup == "detect"
    recent: deque[int] = deque(maxlen=2 * rule.warmup_window)  # the last two windows' call times (detect)
    count = 0

    def pace() -> float:
        return float(np.median(list(recent)[-rule.warmup_window:])) if recent else 0.0

    while True:
        elapsed = clock() - start
        if elapsed >= max_ns:
            return count, elapsed, "cap max_duration_s" if detect else "fixed", pace()
        if count >= rule.warmup_iterations and elapsed >= min_ns:
            if not detect:
                return count, elapsed, "fixed", pace()
            window = sequential.window(pace() / _NS, rule.warmup_window)
            if sequential.settled(list(recent), window, rule.warmup_tolerance):
                return count, elapsed, "settled", pace()
        if detect and count >= rule.max_iterations:
            return count, elapsed, "cap max_iterations", pace()
        before = clock()
        step()
        sync()
        recent.append(clock() - before)
        count += 1


def stop_reason(count: int, elapsed_ns: int, rule: StopRule) -> str:
    if count >= rule.max_iterations:
        return "max_iterations"
    if elapsed_ns >= rule.max_duration_s * _NS:
        return "max_duration_s"
    if count >= rule.min_iterations and elapsed_ns >= rule.min_duration_s * _NS:
        return "minimums_reached"
    return ""


def cold_start(step: Callable[[], object], sync: Callable[[], None], rule: StopRule) -> Timing:
    """Times the first call of `step` apart, then warms up as the rule says; no timed iterations yet."""
    clock = time.perf_counter_ns
    start = clock()
    step()
    sync()
    first_ns = clock() - start
    warmup_count, warmup_ns, warmup_end, pace_ns = _warm_up(step, sync, rule)
    return Timing(first_ns=first_ns, warmup_iterations=warmup_count, warmup_ns=warmup_ns, warmup_end=warmup_end,
                  pace_ns=pace_ns)


def time_loop(step: Callable[[], object], sync: Callable[[], None], rule: StopRule,
              meters: Sequence[AbstractContextManager] = ()) -> Timing:
    """Times `step` (one inference) as the rule says; `sync` waits for the device to finish.

    The first inference is timed apart from the steady state. In latency mode every iteration
    is synchronised and timed on its own; in throughput mode iterations run back to back and
    only the end of the loop is synchronised, so per-iteration times are enqueue-to-enqueue.
    `meters` (energy, other processes' CPU) are entered and left around the timed loop alone.
    With `rule.target_ci` the floors are min_iterations and min_duration_s, and past them the loop stops at the
    first scheduled look whose interval of the median is that narrow (embench.sequential; the looks end where the
    time cap would stop the loop at the warm-up's pace), or at a cap.
    """
    clock = time.perf_counter_ns
    started = cold_start(step, sync, rule)

    latencies: list[int] = []
    append = latencies.append
    per_iteration_sync = sync if rule.sync_each_iteration else (lambda: None)
    min_iterations, max_iterations = rule.min_iterations, rule.max_iterations
    min_ns, max_ns = int(rule.min_duration_s * _NS), int(rule.max_duration_s * _NS)
    target = None
    if rule.target_ci:
        last_look = sequential.affordable(max_iterations, rule.max_duration_s, started.pace_ns / _NS)
        target = sequential.plan(rule.target_ci, min_iterations, last_look)
    looks = iter(target.looks if target else ())
    next_look = next(looks, 0)
    reached = False
    paused_ns = 0  # cool-offs and the precision checks: neither timed nor counted towards the durations
    with ExitStack() as metered:
        for meter in meters:
            metered.enter_context(meter)
        loop_start = before = clock()
        while True:
            step()
            per_iteration_sync()
            after = clock()
            append(after - before)
            count, elapsed = len(latencies), after - loop_start - paused_ns
            if count >= max_iterations or elapsed >= max_ns:
                break
            if target is None and count >= min_iterations and elapsed >= min_ns:
                break
            paused = count == next_look or rule.cooloff_s
            if count == next_look:
                next_look = next(looks, 0)
                reached = elapsed >= min_ns and bool(sequential.precise(np.asarray(latencies, np.float64), target))
            if rule.cooloff_s and not reached:
                time.sleep(rule.cooloff_s)
            before = clock()
            if paused:
                paused_ns += before - after
            if reached:
                break
        sync()
        loop_ns = clock() - loop_start - paused_ns
    started.latencies_ns, started.loop_ns = latencies, loop_ns
    started.stop_reason = "target_ci_reached" if reached else stop_reason(len(latencies), elapsed, rule)
    if target:
        started.precision = _precision(latencies, target)
    return started


def _precision(latencies_ns: list[int], target: sequential.Plan) -> Precision:
    """The interval the rule reports: the last look's, or at a cap the final count's (one more look in its level);
    with too few calls for that level, (min, max), and the target is not reached."""
    relative, low, high, reaches = sequential.relative_halfwidth(np.asarray(latencies_ns, np.float64), target.confidence)
    return Precision(target=target.target, confidence=target.confidence, looks=len(target.looks) + 1,
                     low_ns=float(low), high_ns=float(high), relative_halfwidth=float(relative),
                     reached=bool(reaches and relative <= target.target))

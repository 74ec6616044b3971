"""The timed loop: first inference, warm-up, then timed iterations until the stop rule is met."""

import time
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Callable, Sequence

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
        )


@dataclass
class Timing:
    """Raw timings of one measurement, in nanoseconds of the monotonic clock."""

    first_ns: int
    warmup_iterations: int
    warmup_ns: int
    latencies_ns: list[int] = field(default_factory=list)
    loop_ns: int = 0  # wall time of the whole timed loop, for back-to-back throughput
    stop_reason: str = ""


def _warm_up(step: Callable[[], object], sync: Callable[[], None], rule: StopRule) -> tuple[int, int]:
    """Runs the step until both the warm-up count and duration are reached, or max_duration_s."""
    clock = time.perf_counter_ns
    start = clock()
    min_ns, max_ns = int(rule.warmup_duration_s * _NS), int(rule.max_duration_s * _NS)
    count = 0
    while (count < rule.warmup_iterations or clock() - start < min_ns) and clock() - start < max_ns:
        step()
        sync()
        count += 1
    return count, clock() - start


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
    warmup_count, warmup_ns = _warm_up(step, sync, rule)
    return Timing(first_ns=first_ns, warmup_iterations=warmup_count, warmup_ns=warmup_ns)


def time_loop(step: Callable[[], object], sync: Callable[[], None], rule: StopRule,
              meters: Sequence[AbstractContextManager] = ()) -> Timing:
    """Times `step` (one inference) as the rule says; `sync` waits for the device to finish.

    The first inference is timed apart from the steady state. In latency mode every iteration
    is synchronised and timed on its own; in throughput mode iterations run back to back and
    only the end of the loop is synchronised, so per-iteration times are enqueue-to-enqueue.
    `meters` (energy, other processes' CPU) are entered and left around the timed loop alone.
    """
    clock = time.perf_counter_ns
    started = cold_start(step, sync, rule)

    latencies: list[int] = []
    append = latencies.append
    per_iteration_sync = sync if rule.sync_each_iteration else (lambda: None)
    min_iterations, max_iterations = rule.min_iterations, rule.max_iterations
    min_ns, max_ns = int(rule.min_duration_s * _NS), int(rule.max_duration_s * _NS)
    cooled_ns = 0  # time spent cooling off: neither timed nor counted towards the durations
    with ExitStack() as metered:
        for meter in meters:
            metered.enter_context(meter)
        loop_start = before = clock()
        while True:
            step()
            per_iteration_sync()
            after = clock()
            append(after - before)
            count, elapsed = len(latencies), after - loop_start - cooled_ns
            if count >= max_iterations or elapsed >= max_ns or (count >= min_iterations and elapsed >= min_ns):
                break
            if rule.cooloff_s:
                time.sleep(rule.cooloff_s)
                cooled_ns += clock() - after
            before = clock()
        sync()
        loop_ns = clock() - loop_start - cooled_ns
    started.latencies_ns, started.loop_ns = latencies, loop_ns
    started.stop_reason = stop_reason(len(latencies), elapsed, rule)
    return started

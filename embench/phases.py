"""Where a job's wall time goes: each phase's time as a metric, and the time no phase holds.

A job's phases, in the order they run, are the metrics of PHASES (prepare_s includes build_s: it is the time
from the model's constructor to a prepared backend). `job_wall_s` is the job's whole time, from the moment
its process was asked for (a sweep's job) or its measurement began (a single run) to its result in hand, and
`outside_phases_s` is the part of it no phase holds: logging lines, meters, the hand-off.
"""

import time
from contextlib import contextmanager

PHASES = ("job_start_s", "preflight_s", "prepare_s", "memory_reset_s", "first_inference_ms", "warmup_s",
          "measure_s", "check_s", "efficiency_s", "profile_s", "accuracy_s")
MEASURING = ("prepare_s", "first_inference_ms", "warmup_s", "measure_s", "check_s", "profile_s", "accuracy_s")
JOB_WALL = "job_wall_s"
OUTSIDE = "outside_phases_s"


def seconds(metrics: dict, names: tuple[str, ...]) -> float:
    """The time of the named phases, in seconds (a phase in ms is converted)."""
    return sum(metrics.get(name, 0.0) / (1e3 if name.endswith("_ms") else 1.0) for name in names)


@contextmanager
def phase(metrics: dict, name: str):
    """Adds the time of the block to metrics[name] (seconds)."""
    start = time.monotonic()
    try:
        yield
    finally:
        metrics[name] = metrics.get(name, 0.0) + time.monotonic() - start


def close(metrics: dict, started: float) -> None:
    """The job's wall time since `started` (time.monotonic) and what of it lies outside every phase."""
    metrics[JOB_WALL] = time.monotonic() - started
    metrics[OUTSIDE] = metrics[JOB_WALL] - seconds(metrics, PHASES)

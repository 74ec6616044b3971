"""The highest Poisson arrival rate at which the server scenario stays valid, by bisection over LoadGen runs."""

from typing import Callable

import numpy as np

from embench.scenarios.loadgen import LoadGenRun


def find_max_qps(test_at: Callable[[float], LoadGenRun], capacity_qps: float, runs: int, latency_bound_s: float,
                 lowest_qps: float) -> tuple[list[LoadGenRun], str]:
    """LoadGen runs at probed rates in the order they ran, and why the search stopped.

    The first probe is the workers' capacity (workers / one warm step's time). While every probe is
    valid the rate doubles; after the first invalid one, each probe bisects the highest valid rate
    and the lowest invalid one. It stops after `runs` probes; when a probe's median step is slower
    than the bound (half of all queries then miss it at any rate); or below `lowest_qps`, where a
    probe cannot issue its minimum query count within the protocol's longest run.
    """
    done: list[LoadGenRun] = []
    valid, invalid = 0.0, None
    qps = capacity_qps
    while True:
        run = test_at(qps)
        done.append(run)
        if run.valid:
            valid = max(valid, qps)
        else:
            invalid = qps if invalid is None else min(invalid, qps)
        if run.service_ns and np.median(run.service_ns) / 1e9 > latency_bound_s:
            return done, "a step's median time is over the latency bound"
        if len(done) == runs:
            return done, f"scenario.search_runs={runs} probes run"
        qps = 2 * qps if invalid is None else (valid + invalid) / 2
        if qps < lowest_qps:
            return done, f"the next rate, {qps:.3g} QPS, cannot reach the minimum query count within protocol.max_duration_s"


def max_valid_qps(runs: list[LoadGenRun]) -> float:
    """The highest rate LoadGen found valid, 0 when none was."""
    return max((run.target_qps for run in runs if run.valid), default=0.0)

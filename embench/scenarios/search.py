"""The highest Poisson arrival rate at which the server scenario stays valid, by bisection over LoadGen runs."""

from typing import Callable

import numpy as np

from embench.scenarios.loadgen import LoadGenRun

P99_QUERIES_WITH_NONE_OVER = 459  # LoadGen's early stopping at p99: fewer queries than this are valid only with none over


def latency_missed(run: LoadGenRun) -> bool:
    """Whether the run failed on latency: its p99 over the bound, or queries over the bound that early stopping
    could not clear. A run invalid only for its length (too short, too few queries to clear none) did not."""
    values = run.values
    over = int(values.get("result_overlatency_query_count", 0))
    return values.get("result_perf_constraints_met") is False or (values.get("early_stopping_met") is False and over > 0)


def _length_unmet(run: LoadGenRun) -> str:
    unmet = [name for key, name in (("result_min_duration_met", "min_duration"), ("result_min_queries_met", "min_queries"))
             if run.values.get(key) is False]
    return ", ".join(unmet) or f"early stopping: no query over the bound, fewer than {P99_QUERIES_WITH_NONE_OVER} queries"


def bound_rule(run: LoadGenRun, latency_bound_ms: float) -> str:
    """What LoadGen's validity asked of the run's latency, in words."""
    if int(run.values.get("result_query_count", 0)) < P99_QUERIES_WITH_NONE_OVER:
        return f"no query over {latency_bound_ms:g} ms: under {P99_QUERIES_WITH_NONE_OVER} queries early stopping allows none"
    return f"p99 within {latency_bound_ms:g} ms by LoadGen's early stopping"


def find_max_qps(test_at: Callable[[float], LoadGenRun], capacity_qps: float, runs: int, latency_bound_s: float,
                 lowest_qps: float) -> tuple[list[LoadGenRun], str]:
    """LoadGen runs at probed rates in the order they ran, and why the search stopped.

    The first probe is the workers' capacity (workers / one warm step's time). While every probe meets the
    latency bound the rate doubles; after the first that misses it, each probe bisects the highest rate that
    met the bound and the lowest that missed it. A probe invalid for another reason (too short, too few
    queries) moves neither: the search then stops and says so, since its verdict on latency is unknown. It
    also stops after `runs` probes; when a probe's median step is slower than the bound (half of all queries
    then miss it at any rate); or below `lowest_qps`, where a probe cannot issue its minimum query count
    within the protocol's longest run.
    """
    done: list[LoadGenRun] = []
    met, missed = 0.0, None
    qps = capacity_qps
    while True:
        run = test_at(qps)
        done.append(run)
        if latency_missed(run):
            missed = qps if missed is None else min(missed, qps)
        elif run.valid:
            met = max(met, qps)
        else:
            return done, f"the probe at {qps:.3g} QPS was invalid for its length ({_length_unmet(run)}), not its " \
                         "latency: lengthen the protocol or raise scenario.min_query_count"
        if run.service_ns and np.median(run.service_ns) / 1e9 > latency_bound_s:
            return done, "a step's median time is over the latency bound"
        if len(done) == runs:
            return done, f"scenario.search_runs={runs} probes run"
        qps = 2 * qps if missed is None else (met + missed) / 2
        if qps < lowest_qps:
            return done, f"the next rate, {qps:.3g} QPS, cannot reach the minimum query count within protocol.max_duration_s"


def max_valid_qps(runs: list[LoadGenRun]) -> float:
    """The highest rate LoadGen found valid, 0 when none was."""
    return max((run.target_qps for run in runs if run.valid), default=0.0)

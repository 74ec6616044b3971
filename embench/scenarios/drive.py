"""A point under its scenario: the backend's cold start and warm-up, then LoadGen's test or tests."""

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Sequence

from omegaconf import DictConfig

from embench.contention import CpuContention
from embench.errors import ConfigError
from embench.measure import StopRule, Timing, cold_start, stop_reason
from embench.scenarios import loadgen, search
from embench.scenarios.loadgen import LoadGenRun


@dataclass
class ScenarioTiming:
    """The cold start and warm-up, every LoadGen run, and the one whose figures are the point's."""

    timing: Timing
    runs: list[LoadGenRun]
    chosen: LoadGenRun
    search_stopped: str = ""  # why the max-QPS search stopped
    other_cpu_cores: float | None = None  # the search's: other processes' CPU, averaged over its LoadGen tests


def worker_steps(prepared, workers: int, backend: str) -> list:
    """One step per worker: the prepared step, then replicas sharing its loaded model."""
    if workers == 1:
        return [prepared]
    replica = getattr(prepared, "replica", None)
    first = replica() if replica else None
    if first is None:
        raise ConfigError(f"scenario.workers={workers} is not valid for backend={backend}: it runs one sample at a "
                          "time in a process (see docs/scenarios.md, Concurrency); use scenario.workers=1")
    return [prepared, first] + [replica() for _ in range(workers - 2)]


def start(steps: list, sync, rule: StopRule) -> Timing:
    """The first step's cold call and warm-up, then each further worker's own warm-up, all before LoadGen starts:
    a replica's first calls (a fresh request's buffers, its thread's first pass) never fall in a timed query."""
    timing = cold_start(steps[0], sync, rule)
    for replica in steps[1:]:
        for _ in range(max(rule.warmup_iterations, 1)):
            replica()
            sync()
    return timing


def warm_step_s(timing: Timing) -> float:
    """One step's time as the warm-up saw it (the cold first call when there was no warm-up)."""
    return timing.warmup_ns / timing.warmup_iterations / 1e9 if timing.warmup_iterations else timing.first_ns / 1e9


def measure(prepared, sync, rule: StopRule, scenario: DictConfig, backend: str,
            meters: Sequence[AbstractContextManager] = ()) -> ScenarioTiming:
    """Warms the backend up, then runs LoadGen: once within `meters`, or as the server's max-QPS search (no energy
    meter; each probe meters other processes' CPU on its own, and the search's figure is their time-weighted mean)."""
    steps = worker_steps(prepared, int(scenario.get("workers", 1)), backend)
    timing = start(steps, sync, rule)
    step_s = warm_step_s(timing)
    if scenario.name == "server" and scenario.find_max_qps:
        lowest_qps = loadgen.min_query_count(scenario, rule) / rule.max_duration_s
        runs, stopped = search.find_max_qps(lambda qps: _probe(scenario, rule, steps, sync, step_s, qps),
                                            len(steps) / step_s, int(scenario.search_runs),
                                            scenario.latency_bound_ms / 1e3, lowest_qps)
        valid = [run for run in runs if run.valid]
        chosen = max(valid, key=lambda run: run.target_qps) if valid else min(runs, key=lambda run: run.target_qps)
        other_cores = sum(run.other_cpu_cores * run.window_ns for run in runs) / max(sum(run.window_ns for run in runs), 1)
    else:
        chosen, stopped, other_cores = loadgen.run(scenario, rule, steps, sync, step_s, meters=meters), "", None
        runs = [chosen]
    timing.latencies_ns, timing.loop_ns = chosen.service_ns, chosen.window_ns
    timing.stop_reason = stop_reason(int(chosen.values.get("result_query_count", 0)), chosen.window_ns, rule)
    return ScenarioTiming(timing, runs, chosen, stopped, other_cores)


def _probe(scenario: DictConfig, rule: StopRule, steps: list, sync, step_s: float, qps: float) -> LoadGenRun:
    """One LoadGen test of the max-QPS search, with the CPU other processes took while it ran."""
    contention = CpuContention()
    run = loadgen.run(scenario, rule, steps, sync, step_s, qps, meters=(contention,))
    run.other_cpu_cores = contention.other_cores
    return run

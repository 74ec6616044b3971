"""A LoadGen run's figures, named for what LoadGen measured: a query's latency runs from its
scheduled issue to its completion, so under load it includes the time the query waited."""

import numpy as np

from embench.contention import BUSY_CORES
from embench.names import (
    ACHIEVED_GFLOPS,
    EARLY_STOPPING_P90_MS,
    FIND_MAX_QPS_PARAM,
    FLOPS,
    HOST_BUSY_TAG,
    HOST_OTHER_CPU_CORES,
    LATENCY_BOUND_MS,
    LOADGEN_UNMET_TAG,
    LOADGEN_VALID,
    LOADGEN_VALIDITY_TAG,
    NESTED_IN_TAG,
    OFFERED_QPS,
    OVER_BOUND_SHARE,
    PARAMS,
    POINT_KEY_TAG,
    QUERY_LATENCY_MS,
    SAMPLES_PER_S,
    SERVICE_TIME_MEDIAN_MS,
    TARGET_QPS_PARAM,
    THROUGHPUT_IPS,
)
from embench.result import RunResult
from embench.scenarios.kinds import KINDS, MLPERF_MIN_DURATION_S
from embench.scenarios.loadgen import LoadGenRun
from embench.stats import tail_percentiles

_PERCENTILES = {"50.00": "p50", "90.00": "p90", "95.00": "p95", "97.00": "p97", "99.00": "p99", "99.90": "p99_9"}
_UNMET = {"result_min_duration_met": "min_duration", "result_min_queries_met": "min_queries",
          "early_stopping_met": "early_stopping", "result_perf_constraints_met": "latency_bound"}


def departures(run: LoadGenRun, scenario, inferences_per_sample: int) -> list[str]:
    """How the run's LoadGen settings (its detail log's effective ones) fall short of MLPerf's run rules."""
    values, found, kind = run.values, [], KINDS[scenario.name]
    duration_s = float(values["effective_min_duration_ms"]) / 1e3
    if duration_s < MLPERF_MIN_DURATION_S:
        found.append(f"min_duration {duration_s:g} s < {MLPERF_MIN_DURATION_S:g} s")
    if kind.mlperf_min_images:
        images = int(values["effective_min_sample_count"]) * inferences_per_sample
        if images < kind.mlperf_min_images:
            found.append(f"min_sample_count {images} images < {kind.mlperf_min_images}")
    elif int(values["effective_min_query_count"]) < kind.mlperf_min_queries:
        found.append(f"min_query_count {values['effective_min_query_count']} < {kind.mlperf_min_queries}")
    if kind.mlperf_samples_per_query and int(values["effective_samples_per_query"]) != kind.mlperf_samples_per_query:
        found.append(f"samples_per_query {values['effective_samples_per_query']} != {kind.mlperf_samples_per_query}")
    return found


def samples_per_s(run: LoadGenRun, scenario) -> float:
    """Samples completed per second, as LoadGen counts them for the scenario."""
    rate_value = KINDS[scenario.name].rate_value
    if rate_value is None:  # multi stream: a query of samples_per_query samples at a time
        return scenario.samples_per_query * 1e9 / float(run.values["result_mean_query_latency_ns"])
    return float(run.values[rate_value])


def record(result: RunResult, run: LoadGenRun, scenario, inferences_per_sample: int) -> None:
    """LoadGen's percentiles, validity and early-stopping estimates; the scenario's rate."""
    values, metrics = run.values, result.metrics
    per_query = "per_query_" if KINDS[scenario.name].per_query else ""  # its plain percentiles are per sample
    for percentile, name in _PERCENTILES.items():
        metrics[QUERY_LATENCY_MS.format(name)] = float(values[f"result_{percentile}_percentile_{per_query}latency_ns"]) / 1e6
    for name in ("mean", "min", "max"):
        key = f"result_{name}_query_latency_ns" if per_query else f"result_{name}_latency_ns"
        metrics[QUERY_LATENCY_MS.format(name)] = float(values[key]) / 1e6
    metrics["query_count"] = float(values["result_query_count"])
    metrics[LOADGEN_VALID] = float(run.valid)
    for key, name in (("early_stopping_latency_ss", EARLY_STOPPING_P90_MS), ("early_stopping_latency_ms", "early_stopping_p99_ms")):
        if values.get("early_stopping_met") and key in values:  # LoadGen writes 0 when it has no estimate
            metrics[name] = float(values[key]) / 1e6
    rate = samples_per_s(run, scenario)
    metrics[SAMPLES_PER_S] = rate
    metrics[THROUGHPUT_IPS] = rate * inferences_per_sample
    if scenario.name == "server":
        metrics[OFFERED_QPS] = float(run.target_qps)
        metrics[LATENCY_BOUND_MS] = float(scenario.latency_bound_ms)
        metrics[OVER_BOUND_SHARE] = float(values.get("result_overlatency_query_count", 0)) / max(metrics["query_count"], 1)
    if run.service_ns and scenario.name != "single_stream":
        service_ms = np.asarray(run.service_ns) / 1e6
        metrics[SERVICE_TIME_MEDIAN_MS] = float(np.median(service_ms))
        metrics.update(tail_percentiles(service_ms, "service_time_p{}_ms", (99,)))  # nearest rank, from 100 steps
    unmet = [name for key, name in _UNMET.items() if values.get(key) is False]
    result.tags.update({
        LOADGEN_VALIDITY_TAG: str(values.get("result_validity")),
        LOADGEN_UNMET_TAG: ",".join(unmet) or "none",
        "loadgen.early_stopping": " ".join(str(values.get("early_stopping_result", "")).split()),
        "loadgen.version": str(values["loadgen_version"]),
    })
    short = departures(run, scenario, inferences_per_sample)
    result.tags["loadgen.mlperf_rules_met"] = str(not short).lower()
    result.tags["loadgen.departures"] = "; ".join(short) or "none"
    if values.get("result_invalid_reason"):
        result.tags["loadgen.advice"] = str(values["result_invalid_reason"]).strip()
    result.files.update(run.files)


def record_contention(result: RunResult, other_cores: float) -> None:
    """Other processes' CPU (in cores) while the run measured, and whether that makes the host busy."""
    result.metrics[HOST_OTHER_CPU_CORES] = other_cores
    result.tags[HOST_BUSY_TAG] = str(other_cores > BUSY_CORES).lower()


def probe_run(parent: RunResult, run: LoadGenRun, scenario, inferences_per_sample: int) -> RunResult:
    """One probe of the max-QPS search as a run of its own: the server scenario at the probe's rate."""
    child = RunResult(params=parent.params | {TARGET_QPS_PARAM: str(run.target_qps), FIND_MAX_QPS_PARAM: "False"})
    child.tags = {key: value for key, value in parent.tags.items() if not key.startswith("loadgen.")}
    child.tags[POINT_KEY_TAG] = f"{parent.tags.get(POINT_KEY_TAG)}@qps={run.target_qps:.6g}"
    child.tags[NESTED_IN_TAG] = parent.run_uid
    child.metrics = {key: parent.metrics[key] for key in (FLOPS, PARAMS) if key in parent.metrics}
    record(child, run, scenario, inferences_per_sample)
    record_contention(child, run.other_cpu_cores)
    child.metrics[ACHIEVED_GFLOPS] = child.metrics.get(FLOPS, 0.0) * child.metrics[THROUGHPUT_IPS] / 1e9
    child.finish("ok")
    return child

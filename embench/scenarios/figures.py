"""A LoadGen run's figures, named for what LoadGen measured: a query's latency runs from its
scheduled issue to its completion, so under load it includes the time the query waited."""

import numpy as np

from embench.contention import BUSY_CORES
from embench.result import RunResult
from embench.scenarios.loadgen import LoadGenRun
from embench.stats import tail_percentiles
from embench.tracking import NESTED_IN_TAG, POINT_KEY_TAG

_PERCENTILES = {"50.00": "p50", "90.00": "p90", "95.00": "p95", "97.00": "p97", "99.00": "p99", "99.90": "p99_9"}
_UNMET = {"result_min_duration_met": "min_duration", "result_min_queries_met": "min_queries",
          "early_stopping_met": "early_stopping", "result_perf_constraints_met": "latency_bound"}
_SAMPLES_PER_S = {"server": "result_completed_samples_per_sec", "offline": "result_samples_per_second",
                  "single_stream": "result_qps_with_loadgen_overhead"}


# MLPerf Inference's run rules (LoadGen's mlperf.conf, ResNet-50's where they are per model): every scenario runs
# at least 600 s; at least this many queries (LoadGen's default 100 where mlperf.conf sets none); Offline's one
# query holds at least 24576 images; MultiStream queries hold 8 samples.
MLPERF_MIN_DURATION_S = 600.0
MLPERF_MIN_QUERIES = {"single_stream": 100, "multi_stream": 662, "server": 100}
MLPERF_OFFLINE_MIN_IMAGES = 24576
MLPERF_SAMPLES_PER_QUERY = 8


def departures(run: LoadGenRun, scenario, inferences_per_sample: int) -> list[str]:
    """How the run's LoadGen settings (its detail log's effective ones) fall short of MLPerf's run rules."""
    values, found = run.values, []
    duration_s = float(values["effective_min_duration_ms"]) / 1e3
    if duration_s < MLPERF_MIN_DURATION_S:
        found.append(f"min_duration {duration_s:g} s < {MLPERF_MIN_DURATION_S:g} s")
    if scenario.name == "offline":
        images = int(values["effective_min_sample_count"]) * inferences_per_sample
        if images < MLPERF_OFFLINE_MIN_IMAGES:
            found.append(f"min_sample_count {images} images < {MLPERF_OFFLINE_MIN_IMAGES}")
    elif int(values["effective_min_query_count"]) < MLPERF_MIN_QUERIES[scenario.name]:
        found.append(f"min_query_count {values['effective_min_query_count']} < {MLPERF_MIN_QUERIES[scenario.name]}")
    if scenario.name == "multi_stream" and int(values["effective_samples_per_query"]) != MLPERF_SAMPLES_PER_QUERY:
        found.append(f"samples_per_query {values['effective_samples_per_query']} != {MLPERF_SAMPLES_PER_QUERY}")
    return found


def samples_per_s(run: LoadGenRun, scenario) -> float:
    """Samples completed per second, as LoadGen counts them for the scenario."""
    if scenario.name == "multi_stream":
        return scenario.samples_per_query * 1e9 / float(run.values["result_mean_query_latency_ns"])
    return float(run.values[_SAMPLES_PER_S[scenario.name]])


def record(result: RunResult, run: LoadGenRun, scenario, inferences_per_sample: int) -> None:
    """LoadGen's percentiles, validity and early-stopping estimates; the scenario's rate."""
    values, metrics = run.values, result.metrics
    per_query = "per_query_" if scenario.name == "multi_stream" else ""  # its plain percentiles are per sample
    for percentile, name in _PERCENTILES.items():
        metrics[f"query_latency_{name}_ms"] = float(values[f"result_{percentile}_percentile_{per_query}latency_ns"]) / 1e6
    for name in ("mean", "min", "max"):
        key = f"result_{name}_query_latency_ns" if per_query else f"result_{name}_latency_ns"
        metrics[f"query_latency_{name}_ms"] = float(values[key]) / 1e6
    metrics["query_count"] = float(values["result_query_count"])
    metrics["loadgen_valid"] = float(run.valid)
    for key, name in (("early_stopping_latency_ss", "early_stopping_p90_ms"), ("early_stopping_latency_ms", "early_stopping_p99_ms")):
        if values.get("early_stopping_met") and key in values:  # LoadGen writes 0 when it has no estimate
            metrics[name] = float(values[key]) / 1e6
    rate = samples_per_s(run, scenario)
    metrics["samples_per_s"] = rate
    metrics["throughput_ips"] = rate * inferences_per_sample
    if scenario.name == "server":
        metrics["offered_qps"] = float(run.target_qps)
        metrics["latency_bound_ms"] = float(scenario.latency_bound_ms)
        metrics["over_bound_share"] = float(values.get("result_overlatency_query_count", 0)) / max(metrics["query_count"], 1)
    if run.service_ns and scenario.name != "single_stream":
        service_ms = np.asarray(run.service_ns) / 1e6
        metrics["service_time_median_ms"] = float(np.median(service_ms))
        metrics.update(tail_percentiles(service_ms, "service_time_p{}_ms", (99,)))  # nearest rank, from 100 steps
    unmet = [name for key, name in _UNMET.items() if values.get(key) is False]
    result.tags.update({
        "loadgen.validity": str(values.get("result_validity")),
        "loadgen.unmet": ",".join(unmet) or "none",
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
    result.metrics["host_other_cpu_cores"] = other_cores
    result.tags["host_busy"] = str(other_cores > BUSY_CORES).lower()


def probe_run(parent: RunResult, run: LoadGenRun, scenario, inferences_per_sample: int) -> RunResult:
    """One probe of the max-QPS search as a run of its own: the server scenario at the probe's rate."""
    child = RunResult(params=parent.params | {"scenario.target_qps": str(run.target_qps), "scenario.find_max_qps": "False"})
    child.tags = {key: value for key, value in parent.tags.items() if not key.startswith("loadgen.")}
    child.tags[POINT_KEY_TAG] = f"{parent.tags.get(POINT_KEY_TAG)}@qps={run.target_qps:.6g}"
    child.tags[NESTED_IN_TAG] = parent.run_uid
    child.metrics = {key: parent.metrics[key] for key in ("flops", "params") if key in parent.metrics}
    record(child, run, scenario, inferences_per_sample)
    record_contention(child, run.other_cpu_cores)
    child.metrics["achieved_gflops"] = child.metrics.get("flops", 0.0) * child.metrics["throughput_ips"] / 1e9
    child.finish("ok")
    return child

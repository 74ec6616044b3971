"""Every metric, tag and param name the report reads (embench.names, as embench/report uses it) is logged by a real
run: a writer that renames one fails here, not silently in a figure."""

import ast
from pathlib import Path

from embench import names

REPORT = Path(names.__file__).parent / "report"
# three jobs of one sweep, each an experiment file: name -> its YAML
JOBS = {
    "latency": "protocol:\n  mode: latency\n",  # single stream through LoadGen, every call timed
    "throughput": "protocol:\n  mode: throughput\n",  # embench's own loop, batches back to back
    "server": "defaults:\n  - override /scenario: server\nprotocol:\n  profile_iterations: 0\n"
              "scenario:\n  target_qps: 20.0\n  latency_bound_ms: 100.0\n  min_query_count: 20\n",
}
# names that only some of the jobs log: name -> those jobs
LOADGEN = {"latency", "server"}
TIMED = {"latency", "throughput"}  # embench times the steps itself (and profiles them, here)
ONLY = {
    names.LATENCY_MEDIAN_MS: {"latency"}, names.LATENCY_MIN_MS: {"latency"}, names.LATENCY_P90_MS: {"latency"},
    names.LATENCY_CV: {"latency"},
    names.BATCH_TIME_MS: {"throughput"}, names.ENQUEUE_INTERVAL_CV: {"throughput"},
    names.QUERY_LATENCY_P50_MS: LOADGEN, names.QUERY_LATENCY_P90_MS: LOADGEN, names.QUERY_LATENCY_P99_MS: LOADGEN,
    names.SAMPLES_PER_S: LOADGEN, names.LOADGEN_VALID: LOADGEN,
    names.OFFERED_QPS: {"server"}, names.LATENCY_BOUND_MS: {"server"}, names.OVER_BOUND_SHARE: {"server"},
    names.TARGET_QPS_PARAM: {"server"}, names.FIND_MAX_QPS_PARAM: {"server"},
    names.UNSTABLE_TAG: TIMED, names.PROFILE_PCT: TIMED, names.PROFILE_TOTAL_MS: TIMED,
    names.PROFILE_WALL_MS: TIMED, names.PROFILE_COVERAGE: TIMED,
    names.SWEEP_DIR_TAG: set(),  # on the sweep's parent run: checked there
}
# names no job here logs, and which runs do
ELSEWHERE = {
    names.LATENCY_P99_MS: "runs of 100 calls or more (p90, from 10 calls, is checked)",
    names.INFERENCES_PER_JOULE: "runs on a host whose energy embench can meter (RAPL, NVML or a platform TDP)",
    names.DEVICE_FALLBACK_TAG: "runs on an absent platform with platform.strict=false",
    names.ERROR_TAG: "failed runs",
    names.COLOCATED: "co-location runs",
    names.REPORT_TAG: "the report's own runs (embench/report/publish.py writes it)",
    **{name: "runs with accuracy=imagefolder (test_accuracy.py checks them in MLflow)" for name in (
        names.ACCURACY_TOP1, names.ACCURACY_TOP5, names.ACCURACY_SAMPLES, names.ACCURACY_TOP1_CI95_LOW,
        names.ACCURACY_TOP1_CI95_HIGH, names.ACCURACY_REFERENCE_TOP1, names.ACCURACY_TOP1_DELTA,
        names.ACCURACY_TOP1_DELTA_CI95_LOW, names.ACCURACY_TOP1_DELTA_CI95_HIGH, names.ACCURACY_TOP1_DELTA_P,
        names.ACCURACY_TOP1_AGREEMENT, names.ACCURACY_DATASET_TAG, names.ACCURACY_DATASET_ID_TAG)},
}


def report_reads() -> dict[str, str]:
    """The names the report's modules use (`names.X` or `from embench.names import X`): constant -> its value."""
    used = set()
    for path in REPORT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "names":
                used.add(node.attr)
            elif isinstance(node, ast.ImportFrom) and node.module == "embench.names":
                used.update(alias.name for alias in node.names)
    return {constant: getattr(names, constant) for constant in used}


def column(constant: str, value: str) -> str:
    """The MLflow column a name is read from: a tag, a param, or else a metric."""
    kind = "tags" if constant.endswith("_TAG") else "params" if constant.endswith("_PARAM") else "metrics"
    return f"{kind}.{value}"


def logged(run, constant: str, value: str) -> bool:
    """Whether the run (a row of MLflow's frame) has a value for the name; for a prefix, for some name under it."""
    prefix = column(constant, value)
    keys = [key for key in run.index if key == prefix or (value.endswith(("_", ".")) and key.startswith(prefix))]
    return any(run[key] is not None and run[key] == run[key] for key in keys)  # NaN != NaN


def test_every_name_the_report_reads_is_logged_by_the_run_that_should(run_cli, tmp_path):
    from embench.report.store import connect, find_experiment, search

    reads = report_reads()
    assert names.THROUGHPUT_IPS in reads.values() and names.PRECISION_TAG in reads.values()  # the scan finds them
    listed = {*ONLY, *ELSEWHERE}
    assert listed <= set(reads.values()), f"listed here but no longer read by the report: {listed - set(reads.values())}"
    conf = tmp_path / "conf" / "experiment"
    conf.mkdir(parents=True)
    for job, text in JOBS.items():
        (conf / f"names_{job}.yaml").write_text("# @package _global_\n" + text)
    result = run_cli("-m", "--config-dir", str(tmp_path / "conf"), f"experiment={','.join(f'names_{j}' for j in JOBS)}",
                     "model=squeezenet1_1", "protocol=quick", "protocol.min_iterations=10", "platform.threads=1")
    assert result.returncode == 0, result.output

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = connect(uri)
    runs = search(client, uri, find_experiment(client, uri, "embench"))
    is_parent = runs[f"params.{names.MODEL_PARAM}"].isna()  # a sweep's parent run measures nothing
    [parent] = [run for _, run in runs[is_parent].iterrows()]
    assert logged(parent, "SWEEP_DIR_TAG", names.SWEEP_DIR_TAG)
    jobs = {}
    for _, run in runs[~is_parent].iterrows():
        server = run[f"params.{names.SCENARIO_PARAM}"] == "server"
        jobs["server" if server else run[f"params.{names.PROTOCOL_MODE_PARAM}"]] = run
    assert set(jobs) == set(JOBS)
    for job, run in jobs.items():
        expected = {constant for constant, value in reads.items()
                    if value not in ELSEWHERE and job in ONLY.get(value, set(JOBS))}
        missing = sorted(f"{column(c, reads[c])} ({c})" for c in expected if not logged(run, c, reads[c]))
        assert not missing, f"the {job} job logged no {', '.join(missing)}"

"""MLPerf's load scenarios through LoadGen: a backend of known service time, real networks, co-location."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PLUGINS, Cli, assert_nothing_lost, cli_env, results, runs_of, write_user_backend
from mlflow import MlflowClient

SERVICE_MS = 5.0  # the synthetic backend's step: LoadGen's figures (which add a ~0.15 ms hand-off) are checked against it
SHORT = ("protocol.min_duration_s=1.5", "protocol.warmup_duration_s=0.2", "protocol.profile_iterations=0")


def _fixed_step(run_cli, tmp_path, *args, sweep: bool = False, step_ms: float = SERVICE_MS):
    """Runs embench (a sweep with -m when `sweep`) on a backend whose every step takes `step_ms`."""
    write_user_backend(tmp_path / "my_conf", "fixed_step", "fixed_step_backend.FixedStep", step_ms=step_ms)
    result = run_cli(*(["-m"] if sweep else []), "--config-dir", str(tmp_path / "my_conf"), "backend=fixed_step", "model=squeezenet1_1",
                     *SHORT, *args, PYTHONPATH=PLUGINS)
    assert result.returncode == 0, result.output
    return result


def test_single_stream_p90_is_the_known_service_time(run_cli, tmp_path):
    """10 ms steps: a step never ends early, so every figure is at least its steps' time; a busy host only makes
    them later, so the upper bounds are generous: under two steps, which a doubled count or a unit slip passes."""
    _fixed_step(run_cli, tmp_path, step_ms=10.0)
    [record] = results(tmp_path)
    metrics, tags = record["metrics"], record["tags"]
    assert record["params"]["scenario.name"] == "single_stream"
    assert tags["loadgen.validity"] == "VALID", tags
    for name in ("early_stopping_p90_ms", "query_latency_p90_ms", "latency_median_ms"):  # today's statistics stay
        assert 10.0 <= metrics[name] < 20.0, (name, metrics)
    assert metrics["query_count"] == metrics["iterations"] >= 64
    # the timed window runs from the first query to the last answer: the queries LoadGen timed and the hand-offs
    # between them, but no LoadGen start-up or wind-down (which made this window 116 ms long: 1.616 s for 150 steps)
    queries_s = metrics["query_count"] * metrics["query_latency_mean_ms"] / 1e3
    assert metrics["iterations"] * 10e-3 <= queries_s <= metrics["measure_s"] < queries_s + 0.05, metrics
    assert 100 / 1.5 < metrics["throughput_ips"] <= 100, metrics
    summary = next(tmp_path.glob("outputs/runs/*/mlperf_log_summary.txt")).read_text()
    assert "Scenario : SingleStream" in summary and "Result is : VALID" in summary


def test_unstable_tag_follows_the_spread_of_the_steps(run_cli, tmp_path):
    """50 ms steps are steady (a busy host's late wake-ups of a few ms stay far below protocol.unstable_cv, 10 %);
    steps alternating 50 and 150 ms have a CV of 50 %."""
    result = _fixed_step(run_cli, tmp_path, "+backend.runtime.alternate_ms=50,150", sweep=True, step_ms=50.0)
    by_alternate = {r["params"]["backend.runtime.alternate_ms"]: r for r in results(tmp_path)}
    steady, spread = by_alternate["50"], by_alternate["150"]
    assert steady["tags"]["unstable"] == "false" and steady["metrics"]["latency_cv"] < 0.1, steady["metrics"]
    assert spread["tags"]["unstable"] == "true" and spread["metrics"]["latency_cv"] == pytest.approx(0.5, abs=0.1)
    assert "unstable" in result.output


def test_server_is_valid_under_capacity_and_invalid_at_twice_it(run_cli, tmp_path):
    """One worker serves at most 1 / SERVICE_MS = 200 queries/s (a step never ends early; a busy host only slows it):
    at 50 the p99 stays under 40 ms, at 400 the queue grows."""
    _fixed_step(run_cli, tmp_path, "scenario=server", "scenario.latency_bound_ms=40", "scenario.target_qps=50,400",
                sweep=True)
    by_rate = {record["metrics"]["offered_qps"]: record for record in results(tmp_path)}
    under, over = by_rate[50.0], by_rate[400.0]
    assert under["tags"]["loadgen.validity"] == "VALID" and under["metrics"]["over_bound_share"] == 0
    assert SERVICE_MS <= under["metrics"]["query_latency_p50_ms"] < 3 * SERVICE_MS  # a step, no queue
    assert over["tags"]["loadgen.validity"] == "INVALID" and "latency_bound" in over["tags"]["loadgen.unmet"]
    assert over["metrics"]["query_latency_p99_ms"] > 40 and over["metrics"]["over_bound_share"] > 0.5
    served = over["metrics"]["samples_per_s"]  # at capacity: as fast as one worker goes, and no faster
    assert 1e3 / (1.5 * SERVICE_MS) < served <= 1e3 / SERVICE_MS, over["metrics"]


@pytest.mark.slow  # eight LoadGen runs
def test_max_qps_search_finds_one_workers_capacity(run_cli, tmp_path, mlflow_client):
    _fixed_step(run_cli, tmp_path, "scenario=server", "scenario.find_max_qps=true", "scenario.latency_bound_ms=125",
                "protocol.min_duration_s=1")
    [record] = [r for r in results(tmp_path) if "server_max_qps" in r["metrics"]]
    # one worker serves at most 200 queries/s (a short run may pass a little over it before its queue tells); a busy
    # host slows its steps and lowers what it serves, never raises it
    assert 0.5 * 1e3 / SERVICE_MS < record["metrics"]["server_max_qps"] < 1.15 * 1e3 / SERVICE_MS, record["metrics"]
    runs = runs_of(mlflow_client)
    [parent] = [r for r in runs if "server_max_qps" in r.data.metrics]
    probes = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(probes) == record["metrics"]["search_runs"] >= 3
    validity = {r.data.tags["loadgen.validity"] for r in probes}
    assert validity == {"VALID", "INVALID"}
    assert max(r.data.metrics["offered_qps"] for r in probes if r.data.tags["loadgen.validity"] == "VALID") == \
        record["metrics"]["server_max_qps"]
    assert len(list(tmp_path.glob("outputs/runs/*/children/*/mlperf_log_detail.txt"))) == len(probes)
    # the folder alone rebuilds the same tree in another store: probes nested under their search's run
    other = tmp_path / "other.db"
    synced = subprocess.run([sys.executable, "-m", "embench", "sync", str(next(tmp_path.glob("outputs/runs/*"))),
                             "--tracking-uri", f"sqlite:///{other}"], cwd=tmp_path, env=cli_env(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert synced.returncode == 0 and f"{len(probes) + 1} run(s) logged" in synced.stdout, synced.stdout + synced.stderr
    copied = runs_of(MlflowClient(tracking_uri=f"sqlite:///{other}"))
    [search_run] = [r for r in copied if "server_max_qps" in r.data.metrics]
    assert sorted(r.data.tags.get("mlflow.parentRunId") for r in copied if r is not search_run) == \
        [search_run.info.run_id] * len(probes)


def test_a_real_network_under_every_scenario_is_logged_with_its_loadgen_logs(run_cli, tmp_path, mlflow_client):
    result = run_cli("-m", "model=squeezenet1_1", "protocol=quick", "scenario=single_stream,multi_stream,server,offline")
    assert result.returncode == 0, result.output
    runs = [r for r in runs_of(mlflow_client) if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.params["scenario.name"] for r in runs) == ["multi_stream", "offline", "server", "single_stream"]
    for run in runs:
        assert run.info.status == "FINISHED", run.data.tags.get("error")
        metrics = run.data.metrics
        assert 0 < metrics["query_latency_p50_ms"] <= metrics["query_latency_p99_ms"]
        artifacts = {a.path for a in mlflow_client.list_artifacts(run.info.run_id)}
        assert {"mlperf_log_summary.txt", "mlperf_log_detail.txt"} <= artifacts
        summary = Path(mlflow_client.download_artifacts(run.info.run_id, "mlperf_log_summary.txt", str(tmp_path))).read_text()
        validity = run.data.tags["loadgen.validity"]  # what LoadGen itself wrote in its summary
        assert f"Result is : {validity}" in summary and metrics["loadgen_valid"] == (validity == "VALID")
        assert metrics["throughput_ips"] > 0


def test_a_multi_stream_query_lasts_its_eight_samples(run_cli, tmp_path):
    """One worker serves a query's 8 samples one after another: 8 steps of 5 ms, never less (a step never ends
    early), and less than twice that on a busy host. A query timed by one sample (5 ms) or by 16 (80 ms) fails."""
    _fixed_step(run_cli, tmp_path, "scenario=multi_stream", "scenario.min_query_count=20")
    [record] = results(tmp_path)
    metrics = record["metrics"]
    assert record["params"]["scenario.samples_per_query"] == "8" and metrics["query_count"] >= 20
    assert 8 * SERVICE_MS <= metrics["query_latency_min_ms"] <= metrics["query_latency_p50_ms"] < 2 * 8 * SERVICE_MS, metrics


@pytest.fixture
def one_cpu():
    """This process and the ones it starts run on one CPU; restored afterwards."""
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    yield
    os.sched_setaffinity(0, cpus)


def test_colocated_networks_each_report_a_slowdown(run_cli, tmp_path, one_cpu):
    """Two networks on one CPU, one thread each: together, each waits for the other, so each slows down."""
    result = run_cli("colocate=[squeezenet1_1,shufflenet_v2_x0_5]", "colocate_threads=[1,1]", "protocol=quick",
                     "protocol.max_duration_s=2", "protocol.min_duration_s=1.5")
    assert result.returncode == 0, result.output
    [record] = results(tmp_path)
    metrics, tags = record["metrics"], record["tags"]
    assert record["params"]["model"] == "squeezenet1_1+shufflenet_v2_x0_5"
    for name in ("squeezenet1_1", "shufflenet_v2_x0_5"):
        assert tags[f"colocated.{name}.threads"] == "1"
        # alone it shares the CPU with the host's other work, together with the other network too: with k other
        # busy processes on that CPU a network slows by (k + 2) / (k + 1), 2 on an idle host and over 1.2 for k <= 4;
        # streams that ran one after the other would read about 1
        assert metrics[f"colocated.{name}.slowdown_p50"] > 1.2, metrics
        assert metrics[f"colocated.{name}.slowdown_p50"] == pytest.approx(
            metrics[f"colocated.{name}.together.query_latency_p50_ms"] / metrics[f"colocated.{name}.alone.query_latency_p50_ms"])
        assert metrics[f"colocated.{name}.output_max_rel_diff"] < 1e-2
    table = next(tmp_path.glob("outputs/runs/*/colocation.csv")).read_text().splitlines()
    assert len(table) == 1 + 4 and table[0].startswith("model,threads,phase")
    assert "co-located, median query latency together / alone" in result.output


def test_ctrl_c_during_a_loadgen_test_stops_at_once_and_leaves_nothing_running(tmp_path, mlflow_client):
    """LoadGen cannot stop a test: the process must still end at once with 130, not abort on LoadGen's threads."""
    cli = Cli(tmp_path, "model=squeezenet1_1", "scenario=server", "protocol.min_duration_s=60",
              "protocol.max_duration_s=60")
    cli.wait_for("measuring")
    time.sleep(3)  # inside LoadGen's test
    cli.proc.send_signal(signal.SIGINT)
    assert cli.finish(timeout=30) == 130, cli.output
    assert "terminate called" not in cli.output and "Traceback" not in cli.output
    runs = assert_nothing_lost(mlflow_client, tmp_path / "outputs")
    assert [r.info.status for r in runs] == ["KILLED"]


REPLICA_FIRST_MS = 400.0  # tests/plugins/cold_process_backend.py: each replica's first call waits this much more


def _cold_process(run_cli, tmp_path, *args):
    """Runs embench on tests/plugins/cold_process_backend.py (5 ms steps; a replica's first call waits 400 ms more)."""
    write_user_backend(tmp_path / "my_conf", "cold_process", "cold_process_backend.ColdProcess")
    result = run_cli("--config-dir", str(tmp_path / "my_conf"), "backend=cold_process", "model=squeezenet1_1", *SHORT, *args,
                     PYTHONPATH=PLUGINS)
    assert result.returncode == 0, result.output
    return result


def test_every_worker_is_warm_before_loadgen_starts(run_cli, tmp_path):
    """Two workers serve 8-sample queries: no query may wait for a replica's slow first call (400 ms)."""
    _cold_process(run_cli, tmp_path, "scenario=multi_stream", "scenario.workers=2", "scenario.min_query_count=20")
    [record] = results(tmp_path)
    assert record["metrics"]["query_count"] >= 20
    assert record["metrics"]["query_latency_max_ms"] < REPLICA_FIRST_MS, record["metrics"]


@pytest.fixture
def busy_core():
    """Another process spinning on one core for the test's length, stopped by its PID."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    yield spinner.pid
    spinner.kill()
    spinner.wait()


def test_max_qps_search_measures_the_load_other_processes_put_on_the_host(run_cli, tmp_path, busy_core, mlflow_client):
    """A process spinning on a core (of two) is other processes' CPU: the search and each of its probes say so."""
    _fixed_step(run_cli, tmp_path, "scenario=server", "scenario.find_max_qps=true", "scenario.search_runs=2",
                "scenario.min_query_count=460", "scenario.latency_bound_ms=200", "protocol.min_duration_s=0.5")
    runs = runs_of(mlflow_client)
    [search_run] = [r for r in runs if "server_max_qps" in r.data.metrics]
    probes = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == search_run.info.run_id]
    assert len(probes) == 2
    for run in [search_run, *probes]:  # the spinner alone is about one core; the rest of a busy host only adds
        assert run.data.metrics["host_other_cpu_cores"] > 0.5 and run.data.tags["host_busy"] == "true", run.data


def test_a_short_search_says_how_far_it_is_from_mlperf_and_bisects_only_on_latency(run_cli, tmp_path, mlflow_client):
    """50 queries of 5 ms steps against a 200 ms bound: no query misses it, yet early stopping needs 459 queries
    to clear p99 with none over. Each probe is tagged short of MLPerf's 600 s and its count, and the search never
    lowers its rate after a probe with no query over the bound (it is invalid for its length, not too fast)."""
    result = _fixed_step(run_cli, tmp_path, "scenario=server", "scenario.find_max_qps=true", "scenario.search_runs=4",
                         "scenario.min_query_count=50", "scenario.latency_bound_ms=200", "protocol.min_duration_s=0.5")
    runs = runs_of(mlflow_client)
    [search_run] = [r for r in runs if "server_max_qps" in r.data.metrics]
    probes = sorted((r for r in runs if r.data.tags.get("mlflow.parentRunId") == search_run.info.run_id),
                    key=lambda r: r.info.start_time)
    for probe in probes:
        tags = probe.data.tags
        assert tags["loadgen.mlperf_rules_met"] == "false", tags
        assert "min_duration 0.5 s < 600 s" in tags["loadgen.departures"] and "min_query_count 50 < 100" in tags["loadgen.departures"]
    for before, after in zip(probes, probes[1:]):
        if before.data.metrics["over_bound_share"] == 0:
            assert after.data.metrics["offered_qps"] > before.data.metrics["offered_qps"], [p.data.metrics for p in probes]
    assert "p99 bound" not in result.output and "no query over 200 ms: under 459 queries early stopping allows none" in result.output
    assert "invalid for its length" in search_run.data.tags["search.stopped"]

"""The real CLI in a subprocess, a real MLflow store, real torch models."""

import json
import resource
import subprocess
import sys
import time

import pytest
from conftest import REPO, assert_one_line_error, cli_env, free_port, results, write_user_model

QUICK = ("protocol=quick",)
REQUIRED_METRICS = {
    "latency_mean_ms", "latency_median_ms",  # p90/p95/p99 only from 10/20/100 calls (tests/test_stats.py)
    "latency_min_ms", "latency_max_ms", "latency_std_ms", "latency_cv", "throughput_ips",
    "first_inference_ms", "prepare_s", "params", "macs", "flops", "achieved_gflops", "peak_memory_mb",
    "latency_median_ci_coverage", "profile_pct_convolution", "profile_coverage",
}


def test_sweep_logs_parent_and_child_runs_with_params_metrics_and_artifacts(run_cli, mlflow_client, tmp_path):
    result = run_cli("-m", "model=resnet18,squeezenet1_1", "batch=1,2", *QUICK)
    assert result.returncode == 0, result.output
    assert "embench sweep" in result.stdout and "squeezenet1_1" in result.stdout

    experiment = mlflow_client.get_experiment_by_name("embench")
    runs = mlflow_client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4
    assert parents[0].info.status == "FINISHED"
    assert "sweep_summary.csv" in {a.path for a in mlflow_client.list_artifacts(parents[0].info.run_id)}
    points = set()
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.info.status == "FINISHED"
        params, metrics = child.data.params, child.data.metrics
        points.add((params["model"], params["batch"]))
        assert (params["platform"], params["backend"], params["protocol"]) == ("cpu", "torch", "quick")
        assert params["model.input_size"] == "224" and params["protocol.min_iterations"] == "3"
        assert REQUIRED_METRICS <= set(metrics), REQUIRED_METRICS - set(metrics)
        assert metrics["latency_min_ms"] <= metrics["latency_median_ms"] <= metrics["latency_max_ms"]
        assert metrics["throughput_ips"] > 0 and metrics["params"] > 1e6
        assert child.data.tags["host.cpu_model"] and child.data.tags["version.torch"]
        artifacts = {a.path for a in mlflow_client.list_artifacts(child.info.run_id)}
        assert {"result.json", "config.yaml", "latencies.csv", "profile_ops.csv", "profile_categories.csv"} <= artifacts
    assert points == {("resnet18", "1"), ("resnet18", "2"), ("squeezenet1_1", "1"), ("squeezenet1_1", "2")}
    assert len(results(tmp_path)) == 4


def test_single_run_writes_result_file_with_everything(run_cli, tmp_path):
    result = run_cli("model=squeezenet1_1", "batch=2", *QUICK)
    assert result.returncode == 0, result.output
    [path] = tmp_path.glob("outputs/**/result.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok" and record["params"]["batch"] == "2"
    assert REQUIRED_METRICS <= set(record["metrics"])
    latencies = (path.parent / "latencies.csv").read_text().splitlines()
    assert len(latencies) - 1 == record["metrics"]["iterations"] >= 3


@pytest.mark.slow
def test_environment_names_the_experiment(run_cli, mlflow_client):
    result = run_cli("model=squeezenet1_1", *QUICK, MLFLOW_EXPERIMENT_NAME="from-env")
    assert result.returncode == 0, result.output
    experiment = mlflow_client.get_experiment_by_name("from-env")
    assert len(mlflow_client.search_runs([experiment.experiment_id])) == 1


@pytest.mark.parametrize("group", ["model", "platform", "backend", "protocol"])
def test_unknown_choice_lists_the_valid_ones(run_cli, group):
    result = run_cli(f"{group}=nonesuch")
    assert result.returncode != 0
    assert "Traceback" not in result.output
    assert f"Could not find '{group}/nonesuch'" in result.stderr
    assert f"Available options in '{group}'" in result.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this host has a GPU")
def test_absent_device_names_platform_need_and_host(run_cli):
    result = run_cli("platform=cuda", *QUICK)
    assert_one_line_error(result, "platform=cuda needs a CUDA GPU", "this host lacks", "no CUDA GPU", "platform=cpu", "platform.strict=false")
    assert result.returncode == 2


@pytest.mark.slow
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this host has a GPU")
def test_non_strict_platform_runs_on_what_the_host_has(run_cli, tmp_path):
    result = run_cli("platform=cuda", "platform.strict=false", "model=squeezenet1_1", *QUICK)
    assert result.returncode == 0, result.output
    record = results(tmp_path)[0]
    assert record["tags"]["device.type"] == "cpu" and "cuda absent" in record["tags"]["device.fallback"]


def test_unreadable_config_file(run_cli, tmp_path):
    user_conf = tmp_path / "user_conf" / "model"
    user_conf.mkdir(parents=True)
    (user_conf / "broken.yaml").write_text("name: broken\nfactory: [unclosed\n")
    result = run_cli("--config-dir", str(tmp_path / "user_conf"), "model=broken")
    assert_one_line_error(result, "broken.yaml", "line 3")
    assert result.returncode == 2


@pytest.mark.slow  # builds a network to reach its weights
def test_pretrained_offline_fails_fast_in_one_line(run_cli):
    start = time.monotonic()
    result = run_cli("model=squeezenet1_1", "model.pretrained=true", *QUICK)
    assert_one_line_error(result, "squeezenet1_1", "model.pretrained=true", "model.pretrained=false")
    assert time.monotonic() - start < 60


@pytest.mark.slow
def test_user_model_yaml_from_own_config_dir(run_cli, tmp_path):
    conf_dir = tmp_path / "my_conf"
    write_user_model(conf_dir, "tiny_resnet", "torchvision.models.resnet18", num_classes=10)
    result = run_cli("--config-dir", str(conf_dir), "model=tiny_resnet", *QUICK)
    assert result.returncode == 0, result.output
    record = results(tmp_path)[0]
    assert record["params"]["model"] == "tiny_resnet" and record["params"]["model.input_size"] == "64"
    assert record["metrics"]["params"] == 11181642  # resnet18 with a 10-class head


@pytest.mark.slow
def test_failing_job_is_recorded_and_the_sweep_goes_on(run_cli, mlflow_client, tmp_path):
    conf_dir = tmp_path / "my_conf"
    write_user_model(conf_dir, "no_such_net", "torchvision.models.resnet18", num_classes=-1)  # fails while building
    result = run_cli("--config-dir", str(conf_dir), "-m", "model=no_such_net,squeezenet1_1", "batch=1,2", *QUICK)
    assert result.returncode == 2  # a model its config cannot build is the config's fault
    assert "Traceback" not in result.output
    failed_lines = [line for line in result.stderr.splitlines() if line.startswith("failed: job")]
    assert len(failed_lines) == 2, result.stderr  # no_such_net at both batches
    runs = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("embench").experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    by_point = {(r.data.params["model"], r.data.params["batch"]): r for r in children}
    assert {by_point[("squeezenet1_1", b)].info.status for b in ("1", "2")} == {"FINISHED"}
    for point in [("no_such_net", "1"), ("no_such_net", "2")]:
        assert by_point[point].info.status == "FAILED"
        assert "negative dimension" in by_point[point].data.tags["error"]
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"
    assert len(results(tmp_path)) == 4


def test_unreachable_mlflow_keeps_the_result_and_exits_3(run_cli, tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    result = run_cli("model=squeezenet1_1", *QUICK, MLFLOW_TRACKING_URI=uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    assert_one_line_error(result, uri, "embench sync")
    assert result.returncode == 3
    record = results(tmp_path)[0]
    assert record["status"] == "ok" and record["metrics"]["latency_median_ms"] > 0


@pytest.mark.slow
def test_installed_wheel_finds_its_configs(tmp_path):
    """A non-editable install, run from elsewhere, composes and runs with the shipped conf/."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    assert (site / "embench" / "conf" / "model" / "nasnetamobile.yaml").is_file()
    env = cli_env(tmp_path)
    env["PYTHONPATH"] = str(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    listing = subprocess.run([str(site / "bin" / "embench"), "--help"], cwd=work, env=env, capture_output=True, text=True)
    assert listing.returncode == 0 and "nasnetamobile" in listing.stdout
    run = subprocess.run(
        [sys.executable, "-m", "embench", "model=squeezenet1_1", *QUICK], cwd=work, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    [hydra_yaml] = work.glob("outputs/runs/*/.hydra/hydra.yaml")
    assert f"path: {site / 'embench' / 'conf'}" in hydra_yaml.read_text()  # configs came from the wheel


DATA_LIMIT = 32 * 2**30  # bytes of private writable memory: far below a 600 GB batch, far above a small run's needs


def _limit_data() -> None:
    """Caps the private writable memory of this process and those it starts (RLIMIT_DATA, which CUDA's address-space
    reservations do not count against), so an oversized allocation fails whatever the host's RAM or overcommit."""
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    limit = DATA_LIMIT if hard == resource.RLIM_INFINITY else min(DATA_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


@pytest.mark.slow
def test_out_of_memory_is_an_outcome_not_a_crash(tmp_path, mlflow_client):
    """A batch too large for the memory the CLI may use (600 GB of input under a 32 GB limit, on any host and any
    vm.overcommit_memory) is recorded as status oom; the sweep goes on and exits 1."""
    result = subprocess.run([sys.executable, "-m", "embench", "-m", "model=squeezenet1_1", "batch=1000000,1", *QUICK],
                            cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=600,
                            preexec_fn=_limit_data)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    runs = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("embench").experiment_id])
    by_batch = {r.data.params["batch"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert by_batch["1000000"].data.tags["status"] == "oom" and by_batch["1000000"].info.status == "FAILED"
    assert "error.txt" in {a.path for a in mlflow_client.list_artifacts(by_batch["1000000"].info.run_id)}
    assert by_batch["1"].data.tags["status"] == "ok" and by_batch["1"].info.status == "FINISHED"


@pytest.mark.slow
def test_an_experiment_sweeps_without_dash_m(run_cli, mlflow_client, tmp_path):
    result = run_cli("experiment=smoke")
    assert result.returncode == 0, result.output
    assert len(results(tmp_path)) == 4 and "4 job(s) run" in result.stdout
    runs = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("embench").experiment_id])
    assert len(runs) == 5  # the sweep's parent and its four points


def test_a_later_model_that_cannot_be_imported_stops_the_sweep_before_it_measures(run_cli, tmp_path):
    conf_dir = tmp_path / "my_conf"
    write_user_model(conf_dir, "no_such_net", "torchvision.models.no_such_net")
    result = run_cli("--config-dir", str(conf_dir), "-m", "model=squeezenet1_1,no_such_net", *QUICK)
    assert_one_line_error(result, "model no_such_net", "torchvision.models.no_such_net")
    assert result.returncode == 2 and not results(tmp_path) and not (tmp_path / "mlflow.db").exists()

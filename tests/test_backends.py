"""Each backend through the real CLI: torch eager, torch.compile, OpenVINO."""

import csv
import json

import pytest

from conftest import REPO
from test_cli import assert_one_line_error

QUICK = ("protocol=quick", "model=squeezenet1_1")


def only_result(tmp_path) -> dict:
    [path] = tmp_path.glob("outputs/runs/*/result.json")
    return json.loads(path.read_text())


def test_openvino_runs_at_f32_with_its_own_layer_counters(run_cli, tmp_path):
    result = run_cli("backend=openvino", "model=resnet18", "protocol=quick")
    assert result.returncode == 0, result.output
    record = only_result(tmp_path)
    tags, metrics = record["tags"], record["metrics"]
    assert tags["backend.precision"] == "f32"  # pinned: OpenVINO would pick bf16 on this CPU
    assert tags["openvino.device"] == "CPU" and tags["openvino.hint"] == "latency"
    assert metrics["output_max_rel_diff"] < 1e-4
    assert metrics["profile_pct_convolution"] > 50
    [run_dir] = tmp_path.glob("outputs/runs/*")
    with (run_dir / "profile_ops.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    layer_types = {row["layer_type"] for row in rows}
    assert {"Convolution", "MaxPool", "FullyConnected"} <= layer_types
    assert all(row["exec_type"] for row in rows)


def test_openvino_converts_once_per_model_and_shape(run_cli, tmp_path):
    first = run_cli("-m", "backend=openvino", "batch=2", "backend.runtime.hint=latency,throughput", *QUICK)
    assert first.returncode == 0, first.output
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("outputs/sweeps/*/*/result.json"))]
    caches = sorted(r["tags"]["openvino.ir_cache"] for r in records)
    assert caches in (["hit", "miss"], ["hit", "hit"])  # "hit" twice when an earlier test converted it


def test_openvino_async_requests_count_every_inference(run_cli, tmp_path):
    result = run_cli("backend=openvino", "backend.runtime.hint=throughput", "backend.runtime.requests=2", *QUICK)
    assert result.returncode == 0, result.output
    metrics = only_result(tmp_path)["metrics"]
    # Two single-image requests per step: twice the steps' rate.
    assert metrics["throughput_ips"] == pytest.approx(2 * metrics["iterations"] / metrics["measure_s"], rel=0.01)


def test_torch_compile_reports_compile_time_in_prepare(run_cli, tmp_path):
    result = run_cli("backend=torch_compile", *QUICK)
    assert result.returncode == 0, result.output
    record = only_result(tmp_path)
    assert record["tags"]["backend.compile_mode"] == "default"
    assert record["metrics"]["output_max_rel_diff"] < 1e-3
    assert record["metrics"]["prepare_s"] > record["metrics"]["first_inference_ms"] / 1e3


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_torch_reduced_precision_is_checked_against_fp32(run_cli, tmp_path, dtype):
    result = run_cli(f"backend.runtime.dtype={dtype}", "backend.runtime.channels_last=true", *QUICK)
    assert result.returncode == 0, result.output
    record = only_result(tmp_path)
    assert record["tags"]["backend.precision"] == dtype and record["tags"]["backend.channels_last"] == "true"
    assert 0 < record["metrics"]["output_max_rel_diff"] < 0.15


def test_a_wrong_output_fails_the_run_loudly(run_cli, tmp_path):
    conf = tmp_path / "my_conf" / "backend"
    conf.mkdir(parents=True)
    (conf / "shifted.yaml").write_text("name: shifted\nruntime:\n  _target_: shifted_backend.ShiftedEager\n")
    result = run_cli("--config-dir", str(tmp_path / "my_conf"), "backend=shifted", *QUICK, PYTHONPATH=f"{REPO}:{REPO / 'tests' / 'plugins'}")
    assert_one_line_error(result, "backend=shifted gives a wrong output", "torch eager FP32")
    assert result.returncode == 1
    record = only_result(tmp_path)
    assert record["status"] == "failed" and record["metrics"]["output_max_abs_diff"] == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize(
    "override, needle",
    [
        ("backend.runtime.dtype=fp64", "backend.runtime.dtype='fp64'"),
        ("backend=openvino backend.runtime.hint=fastest", "backend.runtime.hint='fastest'"),
        ("backend=openvino backend.runtime.precision=i8", "backend.runtime.precision='i8'"),
        ("backend=torch_compile backend.runtime.mode=turbo", "backend.runtime.mode='turbo'"),
        ("backend.runtime.cuda_graphs=true", "cuda_graphs=true needs a CUDA platform"),
    ],
)
def test_bad_backend_options(run_cli, override, needle):
    result = run_cli(*override.split(), *QUICK)
    assert_one_line_error(result, needle)
    assert result.returncode == 2


def test_first_inference_is_the_backends_cold_first_call(run_cli, tmp_path):
    """A runtime's cold start (here a 0.3 s sleep on the first call) shows in first_inference_ms, not in check_s."""
    conf = tmp_path / "my_conf" / "backend"
    conf.mkdir(parents=True)
    (conf / "slow_start.yaml").write_text("name: slow_start\nruntime:\n  _target_: slow_start_backend.SlowStartEager\n")
    result = run_cli("--config-dir", str(tmp_path / "my_conf"), "backend=slow_start", "model=squeezenet1_1", *QUICK,
                     PYTHONPATH=f"{REPO}:{REPO / 'tests' / 'plugins'}")
    assert result.returncode == 0, result.output
    metrics = only_result(tmp_path)["metrics"]
    assert metrics["first_inference_ms"] >= 300
    assert metrics["latency_max_ms"] < 300 and metrics["check_s"] < 0.3

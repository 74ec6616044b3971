"""ONNX Runtime through the real CLI: export once, a session on this CPU, ORT's own profiler, INT8."""

import csv
import json

import pytest

from conftest import assert_one_line_error
import torch
import torchvision


QUICK = ("protocol=quick", "model=squeezenet1_1")


def results(tmp_path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(tmp_path.glob("outputs/**/result.json"))]


def profile_rows(tmp_path) -> list[dict]:
    [path] = tmp_path.glob("outputs/runs/*/profile_ops.csv")
    with path.open() as handle:
        return list(csv.DictReader(handle))


def convolutions(model: str) -> int:
    """The network's convolutions, counted in torchvision's own module list: a truth the profile did not produce."""
    return sum(isinstance(module, torch.nn.Conv2d) for module in torchvision.models.get_model(model).modules())


def assert_every_convolution_profiled_and_nothing_uncategorised(rows: list[dict], model: str) -> None:
    """Host-independent: one `convolution` node per convolution of the network, and no op type in `other`
    (shares of time differ from CPU to CPU: squeezenet1_1's convolutions took 37 % on an AVX-512/AMX Xeon)."""
    assert sum(float(row["calls_per_inference"]) for row in rows if row["category"] == "convolution") == convolutions(model)
    assert not {row["layer_type"] for row in rows if row["category"] == "other"}


def test_onnxruntime_runs_fp32_on_this_cpu_with_its_own_node_profile(run_cli, tmp_path):
    result = run_cli("backend=onnxruntime", *QUICK)
    assert result.returncode == 0, result.output
    [record] = results(tmp_path)
    tags, metrics = record["tags"], record["metrics"]
    assert tags["backend.precision"] == "fp32" and tags["onnxruntime.providers"] == "CPUExecutionProvider"
    assert tags["onnxruntime.threads"] == tags["threads"]
    assert metrics["output_max_rel_diff"] < 1e-4 and metrics["output_top1_agreement"] == 1.0
    rows = profile_rows(tmp_path)
    # ORT's op types, as its profiler names them, each in the paper's category
    by_type = {row["layer_type"]: row["category"] for row in rows}
    assert by_type["Conv"] == "convolution" and by_type["MaxPool"] == "pooling" and by_type["Concat"] == "concat_reshape"
    assert {row["exec_type"] for row in rows} == {"CPUExecutionProvider"}
    assert_every_convolution_profiled_and_nothing_uncategorised(rows, "squeezenet1_1")


@pytest.mark.slow
def test_onnxruntime_exports_once_per_model_and_shape(run_cli, tmp_path):
    cache = tmp_path / "cache"
    result = run_cli("-m", "backend=onnxruntime", "backend.runtime.graph_optimization=all,basic", *QUICK,
                     EMBENCH_CACHE_DIR=str(cache))
    assert result.returncode == 0, result.output
    assert [r["tags"]["onnxruntime.onnx_cache"] for r in results(tmp_path)] == ["miss", "hit"]
    assert [r["tags"]["onnxruntime.graph_optimization"] for r in results(tmp_path)] == ["all", "basic"]
    assert len(list(cache.glob("onnx/*/*.onnx"))) == 1


def test_a_missing_runtime_names_the_extra_to_install(run_cli, tmp_path):
    """As if onnxruntime were not installed: a package of that name that cannot be imported comes first."""
    shadow = tmp_path / "shadow"
    (shadow / "onnxruntime").mkdir(parents=True)
    (shadow / "onnxruntime" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'onnxruntime'\")\n")
    from conftest import REPO

    result = run_cli("backend=onnxruntime", *QUICK, PYTHONPATH=f"{shadow}:{REPO}")
    assert result.returncode == 2
    assert_one_line_error(result, 'pip install "embench[onnxruntime]"')


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet18", "mobilenet_v2", "squeezenet1_1"])
def test_onnxruntime_int8_runs_and_reports_its_agreement_with_fp32(run_cli, tmp_path, model):
    result = run_cli("backend=onnxruntime", "backend.runtime.precision=int8", f"model={model}", "protocol=quick")
    assert result.returncode == 0, result.output
    [record] = results(tmp_path)
    assert record["tags"]["backend.precision"] == "int8" and record["tags"]["onnxruntime.int8_cache"] == "miss"
    assert 0 < record["metrics"]["output_max_rel_diff"] < 0.5  # quantized: not bit-exact, not wrong
    assert "output_top1_agreement" in record["metrics"]  # its value is about random weights: logged, not judged
    types = {row["layer_type"] for row in profile_rows(tmp_path)}
    assert "QLinearConv" in types  # ORT runs the convolutions in INT8


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet50", "mobilenet_v2"])
def test_onnxruntime_profile_leaves_little_uncategorised(run_cli, tmp_path, model):
    result = run_cli("backend=onnxruntime", f"model={model}", "protocol=quick")
    assert result.returncode == 0, result.output
    [record] = results(tmp_path)
    metrics = record["metrics"]
    assert_every_convolution_profiled_and_nothing_uncategorised(profile_rows(tmp_path), model)
    # ORT runs the nodes one after another: their times fit in the profiled pass's own wall time
    assert 0 < metrics["profile_total_ms"] <= 1.05 * metrics["profile_wall_ms"]

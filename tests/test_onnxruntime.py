"""ONNX Runtime through the real CLI: export once, a session on this CPU, ORT's own profiler, INT8."""

import pytest
import torch
from conftest import REPO, assert_every_layer_profiled, assert_one_line_error, profile_rows, results

QUICK = ("protocol=quick", "model=squeezenet1_1")


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
    # one `convolution` node per convolution, whatever their share of the time (37 % on an AVX-512/AMX Xeon)
    assert_every_layer_profiled(rows, "squeezenet1_1", (torch.nn.Conv2d,), ("convolution",))


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

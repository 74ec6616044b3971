"""One precision vocabulary (`backend.runtime.precision`: fp32 | bf16 | fp16 | int8) across backends, runs tagged with
the precision their kernels ran in (read from the runtime), efficiency against that precision's own peak, and MLflow
run names that tell a sweep's runs apart."""

import json
from collections import Counter

import pytest
from conftest import assert_one_line_error, results, runs_of

SQUEEZENET = ("model=squeezenet1_1", "protocol=quick")


def compute_layers(model_name: str) -> int:
    """How many convolutions and linear layers the torch model has: the kernels a runtime must run."""
    import torch
    import torchvision

    model = getattr(torchvision.models, model_name)()
    return sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in model.modules())


def openvino_ran(hint: str) -> Counter:
    """The precisions OpenVINO's CPU plugin itself runs squeezenet1_1's convolutions in under `hint`, read here
    from a compilation of this test's own, apart from embench."""
    import openvino as ov
    import torch
    import torchvision

    model = ov.convert_model(torchvision.models.squeezenet1_1().eval(), example_input=torch.randn(1, 3, 224, 224))
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": 1})
    return Counter(op.get_rt_info()["runtimePrecision"].astype(str) for op in compiled.get_runtime_model().get_ordered_ops()
                   if op.get_rt_info()["layerType"].astype(str) == "Convolution")


# ---- point 2: a run is tagged with the precision its kernels ran in ----

@pytest.mark.parametrize("level", ["disabled", "basic"])
def test_onnxruntime_int8_without_qdq_fusion_is_refused_before_measuring(run_cli, tmp_path, level):
    """At these levels ORT runs a QDQ model's convolutions in FP32 between DequantizeLinear and QuantizeLinear."""
    result = run_cli("backend=onnxruntime", "backend.runtime.precision=int8", f"backend.runtime.graph_optimization={level}",
                     *SQUEEZENET)
    assert_one_line_error(result, f"backend.runtime.graph_optimization='{level}'", "int8", "extended")
    assert result.returncode == 2
    assert not list(tmp_path.glob("outputs/**/result.json")) or all(not r["metrics"].get("iterations") for r in results(tmp_path))


@pytest.mark.slow  # quantizes a network: about 15 s
def test_onnxruntime_int8_is_tagged_from_the_kernels_its_optimized_graph_runs(run_cli, tmp_path):
    result = run_cli("backend=onnxruntime", "backend.runtime.precision=int8", *SQUEEZENET)
    assert result.returncode == 0, result.output
    [record] = results(tmp_path)
    assert record["tags"]["backend.precision"] == "int8"
    # every convolution of the network ran in an integer kernel (QLinearConv), none in a float one
    assert record["tags"]["backend.kernel_precisions"] == f"int8 {compute_layers('squeezenet1_1')}"


@pytest.mark.slow  # two OpenVINO runs and a compile of its own: about 30 s
@pytest.mark.parametrize("precision,hint", [("bf16", "bf16"), ("fp16", "f16")])
def test_openvino_tag_is_the_precision_its_runtime_model_ran(run_cli, tmp_path, precision, hint):
    """Tagged with what OpenVINO ran (read here apart from embench); refused where it runs none in the one asked for
    (bf16 on a CPU without BF16, fp16 on one without FP16: OpenVINO then runs another precision silently)."""
    ran = openvino_ran(hint)
    result = run_cli("backend=openvino", f"backend.runtime.precision={precision}", *SQUEEZENET)
    names = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}
    if hint not in ran:
        assert_one_line_error(result, f"backend.runtime.precision='{precision}'", names[ran.most_common(1)[0][0]])
        assert result.returncode == 2
        return
    assert result.returncode == 0, result.output
    [record] = results(tmp_path)
    assert record["tags"]["backend.precision"] == precision
    assert record["tags"]["backend.kernel_precisions"] == ", ".join(f"{names[p]} {n}" for p, n in ran.most_common())


# ---- point 9: one vocabulary ----

def test_torch_cannot_run_int8_and_says_so_in_one_line(run_cli, tmp_path):
    result = run_cli("backend.runtime.precision=int8", *SQUEEZENET)
    assert_one_line_error(result, "backend.runtime.precision='int8'", "fp32, bf16, fp16")
    assert result.returncode == 2


@pytest.mark.slow
def test_an_int8_sweep_over_backends_runs_with_one_key(run_cli, mlflow_client, tmp_path):
    """The sweep users write first: base config backend=torch, whose key was `dtype`, refused it before any job ran."""
    result = run_cli("-m", "backend=openvino,onnxruntime,executorch", "backend.runtime.precision=int8", *SQUEEZENET)
    assert result.returncode == 0, result.output
    records = results(tmp_path)
    assert sorted(r["params"]["backend"] for r in records) == ["executorch", "onnxruntime", "openvino"]
    for record in records:
        assert record["params"]["backend.runtime.precision"] == "int8" and record["tags"]["backend.precision"] == "int8"
        # ORT and XNNPACK ran every convolution in an integer kernel; NNCF may leave a few of OpenVINO's in fp32
        kernels = record["tags"]["backend.kernel_precisions"]
        assert kernels == f"int8 {compute_layers('squeezenet1_1')}" or record["params"]["backend"] == "openvino", kernels
        assert "efficiency" not in record["metrics"]  # no INT8 peak is measured: no efficiency against the FP32 one
        assert record["tags"]["peak_source"].startswith("none")
    names = sorted(run.info.run_name for run in runs_of(mlflow_client) if "mlflow.parentRunId" in run.data.tags)
    assert names == [f"squeezenet1_1_cpu_{b}_b1_int8_quick" for b in ("executorch", "onnxruntime", "openvino")]


@pytest.mark.slow  # measures two peak GEMMs: about 20 s
def test_efficiency_is_against_the_peak_of_the_precision_that_ran(run_cli, mlflow_client, tmp_path):
    """A bf16 run's peak is a BF16 GEMM's, measured and cached apart from the FP32 one; the run names tell them apart."""
    result = run_cli("-m", "backend.runtime.precision=fp32,bf16", *SQUEEZENET, EMBENCH_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode == 0, result.output
    by_precision = {r["tags"]["backend.precision"]: r for r in results(tmp_path)}
    cache = tmp_path / "cache" / "peak_gflops.json"
    cached = json.loads(cache.read_text()) if cache.exists() else {}  # a busy host's peak is used, never cached
    for precision in ("fp32", "bf16"):
        record = by_precision[precision]
        assert record["tags"]["peak_source"].startswith(f"measured {precision.upper()} matmul")
        keys = [k for k in cached if f"precision={precision}|" in k]
        if "cached in" in record["tags"]["peak_source"]:
            assert [record["metrics"]["peak_gflops"]] == [cached[k] for k in keys]
    names = {run.info.run_name for run in runs_of(mlflow_client) if "mlflow.parentRunId" in run.data.tags}
    assert names == {"squeezenet1_1_cpu_torch_b1_fp32_quick", "squeezenet1_1_cpu_torch_b1_bf16_quick"}


def test_run_names_carry_a_scenario_that_is_not_the_default(run_cli, mlflow_client, tmp_path):
    result = run_cli("backend=onnxruntime", "scenario=offline", *SQUEEZENET)
    assert result.returncode == 0, result.output
    [run] = runs_of(mlflow_client)
    assert run.info.run_name == "squeezenet1_1_cpu_onnxruntime_b1_fp32_offline_quick"

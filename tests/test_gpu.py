"""CUDA path; skipped cleanly on hosts without an NVIDIA GPU (CI has none)."""

import pytest
import torch
from conftest import results

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU"),
]


def test_cuda_sweep_ends_in_out_of_memory_and_goes_on(run_cli, tmp_path):
    """Growing batches until the GPU runs out: the largest ones are recorded as oom, not a crash."""
    too_big = 16384  # vgg16's first convolution alone outputs 210 GB at this batch
    result = run_cli("-m", "platform=cuda", "model=vgg16", f"batch=1,8,{too_big}", "protocol=quick")
    assert result.returncode == 1, result.output
    by_batch = {int(r["params"]["batch"]): r for r in results(tmp_path)}
    assert by_batch[too_big]["status"] == "oom"
    for batch in (1, 8):
        record = by_batch[batch]
        assert record["status"] == "ok"
        assert record["tags"]["device.type"] == "cuda" and record["tags"]["device.name"] == torch.cuda.get_device_name(0)
        assert record["tags"]["gpu.driver"] and record["tags"]["backend.cudnn_benchmark"] == "true"
        assert record["metrics"]["peak_device_memory_mb"] > 0
        assert record["tags"]["energy_source"] == "nvml energy counter"
        assert record["metrics"]["energy_per_inference_mj"] > 0
        assert 0 < record["metrics"]["efficiency"] < 2


def test_cuda_graphs_and_compile(run_cli, tmp_path):
    result = run_cli("-m", "platform=cuda", "model=resnet18", "backend=torch,torch_compile", "backend.runtime.cudnn_benchmark=true", "protocol=quick")
    assert result.returncode == 0, result.output
    graphs = run_cli("platform=cuda", "model=resnet18", "backend.runtime.cuda_graphs=true", "protocol=quick")
    assert graphs.returncode == 0, graphs.output
    for record in results(tmp_path):
        assert record["metrics"]["output_max_rel_diff"] < 1e-2


def test_fp32_means_fp32_and_nvml_reads_the_gpu_torch_uses(run_cli, tmp_path):
    """TF32 off unless asked; NVML's device is torch's (by UUID); the profile counts each kernel once."""
    result = run_cli("-m", "platform=cuda", "model=resnet18", "backend.runtime.tf32=false,true", "protocol=quick")
    assert result.returncode == 0, result.output
    by_tf32 = {r["params"]["backend.runtime.tf32"]: r for r in results(tmp_path)}
    assert by_tf32["False"]["tags"]["backend.tf32"] == "false" and by_tf32["True"]["tags"]["backend.tf32"] == "true"
    uuid = str(torch.cuda.get_device_properties(0).uuid)
    assert by_tf32["False"]["tags"]["gpu.uuid"].removeprefix("GPU-") == uuid.removeprefix("GPU-")
    assert by_tf32["False"]["metrics"]["profile_coverage"] < 1.2  # kernels counted twice gave about 2


def test_device_memory_of_a_runtime_outside_torch_is_the_drivers_figure(run_cli, tmp_path):
    """vgg16's 138 M FP32 weights (528 MiB) sit on the GPU under TensorRT or ONNX Runtime's CUDA provider, which
    torch's allocator never sees: no torch peak is logged for them, and the driver's per-process figure holds at
    least the weights (where NVML lists this process: not in a container's own PID namespace)."""
    import importlib.util

    backends = []
    if importlib.util.find_spec("tensorrt"):
        backends.append("tensorrt")
    if importlib.util.find_spec("onnxruntime") and "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers():
        backends.append("onnxruntime")
    if not backends:
        pytest.skip("neither TensorRT nor ONNX Runtime's CUDA provider is installed")
    result = run_cli("-m", "platform=cuda", "model=vgg16", f"backend={','.join(backends)},torch", "protocol=quick",
                     "protocol.profile_iterations=0")
    assert result.returncode == 0, result.output
    weights_mb = 138_357_544 * 4 / 2**20
    for record in results(tmp_path):
        metrics, source = record["metrics"], record["tags"]["device_memory_source"]
        if record["params"]["backend"] == "torch":
            assert metrics["peak_device_memory_mb"] >= weights_mb and source.startswith("peak: torch allocator")
        else:
            assert "peak_device_memory_mb" not in metrics and source.startswith("peak: none")
        if "after loop: nvml" in source:
            assert metrics["device_memory_after_loop_mb"] >= weights_mb
        else:
            assert "device_memory_after_loop_mb" not in metrics and "no process with this PID" in source

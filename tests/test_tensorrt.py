"""TensorRT: one clear line on a host without a CUDA GPU; the engine, its precisions and its profiler on one."""

import importlib.util
import json

import pytest
import torch

from test_cli import assert_one_line_error

QUICK = ("protocol=quick", "model=resnet18")


def results(tmp_path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(tmp_path.glob("outputs/**/result.json"))]


def test_tensorrt_on_a_cpu_platform_is_refused_in_one_line(run_cli, tmp_path):
    result = run_cli("backend=tensorrt", *QUICK)
    assert result.returncode == 2
    if importlib.util.find_spec("tensorrt") is None:  # CI and this CPU host: the extra is not installed
        assert_one_line_error(result, "tensorrt", 'pip install "embench[tensorrt]"')
    else:
        assert_one_line_error(result, "backend=tensorrt cannot run on platform=cpu", "cuda")
    assert not results(tmp_path)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
@pytest.mark.gpu
def test_tensorrt_builds_and_runs_each_precision_with_its_layer_profile(run_cli, tmp_path, precision):
    result = run_cli("platform=cuda", "backend=tensorrt", f"backend.runtime.precision={precision}", *QUICK)
    assert result.returncode == 0, result.output
    [record] = results(tmp_path)
    tags, metrics = record["tags"], record["metrics"]
    assert tags["backend.precision"] == precision and tags["tensorrt.engine_cache"] == "miss"
    assert metrics["prepare_s"] > float(tags["tensorrt.build_s"]) > 0  # the engine build is part of prepare_s
    assert metrics["profile_pct_convolution"] > 50 and metrics["profile_pct_other"] < 10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
@pytest.mark.gpu
def test_tensorrt_builds_one_engine_per_model_shape_and_precision(run_cli, tmp_path):
    result = run_cli("-m", "platform=cuda", "backend=tensorrt", "backend.runtime.calibration_seed=1,2", *QUICK, EMBENCH_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode == 0, result.output
    assert [r["tags"]["tensorrt.engine_cache"] for r in results(tmp_path)] == ["miss", "hit"]

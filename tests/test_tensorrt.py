"""TensorRT: one clear line on a CPU platform or without the package; on a CUDA GPU, the engine, its precisions,
its cache and TensorRT's own per-layer profile."""

import importlib.util
import sys

import pytest
import torch
from conftest import assert_one_line_error, results

from embench.backends.tensorrt import TensorRT
from embench.errors import ConfigError

RESNET18 = ("model=resnet18", "protocol=quick")


def test_tensorrt_on_a_cpu_platform_is_refused_before_measuring(run_cli, tmp_path):
    result = run_cli("backend=tensorrt", "model=squeezenet1_1", "protocol=quick", CUDA_VISIBLE_DEVICES="")  # no GPU
    assert result.returncode == 2
    assert_one_line_error(result, "backend=tensorrt cannot run on platform=cpu", "cuda")
    assert not results(tmp_path)


def test_a_bad_tensorrt_option_is_named_in_one_line(run_cli, tmp_path):
    result = run_cli("backend=tensorrt", "backend.runtime.precision=int4", "model=squeezenet1_1", "protocol=quick")
    assert result.returncode == 2
    assert_one_line_error(result, "backend.runtime.precision='int4' is not valid", "fp32, fp16, int8")
    assert not results(tmp_path)


@pytest.mark.parametrize("option", [{"workspace_gib": 0}, {"workspace_gib": 2.5}, {"calibration_samples": 0}])
def test_bad_options_are_refused_when_the_backend_is_built(option):
    [key] = option
    with pytest.raises(ConfigError, match=f"backend.runtime.{key}="):
        TensorRT(**option)


def test_a_gpu_host_without_the_package_is_told_the_extra_before_measuring(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # what `import tensorrt` meets on a host without it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigError, match='pip install "embench\\[tensorrt\\]"'):
        TensorRT()


class TestOnACudaGpu:
    pytestmark = [
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU"),
        pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason='needs pip install "embench[tensorrt]"'),
    ]

    def test_fp32_builds_in_prepare_runs_right_and_profiles_by_layer(self, run_cli, tmp_path):
        result = run_cli("platform=cuda", "backend=tensorrt", *RESNET18, EMBENCH_CACHE_DIR=str(tmp_path / "cache"))
        assert result.returncode == 0, result.output
        [record] = results(tmp_path)
        tags, metrics = record["tags"], record["metrics"]
        assert tags["backend.precision"] == "fp32" and tags["tensorrt.engine_cache"] == "miss" and tags["version.tensorrt"]
        assert metrics["output_max_rel_diff"] < 1e-2
        assert metrics["prepare_s"] > float(tags["tensorrt.build_s"]) > 0  # the engine build is part of prepare_s
        assert metrics["profile_pct_convolution"] > 50

    @pytest.mark.parametrize("precision", ["fp16", "int8"])
    def test_fp16_and_int8_engines_run(self, run_cli, tmp_path, precision):
        result = run_cli("platform=cuda", "backend=tensorrt", f"backend.runtime.precision={precision}", *RESNET18)
        assert result.returncode == 0, result.output
        [record] = results(tmp_path)
        assert record["tags"]["backend.precision"] == precision

    def test_a_sweep_builds_one_engine_per_model_shape_and_precision(self, run_cli, tmp_path):
        # the calibration seed changes nothing at fp32: the second job finds the first one's engine
        result = run_cli("-m", "platform=cuda", "backend=tensorrt", "backend.runtime.calibration_seed=1,2", *RESNET18,
                         EMBENCH_CACHE_DIR=str(tmp_path / "cache"))
        assert result.returncode == 0, result.output
        assert [r["tags"]["tensorrt.engine_cache"] for r in results(tmp_path)] == ["miss", "hit"]

"""The paper's platforms on a host that has none of them; fallback; specs."""

import pytest
import torch
from conftest import CONF, PLUGINS, assert_one_line_error, only_result, results, write_user_backend
from omegaconf import OmegaConf

QUICK = ("protocol=quick", "model=squeezenet1_1")
PAPER_PLATFORMS = {
    "xeon4116": "an Intel Xeon Silver 4116 CPU",
    "rtx2080ti": "an NVIDIA GeForce RTX 2080 Ti GPU",
    "kryo385": "a Qualcomm Kryo 385 CPU",
    "ncs2": "an Intel Neural Compute Stick 2",
    "xavier": "an NVIDIA Jetson AGX Xavier",
    "npu": "an Intel NPU",
}


@pytest.mark.parametrize("name", ["xeon4116", "rtx2080ti", "kryo385", "ncs2", "xavier"])
def test_paper_platforms_carry_table_2(name):
    specs = OmegaConf.load(CONF / "platform" / f"{name}.yaml").specs
    for key in ("cores", "clock_ghz", "memory_gb", "process_nm", "tdp_w", "peak_fp32_gflops", "memory_bandwidth_gbs"):
        assert key in specs
    assert specs.tdp_w == {"xeon4116": 85, "rtx2080ti": 250, "kryo385": 5, "ncs2": 1, "xavier": 30}[name]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has a GPU")
@pytest.mark.parametrize("name", sorted(PAPER_PLATFORMS))
def test_absent_paper_platform_fails_in_one_line(run_cli, name):
    result = run_cli(f"platform={name}", *QUICK)
    assert_one_line_error(result, f"platform={name} needs {PAPER_PLATFORMS[name]}", "this host lacks", "it has:", "platform.strict=false")
    assert result.returncode == 2


def test_ncs2_explains_that_openvino_dropped_myriad(run_cli):
    result = run_cli("platform=ncs2", *QUICK)
    assert_one_line_error(result, "MYRIAD", "2022.3", "platform=npu")


@pytest.mark.slow
def test_non_strict_paper_platform_runs_here_without_borrowing_its_specs(run_cli, tmp_path):
    result = run_cli("platform=xeon4116", "platform.strict=false", "platform.threads=1", *QUICK)
    assert result.returncode == 0, result.output
    record = only_result(tmp_path)
    assert record["params"]["platform"] == "xeon4116"
    assert record["tags"]["device.type"] == "cpu" and "xeon4116 absent" in record["tags"]["device.fallback"]
    assert record["tags"]["peak_source"].startswith("measured")  # not the Xeon's 806.4 GFLOP/s
    assert record["tags"]["energy_source"] == "none"  # nor its 85 W TDP
    assert record["tags"]["threads"] == "1"


def test_backend_that_cannot_run_on_the_platform_device(run_cli, tmp_path):
    result = run_cli("platform.device=openvino", "+platform.openvino_device=CPU", "backend=torch", *QUICK)
    assert_one_line_error(result, "backend=torch cannot run on platform=cpu", "openvino device", "cpu or cuda")
    assert result.returncode == 2


def _fixed_step_run(run_cli, tmp_path, *args) -> dict:
    """A quick run at batch 2 of tests/plugins/fixed_step_backend.py, whose every step takes STEP_MS."""
    write_user_backend(tmp_path / "my_conf", "fixed_step", "fixed_step_backend.FixedStep", step_ms=STEP_MS)
    result = run_cli("--config-dir", str(tmp_path / "my_conf"), "backend=fixed_step", *QUICK, "batch=2",
                     "protocol.profile_iterations=0", *args, PYTHONPATH=PLUGINS)
    assert result.returncode == 0, result.output
    return only_result(tmp_path)


STEP_MS = 100.0  # per step of 2 images: 20 images/s, whatever the host
# squeezenet1_1's FLOPs per image, from torchvision's own metadata (0.349 GMACs), not from embench's count
SQUEEZENET_GFLOP = 2 * 0.349
SLACK = 1.5  # a step lasts STEP_MS and a little more (a busy host wakes a sleeper late: 9 ms seen), never less


def test_tdp_gives_an_energy_estimate(run_cli, tmp_path):
    """65 W over 100 ms steps of 2 images: 3250 mJ an image, on a step of known duration."""
    record = _fixed_step_run(run_cli, tmp_path, "platform.specs.tdp_w=65")
    metrics = record["metrics"]
    assert record["tags"]["energy_source"] == "estimate: platform TDP x time"
    known_mj = 1e3 * 65 * STEP_MS / 1e3 / 2
    assert known_mj * 0.99 <= metrics["energy_per_inference_mj"] < known_mj * SLACK
    assert 1e3 / (known_mj * SLACK) < metrics["inferences_per_joule"] <= 1e3 / (known_mj * 0.99)
    assert metrics["power_w"] == pytest.approx(65, rel=0.02)  # the TDP: metered over the timed loop alone


def test_efficiency_is_the_achieved_rate_over_the_platforms_peak(run_cli, tmp_path):
    """20 squeezenet1_1 images/s (fixed 100 ms steps of 2) on a platform given a 100 GFLOP/s peak: 14 % of it."""
    record = _fixed_step_run(run_cli, tmp_path, "platform.specs.peak_fp32_gflops=100")
    metrics = record["metrics"]
    assert record["tags"]["peak_source"] == "platform spec" and metrics["peak_gflops"] == 100
    known = SQUEEZENET_GFLOP * 2 / (STEP_MS / 1e3) / 100  # 0.1396
    assert known / SLACK < metrics["efficiency"] <= known * 1.01


BIG_GEMM_MB = 3 * 4096**2 * 4 / 2**20  # tests/plugins/big_peak_gemm_backend.py: its GEMM's operands and product


@pytest.mark.slow
def test_a_measured_peak_gemm_never_appears_in_the_runs_memory_peak(run_cli, tmp_path):
    """The CPU peak GEMM runs after the memory peak is read: a run that measures it and a run given a published
    peak (no GEMM at all) report the same memory peak. The plugin enlarges the GEMM to a known 192 MB, so a peak
    that held it would differ by far more than two runs of the same network do on any host."""
    write_user_backend(tmp_path / "my_conf", "big_gemm", "big_peak_gemm_backend.BigPeakGemmEager")
    peaks = {}
    for given in ("null", "456"):
        result = run_cli("--config-dir", str(tmp_path / "my_conf"), "backend=big_gemm", *QUICK,
                         f"platform.specs.peak_fp32_gflops={given}", EMBENCH_CACHE_DIR=str(tmp_path / f"cache_{given}"),
                         PYTHONPATH=PLUGINS)
        assert result.returncode == 0, result.output
        record = max(results(tmp_path, "outputs/runs/*/result.json"), key=lambda r: r["start_time"])
        source = record["tags"]["peak_source"]  # a measured one may say "on a busy host": it was measured all the same
        peaks["measured" if source.startswith("measured FP32 matmul") else source] = record["metrics"]["peak_memory_mb"]
    assert set(peaks) == {"measured", "platform spec"}
    assert abs(peaks["measured"] - peaks["platform spec"]) < BIG_GEMM_MB / 2, peaks


def _heavy_run(run_cli, tmp_path, target: str) -> dict:
    """The metrics of a quick run of a user backend from tests/plugins/heavy_check_backend.py."""
    write_user_backend(tmp_path / "my_conf", "heavy", f"heavy_check_backend.{target}")
    result = run_cli("--config-dir", str(tmp_path / "my_conf"), "backend=heavy", *QUICK,
                     PYTHONPATH=PLUGINS)
    assert result.returncode == 0, result.output
    return only_result(tmp_path)["metrics"]


def test_the_output_check_never_appears_in_the_runs_memory_peak(run_cli, tmp_path):
    """A backend whose output check touches a known 400 MB: the run's memory peak is read before it."""
    metrics = _heavy_run(run_cli, tmp_path, "HeavyCheckEager")
    assert metrics["peak_memory_mb"] - metrics["memory_baseline_mb"] < 200, metrics  # squeezenet at batch 1: tens of MB


def test_preparing_the_backend_stays_out_of_the_prepared_backends_memory_peak(run_cli, tmp_path):
    """A backend whose preparation (a conversion, say) touches a known 400 MB and frees it: that is in
    prepare_peak_memory_mb, and not in the peak of the prepared backend's cold start, warm-up and timed loop."""
    metrics = _heavy_run(run_cli, tmp_path, "HeavyPrepareEager")
    assert metrics["prepare_peak_memory_mb"] - metrics["memory_baseline_mb"] > 380, metrics
    assert metrics["peak_memory_mb"] - metrics["memory_baseline_mb"] < 200, metrics

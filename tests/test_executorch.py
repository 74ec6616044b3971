"""ExecuTorch with XNNPACK through the real CLI: a cached .pte program, ETDump's per-operator profile, INT8."""

import pytest
import torch
from conftest import assert_every_layer_profiled, assert_one_line_error, profile_rows, results

QUICK = ("protocol=quick", "model=squeezenet1_1")


@pytest.mark.slow  # a lowering and a 2-job sweep, about 55 s
def test_executorch_runs_a_pte_program_with_xnnpacks_own_operator_profile(run_cli, tmp_path):
    cache = tmp_path / "cache"
    result = run_cli("-m", "backend=executorch", "backend.runtime.calibration_seed=1,2", *QUICK, EMBENCH_CACHE_DIR=str(cache))
    assert result.returncode == 0, result.output
    records = results(tmp_path)
    # calibration does not change an FP32 program: the second job reuses the first one's
    assert [r["tags"]["executorch.pte_cache"] for r in records] == ["miss", "hit"]
    [pte] = cache.glob("executorch/*/*.pte")
    tags, metrics = records[0]["tags"], records[0]["metrics"]
    assert tags["backend.precision"] == "fp32" and tags["executorch.threads"] == tags["threads"]
    assert int(tags["executorch.delegated_nodes"]) > 50 and tags["executorch.portable_nodes"] == "0"
    assert tags["executorch.portable_ops"] == "none"
    assert metrics["output_max_rel_diff"] < 1e-4 and metrics["output_top1_agreement"] == 1.0
    run_dir = sorted(tmp_path.glob("outputs/sweeps/*/0_*"))[0]
    assert (run_dir / "model.pte").read_bytes() == pte.read_bytes()  # the program a phone would run, kept with the run
    rows = profile_rows(run_dir, "profile_ops.csv")
    kinds = {row["layer_type"].split(" (")[0]: row["category"] for row in rows}
    assert kinds["Convolution"] == "convolution" and kinds["Max Pooling"] == "pooling"  # ReLUs are fused into them
    assert {row["exec_type"] for row in rows} == {"xnnpack"}  # every operator delegated
    # one XNNPACK Convolution or Fully Connected operator (a 1x1 convolution runs as the latter) per layer
    assert_every_layer_profiled(rows, "squeezenet1_1", (torch.nn.Conv2d, torch.nn.Linear), ("convolution", "fully_connected"))


def test_a_bad_executorch_option_is_refused_in_one_line(run_cli):
    result = run_cli("backend=executorch", "backend.runtime.precision=int4", *QUICK)
    assert result.returncode == 2, result.output
    assert_one_line_error(result, "backend.runtime.precision='int4'", "fp32, int8")


class CumulativeNet(torch.nn.Module):
    """A convolution that XNNPACK takes, then a cumulative sum that it does not (a portable kernel)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(x).cumsum(1)


def test_an_op_left_to_a_portable_kernel_is_tagged_and_profiled_once(tmp_path, monkeypatch):
    from embench.backends.executorch import ExecuTorch
    from embench.platform import Device

    monkeypatch.setenv("EMBENCH_CACHE_DIR", str(tmp_path))
    model, example = CumulativeNet().eval(), torch.randn(1, 3, 16, 16)
    with torch.inference_mode():
        prepared = ExecuTorch().prepare(model, example, Device("cpu", "test", torch.device("cpu"), lambda: None, 1), "cumnet-0")
        assert torch.allclose(prepared.output(), model(example), rtol=1e-4, atol=1e-5)
    assert prepared.tags["executorch.portable_ops"] == "aten_cumsum_default"
    assert prepared.tags["executorch.portable_nodes"] == "1"
    ops = {op.op: op for op in prepared.profile(3).ops}
    assert ops["native_call_cumsum.out"].exec_type == "portable" and ops["native_call_cumsum.out"].layer_type == "cumsum"
    assert "OPERATOR_CALL" not in ops  # the wrapper around a portable kernel's own event: its time counted once
    assert any(op.exec_type == "xnnpack" and op.layer_type.startswith("Convolution") for op in ops.values())


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet18", "shufflenet_v2_x1_0", "squeezenet1_1"])
def test_executorch_int8_runs_and_reports_its_agreement_with_fp32(run_cli, tmp_path, model):
    result = run_cli("backend=executorch", "backend.runtime.precision=int8", f"model={model}", "protocol=quick")
    assert result.returncode == 0, result.output
    [record] = results(tmp_path)
    assert record["tags"]["backend.precision"] == "int8"
    assert 0 < record["metrics"]["output_max_rel_diff"] < 0.5  # quantized: not bit-exact, not wrong
    assert "output_top1_agreement" in record["metrics"]  # its value is about random weights: logged, not judged
    [run_dir] = tmp_path.glob("outputs/runs/*")
    types = {row["layer_type"] for row in profile_rows(run_dir, "profile_ops.csv")}
    assert any(t.startswith("Convolution (NHWC, QC8)") or "QS8" in t or "QD8" in t for t in types), types

"""All 26 networks of the paper's Table 1 through each converting runtime (the zoo marker): each one runs with a
correct output or fails with its network and reason named; the networks that cannot convert are the
ones README lists."""

import shutil

import pytest
from conftest import CONF, JOB_RESULTS, PLUGINS, results, write_user_model

NETWORKS = sorted(path.stem for path in (CONF / "model").glob("*.yaml") if "\npaper:" in path.read_text())  # Table 1's
# README, "Networks a runtime cannot run": what each backend refuses on this stack, and how its error begins.
CANNOT_CONVERT = {
    "onnxruntime": {},
    "executorch": {
        "nasnetalarge": "executorch cannot run nasnetalarge (operator aten::constant_pad_nd)",
        "pnasnet5large": "executorch cannot run pnasnet5large (operator aten::constant_pad_nd)",
    },
}


def test_the_zoo_is_the_papers_26_networks():
    assert len(NETWORKS) == 26


@pytest.mark.zoo  # onnxruntime 6 to 8 minutes here, executorch 18 to 28 (NASNet lowers slowly)
@pytest.mark.parametrize("backend", ["onnxruntime", "executorch"])
def test_every_network_runs_or_fails_named(run_cli, tmp_path, backend):
    result = run_cli("-m", f"model={','.join(NETWORKS)}", f"backend={backend}", "protocol=quick",
                     "protocol.profile_iterations=0", timeout=3000)
    assert result.returncode in (0, 1), result.output
    assert "Traceback" not in result.stderr
    records = {r["params"]["model"]: r for r in results(tmp_path, JOB_RESULTS)}
    assert sorted(records) == NETWORKS
    failed = {name: record["error"] for name, record in records.items() if record["status"] != "ok"}
    assert set(failed) == set(CANNOT_CONVERT[backend]), failed
    for name, error in failed.items():
        assert error.startswith(CANNOT_CONVERT[backend][name]), error  # the runtime, the network, the operator
    for name in set(NETWORKS) - set(failed):
        assert records[name]["metrics"]["output_max_rel_diff"] < 1e-2, name
    for heavy in ("outputs", "mlruns"):  # each run keeps its converted model: gigabytes over 26 networks
        shutil.rmtree(tmp_path / heavy, ignore_errors=True)


@pytest.mark.slow
def test_a_network_a_runtime_cannot_convert_fails_named_and_the_sweep_goes_on(run_cli, tmp_path):
    conf_dir = tmp_path / "my_conf"
    write_user_model(conf_dir, "svd_net", "svd_model.SvdNet")
    result = run_cli("--config-dir", str(conf_dir), "-m", "model=svd_net", "backend=onnxruntime,executorch", "protocol=quick",
                     PYTHONPATH=PLUGINS)
    assert result.returncode == 1 and "Traceback" not in result.output
    errors = {r["params"]["backend"]: r["error"] for r in results(tmp_path, JOB_RESULTS)}
    assert errors["onnxruntime"].startswith("torch.onnx.export cannot convert svd_net (operator aten::_linalg_svd): ")
    assert errors["executorch"].startswith("executorch cannot convert svd_net (operator aten::_linalg_svd): ")
    assert not list(tmp_path.glob("outputs/sweeps/*/*/error.txt"))  # a named failure, not a traceback

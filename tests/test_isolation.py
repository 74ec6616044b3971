"""Every job of a local sweep runs in a worker process: one that dies fails its job, and the sweep goes on."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import JOB_RESULTS, PLUGINS, REPO, results, runs_of, write_user_backend

COLD_CALL_MS = 300.0  # tests/plugins/cold_process_backend.py: the first step of a process waits this much more
SELF_KILL = ("--config-dir", str(REPO / "tests" / "data" / "farm_conf"))  # backend=self_kill


@pytest.mark.slow  # a 3-job sweep; SIGSEGV stays in the default suite
def test_a_job_killed_by_sigkill_fails_alone_and_the_sweep_goes_on(run_cli, tmp_path, mlflow_client):
    """Job 0 SIGKILLs its own process (as the kernel's OOM killer would); job 1 is measured in a fresh worker."""
    result = run_cli(*SELF_KILL, "-m", "model=squeezenet1_1", "backend=self_kill,torch", "protocol=quick",
                     "protocol.profile_iterations=0", PYTHONPATH=PLUGINS)
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output and "2 job(s) run, 1 failed" in result.output
    records = {r["params"]["backend"]: r for r in results(tmp_path, JOB_RESULTS)}
    assert records["self_kill"]["status"] == "failed" and "killed by SIGKILL" in records["self_kill"]["error"]
    assert records["torch"]["status"] == "ok"
    runs = runs_of(mlflow_client)
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED", "FINISHED"]  # the parent, self_kill, torch


@pytest.mark.slow
def test_a_segfault_in_a_job_is_named_and_the_next_job_gets_a_fresh_worker(run_cli, tmp_path):
    result = run_cli(*SELF_KILL, "-m", "model=squeezenet1_1", "backend=self_kill", "backend.runtime.signum=11",
                     "batch=1,2", "protocol=quick", "tracking.enabled=false", PYTHONPATH=PLUGINS)
    assert result.returncode == 1, result.output
    assert result.output.count("the job's process was killed by SIGSEGV") >= 2, result.output
    assert "2 job(s) run, 2 failed" in result.output


def test_a_local_run_never_imports_ray():
    """Ray is the farm's: the modules of a local run and of its worker leave it unimported."""
    code = ("import sys, embench.cli.run, embench.sweep.run, embench.point.keep, embench.farms.local, embench.point.runner, "
            "embench.cli.node; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def _cold_process_backend(tmp_path: Path) -> tuple[str, ...]:
    """--config-dir for backend=cold_process: the first step a process ever runs waits COLD_CALL_MS more."""
    write_user_backend(tmp_path / "my_conf", "cold_process", "cold_process_backend.ColdProcess")
    return "--config-dir", str(tmp_path / "my_conf"), "backend=cold_process"


def test_every_job_of_a_sweep_makes_its_first_inference_in_a_fresh_process(run_cli, tmp_path):
    """Each job's first call is cold wherever it sits: the second job's too pays the first-call-in-a-process wait."""
    result = run_cli("-m", *_cold_process_backend(tmp_path), "model=squeezenet1_1", "batch=1,2", "protocol=quick",
                     "protocol.profile_iterations=0", "tracking.enabled=false", PYTHONPATH=PLUGINS)
    assert result.returncode == 0, result.output
    records = results(tmp_path, JOB_RESULTS)
    first_ms = {r["params"]["batch"]: r["metrics"]["first_inference_ms"] for r in records}
    assert len(first_ms) == 2 and min(first_ms.values()) >= COLD_CALL_MS, first_ms
    warm_ms = {r["params"]["batch"]: r["metrics"]["latency_max_ms"] for r in records}
    assert max(warm_ms.values()) < COLD_CALL_MS, warm_ms  # the wait is the first call's alone

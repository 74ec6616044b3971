"""Every job of a local sweep runs in a worker process: one that dies fails its job, and the sweep goes on."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, runs_of

PLUGINS = {"PYTHONPATH": f"{REPO}:{REPO / 'tests' / 'plugins'}"}
SELF_KILL = ("--config-dir", str(REPO / "tests" / "data" / "farm_conf"))  # backend=self_kill


@pytest.mark.slow  # a 3-job sweep; SIGSEGV stays in the default suite
def test_a_job_killed_by_sigkill_fails_alone_and_the_sweep_goes_on(run_cli, tmp_path, mlflow_client):
    """Job 0 SIGKILLs its own process (as the kernel's OOM killer would); job 1 is measured in a fresh worker."""
    result = run_cli(*SELF_KILL, "-m", "model=squeezenet1_1", "backend=self_kill,torch", "protocol=quick",
                     "protocol.profile_iterations=0", **PLUGINS)
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output and "2 job(s) run, 1 failed" in result.output
    records = {r["params"]["backend"]: r for r in map(json.loads, map(Path.read_text, tmp_path.glob("outputs/sweeps/*/*/result.json")))}
    assert records["self_kill"]["status"] == "failed" and "killed by SIGKILL" in records["self_kill"]["error"]
    assert records["torch"]["status"] == "ok"
    runs = runs_of(mlflow_client)
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED", "FINISHED"]  # the parent, self_kill, torch


@pytest.mark.slow
def test_a_segfault_in_a_job_is_named_and_the_next_job_gets_a_fresh_worker(run_cli, tmp_path):
    result = run_cli(*SELF_KILL, "-m", "model=squeezenet1_1", "backend=self_kill", "backend.runtime.signum=11",
                     "batch=1,2", "protocol=quick", "tracking.enabled=false", **PLUGINS)
    assert result.returncode == 1, result.output
    assert result.output.count("the job's process was killed by SIGSEGV") >= 2, result.output
    assert "2 job(s) run, 2 failed" in result.output


def test_a_local_run_never_imports_ray():
    """Ray is the farm's: the modules of a local run and of its worker leave it unimported."""
    code = ("import sys, embench.app, embench.sweep, embench.job, embench.workers, embench.runner, embench.node; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"

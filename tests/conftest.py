"""Shared fixtures: run the real CLI in a subprocess against a temporary MLflow store."""

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"

# One cache (measured peaks, converted models) for the whole test session, away from the user's.
os.environ.setdefault("EMBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="embench-test-cache-"))


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env["TORCH_HOME"] = str(tmp_path / "torch_home")  # no warm weight cache can hide an offline failure
    env.update(extra)
    return env


@pytest.fixture
def run_cli(tmp_path):
    """Runs `python -m embench ARGS` in tmp_path; returns code and output."""

    def run(*args: str, timeout: float = 600, **env: str) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "embench", *args],
            cwd=tmp_path,
            env=cli_env(tmp_path, **env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def mlflow_client(tmp_path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")

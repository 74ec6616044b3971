"""Shared fixtures: run the real CLI in a subprocess against a temporary MLflow store."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"

# One cache (measured peaks, converted models) for the whole test session, away from the user's, removed when the
# session ends: converted models of the 26 networks fill gigabytes.
SESSION_CACHE = tempfile.TemporaryDirectory(prefix="embench-test-cache-")
os.environ.setdefault("EMBENCH_CACHE_DIR", SESSION_CACHE.name)
# CI stops a suite past its time with SIGTERM: end the session as Ctrl-C would, so that the cache is still removed.
signal.signal(signal.SIGTERM, signal.default_int_handler)


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """A real `mlflow server` on loopback over a sqlite store; stopped by its own process group."""

    def __init__(self, root: Path, port: int | None = None):
        self.root, self.port = root, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self) -> "MlflowServer":
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}", "--artifacts-destination", str(self.root / "artifacts")],
            cwd=self.root, stdout=(self.root / "server.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
            assert self.proc.poll() is None, (self.root / "server.log").read_text()[-2000:]
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within 120 s: {(self.root / 'server.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own group: the server and its workers, nothing else
            self.proc.wait(timeout=30)

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


def assert_one_line_error(result, *needles: str) -> None:
    """A refused run: one `embench: error:` line holding every needle, no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("embench: error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def runs_of(client, experiment: str = "embench") -> list:
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []

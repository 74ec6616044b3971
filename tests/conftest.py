"""Shared fixtures and helpers: run the real CLI in a subprocess against a temporary MLflow store, read what it
wrote. Test files import the helpers with `from conftest import ...` (pytest puts tests/ on sys.path); no test
file imports another."""

import csv
import json
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
PLUGINS = f"{REPO}{os.pathsep}{REPO / 'tests' / 'plugins'}"  # PYTHONPATH for the user backends in tests/plugins

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


class Cli:
    """`python -m embench ARGS` as a live process whose output is read line by line."""

    def __init__(self, tmp_path: Path, *args: str, cwd: Path | None = None, **env: str):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "embench", *args], cwd=cwd or tmp_path, text=True,
            env=cli_env(tmp_path, PYTHONUNBUFFERED="1", **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )

    def wait_for(self, marker: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        for line in self.proc.stdout:
            self.lines.append(line)
            if marker in line:
                return
            assert time.monotonic() < deadline, f"no {marker!r} within {timeout} s"
        raise AssertionError(f"process ended before {marker!r}:\n{self.output}")

    def finish(self, timeout: float = 300) -> int:
        self.lines += self.proc.communicate(timeout=timeout)[0].splitlines(keepends=True)
        return self.proc.returncode

    @property
    def output(self) -> str:
        return "".join(self.lines)


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
    """A real `mlflow server` on loopback over a sqlite store; stopped by its own process group. `args` and `env`:
    more of the server's options and environment (e.g. `--app-name basic-auth` and its MLFLOW_AUTH_CONFIG_PATH)."""

    def __init__(self, root: Path, port: int | None = None, args: tuple[str, ...] = (), env: dict[str, str] | None = None):
        self.root, self.port = root, port or free_port()
        self.args, self.env = args, env
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self) -> "MlflowServer":
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}", "--artifacts-destination", str(self.root / "artifacts"),
             *self.args],
            env=os.environ | (self.env or {}), cwd=self.root, stdout=(self.root / "server.log").open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
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


def children(runs: list) -> list:
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def parents(runs: list) -> list:
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


JOB_RESULTS = "outputs/sweeps/*/*/result.json"  # the records of a sweep's jobs, for `results`


def results(root: Path, pattern: str = "outputs/**/result.json") -> list[dict]:
    """The result.json records under root that match pattern (by default every run's and every job's), in path order."""
    return [json.loads(path.read_text()) for path in sorted(root.glob(pattern))]


def only_result(root: Path) -> dict:
    """The record of the one single run (not a sweep's job) under root."""
    [record] = results(root, "outputs/runs/*/result.json")
    return record


def profile_rows(root: Path, pattern: str = "outputs/runs/*/profile_ops.csv") -> list[dict]:
    """The rows of the one profile_ops.csv under root that matches pattern."""
    [path] = root.glob(pattern)
    with path.open() as handle:
        return list(csv.DictReader(handle))


def assert_every_layer_profiled(rows: list[dict], model: str, layers: tuple[type, ...], categories: tuple[str, ...]) -> None:
    """Host-independent: the profile runs one operator in `categories` per layer of a `layers` type, counted in
    torchvision's own module list (a truth the profile did not produce), and leaves no operator in `other`.
    Shares of time differ from CPU to CPU and are not asserted."""
    import torchvision

    network = torchvision.models.get_model(model)
    assert sum(float(row["calls_per_inference"]) for row in rows if row["category"] in categories) == sum(
        isinstance(module, layers) for module in network.modules())
    assert not {row["layer_type"] for row in rows if row["category"] == "other"}


def assert_nothing_lost(client, root: Path) -> list:
    """Every run is closed, and every result.json on disk under root is a whole run in the store."""
    runs = runs_of(client)
    assert not [r for r in runs if r.info.status == "RUNNING"], [(r.info.run_name, r.info.status) for r in runs]
    logged = {r.data.tags.get("embench.run_uid") for r in runs if r.data.tags.get("embench.logged") == "true"}
    on_disk = {record["run_uid"] for record in results(root, "**/result.json")}
    assert on_disk <= logged, f"measured but not in MLflow: {on_disk - logged}"
    return runs


def write_user_model(conf_dir: Path, name: str, target: str, **kwargs) -> None:
    """conf_dir/model/NAME.yaml: a model of the user's own (for --config-dir), built by `target`(**kwargs)."""
    (conf_dir / "model").mkdir(parents=True, exist_ok=True)
    factory = "".join(f"\n  {k}: {v}" for k, v in kwargs.items())
    (conf_dir / "model" / f"{name}.yaml").write_text(
        f"name: {name}\nyear: 2024\ninput_size: 64\nsource: torchvision\npretrained: false\n"
        f"factory:\n  _target_: {target}{factory}\n"
        "accuracy: {top1: 1.0, top5: 5.0, source: untrained}\npaper: {flops_m: 1, params_m: 1, top1: 1, top5: 5}\n"
    )


def write_user_backend(conf_dir: Path, name: str, target: str, **runtime) -> None:
    """conf_dir/backend/NAME.yaml: a backend of the user's own (for --config-dir), `target`(**runtime)."""
    (conf_dir / "backend").mkdir(parents=True, exist_ok=True)
    options = "".join(f"  {k}: {v}\n" for k, v in runtime.items())
    (conf_dir / "backend" / f"{name}.yaml").write_text(f"name: {name}\nruntime:\n  _target_: {target}\n{options}")

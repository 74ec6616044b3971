"""The device farm on a real Ray cluster on this host: `embench node` processes on loopback, each stopped by its PID."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from conftest import (
    JOB_RESULTS,
    PLUGINS,
    REPO,
    Cli,
    MlflowServer,
    assert_nothing_lost,
    children,
    cli_env,
    free_port,
    parents,
    results,
    runs_of,
)

FARM_CONF = REPO / "tests" / "data" / "farm_conf"  # platform=cpu1 (one thread), backend=self_kill
READY = "block forever"  # what `ray start --block` prints once the node has joined


class Node:
    """`embench node ARGS` in its own session: stopping its PID's group stops every Ray process it started."""

    def __init__(self, root: Path, name: str, *args: str, pythonpath: str = PLUGINS):
        self.log = root / f"node_{name}.log"
        env = cli_env(root, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=pythonpath)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "embench", "node", *args], cwd=root, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while READY not in self.log.read_text():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.5)

    def measuring(self) -> bool:
        """Whether one of this node's processes is measuring a job now."""
        return any(p.name().startswith("ray::_measure") for p in psutil.Process(self.proc.pid).children(recursive=True))

    def stop(self, signum: int = signal.SIGTERM) -> None:
        try:
            os.killpg(self.proc.pid, signum)
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        except ProcessLookupError:
            pass


class Farm:
    """A head serving platform=cpu and nodes joining it, started one after another."""

    def __init__(self, root: Path):
        self.root, self.nodes = root, []
        self.temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.head = self.add("head", "--platform", "cpu", "--head", "--port", str(self.port), "--",
                             "--include-dashboard=false", f"--temp-dir={self.temp}")

    def add(self, name: str, *args: str, **kwargs) -> Node:
        if "--head" not in args:
            args = ("--address", self.address, "--config-dir", str(FARM_CONF), *args)
        node = Node(self.root, name, "--num-cpus", "1", *args, **kwargs)
        self.nodes.append(node)
        return node

    def node_ids(self) -> dict[str, list[str]]:
        """platform -> ids of the live nodes serving it, as Ray itself reports them."""
        script = ("import json, ray; ray.init(address='%s', logging_level='ERROR'); "
                  "print(json.dumps([[n['NodeID'], list(n['Resources'])] for n in ray.nodes() if n['Alive']]))") % self.address
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                             env=cli_env(self.root, RAY_USAGE_STATS_ENABLED="0")).stdout
        served = {}
        for node_id, resources in json.loads(out.strip().splitlines()[-1]):
            for name in resources:
                if name.startswith("platform:"):
                    served.setdefault(name.split(":", 1)[1], []).append(node_id)
        return served

    def sweep(self, *args: str, quick: bool = True, **env: str) -> Cli:
        """A sweep on this farm; `quick`: of squeezenet1_1, on protocol=quick without the profile pass."""
        base = ("model=squeezenet1_1", "protocol=quick", "protocol.profile_iterations=0") if quick else ()
        return Cli(self.root, "--config-dir", str(FARM_CONF), "-m", *base, "farm=ray", f"farm.address={self.address}",
                   *args, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=PLUGINS, **env)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    """platform=cpu on the head, platform=cpu1 on a second node."""
    farm = Farm(tmp_path_factory.mktemp("farm"))
    try:
        farm.add("cpu1", "--platform", "cpu1")
        yield farm
    finally:
        farm.stop()


def _fresh(farm: Farm, tmp_path: Path) -> Farm:
    """The module's farm, driven from this test's own folder."""
    farm.root = tmp_path
    return farm


pytestmark = pytest.mark.slow


def test_a_farm_sweep_measures_each_platform_on_its_node_into_one_server(farm, tmp_path):
    """Two nodes, two platforms, 2 s runs: each run on its platform's node; one node's runs one after
    another, the two nodes' runs at the same time; every run a child of one parent on a real mlflow server."""
    farm = _fresh(farm, tmp_path)
    server = MlflowServer(tmp_path)
    server.start()
    try:
        sweep = farm.sweep("platform=cpu,cpu1", "batch=1,2", "protocol.min_duration_s=2", "protocol.max_duration_s=2",
                           MLFLOW_TRACKING_URI=server.url)
        assert sweep.finish(timeout=400) == 0, sweep.output
        records = results(tmp_path, JOB_RESULTS)
        assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
        served = farm.node_ids()
        for record in records:
            assert [record["tags"]["ray.node_id"]] == served[record["params"]["platform"]], record["params"]
            assert record["tags"]["embench.farm"] == "ray"
        spans = {platform: sorted((r["start_time"], r["end_time"]) for r in records if r["params"]["platform"] == platform)
                 for platform in ("cpu", "cpu1")}
        for (_, first_end), (second_start, _) in spans.values():
            assert first_end <= second_start, spans  # one device, one job at a time
        assert any(a_start < b_end and b_start < a_end for a_start, a_end in spans["cpu"] for b_start, b_end in spans["cpu1"]), spans
        assert "[embench] 4/4 done, 0 failed" in sweep.output
        for log in tmp_path.glob("outputs/sweeps/*/*/embench.log"):
            assert "measuring squeezenet1_1" in log.read_text() and "logged to MLflow" in log.read_text()
        runs = assert_nothing_lost(server.client(), tmp_path / "outputs")
        [parent] = parents(runs)
        assert parent.info.status == "FINISHED" and len(children(runs)) == 4
        assert {r.data.tags["mlflow.parentRunId"] for r in children(runs)} == {parent.info.run_id}
    finally:
        server.stop()


def test_a_platform_no_node_serves_fails_its_jobs_in_one_line_and_the_rest_run(farm, tmp_path):
    farm = _fresh(farm, tmp_path)
    sweep = farm.sweep("platform=cpu,xavier", "farm.node_wait_s=2")
    assert sweep.finish(timeout=300) == 1, sweep.output
    line = [line for line in sweep.lines if line.startswith("embench: error:") and "platform=xavier" in line][0]
    assert "has no node serving platform=xavier" in line and "it serves platform=cpu, platform=cpu1" in line, line
    assert {r["params"]["platform"]: r["status"] for r in results(tmp_path, JOB_RESULTS)} == {"cpu": "ok", "xavier": "failed"}
    assert "Traceback" not in sweep.output


def test_a_job_that_sigkills_itself_on_a_node_fails_alone(farm, tmp_path):
    farm = _fresh(farm, tmp_path)
    sweep = farm.sweep("platform=cpu1", "backend=self_kill,torch")
    assert sweep.finish(timeout=300) == 1, sweep.output
    statuses = {r["params"]["backend"]: (r["status"], r["error"]) for r in results(tmp_path, JOB_RESULTS)}
    assert statuses["torch"] == ("ok", "") and statuses["self_kill"][0] == "failed", statuses
    assert "process on the node died" in statuses["self_kill"][1]


def test_resume_after_a_killed_farm_sweep_sends_out_only_the_missing_points(farm, tmp_path, mlflow_client):
    farm = _fresh(farm, tmp_path)
    first = farm.sweep("platform=cpu,cpu1", "batch=1,2,4", "protocol.min_duration_s=2", "protocol.max_duration_s=2")
    first.wait_for("logged to MLflow")
    first.proc.kill()  # the workstation dies mid-study
    first.finish()
    done = len([r for r in runs_of(mlflow_client) if r.info.status == "FINISHED"])
    assert 1 <= done < 6

    again = farm.sweep("platform=cpu,cpu1", "batch=1,2,4", "protocol.min_duration_s=2", "protocol.max_duration_s=2",
                       "resume=true")
    assert again.finish(timeout=400) == 0, again.output
    assert f"{done} point(s) already finished" in again.output and f"{6 - done} to measure" in again.output
    runs = assert_nothing_lost(mlflow_client, tmp_path / "outputs")
    finished = [r for r in children(runs) if r.info.status == "FINISHED"]
    assert len(finished) == 6 and len({r.data.tags["embench.point_key"] for r in finished}) == 6
    assert sorted(r.info.status for r in parents(runs)) == ["FINISHED", "KILLED"]


def test_a_node_lost_mid_job_is_measured_again_on_another_node(tmp_path):
    """Two nodes serve cpu1, each measuring one job; one is killed: its job runs again on the other."""
    farm = Farm(tmp_path)
    try:
        first = farm.add("b", "--platform", "cpu1")
        second = farm.add("c", "--platform", "cpu1")
        sweep = farm.sweep("platform=cpu1", "batch=1,2", "protocol.min_duration_s=10", "protocol.max_duration_s=10")
        deadline = time.monotonic() + 180
        while not (first.measuring() and second.measuring()):
            assert time.monotonic() < deadline and sweep.proc.poll() is None, sweep.output
            time.sleep(0.5)
        first.stop(signal.SIGKILL)  # the node disappears: no goodbye
        assert sweep.finish(timeout=400) == 0, sweep.output
        deadline = time.monotonic() + 120
        while len(farm.node_ids()["cpu1"]) > 1:  # until Ray, too, has marked the node dead
            assert time.monotonic() < deadline
            time.sleep(2)
        [survivor] = farm.node_ids()["cpu1"]
        records = results(tmp_path, JOB_RESULTS)
        assert len(records) == 2 and {r["status"] for r in records} == {"ok"}
        assert {r["tags"]["ray.node_id"] for r in records} == {survivor}  # both measured on the node that stayed
        [retried] = [r for r in records if "farm.retried" in r["tags"]]
        assert retried["tags"]["farm.retried"].startswith("node lost"), retried["tags"]

        # The last node serving cpu1 goes too: nothing hangs, and its jobs fail saying so.
        (tmp_path / "outputs").rename(tmp_path / "outputs_before")
        sweep = farm.sweep("platform=cpu1", "batch=1,2", "protocol.min_duration_s=10", "protocol.max_duration_s=10",
                           "farm.node_wait_s=5")
        while not second.measuring():
            assert time.monotonic() < deadline + 300 and sweep.proc.poll() is None, sweep.output
            time.sleep(0.5)
        second.stop(signal.SIGKILL)
        assert sweep.finish(timeout=300) == 1, sweep.output
        records = results(tmp_path, JOB_RESULTS)
        assert len(records) == 2 and {r["status"] for r in records} == {"failed"}
        assert all(r["error"].startswith("node lost") and "platform=cpu1" in r["error"] for r in records), records
    finally:
        farm.stop()


def test_a_node_running_other_software_is_refused_before_any_job_runs(farm, tmp_path, mlflow_client):
    """A node importing a changed copy of embench: the sweep stops in one line, nothing measured."""
    other = tmp_path / "other"
    shutil.copytree(REPO / "embench", other / "embench")
    shutil.copytree(REPO / "conf", other / "conf")
    with (other / "embench" / "runner.py").open("a") as source:
        source.write("\n# changed on this node only\n")
    farm = _fresh(farm, tmp_path)
    node = farm.add("other", "--platform", "cpu2", pythonpath=f"{other}:{PLUGINS}")
    try:
        sweep = farm.sweep("platform=cpu2", "batch=1,2")
        assert sweep.finish(timeout=300) == 2, sweep.output
        [line] = [line for line in sweep.lines if line.startswith("embench: error:")]
        assert "platform=cpu2 runs other software than this workstation" in line and "code" in line, line
        assert not results(tmp_path, JOB_RESULTS) and not runs_of(mlflow_client)
    finally:
        node.stop()

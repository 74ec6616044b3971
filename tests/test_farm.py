"""The device farm on a real Ray cluster on this host: `embench node` processes on loopback, each stopped by its PID."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib import metadata
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

FARM_CONF = REPO / "tests" / "data" / "farm_conf"  # platform=cpu1 to cpu6 (one thread each), backend=self_kill
READY = "block forever"  # what `ray start --block` prints once the node has joined


class Node:
    """`embench node ARGS` in its own session: stopping its PID's group stops every Ray process it started."""

    def __init__(self, root: Path, name: str, *args: str, pythonpath: str = PLUGINS, **env: str):
        self.log = root / f"node_{name}.log"
        env = cli_env(root, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=pythonpath, **env)
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
    """A head serving platform=cpu and nodes joining it, started one after another, with the farm's token
    in a file of its own (RAY_AUTH_TOKEN_PATH), which the head creates as README says."""

    def __init__(self, root: Path):
        self.root, self.nodes = root, []
        self.temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        self.token = Path(self.temp) / "auth_token"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.head = self.add("head", "--platform", "cpu", "--head", "--port", str(self.port), "--",
                             "--include-dashboard=false", f"--temp-dir={self.temp}")

    def add(self, name: str, *args: str, **kwargs) -> Node:
        if "--head" not in args:
            args = ("--address", self.address, "--config-dir", str(FARM_CONF), *args)
        node = Node(self.root, name, "--num-cpus", "1", *args, RAY_AUTH_TOKEN_PATH=str(self.token), **kwargs)
        self.nodes.append(node)
        return node

    def node_ids(self) -> dict[str, list[str]]:
        """platform -> ids of the live nodes serving it, as Ray itself reports them."""
        script = ("import json, ray; ray.init(address='%s', logging_level='ERROR'); "
                  "print(json.dumps([[n['NodeID'], list(n['Resources'])] for n in ray.nodes() if n['Alive']]))") % self.address
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                             env=cli_env(self.root, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
                                         RAY_AUTH_TOKEN_PATH=str(self.token))).stdout
        served = {}
        for node_id, resources in json.loads(out.strip().splitlines()[-1]):
            for name in resources:
                if name.startswith("platform:"):
                    served.setdefault(name.split(":", 1)[1], []).append(node_id)
        return served

    def sweep(self, *args: str, quick: bool = True, **env: str) -> Cli:
        """A sweep on this farm; `quick`: of squeezenet1_1, on protocol=quick without the profile pass."""
        base = ("model=squeezenet1_1", "protocol=quick", "protocol.profile_iterations=0") if quick else ()
        env = {"RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": PLUGINS, "RAY_AUTH_TOKEN_PATH": str(self.token), **env}
        return Cli(self.root, "--config-dir", str(FARM_CONF), "-m", *base, "farm=ray", f"farm.address={self.address}",
                   *args, **env)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    """platform=cpu on the head; platform=cpu1 and cpu2 on a second node, which measures one job at a time."""
    farm = Farm(tmp_path_factory.mktemp("farm"))
    try:
        farm.add("pair", "--platform", "cpu1,cpu2")
        yield farm
    finally:
        farm.stop()


def _fresh(farm: Farm, tmp_path: Path) -> Farm:
    """The module's farm, driven from this test's own folder."""
    farm.root = tmp_path
    return farm


pytestmark = pytest.mark.farm


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
    assert "has no node serving platform=xavier" in line and "it serves platform=cpu, platform=cpu1, platform=cpu2" in line, line
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


def test_without_the_farm_token_no_process_runs_a_task_and_the_sweep_says_what_to_set(farm, tmp_path):
    """The head made the token (readable by its user only, never printed); a process without it, or with
    another, cannot run a task on the cluster; a sweep without it stops in one line before measuring."""
    farm = _fresh(farm, tmp_path)
    token = farm.token.read_text().strip()
    assert len(token) >= 32 and stat.S_IMODE(farm.token.stat().st_mode) == 0o600
    assert token not in farm.head.log.read_text()
    script = ("import ray; ray.init(address='%s', logging_level='ERROR'); "
              "print('ran', ray.get(ray.remote(lambda: 42).remote(), timeout=60))") % farm.address
    wrong = tmp_path / "wrong_token"
    wrong.write_text("0" * 64)
    wrong.chmod(0o600)
    for name, extra in {"none": {"HOME": str(tmp_path)}, "wrong": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(wrong)},
                        "right": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(farm.token)}}.items():
        env = cli_env(tmp_path, RAY_USAGE_STATS_ENABLED="0", **extra)
        env.pop("RAY_AUTH_TOKEN", None)
        if name == "none":
            env.pop("RAY_AUTH_TOKEN_PATH", None)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env)
        assert ("ran 42" in out.stdout) == (name == "right"), (name, out.stdout, out.stderr[-2000:])

    sweep = farm.sweep("platform=cpu", RAY_AUTH_TOKEN_PATH=str(tmp_path / "absent"))
    assert sweep.finish(timeout=120) == 2, sweep.output
    [line] = [line for line in sweep.lines if line.startswith("embench: error:")]
    assert "this workstation has no farm token" in line and "RAY_AUTH_TOKEN_PATH" in line, line
    assert not results(tmp_path, JOB_RESULTS) and "Traceback" not in sweep.output


def test_a_host_serving_two_platforms_measures_one_job_at_a_time(farm, tmp_path):
    farm = _fresh(farm, tmp_path)
    sweep = farm.sweep("platform=cpu1,cpu2", "batch=1,2", "protocol.min_duration_s=2", "protocol.max_duration_s=2")
    assert sweep.finish(timeout=400) == 0, sweep.output
    records = results(tmp_path, JOB_RESULTS)
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"} and len({r["tags"]["ray.node_id"] for r in records}) == 1
    spans = sorted((r["start_time"], r["end_time"]) for r in records)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, spans  # never two jobs at once on the host


def test_platforms_declared_independent_measure_at_the_same_time(farm, tmp_path):
    farm = _fresh(farm, tmp_path)
    node = farm.add("apart", "--platform", "cpu5,cpu6", "--independent")
    try:
        sweep = farm.sweep("platform=cpu5,cpu6", "protocol.min_duration_s=4", "protocol.max_duration_s=4")
        assert sweep.finish(timeout=400) == 0, sweep.output
        (a_start, a_end), (b_start, b_end) = sorted((r["start_time"], r["end_time"]) for r in results(tmp_path, JOB_RESULTS))
        assert b_start < a_end, ((a_start, a_end), (b_start, b_end))  # the two platforms' jobs overlap
    finally:
        node.stop()


def _changed_embench(root: Path) -> str:
    """A copy of embench with one changed file, for a node's PYTHONPATH."""
    other = root / "other"
    shutil.copytree(REPO / "embench", other / "embench")
    shutil.copytree(REPO / "conf", other / "conf")
    with (other / "embench" / "point" / "runner.py").open("a") as source:
        source.write("\n# changed on this node only\n")
    return f"{other}:{PLUGINS}"


def test_a_node_with_other_embench_code_joining_mid_sweep_gets_no_job_and_is_named(farm, tmp_path, mlflow_client):
    """A node with a changed copy of embench joins while a sweep runs: it is checked before any job, gets
    none, and the sweep names it; a platform only that node serves is refused in one line, nothing measured."""
    farm = _fresh(farm, tmp_path)
    pair = farm.node_ids()["cpu1"]
    sweep = farm.sweep("platform=cpu1", "batch=1,2,4,8,16", "protocol.min_duration_s=5", "protocol.max_duration_s=5")
    sweep.wait_for("logged to MLflow")
    node = farm.add("other", "--platform", "cpu1,cpu3", pythonpath=_changed_embench(tmp_path))
    try:
        assert sweep.finish(timeout=400) == 0, sweep.output
        [note] = [line for line in sweep.lines if line.startswith("embench: note: node")]
        other_id = next(i for i in farm.node_ids()["cpu3"])
        assert other_id[:8] in note and "gets no job: it runs other software than this workstation" in note, note
        assert "embench" in note and "code" in note, note
        records = results(tmp_path, JOB_RESULTS)
        assert len(records) == 5 and {r["tags"]["ray.node_id"] for r in records} == set(pair), records

        (tmp_path / "outputs").rename(tmp_path / "outputs_before")
        before = len(runs_of(mlflow_client))
        sweep = farm.sweep("platform=cpu3", "batch=1,2")
        assert sweep.finish(timeout=300) == 2, sweep.output
        [line] = [line for line in sweep.lines if line.startswith("embench: error:")]
        assert "no node of the farm can measure platform=cpu3" in line and other_id[:8] in line and "code" in line, line
        assert not results(tmp_path, JOB_RESULTS) and len(runs_of(mlflow_client)) == before
    finally:
        node.stop()


OTHER_ONNXRUNTIME = "1.22.1"  # older than the one installed: a node of another age


def test_a_node_with_another_onnxruntime_measures_and_its_runs_carry_its_version(farm, tmp_path, mlflow_client):
    """An older ONNX Runtime wheel on one node's PYTHONPATH: the node measures, each run carries the
    version that measured it; with farm.same_versions=true that node is refused, naming the difference."""
    farm = _fresh(farm, tmp_path)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", f"onnxruntime=={OTHER_ONNXRUNTIME}", "--no-deps",
                    "--only-binary=:all:", "--quiet", "-d", str(wheels)], check=True, timeout=600)
    [wheel] = wheels.glob("*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "old_ort")
    node = farm.add("ort", "--platform", "cpu4", pythonpath=f"{tmp_path / 'old_ort'}:{PLUGINS}")
    try:
        sweep = farm.sweep("platform=cpu1,cpu4", "backend=onnxruntime")
        assert sweep.finish(timeout=400) == 0, sweep.output
        versions = {r["params"]["platform"]: r["tags"]["version.onnxruntime"] for r in results(tmp_path, JOB_RESULTS)}
        assert versions == {"cpu1": metadata.version("onnxruntime"), "cpu4": OTHER_ONNXRUNTIME}, versions

        (tmp_path / "outputs").rename(tmp_path / "outputs_before")
        sweep = farm.sweep("platform=cpu4", "backend=onnxruntime", "farm.same_versions=true")
        assert sweep.finish(timeout=300) == 2, sweep.output
        [line] = [line for line in sweep.lines if line.startswith("embench: error:")]
        assert f"version.onnxruntime {OTHER_ONNXRUNTIME} there, {metadata.version('onnxruntime')} here" in line, line
        assert not results(tmp_path, JOB_RESULTS)
    finally:
        node.stop()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_a_signal_ends_a_farm_sweep_as_it_ends_a_local_one_and_cancels_its_jobs(farm, tmp_path, mlflow_client, signum):
    farm = _fresh(farm, tmp_path)
    pair = next(node for node in farm.nodes if node.log.name == "node_pair.log")
    sweep = farm.sweep("platform=cpu1", "batch=1,2", "protocol.min_duration_s=60", "protocol.max_duration_s=60")
    deadline = time.monotonic() + 180
    while not pair.measuring():
        assert time.monotonic() < deadline and sweep.proc.poll() is None, sweep.output
        time.sleep(0.5)
    sweep.proc.send_signal(signum)
    assert sweep.finish(timeout=120) == 128 + signum, sweep.output
    said = "interrupted (Ctrl-C)" if signum == signal.SIGINT else f"terminated ({signal.Signals(signum).name})"
    assert said in sweep.output and "Traceback" not in sweep.output and "received" not in sweep.output, sweep.output
    runs = assert_nothing_lost(mlflow_client, tmp_path / "outputs")
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]  # the parent and the job it cut short
    assert [r["status"] for r in results(tmp_path, JOB_RESULTS)] == ["killed"]
    deadline = time.monotonic() + 30
    while pair.measuring():  # cancelled on the node, not left measuring for nobody
        assert time.monotonic() < deadline, "the job still runs on the node"
        time.sleep(0.5)


def test_a_farm_without_a_token_needs_insecure_on_both_sides_and_stays_on_loopback(tmp_path):
    """`embench node --head --insecure`: no token made, the head advertises 127.0.0.1; a workstation joins it
    only with farm.insecure=true."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    port = free_port()
    head = Node(tmp_path, "insecure", "--num-cpus", "1", "--platform", "cpu", "--head", "--insecure", "--port", str(port),
                "--", "--include-dashboard=false", f"--temp-dir={temp}", HOME=str(tmp_path))
    try:
        log = head.log.read_text()
        assert "warning: this farm has no token (on loopback only)" in log and "--node-ip-address=127.0.0.1" in log, log
        assert not (tmp_path / ".ray").exists()
        base = ("-m", "model=squeezenet1_1", "protocol=quick", "protocol.profile_iterations=0", "farm=ray",
                f"farm.address=127.0.0.1:{port}")
        refused = Cli(tmp_path, *base, HOME=str(tmp_path), RAY_USAGE_STATS_ENABLED="0")
        assert refused.finish(timeout=120) == 2, refused.output
        assert "farm.insecure=true" in [line for line in refused.lines if line.startswith("embench: error:")][0]
        joined = Cli(tmp_path, *base, "farm.insecure=true", HOME=str(tmp_path), RAY_USAGE_STATS_ENABLED="0")
        assert joined.finish(timeout=300) == 0, joined.output
        assert [r["status"] for r in results(tmp_path, JOB_RESULTS)] == ["ok"]
    finally:
        head.stop()
        shutil.rmtree(temp, ignore_errors=True)

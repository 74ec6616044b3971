"""Nothing lost, nothing left RUNNING: a real mlflow server, real signals, real unwritable folders."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import Cli, MlflowServer, assert_nothing_lost, children, cli_env, parents, results, runs_of

QUICK = ("protocol=quick",)
LONG = ("protocol.min_duration_s=60", "protocol.max_duration_s=60")


def stand_in_of(folder: Path) -> Path:
    """Where embench keeps what it cannot write into `folder`: its whole path under the temp folder."""
    return Path(tempfile.gettempdir(), "embench-unwritable", *folder.parts[1:])


@pytest.mark.slow
def test_sweep_logs_to_a_live_server_and_credentials_never_leak(mlflow_server, tmp_path):
    """A healthy `mlflow server` gets every run; `user:secret` appears in no file, tag, param or output."""
    uri = mlflow_server.url.replace("http://", "http://alice:s3cr3t-token@")
    cli = Cli(tmp_path, "-m", "model=squeezenet1_1", "batch=1,2", *QUICK, f"tracking.uri={uri}",
              "tracking.experiment=live-server")
    assert cli.finish() == 0, cli.output
    client = mlflow_server.client()
    runs = runs_of(client, "live-server")
    assert len(parents(runs)) == 1 and len(children(runs)) == 2
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert "s3cr3t-token" not in cli.output
    files = [path for path in tmp_path.glob("outputs/**/*") if path.is_file()]
    assert any(path.name == "overrides.yaml" for path in files) and any(path.name == "embench.log" for path in files)
    for path in files:
        assert "s3cr3t-token" not in path.read_text(errors="replace"), path
    for run in runs:
        assert "s3cr3t-token" not in json.dumps([run.data.tags, run.data.params])
    [parent] = parents(runs)
    assert "tracking.uri=http://127.0.0.1" in parent.data.tags["embench.overrides"]


@pytest.mark.slow  # two server starts: CI runs it after the default suite
def test_server_killed_mid_sweep_then_sync_uploads_the_rest_once(tmp_path):
    server = MlflowServer(tmp_path / "server").start()
    try:
        cli = Cli(tmp_path, "-m", "model=squeezenet1_1", "batch=1,2,3", *QUICK, MLFLOW_TRACKING_URI=server.url)
        cli.wait_for("logged to MLflow")
        server.stop()
        assert cli.finish() == 3, cli.output
        assert "embench sync" in cli.output and "Traceback" not in cli.output
        assert [record["status"] for record in results(tmp_path)] == ["ok"] * 3
        [sweep_dir] = (tmp_path / "outputs" / "sweeps").iterdir()

        server.start()  # the same store, back up
        sync = subprocess.run([sys.executable, "-m", "embench", "sync", str(sweep_dir)], cwd=tmp_path,
                              env=cli_env(tmp_path, MLFLOW_TRACKING_URI=server.url), capture_output=True, text=True)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        runs = assert_nothing_lost(server.client(), tmp_path / "outputs")
        kids = [r for r in children(runs)]
        assert len(kids) == 3 and {r.info.status for r in kids} == {"FINISHED"}
        [parent] = parents(runs)
        assert parent.info.status == "FINISHED" and {r.data.tags["mlflow.parentRunId"] for r in kids} == {parent.info.run_id}

        again = subprocess.run([sys.executable, "-m", "embench", "sync", str(sweep_dir)], cwd=tmp_path,
                               env=cli_env(tmp_path, MLFLOW_TRACKING_URI=server.url), capture_output=True, text=True)
        assert again.returncode == 0 and "0 run(s) logged, 3 already in the store" in again.stdout, again.stdout
        assert len(runs_of(server.client())) == 4
    finally:
        server.stop()


@pytest.mark.parametrize("moment", [
    pytest.param("building", marks=pytest.mark.slow), pytest.param("preparing", marks=pytest.mark.slow),
    "measuring", pytest.param("profiling", marks=pytest.mark.slow), pytest.param("logging model=", marks=pytest.mark.slow),
])
def test_ctrl_c_at_any_moment_loses_nothing_and_leaves_nothing_running(tmp_path, mlflow_client, moment):
    cli = Cli(tmp_path, "-m", "model=squeezenet1_1", "batch=1,2", "protocol=quick", "protocol.profile_iterations=3")
    cli.wait_for(moment)
    if moment == "measuring":
        time.sleep(0.3)
    cli.proc.send_signal(signal.SIGINT)
    assert cli.finish() == 130, cli.output
    assert "Traceback" not in cli.output and "interrupted (Ctrl-C)" in cli.output
    runs = assert_nothing_lost(mlflow_client, tmp_path / "outputs")
    assert [r.info.status for r in parents(runs)] == ["KILLED"]


@pytest.mark.slow
def test_sigterm_closes_the_sweep_as_killed(tmp_path, mlflow_client):
    cli = Cli(tmp_path, "-m", "model=squeezenet1_1", "batch=1,2", *LONG)
    cli.wait_for("measuring")
    cli.proc.send_signal(signal.SIGTERM)
    assert cli.finish(timeout=120) == 143, cli.output
    assert "terminated (SIGTERM)" in cli.output and "Traceback" not in cli.output
    runs = assert_nothing_lost(mlflow_client, tmp_path / "outputs")
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]
    assert [record["status"] for record in results(tmp_path)] == ["killed"]


@pytest.mark.slow
def test_sigkill_leaves_a_running_parent_that_the_next_command_closes(tmp_path, mlflow_client):
    cli = Cli(tmp_path, "-m", "model=squeezenet1_1", "batch=1,2", *LONG)
    cli.wait_for("measuring")
    cli.proc.kill()
    cli.finish()
    assert [r.info.status for r in runs_of(mlflow_client)] == ["RUNNING"]  # nobody could close it

    after = Cli(tmp_path, "model=squeezenet1_1", *QUICK)
    assert after.finish() == 0, after.output
    notes = [line for line in after.lines if line.startswith("embench: note: closed")]
    assert len(notes) == 1 and f"embench process(es) {cli.proc.pid} " in notes[0], after.output
    runs = assert_nothing_lost(mlflow_client, tmp_path / "outputs")
    [dead] = [r for r in runs if "embench.closed_stale" in r.data.tags]
    assert dead.info.status == "KILLED" and sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]


@pytest.mark.slow
def test_two_sweeps_at_once_on_a_fresh_store_keep_apart(tmp_path, mlflow_client):
    sweeps = [Cli(tmp_path, "-m", "model=squeezenet1_1", "batch=1,2", *QUICK) for _ in range(2)]
    for cli in sweeps:
        assert cli.finish() == 0, cli.output
    runs = assert_nothing_lost(mlflow_client, tmp_path / "outputs")
    assert len(parents(runs)) == 2 and len(children(runs)) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    folders = sorted((tmp_path / "outputs" / "sweeps").iterdir())
    assert len(folders) == 2
    for folder in folders:
        assert len(list(folder.glob("*/result.json"))) == 2
        assert len((folder / "sweep_summary.csv").read_text().splitlines()) == 3


@pytest.mark.slow  # two sweeps and a sync: about 2.5 minutes on a busy 2-core host
def test_sync_of_one_sweep_leaves_the_other_sweeps_runs_alone(tmp_path, mlflow_client):
    """Two sweeps' runs each cut off while being logged (after their artifacts, before the tag that says they are
    whole, as a kill there leaves them); `embench sync` of sweep B logs B's run again and leaves A's run alone."""
    sweeps = {name: Cli(tmp_path, "-m", "model=squeezenet1_1", *QUICK, "protocol.profile_iterations=0",
                        f"hydra.sweep.dir={tmp_path / name}") for name in ("A", "B")}
    for cli in sweeps.values():
        assert cli.finish() == 0, cli.output
    cut_off = {}
    for run in children(runs_of(mlflow_client)):
        mlflow_client.delete_tag(run.info.run_id, "embench.logged")
        mlflow_client.update_run(run.info.run_id, status="RUNNING")  # its process, now dead, never closed it
        cut_off[run.data.tags["embench.run_uid"]] = run.info.run_id
    uid_of = {name: next((tmp_path / name).glob("*/result.json")) for name in sweeps}
    uid_of = {name: json.loads(path.read_text())["run_uid"] for name, path in uid_of.items()}

    sync = subprocess.run([sys.executable, "-m", "embench", "sync", str(tmp_path / "B")], cwd=tmp_path,
                          env=cli_env(tmp_path), capture_output=True, text=True)
    assert sync.returncode == 0 and "1 run(s) logged" in sync.stdout, sync.stdout + sync.stderr
    a_run = mlflow_client.get_run(cut_off[uid_of["A"]])
    assert a_run.info.lifecycle_stage == "active", "sync of sweep B deleted sweep A's run"
    assert a_run.info.status == "KILLED"  # closed as its dead owner's, kept for `embench sync A`
    whole_b = [r for r in children(runs_of(mlflow_client)) if r.data.tags.get("embench.logged") == "true"]
    assert [r.data.tags["embench.run_uid"] for r in whole_b] == [uid_of["B"]]
    assert mlflow_client.get_run(cut_off[uid_of["B"]]).info.lifecycle_stage == "deleted"  # replaced by the whole one


def _without_file_override(*command: str) -> list[str]:
    """Root, but unable to write where the permission bits say no (CI runs as root)."""
    return ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search",
            *command]


@pytest.mark.slow
def test_folders_that_become_unwritable_lose_no_measurement(tmp_path, mlflow_client):
    env = cli_env(tmp_path, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        _without_file_override(sys.executable, "-m", "embench", "-m", "model=squeezenet1_1", "batch=1,2", *QUICK),
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "measuring" in line:
            break
    [sweep_dir] = (tmp_path / "outputs" / "sweeps").iterdir()  # job folders are made when their results come back
    os.chmod(sweep_dir, 0o555)
    stand_in = stand_in_of(sweep_dir)
    try:
        lines += proc.communicate(timeout=300)[0].splitlines(keepends=True)
        output = "".join(lines)
        assert proc.returncode == 1, output
        assert "Traceback" not in output
        assert f"cannot write the sweep folder {sweep_dir}; job 0's files go to {stand_in}" in output
        assert not list(sweep_dir.glob("*_squeezenet1_1_*"))
        assert len(list(stand_in.glob("*_squeezenet1_1_*/result.json"))) == 2
        runs = runs_of(mlflow_client)
        kids = children(runs)
        assert len(kids) == 2 and {r.info.status for r in runs} == {"FINISHED"}
        for kid in kids:
            assert "result.json" in {a.path for a in mlflow_client.list_artifacts(kid.info.run_id)}
    finally:
        os.chmod(sweep_dir, 0o755)
        shutil.rmtree(stand_in_of(tmp_path), ignore_errors=True)


@pytest.mark.slow
def test_resume_measures_only_the_points_not_yet_finished(tmp_path, mlflow_client):
    first = Cli(tmp_path, "-m", "model=squeezenet1_1", "batch=1,2", *QUICK)
    assert first.finish() == 0, first.output
    again = Cli(tmp_path, "-m", "model=squeezenet1_1", "batch=1,2,3", *QUICK, "resume=true")
    assert again.finish() == 0, again.output
    assert "2 point(s) already finished" in again.output and "1 job(s) run" in again.output
    kids = children(runs_of(mlflow_client))
    assert sorted(r.data.params["batch"] for r in kids) == ["1", "2", "3"]
    assert len({r.data.tags["embench.point_key"] for r in kids}) == 3
    without = Cli(tmp_path, "-m", "model=squeezenet1_1", "batch=1", *QUICK)  # without resume: measured again
    assert without.finish() == 0 and len(children(runs_of(mlflow_client))) == 4


@pytest.mark.slow
def test_more_threads_than_cpus_is_tagged_and_shown(tmp_path, mlflow_client):
    threads = os.cpu_count() + 1
    cli = Cli(tmp_path, "-m", "model=squeezenet1_1", f"platform.threads={threads}", *QUICK)
    assert cli.finish() == 0, cli.output
    assert f"platform.threads={threads} is more than this host's" in cli.output
    assert "oversubscribed" in cli.output  # the summary table's status
    [kid] = children(runs_of(mlflow_client))
    assert kid.data.tags["threads_oversubscribed"] == "true"


@pytest.mark.slow
def test_a_job_folder_on_a_full_disk_loses_no_measurement(tmp_path, mlflow_client):
    """Hydra cannot write job 0's folder (every write there meets a full disk, as /dev/full gives): the
    run's files go to the stand-in, MLflow gets it, and the sweep goes on to job 1."""
    sweep_dir = tmp_path / "sweep"
    job_dir = sweep_dir / "0_squeezenet1_1_cpu_torch_b1"
    (job_dir / ".hydra").mkdir(parents=True)
    for name in (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "result.json"):
        (job_dir / name).symlink_to("/dev/full")
    stand_in = stand_in_of(job_dir)
    try:
        cli = Cli(tmp_path, "-m", "model=squeezenet1_1", "batch=1,2", f"hydra.sweep.dir={sweep_dir}", *QUICK)
        assert cli.finish() == 1, cli.output
        assert "Traceback" not in cli.output
        assert f"cannot write {job_dir} (No space left on device); this run's files are in {stand_in}" in cli.output
        assert json.loads((stand_in / "result.json").read_text())["status"] == "ok"
        assert json.loads((sweep_dir / "1_squeezenet1_1_cpu_torch_b2" / "result.json").read_text())["status"] == "ok"
        runs = runs_of(mlflow_client)
        assert len(children(runs)) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    finally:
        shutil.rmtree(stand_in_of(tmp_path), ignore_errors=True)


def _on_a_full_disk(folder: Path, *command: str) -> list[str]:
    """`command` with `folder` a 4 MiB file system filled to the last byte (but for an empty cache/), mounted for it alone."""
    script = 'mount -t tmpfs -o size=4m tmpfs "$0" && mkdir "$0/cache" && (cat /dev/zero > "$0/fill" 2>/dev/null; exec "$@")'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(folder), *command]


@pytest.mark.slow
@pytest.mark.skipif(subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0,
                    reason="mounting a small file system needs root (CAP_SYS_ADMIN)")
def test_a_full_disk_loses_no_measurement_and_names_what_it_could_not_write(tmp_path, mlflow_client):
    """The run folder and the model cache on a full disk: the sweep folder's stand-in takes the runs, the
    conversion fails naming the cache (not the network), and MLflow (elsewhere) gets every run."""
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = subprocess.run(
        _on_a_full_disk(disk, sys.executable, "-m", "embench", "-m", "model=squeezenet1_1", "backend=torch,onnxruntime",
                        f"hydra.sweep.dir={disk}/sweep", *QUICK),
        cwd=tmp_path, env=cli_env(tmp_path, EMBENCH_CACHE_DIR=str(disk / "cache")), capture_output=True, text=True,
        timeout=600)
    output = proc.stdout + proc.stderr
    try:
        assert proc.returncode == 1, output
        assert "Traceback" not in output
        assert f"cannot write the sweep folder {disk}/sweep; its files go to " in output
        assert (f"torch.onnx.export cannot write squeezenet1_1's converted model to {disk}/cache "
                "(No space left on device)") in output
        runs = runs_of(mlflow_client)
        kids = {r.data.params["backend"]: r for r in children(runs)}
        assert kids["torch"].info.status == "FINISHED" and kids["onnxruntime"].info.status == "FAILED"
        assert "result.json" in {a.path for a in mlflow_client.list_artifacts(kids["torch"].info.run_id)}
        assert "not cached" in kids["torch"].data.tags["peak_source"]  # the measured peak GEMM, used all the same
        assert "not cached" in kids["torch"].data.tags["output_check.reference"]  # the output check's, likewise
    finally:
        shutil.rmtree(stand_in_of(tmp_path), ignore_errors=True)


def test_a_run_folder_on_a_full_disk_is_one_line_before_anything_is_measured(tmp_path, mlflow_client):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").symlink_to("/dev/full")
    cli = Cli(tmp_path, "model=squeezenet1_1", f"hydra.run.dir={run_dir}", *QUICK)
    assert cli.finish() == 1, cli.output
    assert cli.lines == ["embench: error: cannot write the run folder (hydra.run.dir): No space left on device\n"]
    assert runs_of(mlflow_client) == []


def test_a_model_that_cannot_be_kept_leaves_no_partial_file_and_names_the_cache(tmp_path, monkeypatch):
    """The disk fills while a converter writes (an IR's .xml and .bin): nothing half-written stays in the
    cache, and the failure names the cache, not the network."""
    from embench.backends.conversion import cached, conversion_failed

    monkeypatch.setenv("EMBENCH_CACHE_DIR", str(tmp_path / "cache"))

    def convert(path: Path) -> None:
        path.write_text("<net/>")
        path.with_suffix(".bin").write_bytes(bytes(1024))
        try:
            Path("/dev/full").write_bytes(bytes(1024))  # the rest of the weights meet a full disk
        except OSError as err:
            raise conversion_failed("resnet18-abc123", "openvino", err) from None

    with pytest.raises(Exception) as failure:
        cached("openvino", "1.0", "resnet18.xml", convert, companions=(".bin",))
    assert str(failure.value) == (f"openvino cannot write resnet18's converted model to {tmp_path / 'cache'} "
                                  "(No space left on device): free space there or set EMBENCH_CACHE_DIR to another folder")
    assert [path for path in (tmp_path / "cache").rglob("*") if path.is_file()] == []

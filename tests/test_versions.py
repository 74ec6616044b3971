"""Every run carries the versions of what measured it (tags version.<package>), and where runtime versions differ
between points that are compared (a farm's nodes may run others), the sweep's summary and the report name them.

The runs are real: one sweep over four backends. Another node's runs are copies of real result.json records with
one runtime's version changed, logged with `embench sync` as a node's runs are."""

import csv
import hashlib
import json
import platform as pyplatform
import shutil
import subprocess
import sys
import uuid
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
from conftest import JOB_RESULTS, REPO, cli_env, only_result

from embench.names import RUNTIME_VERSION_TAGS

# backend -> the package of the runtime that measures it
RUNTIMES = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino", "executorch": "executorch"}
OTHER_TORCH = "2.1.0"  # e.g. NVIDIA's build on a Jetson node
OTHER_ORT = "1.20.1"
NOTE = "versions differ between points:"


def embench(root: Path, module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=root, env=cli_env(root), capture_output=True,
                          text=True, timeout=900)


def source_hash() -> str:
    """SHA-1 of embench's source files in path order, 10 hex digits (the farm's code identity)."""
    code = hashlib.sha1()
    for path in sorted((REPO / "embench").rglob("*.py")):
        code.update(path.read_bytes())
    return code.hexdigest()[:10]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, str]:
    """One sweep, one job per backend, logged to the folder's MLflow store; and the code's hash as it started."""
    root = tmp_path_factory.mktemp("versions")
    code = source_hash()
    proc = embench(root, "embench", "-m", f"backend={','.join(RUNTIMES)}", "model=squeezenet1_1", "protocol=quick",
                   "protocol.profile_iterations=0", "platform.threads=1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root, proc, code


def job_folders(root: Path) -> dict[str, Path]:
    """The sweep's job folders by backend."""
    found = {}
    for path in root.glob(JOB_RESULTS):
        found[json.loads(path.read_text())["params"]["backend"]] = path.parent
    assert set(found) == set(RUNTIMES), found
    return found


def record(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


def other_node(record: dict, **versions: str) -> dict:
    """A copy of a real record as another node would have written it: its own run id, later, other versions."""
    copy = json.loads(json.dumps(record))
    copy["run_uid"] = uuid.uuid4().hex
    copy["start_time"] += 3600
    copy["end_time"] += 3600
    copy["tags"].update({f"version.{name}": value for name, value in versions.items()})
    return copy


@pytest.mark.slow
def test_each_run_carries_the_versions_that_measured_it(sweep):
    """Against importlib.metadata (not what embench read): each backend's runtime, torch, Python, embench and a hash
    of embench's source files; a run carries no other backend's runtime; all agree, so the summary says nothing."""
    root, proc, code = sweep
    identities = set()
    for backend, folder in job_folders(root).items():
        tags = record(folder)["tags"]
        runtime = RUNTIMES[backend]
        assert tags[f"version.{runtime}"] == metadata.version(runtime), backend
        assert tags["version.torch"] == metadata.version("torch")  # every run: torch builds the network
        assert {tag for tag in tags if tag in RUNTIME_VERSION_TAGS} == {"version.torch", f"version.{runtime}"}, backend
        assert tags["version.python"] == pyplatform.python_version()
        assert tags["version.embench"] == metadata.version("embench")
        identities.add(tags["version.embench_code"])
    assert identities == {code}  # (fails where the source files change while the sweep runs)
    assert NOTE not in proc.stdout
    [summary] = root.glob("outputs/sweeps/*/sweep_summary.csv")
    assert not [c for c in summary.read_text().splitlines()[0].split(",") if c.startswith("version.")]


@pytest.mark.slow
def test_an_int8_openvino_run_carries_the_nncf_that_quantized_it(run_cli, tmp_path):
    result = run_cli("backend=openvino", "backend.runtime.precision=int8", "model=squeezenet1_1", "protocol=quick",
                     "protocol.profile_iterations=0", "platform.threads=1")
    assert result.returncode == 0, result.output
    tags = only_result(tmp_path)["tags"]
    assert (tags["version.nncf"], tags["version.openvino"]) == (metadata.version("nncf"), metadata.version("openvino"))


@pytest.mark.slow
def test_summary_names_the_versions_that_differ_and_writes_their_columns(sweep, tmp_path, capsys):
    """Jobs 1-4 the real runs; job 5 an onnxruntime run from a node with other torch and ONNX Runtime."""
    from embench.result import RunResult
    from embench.sweep.summary import print_table, summary_row, write_csv

    folders = job_folders(sweep[0])
    records = [record(folders[backend]) for backend in RUNTIMES]
    records.append(other_node(records[1], torch=OTHER_TORCH, onnxruntime=OTHER_ORT))
    rows = [summary_row(job, RunResult.from_json(r)) for job, r in enumerate(records, start=1)]
    torch, ort = metadata.version("torch"), metadata.version("onnxruntime")

    print_table(rows)
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if NOTE in line] == [
        f"{NOTE} version.torch {torch} (jobs 1-4), {OTHER_TORCH} (job 5)",
        f"{NOTE} version.onnxruntime {ort} (job 2), {OTHER_ORT} (job 5)"]
    assert out.rstrip().endswith(f"{OTHER_ORT} (job 5)")  # after the table
    write_csv(rows, tmp_path / "summary.csv")
    with (tmp_path / "summary.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert [(row["job"], row["backend"], row["version.torch"], row["version.onnxruntime"]) for row in written] == [
        ("1", "torch", torch, ""), ("2", "onnxruntime", torch, ort), ("3", "openvino", torch, ""),
        ("4", "executorch", torch, ""), ("5", "onnxruntime", OTHER_TORCH, OTHER_ORT)]

    print_table(rows[:4])  # the real runs alone agree: nothing said, no version column
    assert NOTE not in capsys.readouterr().out
    write_csv(rows[:4], tmp_path / "agree.csv")
    assert "version." not in (tmp_path / "agree.csv").read_text().splitlines()[0]


@pytest.mark.slow
def test_report_names_the_versions_that_differ_where_points_are_compared(sweep):
    """The torch point measured again on a node with other torch (a later run, so the report's point): every figure
    and table comparing it with the other backends says so; before it, nothing is said."""
    root = sweep[0]
    before = embench(root, "embench.report", "--experiment", "embench", "--output", "before", "--no-log-to-mlflow")
    assert before.returncode == 0, before.stdout + before.stderr
    assert "different runtime versions" not in (root / "before" / "report.html").read_text()

    torch_run = job_folders(root)["torch"]
    copy = root / "node2" / torch_run.name
    shutil.copytree(torch_run, copy)
    (copy / "result.json").write_text(json.dumps(other_node(record(torch_run), torch=OTHER_TORCH)))
    synced = embench(root, "embench", "sync", str(copy))
    assert synced.returncode == 0, synced.stdout + synced.stderr
    proc = embench(root, "embench.report", "--experiment", "embench", "--output", "after", "--no-log-to-mlflow")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    torch = metadata.version("torch")
    folder = root / "after"
    points = pd.read_csv(folder / "points.csv", dtype=str).set_index("label")
    assert points["version.torch"].to_dict() == {"cpu/executorch": torch, "cpu/onnxruntime": torch,
                                                 "cpu/openvino": torch, "cpu/torch": OTHER_TORCH}
    assert points.loc["cpu/onnxruntime", "version.onnxruntime"] == metadata.version("onnxruntime")
    platforms = pd.read_csv(folder / "platforms.csv", dtype=str).set_index("label")
    assert platforms.loc["cpu/torch", "version.torch"] == ", ".join(sorted([torch, OTHER_TORCH]))  # both its runs
    assert platforms.loc["cpu/openvino", "version.openvino"] == metadata.version("openvino")
    fig2 = pd.read_csv(folder / "fig2_throughput_vs_batch.csv", dtype=str)
    assert fig2.set_index("label")["version.torch"].to_dict() == points["version.torch"].to_dict()
    versions = (f"version.torch {torch} (3 points: cpu/executorch, cpu/onnxruntime, cpu/openvino), {OTHER_TORCH} "
                "(1 point: cpu/torch)")
    page = (folder / "report.html").read_text()
    assert f"differ between points: {versions}" in page  # the page's summary
    # Figures 1, 2, 3 and 5 and the best-batch, Pareto and both speed-up tables
    assert page.count(f"Runtime versions differ between these points: {versions};") == 8


def test_runs_logged_under_the_old_tag_names_join_the_new_and_a_median_point_keeps_every_version():
    """An MLflow frame as a store holds it: onnxruntime runs of one point from before the scheme (onnxruntime.version)
    and after (version.onnxruntime), on two versions; the median point names both, and the note says so."""
    from embench.report.selection import aggregate, label, tidy, version_note

    start = pd.Timestamp("2026-01-01", tz="UTC")
    params = {"params.model": "m", "params.platform": "cpu", "params.backend": "onnxruntime", "params.batch": "1",
              "metrics.throughput_ips": 100.0}
    raw = pd.DataFrame([
        {"run_id": "old", "status": "FINISHED", "start_time": start, **params, "tags.onnxruntime.version": OTHER_ORT},
        {"run_id": "new", "status": "FINISHED", "start_time": start + pd.Timedelta(seconds=1), **params,
         "tags.version.onnxruntime": "1.32.0"}])
    runs, metrics = tidy(raw)
    assert runs["version.onnxruntime"].tolist() == [OTHER_ORT, "1.32.0"]
    runs = label(runs, raw)
    latest, _ = aggregate(runs, metrics, "latest")
    assert latest["version.onnxruntime"].tolist() == ["1.32.0"] and version_note(runs) == (
        f" Runtime versions differ between these points: version.onnxruntime {OTHER_ORT} (1 point: cpu/onnxruntime), "
        "1.32.0 (1 point: cpu/onnxruntime); the CSV has each point's.")
    points, folded = aggregate(runs, metrics, "median")
    assert folded == 1 and points["version.onnxruntime"].tolist() == [f"{OTHER_ORT}, 1.32.0"]

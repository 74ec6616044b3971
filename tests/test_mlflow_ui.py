"""The link a run or a sweep prints opens the MLflow UI on exactly its runs: checked in headless Chromium
against a real `mlflow server`, and on a local store by the command and run it names."""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import MlflowServer

from embench import ui_link

LINK = re.compile(r"^MLflow UI: (\S+)(.*)$", re.MULTILINE)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=20000")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
WIDE = "--window-size=3600,1000"  # the run table renders only the columns in view: all of them, at this width


def test_a_single_run_on_a_local_store_prints_the_mlflow_ui_command_and_its_run_page(run_cli, tmp_path, mlflow_client):
    result = run_cli("model=squeezenet1_1", "protocol=quick")
    assert result.returncode == 0, result.output
    runs = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("embench").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    found = LINK.findall(result.stdout)
    assert found == [(f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}?workflowType=machine_learning",
                      f"  (start it first: mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'})")], result.stdout
    description = run.data.tags["mlflow.note.content"]  # the run's one-line result on its page
    assert description.startswith("model=squeezenet1_1 platform=cpu backend=torch") and re.search(r"; ok( \(.+\))?$", description)
    assert f"latency median {run.data.metrics['latency_median_ms']:.3f} ms" in description


class _Grid(HTMLParser):
    """The cells of the UI's run table (ag-grid divs) or of the compare view (<tr>): {row: {column: text}}."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.stack: list[tuple[str, str | None, str | None]] = []  # (tag, row, column) of each open element
        self.tr_count = 0
        self.cells_in: dict[str, int] = {}  # <td>/<th> seen so far in each <tr>

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        row, column = self.stack[-1][1:] if self.stack else (None, None)
        if tag == "tr":
            self.tr_count += 1
            row, column = f"tr{self.tr_count}", None
        elif attrs.get("row-index") is not None and attrs.get("role") == "row":
            row = attrs["row-index"]
        if tag in ("td", "th"):
            self.cells_in[row] = self.cells_in.get(row, 0) + 1
            column = str(self.cells_in[row])
        elif attrs.get("role") == "gridcell" and attrs.get("col-id"):
            column = attrs["col-id"]
        if tag not in _VOID:
            self.stack.append((tag, row, column))

    def handle_endtag(self, tag):
        if any(open_tag == tag for open_tag, _, _ in self.stack):
            while self.stack.pop()[0] != tag:
                pass

    def handle_data(self, data):
        if self.stack and self.stack[-1][1] is not None and self.stack[-1][2] is not None:
            _, row, column = self.stack[-1]
            cells = self.rows.setdefault(row, {})
            cells[column] = (cells.get(column, "") + data).strip()


def _grid(dom: str) -> dict[str, dict[str, str]]:
    parser = _Grid()
    parser.feed(dom)
    return parser.rows


def _chromium(url: str, profile: Path, *flags: str) -> str:
    """Opens `url` in a fresh headless Chromium profile (no saved UI state); returns the rendered DOM."""
    done = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, url],
                          capture_output=True, text=True, timeout=180)
    return done.stdout


@pytest.mark.slow  # starts an mlflow server and measures four points
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (.ci/run installs Debian's)")
def test_the_link_a_sweep_prints_opens_its_runs_sorted_with_their_columns_in_chromium(run_cli, tmp_path):
    server = MlflowServer(tmp_path / "server").start()
    try:
        result = run_cli("-m", "model=squeezenet1_1,alexnet", "batch=1,2", "protocol=quick", MLFLOW_TRACKING_URI=server.url)
        assert result.returncode == 0, result.output
        (link, start), = LINK.findall(result.stdout)
        assert link.startswith(f"{server.url}/#/experiments/") and "workflowType=machine_learning" in link and not start
        client = server.client()
        experiment_id = client.get_experiment_by_name("embench").experiment_id
        everything = client.search_runs([experiment_id])
        parent = next(run for run in everything if "mlflow.parentRunId" not in run.data.tags)
        children = [run for run in everything if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(children) == 4
        assert link in parent.data.tags["mlflow.note.content"]  # the parent's description: the link, then the table
        assert parent.data.tags["mlflow.note.content"].count("| squeezenet1_1 |") == 2

        dom = _chromium(link, tmp_path / "profile-runs", WIDE, "--dump-dom")
        _chromium(link, tmp_path / "profile-shot", "--window-size=2000,700", f"--screenshot={tmp_path / 'ui.png'}")
        assert (tmp_path / "ui.png").stat().st_size > 20_000
        rows = [cells for _, cells in sorted(_grid(dom).items(), key=lambda item: int(item[0]))
                if "attributes.`Run Name`" in cells]
        shown = [re.sub(r"^#[0-9a-f]{6}", "", cells["attributes.`Run Name`"]) for cells in rows]  # after its colour
        by_median = sorted(children, key=lambda run: run.data.metrics["latency_median_ms"])
        assert shown == [run.info.run_name for run in by_median], dom[-3000:]  # every run, this sweep's only, fastest first
        for cells, run in zip(rows, by_median):
            assert float(cells["metrics.`latency_median_ms`"]) == pytest.approx(run.data.metrics["latency_median_ms"], rel=1e-3)
            assert cells["params.`model`"] == run.data.params["model"] and cells["params.`batch`"] == run.data.params["batch"]
            assert cells["tags.`status`"] == "ok"
        assert "params.`platform`" not in rows[0]  # the same in every run: not a column
        assert not [key for key in rows[0] if key.startswith("params.`model.")]  # they change with the model

        pair = sorted((run for run in children if run.data.params["model"] == "alexnet"), key=lambda run: run.data.params["batch"])
        compare = _chromium(ui_link.compare_link(server.url, experiment_id, [run.info.run_id for run in pair]),
                            tmp_path / "profile-compare", "--window-size=1600,1000", "--dump-dom")
        table = [list(cells.values()) for cells in _grid(compare).values()]
        assert ["batch", "1", "2"] in table and ["model", "alexnet", "alexnet"] in table, json.dumps(table)[:3000]
    finally:
        server.stop()

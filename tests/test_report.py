"""embench.report on runs made by a real sweep: every figure and table, report.html in headless
Chromium, the MLflow artifacts, duplicates, filters, and the one-line errors."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import cli_env

FIGURES = ("fig1_runtime_vs_flops", "fig2_throughput_vs_batch", "fig3_accuracy_vs_speed", "fig4_layer_time",
           "fig5_achieved_gflops")
TABLES = ("platforms", "table1_models", "best_batch", "max_batch", "pareto_front", "speedup_summary", "speedups",
          "profile_coverage", "failed_unstable_runs", "points", "runs")
MODELS = {"squeezenet1_1", "shufflenet_v2_x0_5"}
OOM_BATCH = 1_000_000  # the input alone needs 600 GB: out of memory at once
# One thread and short timing: quick even when another process keeps a core busy.
FAST = ("protocol=quick", "platform.threads=1", "protocol.min_duration_s=0.2", "protocol.max_duration_s=0.5")


def run(root: Path, module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=root, env=cli_env(root), capture_output=True,
                          text=True, timeout=timeout)


def report_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return run(root, "embench.report", "--experiment", "embench", *args)


def in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """The report CLI in this process (no interpreter start-up): for the cheap error paths."""
    from embench.report.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("embench.report: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def client(root: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """One real sweep: two small models at batch 1 and 2 (quick protocol, profiled), plus an oom batch."""
    root = tmp_path_factory.mktemp("report_store")
    sweep = run(root, "embench", "-m", f"model={','.join(sorted(MODELS))}", f"batch=1,2,{OOM_BATCH}", *FAST)
    assert sweep.returncode == 1, sweep.stdout + sweep.stderr  # the oom jobs fail the sweep; the rest is measured
    return root


@pytest.fixture(scope="module")
def report(store) -> tuple[Path, subprocess.CompletedProcess]:
    proc = report_cli(store, "--output", "report")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return store / "report", proc


@pytest.fixture(scope="module")
def mixed(store, report) -> Path:
    """A second sweep: squeezenet1_1 at batch 1 again on cpu (a duplicate), and on `cuda` falling back to the CPU
    (a second platform label); then a report over both sweeps."""
    sweep = run(store, "embench", "-m", "platform=cpu,cuda", "platform.strict=false", "model=squeezenet1_1", "batch=1",
                *FAST)
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    proc = report_cli(store, "--output", "report_all")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "a report run of its own" in proc.stdout
    return store / "report_all"


def csv(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv")


def test_every_figure_and_table_is_written(report):
    folder, proc = report
    assert f"report: {folder.resolve() / 'report.html'}" in proc.stdout
    for name in FIGURES:
        png, svg = folder / f"{name}.png", folder / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 15_000, name
        assert "<svg" in svg.read_text()[:2000] and svg.stat().st_size > 15_000, name
        assert len(csv(folder, name)) >= 2, name  # real data, not a placeholder's note
    for name in TABLES:
        assert (folder / f"{name}.csv").stat().st_size > 0, name
    points = csv(folder, "points")
    assert set(zip(points["model"], points["batch"])) == {(m, b) for m in MODELS for b in (1, 2)}
    assert (points["runs"] == 1).all()


def test_figure_data(report):
    folder, _ = report
    fig1 = csv(folder, "fig1_runtime_vs_flops")
    assert (fig1["gflops_per_call"] == fig1["flops"] * fig1["batch"] / 1e9).all()
    fig2 = csv(folder, "fig2_throughput_vs_batch")
    best = fig2.loc[fig2.groupby("model")["throughput_ips"].idxmax()]
    assert set(zip(best["model"], best["batch"])) == set(zip(*[fig2.loc[fig2["best_batch"], c] for c in ("model", "batch")]))
    fig4 = csv(folder, "fig4_layer_time")
    assert set(fig4["model"]) == MODELS and (fig4["batch"] == 1).all()
    shares = fig4.filter(like="pct_").sum(axis=1)
    assert shares.between(99.9, 100.1).all() and (fig4["profile_coverage"] > 0).all()
    assert (fig4["pct_convolution"] > 20).all()  # these are convolutional networks


def test_figure3_has_every_network_at_batch_1_with_its_reference_accuracy(report):
    folder, _ = report
    fig3 = csv(folder, "fig3_accuracy_vs_speed")
    assert set(fig3["model"]) == MODELS and fig3["top1_pct"].between(50, 80).all()
    members = csv(folder, "pareto_front").iloc[0]["Pareto front (fastest first)"].split(", ")
    assert set(members) == set(fig3.loc[fig3["pareto"], "model"]) and members


# per network: inferences/s at batch 1 on torch and on openvino, top-1 (%); no two share a speed or an accuracy
PARETO_RUNS = {"net_fast": (1000.0, 900.0, 50.0), "net_mid": (500.0, 500.0, 70.0), "net_shadowed": (400.0, 600.0, 60.0),
               "net_accurate": (100.0, 120.0, 80.0), "net_worst": (50.0, 60.0, 40.0)}
# by construction: on torch net_mid is both faster and more accurate than net_shadowed, which on openvino is faster
# than net_mid; net_worst is slower and less accurate than every other network on both
PARETO_FRONTS = {"cpu/openvino": "net_fast, net_shadowed, net_mid, net_accurate",
                 "cpu/torch": "net_fast, net_mid, net_accurate"}


def test_pareto_front_of_hand_built_runs_is_the_one_built(tmp_path):
    from mlflow.entities import Metric, Param

    from embench.report.build import build
    from embench.report.load import Filters, load

    mlflow = client(tmp_path)
    experiment = mlflow.create_experiment("e")
    for model, (torch_ips, openvino_ips, top1) in PARETO_RUNS.items():
        for backend, ips in (("torch", torch_ips), ("openvino", openvino_ips)):
            run_id = mlflow.create_run(experiment).info.run_id
            params = {"model": model, "platform": "cpu", "backend": backend, "batch": "1", "model.year": "2016",
                      "model.accuracy.top1": str(top1), "scenario.name": "single_stream"}
            metrics = {"throughput_ips": ips, "latency_median_ms": 1e3 / ips, "flops": 2e8, "macs": 1e8, "params": 1e6}
            mlflow.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                             params=[Param(k, v) for k, v in params.items()])
            mlflow.set_terminated(run_id)
    build(load(f"sqlite:///{tmp_path / 'mlflow.db'}", "e", Filters()), tmp_path / "report")
    fronts = csv(tmp_path / "report", "pareto_front").set_index("label")["Pareto front (fastest first)"]
    assert fronts.to_dict() == PARETO_FRONTS
    fig3 = csv(tmp_path / "report", "fig3_accuracy_vs_speed")
    on_front = fig3[fig3["pareto"]].groupby("label")["model"].apply(set).to_dict()
    assert on_front == {label: set(models.split(", ")) for label, models in PARETO_FRONTS.items()}


def test_failed_runs_are_listed_and_the_largest_batch_is_found(report):
    folder, _ = report
    failed = csv(folder, "failed_unstable_runs")
    oom = failed[failed["status"] == "oom"]
    assert set(oom["model"]) == MODELS and (oom["batch"] == OOM_BATCH).all() and not oom["in figures"].any()
    assert oom["error"].str.contains("memory").all()
    largest = csv(folder, "max_batch").set_index("model")
    assert (largest.loc[list(MODELS), "largest batch that ran"] == 2).all()
    assert (largest.loc[list(MODELS), "smallest failed batch"] == OOM_BATCH).all()
    assert (largest.loc[list(MODELS), "failure"] == "oom").all()


def test_table1_and_single_platform_tables(report):
    folder, _ = report
    table1 = csv(folder, "table1_models").set_index("model")
    assert set(table1.index) == MODELS
    assert table1.loc["squeezenet1_1", "paper FLOPs (M) [MACs]"] == pytest.approx(377.80)
    ratio = table1["MACs (M)"] / table1["paper FLOPs (M) [MACs]"]
    assert table1["MACs / paper"].tolist() == pytest.approx(ratio.tolist())
    assert table1["params / paper"].between(0.99, 1.01).all()
    assert table1["FLOPs (M)"].tolist() == pytest.approx((2 * table1["MACs (M)"]).tolist())
    platforms = csv(folder, "platforms")
    assert list(platforms["label"]) == ["cpu/torch"] and platforms.loc[0, "runs"] == 6
    assert csv(folder, "speedup_summary").empty  # one platform: nothing to compare, and the page says so
    assert "nothing to compare" in (folder / "report.html").read_text()


def test_report_html_embeds_every_figure_and_table(report):
    folder, _ = report
    page = (folder / "report.html").read_text()
    assert page.count("<img src='data:image/png;base64,") == len(FIGURES)
    assert "src='http" not in page and "<script" not in page  # self-contained
    for title in ("Figure 1", "Figure 2", "Figure 3", "Figure 4", "Table 1", "Pareto", "Speed-ups",
                  "Largest batch", "Failed and unstable runs", "profile accounts for"):
        assert title in page, title
    assert "latest: the most recent successful run" in page and "0 duplicate run(s) folded" in page


def test_report_is_logged_to_the_sweeps_parent_run(report, store):
    _, proc = report
    mlflow = client(store)
    experiment = mlflow.get_experiment_by_name("embench")
    [parent] = [r for r in mlflow.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.run_id in proc.stdout and "the sweep's parent run" in proc.stdout
    logged = {Path(a.path).name for a in mlflow.list_artifacts(parent.info.run_id, "report")}
    assert {"report.html", "table1_models.csv"} <= logged
    assert {f"{name}.{ext}" for name in FIGURES for ext in ("png", "svg", "csv")} <= logged


def _render(page: Path, tmp_path: Path) -> str:
    """Loads a copy of the page in headless Chromium with a check that every image decoded; returns the DOM."""
    probe = tmp_path / "probe.html"
    script = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
              "const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;"
              "const d = document.createElement('div'); d.id = 'probe';"
              "d.textContent = 'images ' + ok + '/' + imgs.length; document.body.appendChild(d); });</script>")
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    shot = tmp_path / "page.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000"]
    dom = subprocess.run(["chromium", *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=90)
    subprocess.run(["chromium", *flags, "--window-size=1400,2400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=90)
    assert shot.stat().st_size > 50_000  # a page with figures, not a blank one
    return dom.stdout


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (.ci/run installs Debian's)")
def test_report_renders_in_headless_chromium_with_all_images(report, tmp_path):
    folder, _ = report
    dom = _render(folder / "report.html", tmp_path)
    assert f"images {len(FIGURES)}/{len(FIGURES)}" in dom, dom[-500:]
    assert "Table 1: networks" in dom and "squeezenet1_1" in dom


def test_two_sweeps_fold_duplicates_compare_platforms_and_log_a_report_run(mixed, store):
    points = csv(mixed, "points")
    assert set(points["label"]) == {"cpu/torch", "cuda/torch (ran on cpu)"}
    squeeze = points[(points["model"] == "squeezenet1_1") & (points["batch"] == 1) & (points["label"] == "cpu/torch")]
    assert squeeze["runs"].tolist() == [2]
    page = (mixed / "report.html").read_text()
    assert "1 duplicate run(s) folded" in page
    speedups = csv(mixed, "speedups")
    assert len(speedups) == 1 and speedups.loc[0, "model"] == "squeezenet1_1" and speedups.loc[0, "speed-up"] >= 1
    summary = csv(mixed, "speedup_summary")
    assert set(summary["scope"]) == {"batch 1", "every common batch", "best batch of each"}
    assert (summary.loc[summary["scope"] == "every common batch", "geomean ×"] >= 1).all()
    mlflow = client(store)
    experiment = mlflow.get_experiment_by_name("embench")
    reports = mlflow.search_runs([experiment.experiment_id], filter_string="tags.`embench.report` = 'true'")
    assert len(reports) == 1 and reports[0].info.status == "FINISHED"
    assert "report/report.html" in {a.path for a in mlflow.list_artifacts(reports[0].info.run_id, "report")}


def test_median_aggregate_and_filters(mixed, store):
    proc = report_cli(store, "--output", "median", "--aggregate", "median", "--model", "squeezenet1_1",
                      "--batch", "1,2", "--platform", "cpu", "--tag", "status=ok", "--no-log-to-mlflow")
    assert proc.returncode == 0, proc.stderr
    assert "logged to MLflow" not in proc.stdout
    runs, points = csv(store / "median", "runs"), csv(store / "median", "points")
    assert set(runs["model"]) == {"squeezenet1_1"} and set(runs["platform"]) == {"cpu"} and (runs["status"] == "ok").all()
    assert set(runs["batch"]) == {1, 2}
    both = runs[runs["batch"] == 1]["latency_median_ms"]
    assert len(both) == 2  # the earlier report run of its own is not read as data
    point = points[points["batch"] == 1].iloc[0]
    assert point["latency_median_ms"] == pytest.approx(both.median()) and point["runs"] == 2
    page = (store / "median" / "report.html").read_text()
    assert "median: the median of each metric" in page and "model=squeezenet1_1" in page
    assert "1 report runs" in page


def test_missing_or_empty_experiment_is_one_clear_line(store, tmp_path, capsys):
    one_line_error(report_cli(store, "--experiment", "nosuch", "--output", "x"), 2, "'nosuch'", "mlflow.db", "embench")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    out = str(tmp_path / "x")
    one_line_error(in_process(capsys, "--tracking-uri", uri, "--model", "vgg16", "--output", out), 2, "no run",
                   "model=vgg16", "squeezenet1_1")
    one_line_error(in_process(capsys, "--tracking-uri", uri, "--batch", "64", "--output", out), 2, "batch=64",
                   "batches: 1, 2, 1000000")
    client(tmp_path).create_experiment("empty")
    one_line_error(in_process(capsys, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--experiment", "empty",
                              "--output", out), 2, "'empty'", "no runs")
    missing = tmp_path / "elsewhere" / "mlflow.db"
    one_line_error(in_process(capsys, "--tracking-uri", f"sqlite:///{missing}", "--output", out), 2, str(missing))
    assert not missing.exists() and not (store / "x").exists() and not (tmp_path / "x").exists()


def test_unreachable_server_is_one_line_exit_3(tmp_path):
    started = time.monotonic()
    one_line_error(run(tmp_path, "embench.report", "--tracking-uri", "http://127.0.0.1:9", "--experiment", "e"), 3,
                   "could not reach MLflow", "127.0.0.1:9")
    assert time.monotonic() - started < 30


def test_help_is_fast_and_documents_the_filters(tmp_path):
    started = time.monotonic()
    proc = run(tmp_path, "embench.report", "--help")
    assert proc.returncode == 0 and time.monotonic() - started < 5
    for option in ("--experiment", "--output", "--tracking-uri", "--model", "--platform", "--backend", "--batch",
                   "--tag", "--aggregate", "--no-log-to-mlflow", "exit codes"):
        assert option in proc.stdout, option


@pytest.mark.slow
def test_runs_that_differ_in_a_setting_are_separate_points(tmp_path):
    """precision=fp32,bf16 on one platform/backend: two labels, two curves, and the median folds neither into the
    other."""
    sweep = run(tmp_path, "embench", "-m", "backend=torch", "backend.runtime.precision=fp32,bf16",
                "model=squeezenet1_1", "batch=1,2", *FAST)
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    proc = report_cli(tmp_path, "--output", "report", "--aggregate", "median", "--no-log-to-mlflow")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = tmp_path / "report"
    labels = {"cpu/torch precision=bf16", "cpu/torch precision=fp32"}
    runs, points = csv(folder, "runs"), csv(folder, "points")
    assert set(points["label"]) == labels and len(points) == 4 and (points["runs"] == 1).all()
    for _, point in points.iterrows():  # each point is its own run, not a median over both precisions
        [own] = runs.loc[(runs["label"] == point["label"]) & (runs["batch"] == point["batch"]), "latency_median_ms"]
        assert point["latency_median_ms"] == pytest.approx(own)
    fig1, fig2 = csv(folder, "fig1_runtime_vs_flops"), csv(folder, "fig2_throughput_vs_batch")
    for data in (fig1, fig2):  # one curve per precision, through both batches
        assert data.groupby("label")["batch"].apply(sorted).to_dict() == {label: [1, 2] for label in labels}
    assert set(csv(folder, "platforms")["label"]) == labels and "0 duplicate(s) folded" in proc.stdout


def _raw(rows: list[dict]) -> pd.DataFrame:
    """An MLflow search_runs frame of made-up finished runs, params under their flattened names (None: not logged)."""
    start = pd.Timestamp("2026-01-01", tz="UTC")
    return pd.DataFrame([{"run_id": f"r{i}", "status": "FINISHED", "start_time": start + pd.Timedelta(seconds=i),
                          **{f"params.{key}": value for key, value in row.items()}} for i, row in enumerate(rows)])


def test_labels_name_only_the_settings_that_differ():
    from embench.report.selection import _labels, tidy

    torch = {"platform": "cpu", "backend": "torch", "protocol": "latency", "batch": "1", "platform.name": "cpu",
             "backend.name": "torch", "protocol.name": "latency", "platform.threads": "1", "platform.strict": "true",
             "platform.specs.tdp_w": "null", "protocol.unstable_cv": "0.1", "seed": "0"}
    openvino = torch | {"backend": "openvino", "backend.name": "openvino", "seed": "1"}
    raw = _raw([
        torch | {"model": "squeezenet1_1", "model.year": "2016", "model.accuracy.top1": "58.178"},
        torch | {"model": "alexnet", "batch": "2", "model.year": "2012", "model.accuracy.top1": "56.522",
                 "platform.strict": "false", "platform.specs.tdp_w": "65", "protocol.unstable_cv": "0.2"},
        torch | {"model": "alexnet", "platform.threads": None},  # an older run that did not log the setting
        openvino | {"model": "alexnet", "backend.runtime.precision": "bf16"},
        openvino | {"model": "alexnet", "backend.runtime.precision": "fp32"},
    ])
    runs, _ = tidy(raw)
    assert _labels(runs, raw).tolist() == ["cpu/torch threads=1", "cpu/torch threads=1", "cpu/torch threads=?",
                                           "cpu/openvino precision=bf16", "cpu/openvino precision=fp32"]
    compile_ = torch | {"model": "alexnet", "backend": "torch_compile", "backend.name": "torch_compile"}
    raw = _raw([compile_ | {"backend.runtime.mode": "default", "protocol.mode": "latency"},
                compile_ | {"backend.runtime.mode": "max-autotune", "protocol.mode": "throughput"}])
    runs, _ = tidy(raw)  # two settings with the same last name are named in full
    assert _labels(runs, raw).tolist() == [
        "cpu/torch_compile backend.runtime.mode=default protocol.mode=latency",
        "cpu/torch_compile backend.runtime.mode=max-autotune protocol.mode=throughput"]


def test_runs_logged_in_the_old_precision_vocabulary_join_the_new_ones():
    """torch's former `dtype` key and OpenVINO's former f32/f16 values label as `precision=fp32` alongside new runs."""
    from embench.report.selection import _labels, tidy

    base = {"platform": "cpu", "protocol": "latency", "batch": "1", "model": "alexnet", "platform.name": "cpu"}
    raw = _raw([
        base | {"backend": "torch", "backend.runtime.dtype": "fp32"},  # logged before the rename
        base | {"backend": "torch", "backend.runtime.precision": "bf16"},
        base | {"backend": "openvino", "backend.runtime.precision": "f32"},  # OpenVINO's old name
        base | {"backend": "openvino", "backend.runtime.precision": "bf16"},
    ])
    runs, _ = tidy(raw)
    assert _labels(runs, raw).tolist() == ["cpu/torch precision=fp32", "cpu/torch precision=bf16",
                                           "cpu/openvino precision=fp32", "cpu/openvino precision=bf16"]


def test_a_published_fp32_peak_is_never_the_peak_of_an_int8_run():
    """A platform's published peak is an FP32 rate: an INT8 or BF16 run without a measured peak of its own gets none."""
    from embench.report.selection import tidy

    base = {"params.platform": "xeon4116", "params.backend": "openvino", "params.batch": "1",
            "params.platform.specs.peak_fp32_gflops": "1000"}
    raw = pd.DataFrame([{"run_id": f"r{i}", "status": "FINISHED", "start_time": pd.Timestamp("2026-01-01", tz="UTC"),
                         **base, **extra} for i, extra in enumerate((
                             {"tags.backend.precision": "fp32"}, {"tags.backend.precision": "f32"}, {},  # older: fp32
                             {"tags.backend.precision": "int8"}, {"tags.backend.precision": "bf16"},
                             {"tags.backend.precision": "bf16", "metrics.peak_gflops": 2500.0}))])
    runs, _ = tidy(raw)
    assert runs["peak_gflops"].tolist()[:3] == [1000.0, 1000.0, 1000.0]
    assert runs["peak_gflops"].isna().tolist()[3:5] == [True, True] and runs["peak_gflops"].iloc[5] == 2500.0


def test_throughput_protocol_runs_are_timed_by_the_wall_time_per_batch(tmp_path):
    """Throughput-mode runs log no latency: the report uses their wall time per batch, and its captions say so."""
    from mlflow.entities import Metric, Param

    from embench.report import figures
    from embench.report.build import build
    from embench.report.load import Filters, load

    mlflow = client(tmp_path)
    experiment = mlflow.create_experiment("e")
    common = {"model": "squeezenet1_1", "platform": "cpu", "backend": "torch", "model.year": "2016",
              "model.accuracy.top1": "58.178"}
    complexity = {"flops": 7e8, "macs": 3.5e8, "params": 1.2e6}
    for protocol, batch, metrics in (
            ("latency", 1, {"latency_median_ms": 4.0, "latency_min_ms": 3.5, "throughput_ips": 240.0}),
            ("throughput", 8, {"batch_time_ms": 20.0, "throughput_ips": 400.0}),
            ("throughput", 4, {"latency_median_ms": 1.0, "throughput_ips": 200.0})):  # older: no batch_time_ms
        run_id = mlflow.create_run(experiment).info.run_id
        params = common | {"protocol": protocol, "protocol.mode": protocol, "batch": str(batch)}
        mlflow.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in (metrics | complexity).items()],
                         params=[Param(k, v) for k, v in params.items()])
        mlflow.set_terminated(run_id)
    sel = load(f"sqlite:///{tmp_path / 'mlflow.db'}", "e", Filters())
    times = sel.points.set_index("batch")["time_per_call_ms"]
    assert times.to_dict() == {1: 4.0, 4: pytest.approx(4 * 1000 / 200.0), 8: 20.0}
    fig1 = figures.runtime_vs_flops(sel)
    assert fig1.data.set_index("batch")["time_per_call_ms"].to_dict() == times.to_dict()
    assert "median" in fig1.caption and "for throughput-protocol runs, wall time per batch" in fig1.caption
    page = build(sel, tmp_path / "report").read_text()
    assert "wall time per batch" in page
    assert csv(tmp_path / "report", "points").set_index("batch")["time_per_call_ms"].to_dict() == times.to_dict()


def test_paper_protocol_runs_are_timed_by_their_minimum(tmp_path):
    """protocol.headline=min (the paper's protocol): the point's time per call is latency_min_ms and the captions
    name the minimum; a run logged before the setting existed counts as a median one, folded with today's."""
    from mlflow.entities import Metric, Param

    from embench.report import figures
    from embench.report.build import build
    from embench.report.load import Filters, load
    from embench.report.selection import time_statistic

    mlflow = client(tmp_path)
    experiment = mlflow.create_experiment("e")
    common = {"model": "squeezenet1_1", "platform": "cpu", "backend": "torch", "model.year": "2016",
              "model.accuracy.top1": "58.178", "protocol.mode": "latency"}
    complexity = {"flops": 7e8, "macs": 3.5e8, "params": 1.2e6, "throughput_ips": 200.0}
    profile = {"profile_pct_convolution": 80.0, "profile_pct_other": 20.0, "profile_total_ms": 3.2,
               "profile_coverage": 0.8}
    for protocol, headline, batch, median, minimum in (
            ("paper", "min", 1, 4.0, 3.0),
            ("latency", None, 1, 5.0, 4.5),  # logged before protocol.headline existed: a median run
            ("latency", "median", 2, 6.0, 5.5)):
        run_id = mlflow.create_run(experiment).info.run_id
        params = common | {"protocol": protocol, "protocol.name": protocol, "batch": str(batch)}
        if headline:
            params["protocol.headline"] = headline
        metrics = {"latency_median_ms": median, "latency_min_ms": minimum, "achieved_gflops": 7e8 * batch / median / 1e6}
        metrics |= complexity | profile  # achieved_gflops as the runner logs it: from the median
        mlflow.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                         params=[Param(k, v) for k, v in params.items()])
        mlflow.set_terminated(run_id)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sel = load(uri, "e", Filters())
    times = sel.points.set_index(["label", "batch"])["time_per_call_ms"]
    assert times.to_dict() == {("cpu/torch · paper", 1): 3.0, ("cpu/torch · latency", 1): 5.0,
                               ("cpu/torch · latency", 2): 6.0}  # no `headline=?`: the older run is a median one
    fig1 = figures.runtime_vs_flops(sel)
    assert fig1.data.set_index(["label", "batch"])["time_per_call_ms"].to_dict() == times.to_dict()
    assert ("median of the timed iterations' latency per call, or their minimum for the runs with "
            "protocol.headline=min (the paper's protocol)") in fig1.caption  # a mixed selection names both

    paper = load(uri, "e", Filters(protocols=["paper"]))
    assert paper.points["time_per_call_ms"].tolist() == [3.0]
    assert time_statistic(paper.points)[0] == "minimum latency per call"
    fig1, fig4 = figures.runtime_vs_flops(paper), figures.layer_time(paper)
    for caption in (fig1.caption, fig4.caption):
        assert "minimum of the timed iterations' latency per call (the paper's protocol)" in caption
        assert "median of" not in caption
    assert "against the median latency per call" in fig4.caption  # the run's own coverage: 3.2 / 4.0
    assert "not the minimum" in figures.achieved_gflops(paper).caption  # achieved_gflops as logged: from the median
    page = build(paper, tmp_path / "report").read_text()
    assert "minimum of the timed iterations" in page
    points = csv(tmp_path / "report", "points")
    assert points[["protocol_headline", "time_per_call_ms", "latency_median_ms"]].values.tolist() == [["min", 3.0, 4.0]]

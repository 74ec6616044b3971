"""embench.report on LoadGen scenario runs with known figures: the latency-against-load figure of the server
scenario (a max-QPS search's probes included), the co-location table, runs that lack the usual metrics, and a real
sweep of every scenario on a backend of known step time, whose figures each plot only what their axes name."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import PLUGINS, cli_env, write_user_backend

LOAD_FIGURE = "fig6_latency_vs_load"
BASE = {"platform": "cpu", "backend": "torch", "protocol": "latency", "batch": "1", "platform.name": "cpu",
        "platform.threads": "2", "seed": "0"}


def server(bound: float, qps: float, search: bool = False) -> dict:
    return {"scenario.name": "server", "scenario.target_qps": str(qps), "scenario.latency_bound_ms": str(bound),
            "scenario.find_max_qps": str(search), "scenario.workers": "1", "scenario.search_runs": "8"}


def load_metrics(qps: float, p99: float, bound: float) -> dict:
    """A server run's figures at one offered rate; valid when p99 is within the bound."""
    return {"offered_qps": qps, "query_latency_p50_ms": p99 / 2, "query_latency_p90_ms": p99 * 0.8,
            "query_latency_p99_ms": p99, "latency_bound_ms": bound, "loadgen_valid": float(p99 <= bound),
            "samples_per_s": qps, "throughput_ips": qps}


# per network: p50 alone, together; p99 alone, together
COLOCATED = {"resnet50": (10.0, 15.0, 20.0, 40.0), "mobilenet_v2": (4.0, 5.0, 8.0, 12.0)}


def colocated_metrics() -> dict:
    metrics = {}
    for name, (p50_alone, p50_together, p99_alone, p99_together) in COLOCATED.items():
        for phase, p50, p99 in (("alone", p50_alone, p99_alone), ("together", p50_together, p99_together)):
            metrics |= {f"colocated.{name}.{phase}.query_latency_p50_ms": p50,
                        f"colocated.{name}.{phase}.query_latency_p90_ms": p99 * 0.9,
                        f"colocated.{name}.{phase}.query_latency_p99_ms": p99,
                        f"colocated.{name}.{phase}.samples_per_s": 1e3 / p50,
                        f"colocated.{name}.{phase}.loadgen_valid": 1.0}
        metrics |= {f"colocated.{name}.slowdown_p50": p50_together / p50_alone,
                    f"colocated.{name}.slowdown_p99": p99_together / p99_alone}
    return metrics


def log_run(mlflow, experiment: str, params: dict, metrics: dict, tags: dict | None = None,
            status: str = "FINISHED") -> str:
    from mlflow.entities import Metric, Param

    run_id = mlflow.create_run(experiment, tags=tags or {}).info.run_id
    mlflow.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                     params=[Param(k, v) for k, v in (BASE | params).items()])
    mlflow.set_terminated(run_id, status)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str]:
    """squeezenet1_1 single-stream and served at 50 QPS (bound 30 ms), alexnet single-stream only, a max-QPS search
    of resnet50 (bound 15 ms: probes at 20 and 40 QPS valid, 80 QPS not; one failed probe), and a co-location run
    of resnet50 with mobilenet_v2. Returns the folder and the search's own run id."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("scenario_store")
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = mlflow.create_experiment("embench")
    single = {"scenario.name": "single_stream"}
    timed = {"latency_median_ms": 4.0, "latency_min_ms": 3.5, "throughput_ips": 250.0, "flops": 7e8}
    for model in ("squeezenet1_1", "alexnet"):
        log_run(mlflow, experiment, single | {"model": model}, timed)
    log_run(mlflow, experiment, server(30.0, 50.0) | {"model": "squeezenet1_1"}, load_metrics(50.0, 20.0, 30.0))
    search = log_run(mlflow, experiment, server(15.0, 10.0, search=True) | {"model": "resnet50"},
                     load_metrics(40.0, 12.0, 15.0) | {"server_max_qps": 40.0})
    for qps, p99, status in ((20.0, 8.0, "FINISHED"), (80.0, 300.0, "FINISHED"), (40.0, 12.0, "FINISHED"),
                             (60.0, 14.0, "FAILED")):
        log_run(mlflow, experiment, server(15.0, qps) | {"model": "resnet50"}, load_metrics(qps, p99, 15.0),
                {"mlflow.parentRunId": search, "search.parent_run_uid": "u1"}, status)
    log_run(mlflow, experiment, single | {"model": "resnet50+mobilenet_v2", "colocate": "['resnet50', 'mobilenet_v2']"},
            colocated_metrics(), {f"colocated.{name}.threads": "1" for name in COLOCATED})
    return root, search


@pytest.fixture(scope="module")
def full(store) -> Path:
    """The report CLI over every run, in a process of its own."""
    root = store[0]
    proc = subprocess.run([sys.executable, "-m", "embench.report", "--experiment", "embench", "--output", "full",
                           "--no-log-to-mlflow"], cwd=root, env=cli_env(root), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return root / "full"


def csv(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv")


def test_latency_vs_load_draws_every_server_run_at_its_offered_rate(full, store):
    assert (full / f"{LOAD_FIGURE}.png").stat().st_size > 10_000 and (full / f"{LOAD_FIGURE}.svg").exists()
    data = csv(full, LOAD_FIGURE)
    assert store[1] not in set(data["run_id"])  # the search's own run repeats its 40 QPS probe
    curves = {(row.label, row.model): list(zip(row.offered_qps, row.query_latency_p99_ms, row.valid))
              for row in data.groupby(["label", "model"]).agg(list).reset_index().itertuples()}
    assert curves == {  # one curve per latency bound (a setting that differs); the failed probe is left out
        ("cpu/torch · server latency_bound_ms=15.0", "resnet50"): [(20.0, 8.0, True), (40.0, 12.0, True), (80.0, 300.0, False)],
        ("cpu/torch · server latency_bound_ms=30.0", "squeezenet1_1"): [(50.0, 20.0, True)]}
    assert data.groupby("label")["latency_bound_ms"].unique().map(list).to_dict() == {
        "cpu/torch · server latency_bound_ms=15.0": [15.0], "cpu/torch · server latency_bound_ms=30.0": [30.0]}


def test_colocation_table_lists_each_networks_slowdown(full):
    table = csv(full, "colocation").set_index("model")
    assert sorted(table.index) == sorted(COLOCATED)
    assert (table["networks"] == "resnet50+mobilenet_v2").all() and (table["threads"] == 1).all()
    resnet = table.loc["resnet50"]
    assert (resnet["p50 alone (ms)"], resnet["p50 together (ms)"], resnet["slowdown p50"]) == (10.0, 15.0, 1.5)
    assert (resnet["p99 alone (ms)"], resnet["p99 together (ms)"], resnet["slowdown p99"]) == (20.0, 40.0, 2.0)
    assert table.loc["mobilenet_v2", "slowdown p50"] == pytest.approx(1.25)


def test_page_shows_both_and_scenarios_are_not_folded_together(full):
    page = (full / "report.html").read_text()
    assert "Figure 6: p99 query latency against offered load" in page and "Co-located networks" in page
    assert page.count("<img src='data:image/png;base64,") == 6
    points = csv(full, "points")
    squeeze = points[points["model"] == "squeezenet1_1"]
    assert sorted(squeeze["label"]) == ["cpu/torch · server find_max_qps=False latency_bound_ms=30.0 target_qps=50.0",
                                        "cpu/torch · single_stream"]  # points tell the offered rates apart
    fig2 = csv(full, "fig2_throughput_vs_batch")
    assert "resnet50+mobilenet_v2" not in set(fig2["model"])  # no throughput: not in the figures that need it


@pytest.mark.parametrize("model, figure, table", [
    ("resnet50+mobilenet_v2", False, True),  # co-location runs only: no latency_median_ms, no throughput_ips
    ("alexnet", False, False),
    ("resnet50", True, False),  # server runs only: no latency_median_ms
])
def test_each_output_only_when_its_runs_are_selected(store, model, figure, table, capsys):
    from embench.report.cli import main

    root, folder = store[0], store[0] / f"only_{model}"
    main(["--tracking-uri", f"sqlite:///{root / 'mlflow.db'}", "--experiment", "embench", "--output", str(folder),
          "--no-log-to-mlflow", "--model", model])  # in this process: no interpreter start-up
    assert "report:" in capsys.readouterr().out
    assert (folder / f"{LOAD_FIGURE}.png").exists() == figure
    assert (folder / "colocation.csv").exists() == table
    page = (folder / "report.html").read_text()
    assert ("Figure 6" in page) == figure and ("Co-located networks" in page) == table


STEP_MS = 10.0  # the synthetic backend's every step: one worker serves at most 100 samples/s
OFFLINE_WORKERS = 2  # offline's two workers: at most 200 samples/s, and 1000 / 200 = 5 ms, which is no call's latency
# scenario configs of short LoadGen tests: name -> YAML (a max-QPS search of two probes; 2-sample multi-stream queries)
SHORT_SCENARIOS = {
    "search": "name: server\ntarget_qps: 10.0\nlatency_bound_ms: 50.0\nworkers: 1\nmin_query_count: 50\n"
              "find_max_qps: true\nsearch_runs: 2\n",
    "multi": "name: multi_stream\nsamples_per_query: 2\nworkers: 1\nmin_query_count: 40\n",
    "offline_two": f"name: offline\nworkers: {OFFLINE_WORKERS}\nmin_query_count: 100\n",
}


@pytest.fixture(scope="module")
def scenarios_report(tmp_path_factory) -> Path:
    """A real sweep of a backend whose every step takes STEP_MS under single stream, a max-QPS search, multi-stream
    and offline; then the report CLI over it (in this process: no interpreter start-up)."""
    from embench.report.cli import main

    root = tmp_path_factory.mktemp("every_scenario")
    conf = root / "my_conf"
    write_user_backend(conf, "fixed_step", "fixed_step_backend.FixedStep", step_ms=STEP_MS)
    (conf / "scenario").mkdir()
    for name, text in SHORT_SCENARIOS.items():
        (conf / "scenario" / f"{name}.yaml").write_text(text)
    env = cli_env(root, PYTHONPATH=PLUGINS)
    sweep = subprocess.run([sys.executable, "-m", "embench", "-m", "--config-dir", str(conf), "backend=fixed_step",
                            "model=squeezenet1_1", "protocol=quick", "protocol.profile_iterations=0",
                            "protocol.max_duration_s=2",  # room for the search's second probe: 50 queries at ~50 QPS
                            f"scenario=single_stream,{','.join(SHORT_SCENARIOS)}"],
                           cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    main(["--tracking-uri", f"sqlite:///{root / 'mlflow.db'}", "--experiment", "embench", "--output",
          str(root / "report"), "--no-log-to-mlflow"])
    return root / "report"


def _scenarios(labels: pd.Series) -> list[str]:
    """The scenario each label names (several scenarios are selected, so every label names one)."""
    return list(labels.str.extract(r" · (single_stream|server|multi_stream|offline)")[0])


@pytest.mark.slow  # a sweep over four scenarios and a search: about 35 s
def test_each_figure_plots_only_what_its_axis_names(scenarios_report):
    """Figure 1's axis is a call's latency: single stream only, at the known step. Figures 2, 3 and 5 are rates the
    device sustained: single stream and offline (at its two workers' known capacity), never a server's offered rate
    nor multi-stream's. Every probe of the search is in Figure 6 only."""
    folder = scenarios_report
    fig1 = csv(folder, "fig1_runtime_vs_flops")
    assert _scenarios(fig1["label"]) == ["single_stream"], fig1[["label", "time_per_call_ms"]]
    [latency] = fig1["time_per_call_ms"]
    assert STEP_MS <= latency < 1.5 * STEP_MS  # a step, and a hand-off of a fraction of a millisecond
    for name in ("fig2_throughput_vs_batch", "fig3_accuracy_vs_speed", "fig5_achieved_gflops"):
        assert sorted(_scenarios(csv(folder, name)["label"])) == ["offline", "single_stream"], name
    fig2 = csv(folder, "fig2_throughput_vs_batch")
    rate = dict(zip(_scenarios(fig2["label"]), fig2["throughput_ips"]))
    assert 0.7 * 1e3 / STEP_MS < rate["single_stream"] <= 1e3 / STEP_MS
    assert 0.7 * OFFLINE_WORKERS * 1e3 / STEP_MS < rate["offline"] <= OFFLINE_WORKERS * 1e3 / STEP_MS
    assert set(csv(folder, "best_batch")["label"]) == set(fig2["label"])  # the stars of Figure 2
    probes = csv(folder, LOAD_FIGURE)
    assert len(probes) == 2 and probes["offered_qps"].nunique() == 2  # the search's two probes, at their rates
    page = (folder / "report.html").read_text()  # the captions and the summary say what was left out
    assert "Left out: 1 multi_stream, 1 offline, 3 server point(s)" in page and "left out of Figures 1" in page

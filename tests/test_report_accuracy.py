"""embench.report with measured accuracy: Figure 3 draws a point's measured top-1 where it has one (and its
Pareto front from it), the accuracy table repeats what the runs logged, and a random-weight run claims none.
Hand-built runs with known figures in a real MLflow store; the report CLI in a subprocess."""

import html
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import cli_env

from embench import names

DIGITS = "/data/digits"  # the accuracy.dataset tag: the image folder
ALL, FIRST_500 = "digits-all", "digits-500"  # accuracy.dataset_id tags: two image sets from that folder


def measured(top1: float, samples: int, dataset_id: str, delta: float) -> tuple[dict, dict]:
    """The metrics and tags of one accuracy pass (made-up but consistent figures)."""
    metrics = {names.ACCURACY_TOP1: top1, names.ACCURACY_TOP5: min(top1 + 15, 100.0), names.ACCURACY_SAMPLES: samples,
               names.ACCURACY_TOP1_CI95_LOW: top1 - 2.1, names.ACCURACY_TOP1_CI95_HIGH: top1 + 1.9,
               names.ACCURACY_REFERENCE_TOP1: top1 - delta, names.ACCURACY_TOP1_DELTA: delta,
               names.ACCURACY_TOP1_DELTA_CI95_LOW: delta - 0.8, names.ACCURACY_TOP1_DELTA_CI95_HIGH: delta + 0.7,
               names.ACCURACY_TOP1_DELTA_P: 0.0123, names.ACCURACY_TOP1_AGREEMENT: 97.5}
    return metrics, {names.ACCURACY_DATASET_TAG: DIGITS, names.ACCURACY_DATASET_ID_TAG: dataset_id}


# published top-1 per network; inferences/s at batch 1 on onnxruntime INT8 and on torch FP32
PUBLISHED = {"net_a": 50.0, "net_b": 70.0, "net_c": 80.0, "net_d": 40.0}
# runs in start order: (backend, model, inferences/s, pretrained, accuracy pass or None)
RUNS = [
    ("onnxruntime", "net_a", 1000.0, True, measured(75.0, 1797, ALL, -1.0)),
    ("onnxruntime", "net_a", 1100.0, True, None),  # later, speed only: the point keeps the earlier measured top-1
    ("onnxruntime", "net_b", 500.0, True, measured(65.0, 500, FIRST_500, -2.0)),
    ("onnxruntime", "net_b", 500.0, True, measured(60.0, 1797, ALL, -3.5)),  # the latest: Figure 3's
    ("onnxruntime", "net_c", 100.0, True, None),  # no accuracy pass: published
    ("onnxruntime", "net_d", 50.0, True, measured(95.0, 1797, ALL, 0.5)),
    ("torch", "net_a", 900.0, False, None),
    ("torch", "net_b", 450.0, False, None),
    ("torch", "net_c", 90.0, False, None),
    ("torch", "net_d", 45.0, False, measured(99.0, 1797, ALL, 0.0)),  # random weights: a stray accuracy, ignored
]
# measured (latest per point), net_a is faster and more accurate than net_b, and net_d the most accurate: the
# published figures would give net_a, net_b, net_c instead
FRONTS = {"cpu/onnxruntime": "net_a, net_c, net_d", "cpu/torch": "net_a, net_b, net_c"}


def report(root: Path, out: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "embench.report", "--experiment", "e", "--output", out,
                           "--no-log-to-mlflow", *args], cwd=root, env=cli_env(root), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    root = tmp_path_factory.mktemp("accuracy_store")
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = mlflow.create_experiment("e")
    for i, (backend, model, ips, pretrained, accuracy) in enumerate(RUNS):
        precision = "int8" if backend == "onnxruntime" else "fp32"
        params = {"model": model, "platform": "cpu", "backend": backend, "batch": "1", "model.year": "2016",
                  "model.accuracy.top1": str(PUBLISHED[model]), "model.pretrained": str(pretrained),
                  "scenario.name": "single_stream", names.RUNTIME_PRECISION_PARAM: precision,
                  "accuracy.name": "imagefolder" if accuracy else "none"}
        metrics = {"throughput_ips": ips, "latency_median_ms": 1e3 / ips, "flops": 2e8, "macs": 1e8, "params": 1e6}
        tags = {names.PRECISION_TAG: precision}
        if accuracy:
            metrics |= accuracy[0]
            tags |= accuracy[1]
        run_id = mlflow.create_run(experiment, start_time=1_700_000_000_000 + 1000 * i).info.run_id
        mlflow.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                         params=[Param(k, v) for k, v in params.items()], tags=[RunTag(k, v) for k, v in tags.items()])
        mlflow.set_terminated(run_id)
    return root


@pytest.fixture(scope="module")
def folder(store) -> Path:
    report(store, "report")
    return store / "report"


def csv(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv")


def test_figure3_uses_measured_accuracy_and_draws_the_front_from_it(folder):
    fronts = csv(folder, "pareto_front").set_index("label")["Pareto front (fastest first)"]
    assert fronts.to_dict() == FRONTS
    fig3 = csv(folder, "fig3_accuracy_vs_speed").set_index(["label", "model"])
    assert set(fig3.loc[fig3["pareto"]].index) == {(label, m) for label, ms in FRONTS.items() for m in ms.split(", ")}
    expected = {  # (label, model): (inferences/s, top-1, source, images, dataset)
        ("cpu/onnxruntime", "net_a"): (1100.0, 75.0, "measured", 1797, DIGITS),
        ("cpu/onnxruntime", "net_b"): (500.0, 60.0, "measured", 1797, DIGITS),
        ("cpu/onnxruntime", "net_c"): (100.0, 80.0, "published", None, None),
        ("cpu/onnxruntime", "net_d"): (50.0, 95.0, "measured", 1797, DIGITS),
        **{("cpu/torch", m): (ips, PUBLISHED[m], "published", None, None) for b, m, ips, *_ in RUNS if b == "torch"},
    }
    for key, (ips, top1, source, samples, dataset) in expected.items():
        row = fig3.loc[key]
        assert (row["throughput_ips"], row["top1_pct"], row["top1_source"]) == (ips, top1, source), key
        assert row["published_top1_pct"] == PUBLISHED[key[1]]
        if source == "measured":
            assert (row["top1_samples"], row["top1_dataset"]) == (samples, dataset), key
            assert (row["top1_ci95_low"], row["top1_ci95_high"]) == (top1 - 2.1, top1 + 1.9), key
        else:
            assert row[["top1_samples", "top1_ci95_low", "top1_ci95_high", "top1_dataset"]].isna().all(), key
    page = html.unescape((folder / "report.html").read_text())
    assert "filled markers (3 point(s)) were measured" in page and "Hollow markers (5 point(s))" in page
    assert f"{DIGITS} (1,797 images, 3 point(s))" in page and "95 % Wilson score interval" in page
    assert "The panel(s) cpu/onnxruntime mix accuracies" in page  # net_c there is published
    assert "1 run(s) with random weights (model.pretrained=false) logged an accuracy" in page
    points = csv(folder, "points").set_index(["label", "model"])
    assert pd.isna(points.loc[("cpu/torch", "net_d"), names.ACCURACY_TOP1])


def test_accuracy_table_repeats_what_each_run_logged(folder):
    table = csv(folder, "accuracy")
    logged = [(model, accuracy) for backend, model, _, _, accuracy in RUNS if accuracy and backend == "onnxruntime"]
    assert len(table) == len(logged) == 4  # one row per network and image set; none for the random-weight run
    assert set(table["label"]) == {"cpu/onnxruntime"} and set(table["precision"]) == {"int8"}
    columns = {"images": names.ACCURACY_SAMPLES, "top-1 (%)": names.ACCURACY_TOP1,
               "top-1 95% low": names.ACCURACY_TOP1_CI95_LOW, "top-1 95% high": names.ACCURACY_TOP1_CI95_HIGH,
               "top-5 (%)": names.ACCURACY_TOP5, "reference top-1 (%)": names.ACCURACY_REFERENCE_TOP1,
               "Δ top-1 (pp)": names.ACCURACY_TOP1_DELTA, "Δ 95% low": names.ACCURACY_TOP1_DELTA_CI95_LOW,
               "Δ 95% high": names.ACCURACY_TOP1_DELTA_CI95_HIGH, "McNemar p": names.ACCURACY_TOP1_DELTA_P,
               "agreement (%)": names.ACCURACY_TOP1_AGREEMENT}
    rows = table.set_index(["model", "dataset id"])
    for model, (metrics, tags) in logged:
        row = rows.loc[(model, tags[names.ACCURACY_DATASET_ID_TAG])]
        assert row["dataset"] == tags[names.ACCURACY_DATASET_TAG]
        assert {column: row[column] for column in columns} == pytest.approx(
            {column: metrics[metric] for column, metric in columns.items()}), model
    page = html.unescape((folder / "report.html").read_text())
    assert "Accuracy through each backend" in page and "href='#accuracy'" in page
    for method in ("95 % Wilson score interval", "torch eager FP32 on the CPU, same model, same images",
                   "paired image by image", "paired Bonett-Price adjusted Wald interval", "McNemar's exact p"):
        assert method in page, method


def test_a_report_without_measured_accuracy_claims_none(store):
    """Only the torch runs: the one accuracy logged there is a random-weight run's, so nothing is measured."""
    proc = report(store, "torch_only", "--backend", "torch")
    folder = store / "torch_only"
    assert "4 points" in proc.stdout and not (folder / "accuracy.csv").exists()
    fig3 = csv(folder, "fig3_accuracy_vs_speed")
    assert (fig3["top1_source"] == "published").all()
    assert fig3.set_index("model")["top1_pct"].to_dict() == PUBLISHED
    assert csv(folder, "pareto_front").set_index("label")["Pareto front (fastest first)"].to_dict() == {
        "cpu/torch": FRONTS["cpu/torch"]}
    page = html.unescape((folder / "report.html").read_text())
    assert "Accuracy through each backend" not in page and "filled markers" not in page
    assert "measured through" not in page and "published ImageNet" in page
    assert not {names.ACCURACY_DATASET_TAG, "accuracy_dataset"} & set(csv(folder, "points").columns)


def test_median_points_keep_one_runs_accuracy_and_figure3_marks_it(store):
    """--aggregate median folds net_a's two onnxruntime runs: speed is their median, accuracy the measured run's;
    measured points are drawn filled with an error bar, published ones hollow."""
    from embench.report import figures
    from embench.report.load import Filters, load

    sel = load(f"sqlite:///{store / 'mlflow.db'}", "e", Filters(backends=["onnxruntime"]), "median")
    net_a = sel.points.set_index("model").loc["net_a"]
    assert net_a["throughput_ips"] == 1050.0 and net_a[names.ACCURACY_TOP1] == 75.0 and net_a["runs"] == 2
    assert sel.points.set_index("model").loc["net_b", names.ACCURACY_SAMPLES] == 1797  # not a median over sets
    figure = figures.accuracy_vs_speed(sel)
    [ax] = [ax for ax in figure.fig.axes if ax.get_title() == "cpu/onnxruntime"]
    from matplotlib.collections import LineCollection, PathCollection

    drawn = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]
    filled = [y for c in drawn if c.get_facecolors().any() for _, y in c.get_offsets()]
    hollow = [y for c in drawn if not c.get_facecolors().any() for _, y in c.get_offsets()]
    assert (sorted(filled), hollow) == ([60.0, 75.0, 95.0], [80.0])
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    ends = sorted(y for segment in bars[0].get_segments() for _, y in segment)  # each bar: its 95 % interval
    assert ends == pytest.approx([57.9, 61.9, 72.9, 76.9, 92.9, 96.9])

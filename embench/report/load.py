"""MLflow runs -> pandas: one query, data runs only, filters applied, duplicate runs folded."""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from embench.profiling import CATEGORIES

DEFAULT_URI = "sqlite:///mlflow.db"  # embench's own default store, in the current directory
REPORT_TAG = "embench.report"  # set on the runs a report logs on its own; never read as data
PARENT_TAG = "mlflow.parentRunId"
SWEEP_DIR_TAG = "embench.sweep_dir"
AGGREGATES = ("latest", "median")
POINT = ["label", "model", "batch"]  # one measured point (label = platform/backend and the settings that differ)
CATEGORY_ORDER = CATEGORIES  # Figure 4's stacking order: the paper's layer categories, then framework and other
# run params that set up a measurement: runs that differ in one are different points (see _labels)...
SETTINGS = ("platform.", "backend.", "protocol.", "scenario.", "seed")
# ...but not these: names the label has already, the platform's descriptive specs, and settings that change
# no measurement (strict only allows a fallback, which the label names; unstable_cv only sets a tag)
NOT_SETTINGS = ("platform.name", "backend.name", "protocol.name", "scenario.name", "platform.specs.",
                "platform.strict", "protocol.unstable_cv")
# the server scenario's settings that choose the offered rate: runs that differ only in these lie on one load curve
LOAD_AXIS = ("scenario.target_qps", "scenario.find_max_qps", "scenario.search_runs")
MISSING = "?"  # a setting's value in a run that did not log it (an older run)
# scenarios by what their runs measured (a run logged before scenarios existed ran single stream):
TIMED = ("single_stream",)  # calls timed one at a time: a latency per call
SUSTAINED = ("single_stream", "offline")  # inferences/s the device kept up, not a server's offered rate
# settings that older runs did not log but always had: their value then, never MISSING
IMPLIED = {"protocol.headline": "median"}
OLD_PRECISIONS = {"f32": "fp32", "f16": "fp16"}  # OpenVINO's own names, logged before one vocabulary
OLD_KEYS = {"backend.runtime.dtype": "backend.runtime.precision"}  # torch's key before one vocabulary
_MLFLOW_STATUS = {"FINISHED": "ok", "FAILED": "failed", "KILLED": "killed", "RUNNING": "running", "SCHEDULED": "running"}

# tidy column <- first present of these MLflow columns
_FIELDS = {
    "model": ["params.model"],
    "platform": ["params.platform"],
    "backend": ["params.backend"],
    "protocol": ["params.protocol"],
    "protocol_mode": ["params.protocol.mode"],
    "protocol_headline": ["params.protocol.headline"],  # median or min; runs logged before it: median
    "scenario": ["params.scenario.name"],
    "batch": ["params.batch"],
    "year": ["params.model.year"],
    "input_size": ["params.model.input_size"],
    "top1": ["params.model.accuracy.top1"],
    "top5": ["params.model.accuracy.top5"],
    "accuracy_source": ["params.model.accuracy.source"],
    "paper_macs_m": ["params.model.paper.flops_m"],  # the paper's "FLOPs (M)": multiply-accumulates
    "paper_params_m": ["params.model.paper.params_m"],
    "paper_top1": ["params.model.paper.top1"],
    "paper_top5": ["params.model.paper.top5"],
    "profile_iterations": ["params.protocol.profile_iterations"],
    "platform_device": ["params.platform.device"],
    "tdp_w": ["params.platform.specs.tdp_w"],
    "peak_gflops": ["metrics.peak_gflops"],
    "published_fp32_gflops": ["params.platform.specs.peak_fp32_gflops"],
    "precision": ["tags.backend.precision"],
    "tag_status": ["tags.status"],
    "error": ["tags.error"],
    "unstable": ["tags.unstable"],
    "host_busy": ["tags.host_busy"],
    "device_type": ["tags.device.type"],
    "device_name": ["tags.device.name"],
    "device_fallback": ["tags.device.fallback"],
    "host_name": ["tags.host.name"],
    "cpu_model": ["tags.host.cpu_model"],
    "cpu_physical_cores": ["tags.host.cpu_physical_cores"],
    "cpu_logical_cores": ["tags.host.cpu_logical_cores"],
    "memory_gb": ["tags.host.memory_gb"],
    "threads": ["tags.threads"],
    "torch_version": ["tags.version.torch"],
    "git_commit": ["tags.embench.git_commit"],
    "parent_run_id": [f"tags.{PARENT_TAG}"],
    "run_name": ["tags.mlflow.runName"],
}
# metrics the report reads; a run that lacks one (a failed run, another backend, the other protocol mode:
# latency_* are logged in latency mode, batch_time_ms and enqueue_interval_cv in throughput mode) gets NaN
EXPECTED_METRICS = ("latency_median_ms", "latency_min_ms", "latency_p90_ms", "latency_p99_ms", "latency_cv",
                    "batch_time_ms", "enqueue_interval_cv", "throughput_ips", "flops", "macs", "params",
                    "achieved_gflops", "host_other_cpu_cores", "profile_total_ms", "profile_wall_ms", "profile_coverage")
_NUMERIC = ("batch", "year", "input_size", "top1", "top5", "paper_macs_m", "paper_params_m", "paper_top1",
            "paper_top5", "profile_iterations", "tdp_w", "peak_gflops", "published_fp32_gflops")


class ReportError(Exception):
    """A problem reported in one line; exit_code 2 for bad input, 3 for an unreachable MLflow."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Filters:
    models: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [f"{name}={','.join(map(str, values))}" for name, values in (
            ("model", self.models), ("platform", self.platforms), ("backend", self.backends),
            ("protocol", self.protocols), ("batch", self.batches)) if values]
        parts += [f"tag {key}={value}" for key, value in self.tags.items()]
        return "; ".join(parts) or "none (every run of the experiment)"


@dataclass
class Selection:
    """What a report is built from."""

    uri: str
    experiment: str
    experiment_id: str
    runs: pd.DataFrame  # every selected data run, failed ones included, one row per MLflow run; load_label is
    # its label less LOAD_AXIS (one server-scenario load curve)
    points: pd.DataFrame  # the successful runs, one row per (label, model, batch)
    parents: pd.DataFrame  # the sweep parent runs the selected runs belong to
    metrics: list[str]  # the metric columns of runs and points
    aggregate: str
    folded: int  # successful runs folded into another of the same point
    filters: Filters
    skipped: dict[str, int]  # runs of the experiment that are not data, by reason

    @property
    def categories(self) -> list[str]:
        present = [c[len("profile_pct_"):] for c in self.metrics if c.startswith("profile_pct_")]
        return [c for c in CATEGORY_ORDER if c in present] + sorted(set(present) - set(CATEGORY_ORDER))


def tracking_uri(given: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else embench's default ./mlflow.db."""
    return given or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def _local_store(uri: str) -> Path | None:
    """The file or folder behind a local URI (sqlite, file:, a plain path); None for a server."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if "://" not in uri and not uri.startswith(("databricks", "uc:")):
        return Path(uri)
    return None


def _short(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 240 else text[:237] + "..."


def connect(uri: str):
    """An MlflowClient for uri; never creates a store that is not there."""
    store = _local_store(uri)
    if store is not None and not store.exists():
        raise ReportError(f"no MLflow store at {uri} ({store.resolve()} does not exist); "
                          "pass --tracking-uri or set MLFLOW_TRACKING_URI", 2)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # a down server fails in seconds
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    import mlflow
    from mlflow import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        mlflow.set_tracking_uri(uri)
        return MlflowClient(tracking_uri=uri)
    except Exception as err:  # an unsupported scheme, a malformed sqlite URI, ...
        raise ReportError(f"--tracking-uri {uri!r} is not a store MLflow can use: {_short(err)}", 2) from err


def find_experiment(client, uri: str, name: str):
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment
        names = sorted(e.name for e in client.search_experiments())
    except Exception as err:  # connection refused, bad URI, REST or SQL errors: MLflow raises many kinds
        raise ReportError(f"could not reach MLflow at {uri}: {_short(err)}", 3) from err
    raise ReportError(f"no experiment {name!r} in {uri}; experiments there: {', '.join(names) or 'none'}", 2)


def search(client, uri: str, experiment) -> pd.DataFrame:
    """Every active run of the experiment, one row each (MLflow's own pandas frame)."""
    import mlflow

    try:
        return mlflow.search_runs(experiment_ids=[experiment.experiment_id], output_format="pandas", max_results=1_000_000)
    except Exception as err:
        raise ReportError(f"could not read the runs of experiment {experiment.name!r} at {uri}: {_short(err)}", 3) from err


def _column(raw: pd.DataFrame, names: list[str]) -> pd.Series:
    out = pd.Series(pd.NA, index=raw.index, dtype="object")
    for name in names:
        if name in raw:
            out = out.where(out.notna(), raw[name])
    return out


def _flag(series: pd.Series) -> pd.Series:
    return series.astype("string").str.lower().eq("true").fillna(False).astype(bool)


def tidy(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """MLflow's columns -> the report's: one row per run, metrics under their own names."""
    runs = pd.DataFrame({"run_id": raw["run_id"], "mlflow_status": raw["status"], "start_time": raw["start_time"]})
    for name, sources in _FIELDS.items():
        runs[name] = _column(raw, sources)
    for name in _NUMERIC:
        runs[name] = pd.to_numeric(runs[name], errors="coerce")
    runs["batch"] = runs["batch"].astype("Int64")
    runs["status"] = runs["tag_status"].where(runs["tag_status"].notna(), runs["mlflow_status"].map(_MLFLOW_STATUS))
    runs["status"] = runs["status"].fillna("unknown").astype(str)
    runs["protocol_headline"] = runs["protocol_headline"].fillna(IMPLIED["protocol.headline"])
    runs["precision"] = runs["precision"].replace(OLD_PRECISIONS)
    fp32 = runs["precision"].fillna("fp32").eq("fp32")  # a published peak is an FP32 rate: never an INT8 run's
    runs["peak_gflops"] = runs["peak_gflops"].fillna(runs["published_fp32_gflops"].where(fp32))
    runs = runs.drop(columns="published_fp32_gflops")
    runs["unstable"] = _flag(runs["unstable"])
    runs["host_busy"] = _flag(runs["host_busy"])
    metric_names = sorted({c[len("metrics."):] for c in raw.columns if c.startswith("metrics.")} | set(EXPECTED_METRICS))
    metrics = raw.reindex(columns=[f"metrics.{m}" for m in metric_names]).set_axis(metric_names, axis=1)
    metrics = metrics.drop(columns=[m for m in metric_names if m in runs])  # peak_gflops is read above
    metrics["time_per_call_ms"] = time_per_call(runs, metrics)
    colocated = raw.filter(regex=r"^tags\.colocated\.").rename(columns=lambda c: c[len("tags."):])  # threads per network
    runs = pd.concat([runs.drop(columns="tag_status"), metrics, colocated], axis=1).copy()  # one block per dtype
    return runs, list(metrics.columns)


def in_scenarios(runs: pd.DataFrame, scenarios: tuple[str, ...]) -> pd.Series:
    """True for the runs of these scenarios; a run that logged no scenario ran single stream."""
    return runs["scenario"].fillna("single_stream").isin(scenarios)


def time_per_call(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.Series:
    """The time of one call: where calls were timed one by one, the protocol's headline latency (the median;
    the minimum, latency_min_ms, for protocol.headline=min, the paper's protocol); in throughput mode, or
    with several requests in flight, which time no single call, the wall time per batch (batch_time_ms;
    batch ÷ inferences/s for runs that predate it). NaN under the server, multi-stream and offline
    scenarios: their queries queue or overlap, and their rate is not one call's time."""
    per_batch = metrics["batch_time_ms"].fillna(1e3 * runs["batch"].astype(float) / metrics["throughput_ips"])
    latency = metrics["latency_min_ms"].where(runs["protocol_headline"].eq("min"), metrics["latency_median_ms"])
    one_by_one = runs["protocol_mode"].ne("throughput") & latency.notna()
    return latency.where(one_by_one, per_batch).where(in_scenarios(runs, TIMED))


MEDIAN = "median of the timed iterations' latency per call"
MINIMUM = "minimum of the timed iterations' latency per call (the paper's protocol)"


def time_statistic(points: pd.DataFrame) -> tuple[str, str]:
    """What time_per_call_ms holds for these points: a few words for an axis, a phrase for a caption.
    Points without a protocol_headline column are read as median ones."""
    modes = set(points["protocol_mode"].dropna())
    if modes == {"throughput"}:
        return "wall time per batch", "wall time per batch: the timed loop's wall time ÷ its batches, run back to back"
    called = points[points["protocol_mode"].ne("throughput")]
    headlines = set(called["protocol_headline"].fillna("median")) if "protocol_headline" in points else set()
    if headlines == {"min"}:
        axis, latency = "minimum latency per call", MINIMUM
    elif "min" in headlines:
        axis, latency = "latency per call", (f"{MEDIAN}, or their minimum for the runs with protocol.headline=min "
                                             "(the paper's protocol)")
    else:
        axis, latency = "median latency per call", MEDIAN
    if "throughput" in modes:
        return "time per call", (f"{latency}; for throughput-protocol runs, "
                                 "wall time per batch (the timed loop's wall time ÷ its batches)")
    return axis, latency


def settings(raw: pd.DataFrame) -> pd.DataFrame:
    """The runs' measurement settings (params under SETTINGS, less NOT_SETTINGS) as text; MISSING where unlogged."""
    keys = [c[len("params."):] for c in raw.columns if c.startswith("params.")]
    keys = sorted(k for k in keys if k.startswith(SETTINGS) and not k.startswith(NOT_SETTINGS))  # labels in one order
    values = pd.DataFrame(index=raw.index)
    for key in keys:  # runs logged under an old key or value join the new ones
        value = raw[f"params.{key}"].replace(OLD_PRECISIONS) if key.endswith("precision") or key in OLD_KEYS else raw[f"params.{key}"]
        new = OLD_KEYS.get(key, key)
        values[new] = value if new not in values else values[new].fillna(value)
    return values.fillna({k: IMPLIED.get(k, MISSING) for k in values}).astype(str)[sorted(values)]


def _labels(runs: pd.DataFrame, raw: pd.DataFrame, ignore: tuple[str, ...] = ()) -> pd.Series:
    """platform/backend, told apart further only where the selection needs it.

    A platform that fell back to another device says so; with several protocols (or scenarios) the
    protocol (scenario) is added; a platform name that several devices share (e.g. `cpu` on two hosts)
    gets the device. Then every setting but `ignore` that differs between runs of one such label is
    added, e.g. `precision=bf16` (named in full, `protocol.mode=...`, where two settings share a last name).
    """
    label = runs["platform"].astype(str) + "/" + runs["backend"].astype(str)
    fell_back = runs["device_fallback"].notna()
    label = label.where(~fell_back, label + " (ran on " + runs["device_type"].astype(str) + ")")
    if runs["protocol"].nunique() > 1:
        label = label + " · " + runs["protocol"].astype(str)
    if runs["scenario"].nunique() > 1:
        label = label + " · " + runs["scenario"].fillna(MISSING).astype(str)
    devices = runs.groupby("platform")["device_name"].transform("nunique")
    label = label.where(devices <= 1, label + " @ " + runs["device_name"].astype(str))
    values = settings(raw.loc[runs.index]).drop(columns=list(ignore), errors="ignore")
    differ = {}  # per label, the settings that differ between its runs
    for base, group in values.groupby(label):
        differ[base] = [k for k in group if group[k].nunique() > 1]
    short = {k: k.rsplit(".", 1)[-1] for keys in differ.values() for k in keys}
    names = {k: name if list(short.values()).count(name) == 1 else k for k, name in short.items()}
    out = label.copy()
    for base, keys in differ.items():
        for key in keys:
            out[label == base] += " " + names[key] + "=" + values[key]
    return out


def _apply(runs: pd.DataFrame, raw: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    keep = pd.Series(True, index=runs.index)
    for column, values in (("model", filters.models), ("platform", filters.platforms),
                           ("backend", filters.backends), ("protocol", filters.protocols)):
        if values:
            keep &= runs[column].isin(values)
    if filters.batches:
        keep &= runs["batch"].isin(filters.batches).fillna(False).astype(bool)
    for key, value in filters.tags.items():
        column = f"tags.{key}"
        keep &= raw[column].eq(value).fillna(False).astype(bool) if column in raw else False
    return runs[keep]


def _available(runs: pd.DataFrame) -> str:
    def values(column):
        return ", ".join(map(str, sorted(runs[column].dropna().unique()))) or "none"

    return (f"models: {values('model')}; platforms: {values('platform')}; backends: {values('backend')}; "
            f"batches: {values('batch')}")


def aggregate(runs: pd.DataFrame, metrics: list[str], how: str) -> tuple[pd.DataFrame, int]:
    """One row per point from its successful runs: the latest run, or the median of each metric."""
    ok = runs[runs["status"].eq("ok") & runs["batch"].notna()].sort_values("start_time")
    if ok.empty:
        return ok.assign(runs=pd.Series(dtype="int64")), 0
    groups = ok.groupby(POINT, sort=True)
    points = groups.tail(1).set_index(POINT).sort_index()
    points["runs"] = groups.size()
    if how == "median":
        points[metrics] = groups[metrics].median()
        points["unstable"] = groups["unstable"].any()
        points["host_busy"] = groups["host_busy"].any()
    return points.reset_index(), len(ok) - len(points)


def load(uri: str, experiment_name: str, filters: Filters, how: str = "latest") -> Selection:
    """Reads, filters and folds the runs; raises ReportError when there is nothing to report."""
    client = connect(uri)
    experiment = find_experiment(client, uri, experiment_name)
    raw = search(client, uri, experiment)
    where = f"experiment {experiment_name!r} at {uri}"
    if raw.empty:
        raise ReportError(f"{where} has no runs; make some with e.g. `python -m embench -m experiment=quickstart`", 2)
    runs, metrics = tidy(raw)
    is_report = _flag(_column(raw, [f"tags.{REPORT_TAG}"]))
    is_data = runs["model"].notna() & ~is_report
    skipped = {"report runs": int(is_report.sum()), "sweep parent runs": int((runs["model"].isna() & ~is_report).sum())}
    parents_all = pd.DataFrame({
        "run_id": raw["run_id"], "run_name": _column(raw, ["tags.mlflow.runName"]),
        "sweep_dir": _column(raw, [f"tags.{SWEEP_DIR_TAG}"]), "status": raw["status"], "start_time": raw["start_time"],
    })[runs["model"].isna() & ~is_report]
    data = runs[is_data]
    if data.empty:
        raise ReportError(f"{where} has {len(raw)} runs but none is a measurement (no `model` param)", 2)
    selected = _apply(data, raw.loc[data.index], filters)
    if selected.empty:
        raise ReportError(f"no run of {where} matches the filters ({filters.describe()}); "
                          f"it has {_available(data)}", 2)
    selected = selected.assign(label=_labels(selected, raw), load_label=_labels(selected, raw, LOAD_AXIS))
    selected = selected.sort_values("start_time").reset_index(drop=True)
    points, folded = aggregate(selected, metrics, how)
    parents = parents_all[parents_all["run_id"].isin(selected["parent_run_id"].dropna())].reset_index(drop=True)
    return Selection(uri=uri, experiment=experiment_name, experiment_id=experiment.experiment_id, runs=selected,
                     points=points, parents=parents, metrics=metrics, aggregate=how, folded=folded,
                     filters=filters, skipped=skipped)

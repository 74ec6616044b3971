"""The runs of an MLflow experiment as the report sees them: one tidy row per run, labelled, filtered and
folded into points; older runs' names mapped to today's."""

import re
from dataclasses import dataclass, field

import pandas as pd

from embench import names
from embench.profiling import CATEGORIES
from embench.sweep.summary import RUNTIME_VERSION_TAGS, version_differences

AGGREGATES = ("latest", "median")
POINT = ["label", "model", "batch"]  # one measured point (label = platform/backend and the settings that differ)
CATEGORY_ORDER = CATEGORIES  # Figure 4's stacking order: the paper's layer categories, then framework and other
# run params that set up a measurement: runs that differ in one are different points (see _labels)...
SETTINGS = ("platform.", "backend.", "protocol.", "scenario.", "seed")
# ...but not these: names the label has already, the platform's descriptive specs, and settings that change
# no measurement (strict only allows a fallback, which the label names; unstable_cv only sets a tag)
NOT_SETTINGS = ("platform.name", "backend.name", "protocol.name", names.SCENARIO_PARAM, "platform.specs.",
                "platform.strict", "protocol.unstable_cv")
# the server scenario's settings that choose the offered rate: runs that differ only in these lie on one load curve
LOAD_AXIS = (names.TARGET_QPS_PARAM, names.FIND_MAX_QPS_PARAM, "scenario.search_runs")
MISSING = "?"  # a setting's value in a run that did not log it (an older run)
# scenarios by what their runs measured (a run logged before scenarios existed ran single stream):
TIMED = ("single_stream",)  # calls timed one at a time: a latency per call
SUSTAINED = ("single_stream", "offline")  # inferences/s the device kept up, not a server's offered rate
# settings that older runs did not log but always had: their value then, never MISSING
IMPLIED = {names.PROTOCOL_HEADLINE_PARAM: "median"}
OLD_PRECISIONS = {"f32": "fp32", "f16": "fp16"}  # OpenVINO's own names, logged before one vocabulary
OLD_KEYS = {"backend.runtime.dtype": names.RUNTIME_PRECISION_PARAM}  # torch's key before one vocabulary
# runtime version tags as runs logged them before one scheme (gpu.driver: also logged now)
OLD_VERSION_TAGS = {"version.onnxruntime": "onnxruntime.version", "version.executorch": "executorch.version",
                    "version.tensorrt": "tensorrt.version", "version.nvidia_driver": "gpu.driver"}
_MLFLOW_STATUS = {"FINISHED": "ok", "FAILED": "failed", "KILLED": "killed", "RUNNING": "running", "SCHEDULED": "running"}


def _param(key: str) -> str:
    return f"params.{key}"


def _tag(key: str) -> str:
    return f"tags.{key}"


# tidy column <- first present of these MLflow columns (model, year and the like are config keys, see conf/)
_FIELDS = {
    "model": [_param(names.MODEL_PARAM)],
    "platform": [_param(names.PLATFORM_PARAM)],
    "backend": [_param(names.BACKEND_PARAM)],
    "protocol": [_param(names.PROTOCOL_PARAM)],
    "protocol_mode": [_param(names.PROTOCOL_MODE_PARAM)],
    "protocol_headline": [_param(names.PROTOCOL_HEADLINE_PARAM)],  # median or min; runs logged before it: median
    "scenario": [_param(names.SCENARIO_PARAM)],
    "batch": [_param(names.BATCH_PARAM)],
    "year": ["params.model.year"],
    "input_size": ["params.model.input_size"],
    "top1": ["params.model.accuracy.top1"],
    "top5": ["params.model.accuracy.top5"],
    "accuracy_source": ["params.model.accuracy.source"],
    "paper_macs_m": ["params.model.paper.flops_m"],  # the paper's "FLOPs (M)": multiply-accumulates
    "paper_params_m": ["params.model.paper.params_m"],
    "paper_top1": ["params.model.paper.top1"],
    "paper_top5": ["params.model.paper.top5"],
    "pretrained": ["params.model.pretrained"],  # True: trained weights, the only ones whose accuracy is measured
    "accuracy_dataset": [_tag(names.ACCURACY_DATASET_TAG)],  # the labelled image folder accuracy was measured on
    "accuracy_dataset_id": [_tag(names.ACCURACY_DATASET_ID_TAG)],  # its images, limit, order and class map
    "profile_iterations": ["params.protocol.profile_iterations"],
    "platform_device": ["params.platform.device"],
    "tdp_w": ["params.platform.specs.tdp_w"],
    "peak_gflops": [f"metrics.{names.PEAK_GFLOPS}"],
    "published_fp32_gflops": ["params.platform.specs.peak_fp32_gflops"],
    "precision": [_tag(names.PRECISION_TAG)],
    "tag_status": [_tag(names.STATUS_TAG)],
    "error": [_tag(names.ERROR_TAG)],
    "unstable": [_tag(names.UNSTABLE_TAG)],
    "host_busy": [_tag(names.HOST_BUSY_TAG)],
    "device_type": [_tag(names.DEVICE_TYPE_TAG)],
    "device_name": [_tag(names.DEVICE_NAME_TAG)],
    "device_fallback": [_tag(names.DEVICE_FALLBACK_TAG)],
    "host_name": [_tag(names.HOST_NAME_TAG)],
    "cpu_model": [_tag(names.CPU_MODEL_TAG)],
    "cpu_physical_cores": [_tag(names.CPU_PHYSICAL_CORES_TAG)],
    "cpu_logical_cores": [_tag(names.CPU_LOGICAL_CORES_TAG)],
    "memory_gb": [_tag(names.MEMORY_GB_TAG)],
    "threads": [_tag(names.THREADS_TAG)],
    "git_commit": [_tag(names.GIT_COMMIT_TAG)],
    "parent_run_id": [_tag(names.PARENT_RUN_TAG)],
    "run_name": [_tag(names.RUN_NAME_TAG)],
}
# metrics the report reads; a run that lacks one (a failed run, another backend, the other protocol mode:
# latency_* are logged in latency mode, batch_time_ms and enqueue_interval_cv in throughput mode) gets NaN
EXPECTED_METRICS = (names.LATENCY_MEDIAN_MS, names.LATENCY_MIN_MS, names.LATENCY_P90_MS, names.LATENCY_P99_MS,
                    names.LATENCY_CV, names.BATCH_TIME_MS, names.ENQUEUE_INTERVAL_CV, names.THROUGHPUT_IPS, names.FLOPS,
                    names.MACS, names.PARAMS, names.ACHIEVED_GFLOPS, names.HOST_OTHER_CPU_CORES, names.PROFILE_TOTAL_MS,
                    names.PROFILE_WALL_MS, names.PROFILE_COVERAGE)
# top-1 measured through the backend that was timed (embench.accuracy), and what it was measured on
ACCURACY_METRICS = (names.ACCURACY_TOP1, names.ACCURACY_TOP5, names.ACCURACY_SAMPLES, names.ACCURACY_TOP1_CI95_LOW,
                    names.ACCURACY_TOP1_CI95_HIGH, names.ACCURACY_REFERENCE_TOP1, names.ACCURACY_TOP1_DELTA,
                    names.ACCURACY_TOP1_DELTA_CI95_LOW, names.ACCURACY_TOP1_DELTA_CI95_HIGH,
                    names.ACCURACY_TOP1_DELTA_P, names.ACCURACY_TOP1_AGREEMENT)
ACCURACY_DATASET = ("accuracy_dataset", "accuracy_dataset_id")
_NUMERIC = ("batch", "year", "input_size", "top1", "top5", "paper_macs_m", "paper_params_m", "paper_top1",
            "paper_top5", "profile_iterations", "tdp_w", "peak_gflops", "published_fp32_gflops")


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
    def versions(self) -> list[str]:
        """The runtime version columns (tags version.<runtime>) that some selected run has."""
        return [tag for tag in RUNTIME_VERSION_TAGS if tag in self.runs and self.runs[tag].notna().any()]

    @property
    def categories(self) -> list[str]:
        present = [c[len(names.PROFILE_PCT):] for c in self.metrics if c.startswith(names.PROFILE_PCT)]
        return [c for c in CATEGORY_ORDER if c in present] + sorted(set(present) - set(CATEGORY_ORDER))


def _column(raw: pd.DataFrame, columns: list[str]) -> pd.Series:
    out = pd.Series(pd.NA, index=raw.index, dtype="object")
    for column in columns:
        if column in raw:
            out = out.where(out.notna(), raw[column])
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
    runs["protocol_headline"] = runs["protocol_headline"].fillna(IMPLIED[names.PROTOCOL_HEADLINE_PARAM])
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
    untrained = ~_flag(runs["pretrained"])  # random weights have no accuracy to claim, whatever a run logged
    runs["accuracy_ignored"] = untrained & measured(metrics)
    metrics.loc[untrained, [m for m in ACCURACY_METRICS if m in metrics]] = float("nan")
    runs.loc[untrained, list(ACCURACY_DATASET)] = pd.NA
    colocated = raw.filter(regex="^" + re.escape(_tag(names.COLOCATED)))  # threads per network
    colocated = colocated.rename(columns=lambda c: c[len("tags."):])
    versions = pd.DataFrame({tag: _column(raw, [_tag(t) for t in (tag, OLD_VERSION_TAGS.get(tag)) if t])
                             for tag in RUNTIME_VERSION_TAGS}, index=raw.index).dropna(axis=1, how="all")
    runs = pd.concat([runs.drop(columns="tag_status"), metrics, colocated, versions], axis=1).copy()  # one block a dtype
    return runs, list(metrics.columns)


def measured(frame: pd.DataFrame) -> pd.Series:
    """True for the runs or points with a measured top-1 (never a random-weight run's: tidy drops those)."""
    if names.ACCURACY_TOP1 not in frame:
        return pd.Series(False, index=frame.index)
    return frame[names.ACCURACY_TOP1].notna()


def in_scenarios(runs: pd.DataFrame, scenarios: tuple[str, ...]) -> pd.Series:
    """True for the runs of these scenarios; a run that logged no scenario ran single stream."""
    return runs["scenario"].fillna("single_stream").isin(scenarios)


def time_per_call(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.Series:
    """The time of one call: where calls were timed one by one, the protocol's headline latency (the median;
    the minimum, latency_min_ms, for protocol.headline=min, the paper's protocol); in throughput mode, or
    with several requests in flight, which time no single call, the wall time per batch (batch_time_ms;
    batch ÷ inferences/s for runs that predate it). NaN under the server, multi-stream and offline
    scenarios: their queries queue or overlap, and their rate is not one call's time."""
    per_batch = metrics[names.BATCH_TIME_MS].fillna(1e3 * runs["batch"].astype(float) / metrics[names.THROUGHPUT_IPS])
    latency = metrics[names.LATENCY_MIN_MS].where(runs["protocol_headline"].eq("min"), metrics[names.LATENCY_MEDIAN_MS])
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
    shown = {k: name if list(short.values()).count(name) == 1 else k for k, name in short.items()}
    out = label.copy()
    for base, keys in differ.items():
        for key in keys:
            out[label == base] += " " + shown[key] + "=" + values[key]
    return out


def apply_filters(runs: pd.DataFrame, raw: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The runs that match every filter."""
    keep = pd.Series(True, index=runs.index)
    for column, values in (("model", filters.models), ("platform", filters.platforms),
                           ("backend", filters.backends), ("protocol", filters.protocols)):
        if values:
            keep &= runs[column].isin(values)
    if filters.batches:
        keep &= runs["batch"].isin(filters.batches).fillna(False).astype(bool)
    for key, value in filters.tags.items():
        column = _tag(key)
        keep &= raw[column].eq(value).fillna(False).astype(bool) if column in raw else False
    return runs[keep]


def available(runs: pd.DataFrame) -> str:
    """What the runs hold, for an error message."""
    def values(column):
        return ", ".join(map(str, sorted(runs[column].dropna().unique()))) or "none"

    return (f"models: {values('model')}; platforms: {values('platform')}; backends: {values('backend')}; "
            f"batches: {values('batch')}")


def sort_out(raw: pd.DataFrame, runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The measurement runs, the sweep parent runs (run_id, run_name, sweep_dir, status, start_time), and how many
    runs of each kind are not data (a report's own runs, the parents)."""
    is_report = _flag(_column(raw, [_tag(names.REPORT_TAG)]))
    is_parent = runs["model"].isna() & ~is_report
    parents = pd.DataFrame({
        "run_id": raw["run_id"], "run_name": _column(raw, [_tag(names.RUN_NAME_TAG)]),
        "sweep_dir": _column(raw, [_tag(names.SWEEP_DIR_TAG)]), "status": raw["status"],
        "start_time": raw["start_time"],
    })[is_parent]
    skipped = {"report runs": int(is_report.sum()), "sweep parent runs": int(is_parent.sum())}
    return runs[runs["model"].notna() & ~is_report], parents, skipped


def label(runs: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """The runs with their label, and their load_label: the label less LOAD_AXIS (one server-scenario load curve)."""
    return runs.assign(label=_labels(runs, raw), load_label=_labels(runs, raw, LOAD_AXIS))


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
        for tag in (tag for tag in RUNTIME_VERSION_TAGS if tag in ok):  # every version the folded runs ran
            points[tag] = groups[tag].agg(lambda values: ", ".join(sorted(values.dropna().unique())) or pd.NA)
    # a point's accuracy is one run's, the latest that measured it: never a median over different image sets
    accuracy = [c for c in (*ACCURACY_METRICS, *ACCURACY_DATASET) if c in ok]
    latest = ok[measured(ok)].groupby(POINT).tail(1).set_index(POINT)
    points[accuracy] = latest[accuracy].reindex(points.index)
    return points.reset_index(), len(ok) - len(points)


def differing_versions(data: pd.DataFrame) -> str:
    """The runtime versions that differ between the points (rows with a label), each value with how many points
    ran it and their labels, e.g. 'version.torch 2.5.1 (3 points: cpu/torch, ...), 2.1.0 (1 point: xavier/torch)';
    empty when they agree."""
    columns = [tag for tag in RUNTIME_VERSION_TAGS if tag in data]
    if not columns or "label" not in data:  # no versions, or a placeholder's note
        return ""
    rows = data[["label", *columns]].iterrows()
    differ = version_differences((row["label"], row.dropna().to_dict()) for _, row in rows)

    def ran(value: str, labels: list[str]) -> str:
        return f"{value} ({len(labels)} point{'s' if len(labels) > 1 else ''}: {', '.join(dict.fromkeys(labels))})"

    return "; ".join(f"{tag} " + ", ".join(ran(value, labels) for value, labels in values.items())
                     for tag, values in differ.items())


def version_note(data: pd.DataFrame) -> str:
    """For a caption or a table's note: the runtime versions that differ between the points drawn or compared
    together; empty when they agree."""
    differ = differing_versions(data)
    return f" Runtime versions differ between these points: {differ}; the CSV has each point's." if differ else ""

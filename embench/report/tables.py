"""The report's tables: Table 1, platforms, best and largest batches, speed-ups, Pareto fronts, co-location,
failures."""

from itertools import combinations

import pandas as pd
from scipy.stats import gmean

from embench import names
from embench.report.selection import SUSTAINED, TIMED, Selection, in_scenarios, measured

ERROR_CHARS = 160
# co-location table column <- colocated.NAME.<key> (the threads tag, then metrics)
COLOCATED = {"threads": "threads",
             "p50 alone (ms)": "alone.query_latency_p50_ms", "p50 together (ms)": "together.query_latency_p50_ms",
             "slowdown p50": "slowdown_p50",
             "p99 alone (ms)": "alone.query_latency_p99_ms", "p99 together (ms)": "together.query_latency_p99_ms",
             "slowdown p99": "slowdown_p99"}


def pareto_front(points: pd.DataFrame, speed: str, accuracy: str) -> pd.Series:
    """True for the points no other point beats on both speed and accuracy (both maximised)."""
    on_front = pd.Series(False, index=points.index)
    best = float("-inf")
    for index, row in points.sort_values([speed, accuracy], ascending=False).iterrows():
        if row[accuracy] > best:  # faster points seen so far are all less accurate
            on_front[index] = True
            best = row[accuracy]
    return on_front


def sustained(sel: Selection) -> pd.DataFrame:
    """The points with inferences/s the device kept up: single stream and offline, not a server's offered rate
    nor multi-stream's back-to-back queries."""
    points = sel.points.dropna(subset=[names.THROUGHPUT_IPS])
    return points[in_scenarios(points, SUSTAINED)]


def profiled_points(sel: Selection) -> pd.DataFrame:
    """Per platform and model, the profiled point at batch 1, else at the smallest profiled batch; only points
    with a time per call (single stream), which the profile's coverage is measured against."""
    pct = [f"profile_pct_{c}" for c in sel.categories]
    if not pct:
        return pd.DataFrame()
    pts = sel.points[in_scenarios(sel.points, TIMED)].dropna(subset=pct, how="all").sort_values("batch")
    pts = pts.groupby(["label", "model"]).head(1)
    columns = ["label", "model", "batch", "protocol_mode", "protocol_headline", *pct, names.PROFILE_TOTAL_MS,
               names.PROFILE_WALL_MS, "time_per_call_ms", names.PROFILE_COVERAGE, "runs", *sel.versions]
    pts = pts.reindex(columns=columns)
    return pts.rename(columns={c: "pct_" + c[len("profile_pct_"):] for c in pct}).sort_values(["label", "model"])


def table1(sel: Selection) -> pd.DataFrame:
    """The paper's Table 1 from the measurements: computed complexity next to the published figures."""
    runs = sel.runs.dropna(subset=[names.MACS]).sort_values("start_time").groupby("model").tail(1)
    table = pd.DataFrame({
        "model": runs["model"],
        "year": runs["year"].astype("Int64"),
        "input": runs["input_size"].astype("Int64"),
        "MACs (M)": runs[names.MACS] / 1e6,
        "FLOPs (M)": runs[names.FLOPS] / 1e6,
        "paper FLOPs (M) [MACs]": runs["paper_macs_m"],
        "MACs / paper": runs[names.MACS] / 1e6 / runs["paper_macs_m"],
        "params (M)": runs[names.PARAMS] / 1e6,
        "paper params (M)": runs["paper_params_m"],
        "params / paper": runs[names.PARAMS] / 1e6 / runs["paper_params_m"],
        "top-1 (%)": runs["top1"],
        "paper top-1": runs["paper_top1"],
        "top-5 (%)": runs["top5"],
        "paper top-5": runs["paper_top5"],
        "accuracy source": runs["accuracy_source"],
    })
    return table.sort_values(["year", "model"]).reset_index(drop=True)


def platforms(sel: Selection) -> pd.DataFrame:
    """The paper's Table 2 for the platforms measured: what each label ran on."""
    runs = sel.runs.sort_values("start_time")
    grouped = runs.groupby("label")
    table = grouped[["platform", "backend", "device_type", "device_name", "cpu_model", "cpu_physical_cores",
                     "cpu_logical_cores", "threads", "memory_gb", "tdp_w", "peak_gflops", "host_name"]].last()
    table["runs"] = grouped.size()
    table["ok"] = grouped["status"].apply(lambda s: int(s.eq("ok").sum()))
    table["embench commits"] = grouped["git_commit"].apply(lambda s: ", ".join(sorted(s.dropna().str[:8].unique())))
    for tag in sel.versions:  # every version a label's runs ran: a label served by several nodes may have two
        table[tag] = grouped[tag].apply(lambda s: ", ".join(sorted(s.dropna().unique())) or None)
    return table.reset_index().dropna(axis=1, how="all")


def best_batch(sel: Selection) -> pd.DataFrame:
    """Per platform and model: the batch with the most inferences/s, and the gain over batch 1."""
    pts = sustained(sel)
    if pts.empty:
        return pd.DataFrame(columns=["label", "model", "best batch", "inferences/s", "at batch 1", "gain"])
    best = pts.loc[pts.groupby(["label", "model"])[names.THROUGHPUT_IPS].idxmax()]
    at_one = pts[pts["batch"] == 1].set_index(["label", "model"])[names.THROUGHPUT_IPS]
    table = best[["label", "model", "batch", names.THROUGHPUT_IPS]].set_index(["label", "model"])
    table["at batch 1"] = at_one
    table["gain"] = table[names.THROUGHPUT_IPS] / table["at batch 1"]
    table = table.rename(columns={"batch": "best batch", names.THROUGHPUT_IPS: "inferences/s"}).reset_index()
    return table.sort_values(["label", "model"]).reset_index(drop=True)


def max_batch(sel: Selection) -> pd.DataFrame:
    """Per platform and model: the largest batch that ran, and the smallest that failed (oom, ...)."""
    runs = sel.runs.dropna(subset=["batch"])
    rows = []
    for (label, model), group in runs.groupby(["label", "model"]):
        ok = group[group["status"] == "ok"]
        failed = group[group["status"] != "ok"].sort_values("batch")
        first_failed = failed.iloc[0] if len(failed) else None
        rows.append({
            "label": label,
            "model": model,
            "batches tried": ", ".join(map(str, sorted(group["batch"].unique()))),
            "largest batch that ran": ok["batch"].max() if len(ok) else pd.NA,
            "smallest failed batch": first_failed["batch"] if first_failed is not None else pd.NA,
            "failure": first_failed["status"] if first_failed is not None else "",
        })
    table = pd.DataFrame(rows, columns=["label", "model", "batches tried", "largest batch that ran",
                                        "smallest failed batch", "failure"])
    return table.astype({"largest batch that ran": "Int64", "smallest failed batch": "Int64"})


def _efficiency(points: pd.DataFrame) -> pd.Series:
    """Inferences per joule: measured where the run has it, else inferences/s over the platform's TDP."""
    per_tdp = points[names.THROUGHPUT_IPS] / points["tdp_w"]
    if names.INFERENCES_PER_JOULE in points:
        return points[names.INFERENCES_PER_JOULE].where(points[names.INFERENCES_PER_JOULE].notna(), per_tdp)
    return per_tdp


def speedups(sel: Selection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Speed-ups between every two platforms/backends over the models and batches both measured.

    detail: one row per (pair, model, batch); summary: per pair and scope (batch 1, every common
    batch, each side's best batch per model) the range and geometric mean, as the paper's
    "7x-50x, 15x on average". In each pair the faster side (by geometric mean) is named first.
    """
    pts = sustained(sel).assign(efficiency=lambda d: _efficiency(d))
    labels = sorted(pts["label"].unique())
    ips = pts.pivot_table(index=["model", "batch"], columns="label", values=names.THROUGHPUT_IPS)
    eff = pts.pivot_table(index=["model", "batch"], columns="label", values="efficiency")
    detail, summary = [], []
    for a, b in combinations(labels, 2):
        common = ips[[a, b]].dropna()
        if common.empty:
            continue
        if gmean(common[b] / common[a]) < 1:
            a, b = b, a
        for (model, batch), row in common.iterrows():
            detail.append({"faster": b, "baseline": a, "model": model, "batch": batch, "faster inferences/s": row[b],
                           "baseline inferences/s": row[a], "speed-up": row[b] / row[a]})
        tops = common.groupby(level="model").max()  # each side's best over the batches both ran
        for scope, frame in (("batch 1", common[common.index.get_level_values("batch") == 1]),
                             ("every common batch", common), ("best batch of each", tops)):
            if frame.empty:
                continue
            ratio = frame[b] / frame[a]
            model_of = ratio.index.get_level_values("model") if isinstance(ratio.index, pd.MultiIndex) else ratio.index
            row = {"faster": b, "baseline": a, "scope": scope, "models": len(set(model_of)), "points": len(ratio),
                   "min ×": ratio.min(), "geomean ×": gmean(ratio), "max ×": ratio.max(),
                   "least gain": model_of[ratio.argmin()], "most gain": model_of[ratio.argmax()]}
            if scope != "best batch of each":
                e = eff.reindex(index=frame.index, columns=[a, b]).dropna()
                if not e.empty:
                    row["efficiency geomean ×"] = gmean(e[b] / e[a])
            summary.append(row)
    detail_cols = ["faster", "baseline", "model", "batch", "faster inferences/s", "baseline inferences/s", "speed-up"]
    summary_cols = ["faster", "baseline", "scope", "models", "points", "min ×", "geomean ×", "max ×", "least gain",
                    "most gain"]
    summary_frame = pd.DataFrame(summary)
    return pd.DataFrame(detail, columns=detail_cols), summary_frame.reindex(
        columns=summary_cols + [c for c in summary_frame.columns if c not in summary_cols])


def pareto_members(fig3_data: pd.DataFrame) -> pd.DataFrame:
    """Per platform/backend, the Pareto-optimal networks of Figure 3, fastest first."""
    if "pareto" not in fig3_data:
        return pd.DataFrame(columns=["label", "Pareto front (fastest first)"])
    front = fig3_data[fig3_data["pareto"]].sort_values(["label", names.THROUGHPUT_IPS], ascending=[True, False])
    return (front.groupby("label")["model"].apply(lambda models: ", ".join(models))
            .rename("Pareto front (fastest first)").reset_index())


# the 95 % intervals embench.accuracy logs: for a measured top-1, and for its paired difference from the reference
TOP1_INTERVAL = "Wilson score interval"
DELTA_INTERVAL = "paired Bonett-Price adjusted Wald interval"
# accuracy table column <- run column (figures in percent and percentage points)
ACCURACY = {"precision": "precision", "dataset": "accuracy_dataset", "dataset id": "accuracy_dataset_id",
            "images": names.ACCURACY_SAMPLES, "top-1 (%)": names.ACCURACY_TOP1,
            "top-1 95% low": names.ACCURACY_TOP1_CI95_LOW, "top-1 95% high": names.ACCURACY_TOP1_CI95_HIGH,
            "top-5 (%)": names.ACCURACY_TOP5, "reference top-1 (%)": names.ACCURACY_REFERENCE_TOP1,
            "Δ top-1 (pp)": names.ACCURACY_TOP1_DELTA, "Δ 95% low": names.ACCURACY_TOP1_DELTA_CI95_LOW,
            "Δ 95% high": names.ACCURACY_TOP1_DELTA_CI95_HIGH, "McNemar p": names.ACCURACY_TOP1_DELTA_P,
            "agreement (%)": names.ACCURACY_TOP1_AGREEMENT}


def accuracy(sel: Selection) -> pd.DataFrame:
    """Per label, network and image set, the measured top-1 and its difference from the FP32 reference: the run at
    the smallest batch that measured it, the latest there. Empty when no run measured accuracy."""
    runs = sel.runs[sel.runs["status"].eq("ok") & sel.runs["batch"].notna() & measured(sel.runs)]
    if runs.empty:
        return pd.DataFrame()
    image_set = runs["accuracy_dataset_id"].fillna(runs["accuracy_dataset"]).fillna("")
    chosen = (runs.assign(image_set=image_set).sort_values(["batch", "start_time"], ascending=[True, False])
              .groupby(["label", "model", "image_set"]).head(1).sort_values(["model", "label", "image_set"]))
    table = chosen.reindex(columns=["label", "model", "batch", *ACCURACY.values(), "run_id", *sel.versions])
    table = table.set_axis(["label", "model", "batch", *ACCURACY, "run_id", *sel.versions], axis=1)
    table["images"] = table["images"].round().astype("Int64")
    return table.reset_index(drop=True)


def colocation(sel: Selection) -> pd.DataFrame:
    """Per co-location run and network: query latency alone and together, and the slowdown (together ÷ alone)."""
    runs = sel.runs[sel.runs["status"].eq("ok")]
    names = sorted({c.split(".")[1] for c in runs if c.startswith("colocated.") and c.endswith(".slowdown_p50")})
    frames = []
    for name in names:
        mine = runs.dropna(subset=[f"colocated.{name}.slowdown_p50"])
        values = mine.reindex(columns=[f"colocated.{name}.{key}" for key in COLOCATED.values()])
        values = values.set_axis(list(COLOCATED), axis=1)
        values["threads"] = pd.to_numeric(values["threads"], errors="coerce").astype("Int64")
        front = pd.DataFrame({"label": mine["label"], "networks": mine["model"], "model": name})
        frames.append(front.join(values).assign(run_id=mine["run_id"]))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames).sort_index(kind="stable").reset_index(drop=True)  # run by run, networks by name


def flagged_runs(sel: Selection) -> pd.DataFrame:
    """Every selected run that failed, was unstable or ran on a busy host, and whether the figures use it."""
    runs = sel.runs
    bad = runs[(runs["status"] != "ok") | runs["unstable"] | runs["host_busy"] | runs["batch"].isna()]
    used = set(sel.points["run_id"]) if sel.aggregate == "latest" else set(runs.loc[runs["status"] == "ok", "run_id"])
    table = pd.DataFrame({
        "start": bad["start_time"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "label": bad["label"],
        "model": bad["model"],
        "batch": bad["batch"],
        "status": bad["status"],
        "unstable": bad["unstable"],
        "host busy": bad["host_busy"],
        "CV": bad[names.LATENCY_CV].fillna(bad[names.ENQUEUE_INTERVAL_CV]),  # throughput mode: of the enqueue intervals
        "other CPU cores": bad[names.HOST_OTHER_CPU_CORES] if names.HOST_OTHER_CPU_CORES in bad else pd.NA,
        "in figures": bad["run_id"].isin(used),
        "error": bad["error"].fillna("").astype(str).str.slice(0, ERROR_CHARS),
        "run_id": bad["run_id"],
    })
    return table.sort_values(["status", "label", "model", "batch"]).reset_index(drop=True)

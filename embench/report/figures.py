"""The paper's Figures 1-4 (plus achieved GFLOP/s, and latency against load for server-scenario runs) from the
points: each a matplotlib figure and its data."""

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure as MplFigure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import LogFormatter, LogLocator, NullFormatter, ScalarFormatter  # noqa: E402

from embench import names  # noqa: E402
from embench.report.selection import (  # noqa: E402
    SUSTAINED,
    TIMED,
    Selection,
    in_scenarios,
    measured,
    time_statistic,
    version_note,
)
from embench.report.tables import TOP1_INTERVAL, pareto_front, profiled_points, sustained  # noqa: E402

PANEL_W, PANEL_H, DPI = 4.6, 3.5, 100
NAME_ALL = 12  # Figure 3 names every network up to this many per panel, else only the Pareto front
_MARKERS = "osD^vP*X<>hp8d"
_UNSTABLE = dict(facecolors="none", edgecolors="red", linewidths=1.2, s=90, zorder=4)
# why a figure leaves out the points of other scenarios: one for time per call, one for inferences/s
NO_CALL_TIME = "their queries queue or overlap, so no call is timed on its own"
NO_RATE = ("a server run's inferences/s is the load LoadGen offered, and multi-stream's measure is its query "
           "latency, not a rate the device kept up")


@dataclass
class Figure:
    """One figure of the report: a file stem, its title and caption, the figure and the data behind it."""

    name: str
    title: str
    caption: str
    fig: MplFigure
    data: pd.DataFrame

    def save(self, out_dir: Path) -> dict[str, Path]:
        paths = {ext: out_dir / f"{self.name}.{ext}" for ext in ("png", "svg", "csv")}
        self.fig.savefig(paths["png"], dpi=DPI)
        self.fig.savefig(paths["svg"])
        self.data.to_csv(paths["csv"], index=False)
        plt.close(self.fig)
        return paths


def model_order(points: pd.DataFrame) -> list[str]:
    """Models as in the paper's Table 1: by year, then by name."""
    years = points.groupby("model")["year"].first().fillna(9999)
    return sorted(years.index, key=lambda model: (years[model], model))


def _styled(sel: Selection, present: pd.Series) -> tuple[list[str], dict[str, dict]]:
    """The models in a figure, in Table 1 order, with styles drawn from every selected model (same in each figure)."""
    order = model_order(sel.runs)
    return [m for m in order if m in set(present)], model_styles(order)


def model_styles(models: list[str]) -> dict[str, dict]:
    """One colour and marker per model, the same in every figure."""
    colours = [c for name in ("tab10", "Dark2", "Set1") for c in plt.get_cmap(name).colors]
    return {m: {"color": colours[i % len(colours)], "marker": _MARKERS[i % len(_MARKERS)]} for i, m in enumerate(models)}


def _panels(labels: list[str], width: float = PANEL_W, height: float = PANEL_H, legend_w: float = 2.2,
            share: bool = True):
    """One panel per platform/backend, three to a row; shared axes, so that platforms compare at a glance."""
    ncols = min(len(labels), 3)
    nrows = -(-len(labels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + legend_w, height * nrows), squeeze=False,
                             layout="constrained", sharex=share, sharey=share)
    flat = list(axes.flat)
    for ax in flat[len(labels):]:
        ax.set_visible(False)
    for ax, label in zip(flat, labels):
        ax.xaxis.set_tick_params(labelbottom=True)  # a panel with none below it keeps its own tick labels
        ax.set_title(label, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    return fig, flat[: len(labels)]


def _per_point(sel: Selection) -> str:
    """How a point's values come from its runs, for the captions."""
    return {"latest": " Each point is the latest successful run of its configuration (label, model, batch).",
            "median": " Each point is the median over the successful runs of its configuration (label, model, "
                      "batch; how many in the CSV's runs column)."}[sel.aggregate]


def left_out(sel: Selection, kept: tuple[str, ...], why: str) -> str:
    """For a caption: the successful points of other scenarios than `kept`, which the figure leaves out, and why."""
    points = sel.points
    out = points[~in_scenarios(points, kept)]
    if out.empty:
        return ""
    counts = out["scenario"].value_counts().sort_index()
    listed = ", ".join(f"{n} {scenario}" for scenario, n in counts.items())
    probes = int(out["parent_run_id"].isin(sel.runs["run_id"]).sum())  # runs nested in a selected run
    searches = int(out["run_id"].isin(sel.runs["parent_run_id"]).sum())
    searched = f" ({searches} max-QPS search run(s) and {probes} of their probes among them)" if probes else ""
    server = "; the server runs are in Figure 6" if "server" in counts else ""
    return f" Left out: {listed} point(s){searched}, as {why}{server}; every point is in points.csv."


def _placeholder(name: str, title: str, reason: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 1.6), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}\n\n{reason}", ha="center", va="center", fontsize=10, wrap=True)
    return Figure(name, title, reason, fig, pd.DataFrame({"note": [reason]}))


def _model_legend(fig, styles: dict, models: list[str], extra: list = ()) -> None:
    handles = [Line2D([], [], color=styles[m]["color"], marker=styles[m]["marker"], lw=1, label=m) for m in models]
    fig.legend(handles=handles + list(extra), loc="outside right upper", fontsize=8, frameon=False)


def _unstable_handle() -> Line2D:
    return Line2D([], [], ls="", marker="o", markersize=9, markerfacecolor="none", markeredgecolor="red",
                  label="unstable or busy host")


class _PlainLog(LogFormatter):
    """matplotlib's choice of which log ticks to label, written plainly: 0.1, 60, 2000."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:g}"


def _log(ax, which: str) -> None:
    """A log axis with plain tick labels (60, not 6×10^1); minor ticks labelled where it spans little."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(_PlainLog())
    axis.set_minor_formatter(_PlainLog(labelOnlyBase=False, minor_thresholds=(1.5, 0.6)))


def _batch_axis(ax, batches) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted({int(b) for b in batches})
    ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=8)
    ax.minorticks_off()


def _curves(ax, panel, models, styles, x: str, y: str, ms: int) -> None:
    """One line per model through its points in batch order, in the model's colour and marker."""
    for model in models:
        curve = panel[panel["model"] == model].sort_values("batch")
        if not curve.empty:
            ax.plot(curve[x], curve[y], lw=1, ms=ms, **styles[model])


def runtime_vs_flops(sel: Selection) -> Figure:
    """Figure 1: time of one call against the FLOPs it computes (FLOPs/inference x batch)."""
    name, title = "fig1_runtime_vs_flops", "Figure 1: runtime against FLOPs"
    pts = sel.points.dropna(subset=[names.FLOPS, "time_per_call_ms"])
    if pts.empty:
        return _placeholder(name, title, "no successful run with FLOPs and a time per call")
    data = pts.assign(gflops_per_call=pts[names.FLOPS] * pts["batch"] / 1e9).reindex(columns=
        ["label", "model", "batch", "protocol_mode", "protocol_headline", names.FLOPS, "gflops_per_call",
         "time_per_call_ms", names.LATENCY_MEDIAN_MS, names.LATENCY_MIN_MS, names.LATENCY_P90_MS, names.LATENCY_CV,
         names.BATCH_TIME_MS,
         "unstable", "host_busy", "runs", *sel.versions])
    axis, statistic = time_statistic(data)
    (models, styles), labels = _styled(sel, data["model"]), sorted(data["label"].unique())
    fig, axes = _panels(labels)
    for ax, label in zip(axes, labels):
        panel = data[data["label"] == label]
        _curves(ax, panel, models, styles, "gflops_per_call", "time_per_call_ms", ms=5)
        flagged = panel[panel["unstable"] | panel["host_busy"]]
        ax.scatter(flagged["gflops_per_call"], flagged["time_per_call_ms"], **_UNSTABLE)
        _log(ax, "x")
        _log(ax, "y")
        ax.set_xlabel("GFLOPs per call (FLOPs/inference × batch)")
        ax.set_ylabel(f"{axis} (ms)")
    _model_legend(fig, styles, models, [_unstable_handle()])
    caption = (f"Time per call ({statistic}; time_per_call_ms in the CSV) against the floating-point operations "
               "the call computes, for every model and batch size (one line per model, batch growing to the "
               "right); log axes. Networks with similar FLOPs can differ widely in time, and batching amortises "
               "until the device is saturated. Red rings: runs tagged unstable (CV above protocol.unstable_cv) or "
               "measured on a busy host." + _per_point(sel) + left_out(sel, TIMED, NO_CALL_TIME) + version_note(data))
    return Figure(name, title, caption, fig, data.sort_values(["label", "model", "batch"]))


def throughput_vs_batch(sel: Selection) -> Figure:
    """Figure 2: inferences/s against batch size, one panel per platform/backend, best batch starred."""
    name, title = "fig2_throughput_vs_batch", "Figure 2: throughput against batch size"
    pts = sustained(sel)
    if pts.empty:
        return _placeholder(name, title, "no successful single-stream or offline run with a throughput")
    data = pts[["label", "model", "batch", names.THROUGHPUT_IPS, "time_per_call_ms", "unstable", "host_busy",
                "runs", *sel.versions]].copy()
    best = data.groupby(["label", "model"])[names.THROUGHPUT_IPS].idxmax()
    data["best_batch"] = data.index.isin(best.values)
    (models, styles), labels = _styled(sel, data["model"]), sorted(data["label"].unique())
    fig, axes = _panels(labels)
    for ax, label in zip(axes, labels):
        panel = data[data["label"] == label]
        _curves(ax, panel, models, styles, "batch", names.THROUGHPUT_IPS, ms=4)
        for model in models:
            top = panel[(panel["model"] == model) & panel["best_batch"]]
            ax.scatter(top["batch"], top[names.THROUGHPUT_IPS], marker="*", s=170, color=styles[model]["color"],
                       edgecolors="black", linewidths=0.8, zorder=5)
        flagged = panel[panel["unstable"] | panel["host_busy"]]
        ax.scatter(flagged["batch"], flagged[names.THROUGHPUT_IPS], **_UNSTABLE)
        _batch_axis(ax, data["batch"])
        _log(ax, "y")
        ax.set_xlabel("batch size")
        ax.set_ylabel("inferences per second")
    star = Line2D([], [], ls="", marker="*", markersize=12, color="grey", markeredgecolor="black", label="best batch")
    _model_legend(fig, styles, models, [star, _unstable_handle()])
    caption = ("Inferences per second (batch × timed iterations ÷ wall time of the timed loop, in either protocol "
               "mode; for offline runs, LoadGen's samples/s × batch) as the batch grows, one panel per "
               "platform/backend; the star marks each curve's best batch "
               "size (table below). Where a curve stops, the next batch failed or was not run (see the largest "
               "batch table)." + _per_point(sel) + left_out(sel, SUSTAINED, NO_RATE) + version_note(data))
    return Figure(name, title, caption, fig, data.sort_values(["label", "model", "batch"]))


MEASURED, PUBLISHED = "measured", "published"  # where a point's top-1 in Figure 3 comes from


def top1(points: pd.DataFrame) -> pd.DataFrame:
    """Each point's top-1 for Figure 3: measured where it has one, else the published one (model config, else the
    paper's), with its source, images, 95 % interval and dataset; the published figure alongside."""
    acc = points.reindex(columns=[names.ACCURACY_TOP1, names.ACCURACY_SAMPLES, names.ACCURACY_TOP1_CI95_LOW,
                                  names.ACCURACY_TOP1_CI95_HIGH, "accuracy_dataset"])
    published = points["top1"].fillna(points["paper_top1"])
    is_measured = measured(points)
    return pd.DataFrame({
        "top1_pct": acc[names.ACCURACY_TOP1].where(is_measured, published),
        "top1_source": pd.Series(MEASURED, index=points.index).where(is_measured, PUBLISHED),
        "top1_samples": acc[names.ACCURACY_SAMPLES].round().astype("Int64"),
        "top1_ci95_low": acc[names.ACCURACY_TOP1_CI95_LOW],
        "top1_ci95_high": acc[names.ACCURACY_TOP1_CI95_HIGH],
        "top1_dataset": acc["accuracy_dataset"],
        "published_top1_pct": published,
    }, index=points.index)


def _images(samples: pd.Series) -> str:
    if samples.isna().all():
        return "images not counted"
    low, high = int(samples.min()), int(samples.max())
    return f"{low:,} images" if low == high else f"{low:,}–{high:,} images"


def _accuracy_caption(sel: Selection, data: pd.DataFrame) -> str:
    """Which points' top-1 was measured (on which images, with which interval) and which is published."""
    mine = data[data["top1_source"].eq(MEASURED)]
    published = int(data["top1_source"].eq(PUBLISHED).sum())
    ignored = int(sel.runs["accuracy_ignored"].sum())
    ignored = (f" {ignored} run(s) with random weights (model.pretrained=false) logged an accuracy, which the "
               "report ignores: random weights have none to claim." if ignored else "")
    if mine.empty:
        return ("Top-1 accuracy: each network's published ImageNet figure (model config), not measured by embench "
                "(which measures it only with model.pretrained=true and accuracy=imagefolder)." + ignored)
    sets = "; ".join(f"{folder} ({_images(group['top1_samples'])}, {len(group)} point(s))" for folder, group in
                     mine.assign(top1_dataset=mine["top1_dataset"].fillna("an unnamed folder")).groupby("top1_dataset"))
    text = (f"Top-1 accuracy: filled markers ({len(mine)} point(s)) were measured through the very backend, "
            f"precision and device that were timed, on the labelled images of {sets}; the vertical bar is the 95 % "
            f"{TOP1_INTERVAL}.")
    if published:
        text += (f" Hollow markers ({published} point(s)) are the network's published ImageNet top-1 (model config), "
                 "not measured by embench.")
    mixed = [label for label, panel in data.groupby("label")
             if panel["top1_source"].nunique() > 1 or panel["top1_dataset"].nunique() > 1]
    if mixed:
        text += (f" The panel(s) {', '.join(mixed)} mix accuracies on different images (measured and published, or "
                 "several folders): their Pareto front compares them as they are.")
    return text + ignored


def accuracy_vs_speed(sel: Selection) -> Figure:
    """Figure 3: top-1 (measured where a point has it, else published) against inferences/s at batch 1, Pareto front
    drawn; size FLOPs, colour params; measured points filled with their 95 % interval, published ones hollow."""
    name, title = "fig3_accuracy_vs_speed", "Figure 3: accuracy against inferences per second (batch 1)"
    pts = sustained(sel)
    pts = pts[pts["batch"] == 1]
    pts = pd.concat([pts, top1(pts)], axis=1).dropna(subset=[names.THROUGHPUT_IPS, "top1_pct", names.MACS,
                                                              names.PARAMS])
    pts = pts[pts[names.MACS] > 0]
    if pts.empty:
        return _placeholder(name, title, "no successful run at batch 1 with a measured or published accuracy")
    pts = pts.assign(params_m=pts[names.PARAMS] / 1e6, gmacs=pts[names.MACS] / 1e9)
    pts["pareto"] = pd.concat([pareto_front(g, names.THROUGHPUT_IPS, "top1_pct") for _, g in pts.groupby("label")])
    data = pts[["label", "model", names.THROUGHPUT_IPS, "time_per_call_ms", "top1_pct", "top1_source", "top1_samples",
                "top1_ci95_low", "top1_ci95_high", "top1_dataset", "published_top1_pct", "gmacs", "params_m", "pareto",
                "unstable", "host_busy", "runs", *sel.versions]]
    labels = sorted(data["label"].unique())
    lo, hi = data["gmacs"].min(), data["gmacs"].max()
    any_measured = data["top1_source"].eq(MEASURED).any()  # else every point is published, drawn filled as ever

    def size(gmacs):  # marker area grows with log FLOPs: 20x apart is still readable
        span = np.log10(hi / lo) if hi > lo else 1.0
        return 25 + 300 * np.log10(np.asarray(gmacs) / lo) / span

    norm = LogNorm(vmin=data["params_m"].min() * 0.9, vmax=data["params_m"].max() * 1.1)
    colours = ScalarMappable(norm=norm, cmap="viridis")
    fig, axes = _panels(labels, legend_w=1.6)
    for ax, label in zip(axes, labels):
        panel = data[data["label"] == label]
        filled = panel[panel["top1_source"].eq(MEASURED) | (not any_measured)]
        hollow = panel.drop(filled.index)
        bars = filled.dropna(subset=["top1_ci95_low", "top1_ci95_high"])
        ax.errorbar(bars[names.THROUGHPUT_IPS], bars["top1_pct"], fmt="none", ecolor="black", elinewidth=0.8,
                    capsize=2, zorder=2.5, yerr=[(bars["top1_pct"] - bars["top1_ci95_low"]).clip(lower=0),
                                                 (bars["top1_ci95_high"] - bars["top1_pct"]).clip(lower=0)])
        ax.scatter(filled[names.THROUGHPUT_IPS], filled["top1_pct"], s=size(filled["gmacs"]), c=filled["params_m"],
                   cmap="viridis", norm=norm, edgecolors="black", linewidths=0.5, alpha=0.85, zorder=3)
        ax.scatter(hollow[names.THROUGHPUT_IPS], hollow["top1_pct"], s=size(hollow["gmacs"]), facecolors="none",
                   edgecolors=colours.to_rgba(hollow["params_m"]), linewidths=1.5, zorder=3)
        front = panel[panel["pareto"]].sort_values(names.THROUGHPUT_IPS)
        ax.plot(front[names.THROUGHPUT_IPS], front["top1_pct"], "--", color="crimson", lw=1.2, zorder=2)
        named = panel if len(panel) <= NAME_ALL else panel[panel["pareto"]]  # else only the front: legible
        for _, row in named.iterrows():
            on = bool(row["pareto"])
            ax.annotate(row["model"], (row[names.THROUGHPUT_IPS], row["top1_pct"]), xytext=(6, 5),
                        textcoords="offset points", fontsize=7, color="crimson" if on else "dimgray",
                        fontweight="bold" if on else "normal")
        _log(ax, "x")
        ax.margins(x=0.15, y=0.12)
        ax.set_xlabel("inferences per second (batch 1)")
        ax.set_ylabel("top-1 accuracy (%)")
    bar = fig.colorbar(colours, ax=axes, label="parameters (M)", shrink=0.8)
    bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    bar.ax.yaxis.set_major_formatter(ScalarFormatter())
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    marks = sorted({float(f"{v:.2g}") for v in (lo, np.sqrt(lo * hi), hi)})
    sizes = [Line2D([], [], ls="", marker="o", markersize=np.sqrt(size(v)), markerfacecolor="lightgrey",
                    markeredgecolor="black", label=f"{v:g} GMACs") for v in marks]
    front_handle = Line2D([], [], ls="--", color="crimson", label="Pareto front")
    sources = [Line2D([], [], ls="", marker="o", markersize=7, markerfacecolor="grey", markeredgecolor="black",
                      label="measured (bar: 95 %)"),
               Line2D([], [], ls="", marker="o", markersize=7, markerfacecolor="none", markeredgecolor="grey",
                      markeredgewidth=1.5, label="published")] if any_measured else []
    fig.legend(handles=sizes + [front_handle] + sources, loc="outside right lower", fontsize=8, frameon=False,
               labelspacing=1.3)
    caption = (_accuracy_caption(sel, data) + " Top-1 is drawn against inferences per second at batch 1 (timed "
               "iterations ÷ wall time of the timed loop), one panel per platform/backend. Marker size: FLOPs (multiply-accumulates, "
               "log scale); colour: parameters. The dashed line joins each panel's Pareto front over the accuracies "
               "drawn (no other network is both faster and more accurate); its members are named in red and listed "
               f"below (with more than {NAME_ALL} networks in a panel only they are named; the CSV has every point, "
               "with top1_source measured or published)."
               + _per_point(sel) + left_out(sel, SUSTAINED, NO_RATE) + version_note(data))
    return Figure(name, title, caption, fig, data.sort_values(["label", names.THROUGHPUT_IPS], ascending=[True, False]))


def layer_time(sel: Selection) -> Figure:
    """Figure 4: share of profiled time per layer category, stacked bars per model and platform."""
    name, title = "fig4_layer_time", "Figure 4: share of time per layer category"
    data = profiled_points(sel)
    if data.empty:
        return _placeholder(name, title, "no profiled run (the profile is on when protocol.profile_iterations > 0)")
    categories = sel.categories
    colours = dict(zip(categories, plt.get_cmap("tab10").colors))
    labels = sorted(data["label"].unique())
    models = model_order(sel.runs)
    n_rows = max(data.groupby("label").size())
    fig, axes = _panels(labels, width=5.4, height=0.9 + 0.34 * n_rows, legend_w=1.8, share=False)
    for ax, label in zip(axes, labels):
        panel = data[data["label"] == label].set_index("model").reindex([m for m in models if m in set(data["model"])])
        panel = panel.dropna(subset=["time_per_call_ms"])[::-1]  # first model on top
        left = np.zeros(len(panel))
        for category in categories:
            share = panel[f"pct_{category}"].fillna(0).to_numpy()
            ax.barh(panel.index, share, left=left, color=colours[category], label=category, height=0.7)
            left += share
        for y, (_, row) in enumerate(panel.iterrows()):
            ax.text(101, y, f"{row[names.PROFILE_COVERAGE]:.0%} of {row['time_per_call_ms']:.3g} ms", va="center",
                    fontsize=7)
        ax.set_xlim(0, 135)
        ax.set_xticks(range(0, 101, 25))
        ax.grid(False)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlabel("share of profiled op self-time (%)")
    handles = [Patch(color=colours[c], label=c) for c in categories]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    caption = ("Share of the profiled op self-time spent in each layer category (a profiling pass after timing: "
               "torch.profiler, or OpenVINO's per-layer counters), "
               "at batch 1 where it was profiled, else the smallest profiled batch. Right of each bar: how much of "
               f"the end-to-end time per call ({time_statistic(data)[1]}) the summed op times account for (profile "
               "coverage); the rest is framework overhead between ops (profiler overhead can push it above 100%)."
               + against_median(data, "profile coverage") + _per_point(sel) + left_out(sel, TIMED, NO_CALL_TIME)
               + version_note(data))
    return Figure(name, title, caption, fig, data)


def against_median(data: pd.DataFrame, what: str) -> str:
    """For captions of figures the run derives from its median latency whatever its headline."""
    if not data["protocol_headline"].eq("min").any():
        return ""
    return (f" For runs with protocol.headline=min too, {what} is the run's own, against the median latency per "
            "call, not the minimum Figure 1 shows.")


def _achieved(points: pd.DataFrame) -> pd.Series:
    """GFLOP/s as the run logs it; in throughput mode FLOPs × inferences/s, as embench logs it now (older runs
    divided by the median enqueue interval)."""
    per_wall_time = points[names.FLOPS] * points[names.THROUGHPUT_IPS] / 1e9
    return points[names.ACHIEVED_GFLOPS].where(points["protocol_mode"].ne("throughput"), per_wall_time)


def achieved_gflops(sel: Selection) -> Figure:
    """How well each network uses the device: achieved GFLOP/s against batch size, with the peak where known."""
    name, title = "fig5_achieved_gflops", "Figure 5: achieved GFLOP/s against batch size"
    pts = sustained(sel)
    pts = pts.assign(achieved_gflops=_achieved(pts)).dropna(subset=["achieved_gflops"])
    if pts.empty:
        return _placeholder(name, title, "no successful run with achieved GFLOP/s")
    data = pts[["label", "model", "batch", "protocol_mode", "achieved_gflops", "peak_gflops", *sel.versions]].copy()
    data["pct_of_peak"] = 100 * data["achieved_gflops"] / data["peak_gflops"]
    (models, styles), labels = _styled(sel, data["model"]), sorted(data["label"].unique())
    fig, axes = _panels(labels)
    for ax, label in zip(axes, labels):
        panel = data[data["label"] == label]
        _curves(ax, panel, models, styles, "batch", "achieved_gflops", ms=4)
        peak = panel["peak_gflops"].dropna()
        if not peak.empty:
            ax.axhline(peak.iloc[-1], ls="--", color="black", lw=1)
            ax.annotate(f"peak {peak.iloc[-1]:.4g} GFLOP/s", (0.02, peak.iloc[-1]), xycoords=("axes fraction", "data"),
                        xytext=(0, 3), textcoords="offset points", fontsize=7)
        _batch_axis(ax, data["batch"])
        _log(ax, "y")
        ax.set_xlabel("batch size")
        ax.set_ylabel("achieved GFLOP/s (FLOPs × batch ÷ time)")
    _model_legend(fig, styles, models)
    caption = (f"Achieved GFLOP/s (FLOPs per inference × batch ÷ time per call: {time_statistic(data)[1]}; for "
               "offline runs, FLOPs per inference × inferences/s) as the "
               "batch grows: how much of the device each network keeps busy. The dashed line is the platform's peak "
               "FP32 GFLOP/s where the platform config or the run reports one (pct_of_peak in the CSV); a measured "
               "peak (a large matrix product) can sit below what fast convolution algorithms such as Winograd "
               "appear to achieve." + against_median(pts, "achieved_gflops") + _per_point(sel)
               + left_out(sel, SUSTAINED, NO_RATE) + version_note(data))
    return Figure(name, title, caption, fig, data.sort_values(["label", "model", "batch"]))


def server_runs(sel: Selection) -> pd.DataFrame:
    """Every successful server-scenario run at one offered rate: a max-QPS search's probes, not the search's own
    run (it repeats one probe's figures)."""
    runs = sel.runs
    searched = runs["run_id"].isin(runs["parent_run_id"])
    server = runs[runs["status"].eq("ok") & runs["scenario"].eq("server") & ~searched]
    data = server.reindex(columns=["load_label", "model", "batch", names.OFFERED_QPS, names.QUERY_LATENCY_P50_MS,
                                   names.QUERY_LATENCY_P90_MS, names.QUERY_LATENCY_P99_MS, names.LATENCY_BOUND_MS,
                                   names.LOADGEN_VALID, names.OVER_BOUND_SHARE, names.SAMPLES_PER_S, "run_id",
                                   "parent_run_id", *sel.versions])
    data = data.rename(columns={"load_label": "label"}).dropna(subset=[names.OFFERED_QPS, names.QUERY_LATENCY_P99_MS])
    return data.assign(valid=data[names.LOADGEN_VALID].eq(1.0))


def latency_vs_load(sel: Selection) -> Figure | None:
    """Figure 6: p99 query latency against the offered rate of the server scenario, the bound drawn; None without
    server runs."""
    data = server_runs(sel)
    if data.empty:
        return None
    name, title = "fig6_latency_vs_load", "Figure 6: p99 query latency against offered load (server scenario)"
    (models, styles), labels = _styled(sel, data["model"]), sorted(data["label"].unique())
    several_batches = data["batch"].nunique() > 1
    fig, axes = _panels(labels)
    for ax, label in zip(axes, labels):
        panel = data[data["label"] == label]
        for (model, batch), line in panel.groupby(["model", "batch"]):
            line, style = line.sort_values(names.OFFERED_QPS), styles[model]
            x, y = line[names.OFFERED_QPS], line[names.QUERY_LATENCY_P99_MS]
            ax.plot(x, y, lw=1, color=style["color"])
            ax.scatter(x[line["valid"]], y[line["valid"]], marker=style["marker"], color=style["color"], zorder=3)
            ax.scatter(x[~line["valid"]], y[~line["valid"]], marker=style["marker"], facecolors="none",
                       edgecolors=style["color"], zorder=3)
            if several_batches:
                ax.annotate(f"batch {batch}", (x.iloc[-1], y.iloc[-1]), xytext=(4, 0), textcoords="offset points",
                            fontsize=7)
        for bound in panel[names.LATENCY_BOUND_MS].dropna().unique():
            ax.axhline(bound, ls="--", color="black", lw=1)
            ax.annotate(f"bound {bound:g} ms", (0.02, bound), xycoords=("axes fraction", "data"), xytext=(0, 3),
                        textcoords="offset points", fontsize=7)
        ax.set_xlim(left=0)
        _log(ax, "y")
        ax.set_xlabel("offered queries per second (Poisson)")
        ax.set_ylabel("p99 query latency (ms)")
    validity = [Line2D([], [], ls="", marker="o", color="grey", label="LoadGen VALID"),
                Line2D([], [], ls="", marker="o", markerfacecolor="none", markeredgecolor="grey", label="INVALID"),
                Line2D([], [], ls="--", color="black", lw=1, label="latency bound")]
    _model_legend(fig, styles, models, validity)
    caption = ("The 99th percentile of LoadGen's query latency (from a query's scheduled arrival to its completion, "
               "so queueing included) against the Poisson arrival rate LoadGen offered, for every successful "
               "server-scenario run: each probe of a max-QPS search is a run of its own (the search's own run, which "
               "repeats one probe, is left out), and runs are not folded. One panel per platform/backend and the "
               "settings that differ, besides the rate; one line per model (and batch). Filled markers: LoadGen "
               "VALID; hollow: INVALID (p99 over the dashed latency bound, or too few queries). Where a line turns "
               "up, queries queue: the last filled point before it is the highest rate the device serves within "
               "the bound." + version_note(data))
    return Figure(name, title, caption, fig, data.sort_values(["label", "model", "batch", names.OFFERED_QPS]))


FIGURES = (runtime_vs_flops, throughput_vs_batch, accuracy_vs_speed, layer_time, achieved_gflops)


def all_figures(sel: Selection) -> list[Figure]:
    return [make(sel) for make in FIGURES]

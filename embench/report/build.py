"""Writes a report folder: every figure as PNG, SVG and CSV, every table as CSV, and report.html."""

from pathlib import Path

from embench import names
from embench.report import figures, tables
from embench.report.html import Table, render
from embench.report.selection import ACCURACY_DATASET, Selection, time_statistic, version_note

REPORT_FILE = "report.html"
_POINT_COLUMNS = ["label", "model", "batch", "runs", "platform", "backend", "protocol", "scenario", "protocol_mode",
                  "protocol_headline", "device_name", "run_id"]


def _with(note: str, versions: str) -> str:
    """A table's note (a sentence without its full stop), then the runtime versions its points differ in."""
    return f"{note}.{versions}" if versions else note


def _pareto_accuracy(fig3_data) -> str:
    """For the Pareto table's note: which accuracy the fronts compare."""
    if "top1_source" not in fig3_data:  # a placeholder
        return ""
    n = fig3_data["top1_source"].eq(figures.MEASURED).sum()
    if not n:
        return " (by each network's published ImageNet top-1)"
    return (f" (by top-1 measured through the backend for {n} of the {len(fig3_data)} points, published for the rest; "
            "top1_source in Figure 3's CSV)")


def _accuracy_note(sel: Selection, table) -> str:
    ignored = int(sel.runs["accuracy_ignored"].sum())
    note = ("Top-1 measured through the very backend, precision and device that were timed, on the labelled images "
            f"of `dataset` (`images` of them), with its 95 % {tables.TOP1_INTERVAL}; the reference is torch eager "
            "FP32 on the CPU, same model, same images (a run that is that reference has no reference columns); Δ is "
            "the run minus the reference in percentage points, paired image by image, with its 95 % "
            f"{tables.DELTA_INTERVAL} and McNemar's exact p for no difference; agreement: % of the images whose "
            "top-1 class is the reference's. One row per label, network and image set: the run at the smallest "
            "batch that measured it, the latest there")
    if ignored:
        note += (f"; {ignored} run(s) with random weights (model.pretrained=false) logged an accuracy, which is left "
                 "out: random weights have none to claim")
    return _with(note, version_note(table))


def _tables(sel: Selection, fig3, fig4) -> dict[str, Table]:
    detail, summary = tables.speedups(sel)
    accuracy = tables.accuracy(sel)
    compared = version_note(tables.sustained(sel))  # the points the speed-ups and best batches compare
    labels = sel.points["label"].nunique()
    speed_note = ("Inferences/s of the faster platform/backend ÷ the baseline's, at the same model and batch; "
                  "range and geometric mean per pair, at batch 1, over every batch both ran, and at each side's "
                  "best batch per model; efficiency: inferences per joule where measured, else per TDP watt; "
                  "single-stream and offline points only (a server run's inferences/s is the load it was offered)")
    if labels < 2:
        speed_note += (". Only one platform/backend is selected, so there is nothing to compare: sweep several, "
                       "e.g. `python -m embench -m experiment=embench2019 platform=cpu,cuda`")
    speed_note = _with(speed_note, compared)
    coverage = fig4.data.reindex(columns=["label", "model", "batch", "protocol_mode", "protocol_headline",
                                          names.PROFILE_TOTAL_MS, names.PROFILE_WALL_MS, "time_per_call_ms",
                                          names.PROFILE_COVERAGE])
    made = [
        Table("platforms", "Platforms (the paper's Table 2)",
              "What each platform/backend label ran on, from the runs' tags and the platform config", tables.platforms(sel),
              level=2),
        Table("table1_models", "Table 1: networks, computed against published",
              "Complexity counted from the built networks (MACs = multiply-accumulates, FLOPs = 2 × MACs, per "
              "inference) next to the paper's Table 1, whose \"FLOPs (M)\" column counts MACs; ratios near 1 "
              "mean the same network; top-1 and top-5 are each network's published ImageNet accuracy (model config, "
              "accuracy source), not measured" + ("; measured top-1 is in Figure 3 and the accuracy table"
                                                   if not accuracy.empty else ""), tables.table1(sel), level=2),
        Table("best_batch", "Best batch size per network and platform",
              _with("The batch with the most inferences/s (the stars of Figure 2) and its gain over batch 1", compared),
              tables.best_batch(sel)),
        Table("max_batch", "Largest batch that ran",
              "Per network and platform, every batch tried, the largest that ran and the smallest that failed "
              "(oom: out of memory)", tables.max_batch(sel)),
        Table("pareto_front", "Pareto-optimal networks (Figure 3)",
              _with("Per platform/backend at batch 1: no other network is both faster and more accurate"
                    + _pareto_accuracy(fig3.data), version_note(fig3.data)), tables.pareto_members(fig3.data)),
        Table("speedup_summary", "Speed-ups between platforms/backends", speed_note, summary, level=2),
        Table("speedups", "Speed-ups per network and batch", _with("Every point behind the summary above", compared),
              detail),
        Table("profile_coverage", "How much of the end-to-end time the profile accounts for",
              "Summed op self-time per inference (profile_total_ms) against the time per call (time_per_call_ms: "
              f"{time_statistic(coverage)[1]}); coverage = their ratio; profile_wall_ms is the wall time of a "
              "profiled inference (profiler overhead included)" + figures.against_median(coverage, "profile coverage"), coverage),
        Table("failed_unstable_runs", "Failed and unstable runs",
              "Every selected run that failed (status failed, oom, killed, or a run never closed), was tagged "
              "unstable, or ran on a busy host; none is dropped silently. Failed runs are not in the figures",
              tables.flagged_runs(sel), level=2),
    ]
    if not accuracy.empty:
        made.append(Table("accuracy", "Accuracy through each backend", _accuracy_note(sel, accuracy), accuracy))
    colocation = tables.colocation(sel)
    if not colocation.empty:
        made.append(Table("colocation", "Co-located networks: query latency alone and together",
                          "Per co-location run (networks run at once on one platform, each on its share of the "
                          "threads, then each alone) and network: LoadGen's median (p50) and p99 query latency alone "
                          "and together, and the slowdown, together ÷ alone", colocation, level=2))
    return {t.name: t for t in made}


def build(sel: Selection, out_dir: Path) -> Path:
    """Writes the folder; returns the path of report.html."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig1, fig2, fig3, fig4, fig5 = figures.all_figures(sel)
    fig6 = figures.latency_vs_load(sel)  # None without server-scenario runs
    made = _tables(sel, fig3, fig4)  # before saving: saving closes the matplotlib figures, not the data
    for figure in (fig1, fig2, fig3, fig4, fig5, fig6):
        if figure is not None:
            figure.save(out_dir)
    for table in made.values():
        table.save(out_dir)
    points = sel.points
    datasets = [c for c in ACCURACY_DATASET if points[c].notna().any()]  # where a point measured accuracy
    columns = [c for c in _POINT_COLUMNS if c in points] + datasets + sel.metrics + sel.versions
    points[columns].to_csv(out_dir / "points.csv", index=False)
    sel.runs.to_csv(out_dir / "runs.csv", index=False)
    blocks = [made["platforms"], made["table1_models"], fig1, fig2, made["best_batch"], made["max_batch"], fig3,
              made["pareto_front"], made.get("accuracy"), made["speedup_summary"], made["speedups"], fig4,
              made["profile_coverage"], fig5, fig6, made.get("colocation"), made["failed_unstable_runs"]]
    path = out_dir / REPORT_FILE
    path.write_text(render(sel, [b for b in blocks if b is not None], out_dir), encoding="utf-8")
    return path

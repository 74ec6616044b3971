"""report.html: one self-contained page, figures embedded as base64 PNG, tables by pandas."""

import base64
import html
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from embench.report.figures import Figure
from embench.report.selection import TIMED, Selection, differing_versions, in_scenarios, measured

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, p.note { color: #444; max-width: 70em; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
table.data th, table.data td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
table.data th { background: #f4f4f4; text-align: center; } table.data td.text { text-align: left; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.summary dt { font-weight: bold; } nav a { margin-right: 1em; }
"""


@dataclass
class Table:
    """One table of the report: a file stem, its heading, a sentence on what it shows, the frame."""

    name: str
    title: str
    note: str
    frame: pd.DataFrame
    level: int = 3  # 2: a section of its own

    def save(self, out_dir: Path) -> Path:
        path = out_dir / f"{self.name}.csv"
        self.frame.to_csv(path, index=False)
        return path


def number(value: float) -> str:
    """Readable significant digits: 12,345 · 123.4 · 12.35 · 0.0123."""
    if pd.isna(value):
        return "–"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _text_columns(frame: pd.DataFrame) -> str:
    """CSS that left-aligns the text columns of one table (numbers stay right-aligned)."""
    text = [i + 1 for i, column in enumerate(frame.columns) if not pd.api.types.is_numeric_dtype(frame[column])
            or pd.api.types.is_bool_dtype(frame[column])]
    return " ".join(f"table.data[id] td:nth-child({i}) {{ text-align: left; }}" for i in text)


def _table_html(table: Table) -> str:
    if table.frame.empty:
        body = "<p class='note'><em>nothing to show for this selection</em></p>"
    else:
        rules = _text_columns(table.frame).replace("table.data[id]", f"#t-{table.name}")
        body = (f"<style>{rules}</style>\n" + table.frame.to_html(
            index=False, classes="data", border=0, na_rep="–", float_format=number, table_id=f"t-{table.name}"))
    return (f"<h{table.level} id='{table.name}'>{html.escape(table.title)}</h{table.level}>\n<p class='note'>{html.escape(table.note)} "
            f"(<a href='{table.name}.csv'>{table.name}.csv</a>)</p>\n{body}")


def _figure_html(figure: Figure, png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f"<h2 id='{figure.name}'>{html.escape(figure.title)}</h2>\n<figure>"
            f"<img src='data:image/png;base64,{data}' alt='{html.escape(figure.title)}'>\n"
            f"<figcaption>{html.escape(figure.caption)} Files: <a href='{figure.name}.png'>PNG</a>, "
            f"<a href='{figure.name}.svg'>SVG</a>, <a href='{figure.name}.csv'>data (CSV)</a>.</figcaption></figure>")


def _scenarios(points: pd.DataFrame) -> str:
    """Which figures the points of each LoadGen scenario are in, and why; empty when every point is single stream."""
    if in_scenarios(points, TIMED).all():
        return ""
    n = points["scenario"].fillna("single_stream").value_counts()
    parts = [f"{n['single_stream']} single-stream point(s) in every figure"] if "single_stream" in n else []
    if "offline" in n:
        parts.append(f"{n['offline']} offline point(s) in Figures 2, 3 and 5 only, by their measured inferences/s "
                     "(LoadGen's samples/s × batch), left out of Figures 1 and 4, as their samples overlap and no "
                     "call is timed on its own")
    loaded = [f"{n[name]} {name}" for name in ("server", "multi_stream") if name in n]
    if loaded:
        parts.append(f"{' and '.join(loaded)} point(s) left out of Figures 1–5, as their queries queue or overlap "
                     "and a server run's inferences/s is the load LoadGen offered" + (
                         ": server runs, every probe of a max-QPS search included, are in Figure 6 by their query "
                         "latency" if "server" in n else ""))
    return "; ".join(parts) + "; every point is in points.csv"


def _accuracy(sel: Selection) -> str:
    """What accuracy means in this report: published, or measured for the points that measured it."""
    n = int(measured(sel.points).sum())
    if not n:
        return "accuracy = the published ImageNet accuracy of each network (model config), not measured"
    return (f"accuracy = top-1 measured through the backend that was timed, on labelled images, for the {n} of "
            f"{len(sel.points)} points that measured it (Figure 3's filled markers, the accuracy table), else the "
            "published ImageNet accuracy of the network (Figure 3's hollow markers, Table 1)")


def _summary(sel: Selection) -> str:
    runs = sel.runs
    status = runs["status"].value_counts()
    aggregate = {
        "latest": "the most recent successful run of each point (label, model, batch)",
        "median": "the median of each metric over the successful runs of each point (label, model, batch)",
    }[sel.aggregate]
    sweeps = ", ".join(sel.parents["run_name"].fillna(sel.parents["run_id"]).astype(str)) or "none (single runs)"
    singles = int(runs["parent_run_id"].isna().sum())
    first, last = runs["start_time"].min(), runs["start_time"].max()
    items = [
        ("Experiment", f"{sel.experiment} (id {sel.experiment_id}) at {sel.uri}"),
        ("Filters", sel.filters.describe()),
        ("Runs selected", f"{len(runs)} measurement runs from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC; "
                          + ", ".join(f"{n} {s}" for s, n in status.items())),
        ("Sweeps", f"{sweeps}" + (f"; plus {singles} run(s) outside any sweep" if singles else "")),
        ("Aggregate", f"{sel.aggregate}: {aggregate}; {sel.folded} duplicate run(s) folded into "
                      f"{len(sel.points)} points"),
        ("Flagged", f"{int((runs['status'] != 'ok').sum())} failed, {int(runs['unstable'].sum())} unstable "
                    f"(CV > protocol.unstable_cv), {int(runs['host_busy'].sum())} on a busy host: all listed "
                    "under Failed and unstable runs; unstable and busy runs stay in the figures, ringed red"),
        ("Not data", ", ".join(f"{n} {what}" for what, n in sel.skipped.items()) + " skipped"),
        ("Conventions", "time per call = the median of the timed iterations' latency (the paper reported the "
                        "minimum; both are in points.csv), or for throughput-protocol runs, which time no single "
                        "call, the wall time per batch (single stream only); inferences/s = batch × timed "
                        "iterations ÷ the timed loop's wall time (offline: LoadGen's samples/s × batch); FLOPs = "
                        "2 × multiply-accumulates, per inference; " + _accuracy(sel) + "; a label names every "
                        "setting (run param) that differs between its runs and others of the same platform/backend"),
    ]
    scenarios = _scenarios(sel.points)
    if scenarios:
        items.append(("Scenarios", scenarios))
    versions = differing_versions(sel.points)
    if versions:
        items.append(("Runtime versions", f"differ between points: {versions}; each figure and table that compares "
                                          "such points says so, and points.csv has every point's"))
    rows = "\n".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    return f"<dl class='summary'>\n{rows}\n</dl>"


def render(sel: Selection, blocks: list[Figure | Table], out_dir: Path) -> str:
    """The page: summary, then figures and tables in the order given."""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = " ".join(f"<a href='#{b.name}'>{html.escape(b.title.split(':')[0])}</a>" for b in blocks
                   if isinstance(b, Figure))
    accuracy = "<a href='#accuracy'>Accuracy</a> " if any(b.name == "accuracy" for b in blocks) else ""
    parts = []
    for block in blocks:
        if isinstance(block, Figure):
            parts.append(_figure_html(block, out_dir / f"{block.name}.png"))
        else:
            parts.append(_table_html(block))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>embench report: {html.escape(sel.experiment)}</title>
<style>{_CSS}</style></head>
<body>
<h1>embench report: {html.escape(sel.experiment)}</h1>
<p class='note'>Generated {generated} by <code>python -m embench.report</code>; the figures and tables of the
EmBench paper (Almeida et al., EMDL '19) from this experiment's runs. Every figure and table is also in this
folder as PNG, SVG and CSV.</p>
<nav>{nav} <a href='#table1_models'>Table 1</a> {accuracy}<a href='#speedup_summary'>Speed-ups</a>
<a href='#failed_unstable_runs'>Failed and unstable runs</a></nav>
<h2 id='summary'>What this report is built from</h2>
{_summary(sel)}
{chr(10).join(parts)}
</body></html>
"""

"""A sweep's summary: one row per job, printed as a table and written as CSV."""

import csv
import sys
from pathlib import Path

from embench import ui_link
from embench.names import (
    BACKEND_PARAM,
    BATCH_PARAM,
    LATENCY_MEDIAN_MS,
    LATENCY_MIN_MS,
    LATENCY_P99_MS,
    MODEL_PARAM,
    PLATFORM_PARAM,
    QUERY_LATENCY_P99_MS,
    SCENARIO_PARAM,
    THROUGHPUT_IPS,
)
from embench.result import RunResult

SUMMARY_FILE = "sweep_summary.csv"
COLUMNS = ("job", "model", "platform", "backend", "batch", "scenario", "median_ms", "min_ms", "p99_ms", "query_p99_ms",
           "inferences_per_s", "status")
_NUMBERS = ("job", "batch", "median_ms", "min_ms", "p99_ms", "query_p99_ms", "inferences_per_s")


def summary_row(job: int, result: RunResult) -> dict:
    params, metrics = result.params, result.metrics
    return {
        "job": job, "model": params.get(MODEL_PARAM), "platform": params.get(PLATFORM_PARAM),
        "backend": params.get(BACKEND_PARAM), "batch": params.get(BATCH_PARAM), "scenario": params.get(SCENARIO_PARAM),
        "median_ms": metrics.get(LATENCY_MEDIAN_MS),
        "min_ms": metrics.get(LATENCY_MIN_MS), "p99_ms": metrics.get(LATENCY_P99_MS),
        "query_p99_ms": metrics.get(QUERY_LATENCY_P99_MS),  # LoadGen's: issue to completion, waiting included
        "inferences_per_s": metrics.get(THROUGHPUT_IPS),
        "status": ui_link.status_label(result.status, result.tags),  # with what makes an "ok" doubtful
        "error": result.error,
    }


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="embench sweep")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in _NUMBERS else "left")
    for row in rows:
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else ("-" if row[c] is None else str(row[c])) for c in COLUMNS]
        table.add_row(*cells)
    Console(file=sys.stdout, width=160).print(table)


def write_csv(rows: list[dict], path: Path) -> None:
    """The rows as CSV (nothing when there are none); raises OSError when the folder cannot take it."""
    if rows:
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

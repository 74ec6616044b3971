"""A sweep's summary: one row per job, printed as a table and written as CSV; the runtime versions that differ
between jobs (a farm's nodes may run others) said under the table and written as columns."""

import csv
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from embench import ui_link
from embench.names import (
    ACCURACY_TOP1,
    ACCURACY_TOP1_DELTA,
    BACKEND_PARAM,
    BATCH_PARAM,
    LATENCY_MEDIAN_MS,
    LATENCY_MIN_MS,
    LATENCY_P99_MS,
    MODEL_PARAM,
    PLATFORM_PARAM,
    PRECISION_TAG,
    QUERY_LATENCY_P99_MS,
    RUNTIME_VERSION_TAGS,
    SCENARIO_PARAM,
    THROUGHPUT_IPS,
)
from embench.result import RunResult

SUMMARY_FILE = "sweep_summary.csv"
COLUMNS = ("job", "model", "platform", "backend", "precision", "batch", "scenario", "median_ms", "min_ms", "p99_ms", "query_p99_ms",
           "inferences_per_s", "status")
ACCURACY_COLUMNS = ("top1_pct", "top1_delta_pp")  # shown when a job measured accuracy
_NUMBERS = ("job", "batch", "median_ms", "min_ms", "p99_ms", "query_p99_ms", "inferences_per_s", *ACCURACY_COLUMNS)


def summary_row(job: int, result: RunResult) -> dict:
    params, metrics = result.params, result.metrics
    return {
        "job": job, "model": params.get(MODEL_PARAM), "platform": params.get(PLATFORM_PARAM),
        "backend": params.get(BACKEND_PARAM), "precision": result.tags.get(PRECISION_TAG), "batch": params.get(BATCH_PARAM), "scenario": params.get(SCENARIO_PARAM),
        "median_ms": metrics.get(LATENCY_MEDIAN_MS),
        "min_ms": metrics.get(LATENCY_MIN_MS), "p99_ms": metrics.get(LATENCY_P99_MS),
        "query_p99_ms": metrics.get(QUERY_LATENCY_P99_MS),  # LoadGen's: issue to completion, waiting included
        "inferences_per_s": metrics.get(THROUGHPUT_IPS),
        "top1_pct": metrics.get(ACCURACY_TOP1),  # measured through this backend (accuracy=imagefolder)
        "top1_delta_pp": metrics.get(ACCURACY_TOP1_DELTA),  # against torch eager FP32 on the same images
        "status": ui_link.status_label(result.status, result.tags),  # with what makes an "ok" doubtful
        "error": result.error,
        "versions": {tag: result.tags[tag] for tag in RUNTIME_VERSION_TAGS if tag in result.tags},
    }


def version_differences(tagged: Iterable[tuple[object, Mapping[str, str]]]) -> dict[str, dict[str, list]]:
    """Per runtime version tag with more than one value among the (key, tags) given: value -> the keys that carry it,
    in the order given. Items without the tag (another backend's runs) are not compared."""
    seen: dict[str, dict[str, list]] = {}
    for key, tags in tagged:
        for tag in RUNTIME_VERSION_TAGS:
            if tags.get(tag):
                seen.setdefault(tag, {}).setdefault(tags[tag], []).append(key)
    return {tag: values for tag, values in seen.items() if len(values) > 1}


def _spans(jobs: list[int]) -> str:
    """1, 2, 3, 5 -> 'jobs 1-3, 5'."""
    stretches: list[list[int]] = []  # consecutive job numbers
    for job in sorted(jobs):
        if stretches and job == stretches[-1][-1] + 1:
            stretches[-1].append(job)
        else:
            stretches.append([job])
    spans = ", ".join(str(s[0]) if len(s) == 1 else f"{s[0]}-{s[-1]}" for s in stretches)
    return ("job " if len(jobs) == 1 else "jobs ") + spans


def version_notes(rows: list[dict]) -> list[str]:
    """One line per runtime version tag whose value differs between the jobs; none when all agree."""
    differ = version_differences((row["job"], row["versions"]) for row in rows)
    lines = []
    for tag, values in differ.items():
        lines.append(f"versions differ between points: {tag} "
                     + ", ".join(f"{value} ({_spans(jobs)})" for value, jobs in values.items()))
    return lines


def shown_columns(rows: list[dict]) -> list[str]:
    """The table's columns: the accuracy ones before the status when a job measured accuracy."""
    if not any(row.get(ACCURACY_COLUMNS[0]) is not None for row in rows):
        return list(COLUMNS)
    return [*COLUMNS[:-1], *ACCURACY_COLUMNS, COLUMNS[-1]]


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="embench sweep")
    columns = shown_columns(rows)
    for column in columns:
        table.add_column(column, justify="right" if column in _NUMBERS else "left")
    for row in rows:
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else ("-" if row[c] is None else str(row[c])) for c in columns]
        table.add_row(*cells)
    Console(file=sys.stdout, width=160).print(table)
    for line in version_notes(rows):
        print(line)


def write_csv(rows: list[dict], path: Path) -> None:
    """The rows as CSV, with a column for each runtime version that differs between them (nothing when there are
    no rows); raises OSError when the folder cannot take it."""
    if rows:
        differ = list(version_differences((row["job"], row["versions"]) for row in rows))
        shown = shown_columns(rows)
        keys = [key for key in rows[0] if key != "versions" and (key in shown or key not in ACCURACY_COLUMNS)]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys + differ)
            writer.writeheader()
            writer.writerows({key: row[key] for key in keys}
                             | {tag: row["versions"].get(tag) for tag in differ} for row in rows)

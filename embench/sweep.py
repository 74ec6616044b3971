"""Hydra callback for multirun sweeps: one MLflow parent run, a summary table, the exit status."""

import csv
import json
import os
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from embench import outcome
from embench.errors import TrackingError

SUMMARY_FILE = "sweep_summary.csv"
_COLUMNS = ("job", "model", "platform", "backend", "batch", "median_ms", "p99_ms", "inferences_per_s", "status")


def _job_number(path: Path) -> int:
    head = path.parent.name.split("_", 1)[0]
    return int(head) if head.isdigit() else -1


def load_sweep_results(sweep_dir: Path) -> list[dict]:
    """Every job's result.json in the sweep dir, in job order."""
    rows = []
    for path in sorted(sweep_dir.glob("*/result.json"), key=_job_number):
        record = json.loads(path.read_text())
        params, metrics = record["params"], record["metrics"]
        rows.append(
            {
                "job": _job_number(path),
                "model": params.get("model"),
                "platform": params.get("platform"),
                "backend": params.get("backend"),
                "batch": params.get("batch"),
                "median_ms": metrics.get("latency_median_ms"),
                "p99_ms": metrics.get("latency_p99_ms"),
                "inferences_per_s": metrics.get("throughput_ips"),
                "status": record["status"] + (" (unstable)" if record["tags"].get("unstable") == "true" else ""),
                "error": record.get("error", ""),
            }
        )
    return rows


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="embench sweep")
    for column in _COLUMNS:
        table.add_column(column, justify="right" if column in ("job", "batch", "median_ms", "p99_ms", "inferences_per_s") else "left")
    for row in rows:
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else ("-" if row[c] is None else str(row[c])) for c in _COLUMNS]
        table.add_row(*cells)
    Console(file=sys.stdout, width=160).print(table)


class SweepCallback(Callback):
    """Opens a parent MLflow run for a sweep; at its end prints the table and closes the run."""

    def __init__(self) -> None:
        self.tracker = None
        self.parent_run_id = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if not config.tracking.enabled:
            return
        from embench.tracking import PARENT_RUN_ENV, tracker_for

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            self.tracker = tracker_for(config.tracking)
            self.parent_run_id = self.tracker.start_parent(
                run_name=f"sweep {sweep_dir.name}",
                tags={"embench.sweep_dir": str(sweep_dir.resolve()), "embench.overrides": " ".join(config.hydra.overrides.task)},
            )
        except TrackingError as err:
            outcome.say_error(f"{err}; each job still writes its result.json under {sweep_dir}")
            return
        os.environ[PARENT_RUN_ENV] = self.parent_run_id

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = load_sweep_results(sweep_dir)
        _print_table(rows)
        failed = [row for row in rows if not row["status"].startswith("ok")]
        for row in failed:
            print(f"failed: job {row['job']} model={row['model']} batch={row['batch']}: {row['status']}: {row['error']}", file=sys.stderr)
        if failed:
            outcome.record(1)
        summary = sweep_dir / SUMMARY_FILE
        if rows:
            with summary.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        self._close_parent(summary, failed=bool(failed))

    def _close_parent(self, summary: Path, failed: bool) -> None:
        if not self.parent_run_id:
            return
        from embench.tracking import PARENT_RUN_ENV

        try:
            if summary.exists():
                self.tracker.client.log_artifact(self.parent_run_id, str(summary))
            self.tracker.terminate(self.parent_run_id, "FAILED" if failed else "FINISHED")
        except Exception as err:
            outcome.say_error(f"could not close the sweep's MLflow run {self.parent_run_id}: {err}")
            outcome.record(TrackingError.exit_code)
        os.environ.pop(PARENT_RUN_ENV, None)

"""`embench sync PATH...`: logs the run folders that never reached MLflow, under their sweep's parent run.

Idempotent: each run carries a unique id (tag embench.run_uid) and each sweep one (embench.sweep_uid),
so running it twice adds nothing.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from embench import outcome
from embench.artifacts import RESULT_FILE
from embench.errors import ConfigError, TrackingError
from embench.names import NESTED_IN_TAG, SWEEP_UID_TAG
from embench.result import RunResult
from embench.sweep.parent import SWEEP_FILE
from embench.tracking import Tracker

DEFAULT_URI = "sqlite:///mlflow.db"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="embench sync",
        description="Log every run folder under PATH (a sweep's folder, a run's folder, or outputs/) that is "
                    "not yet in the MLflow store, as a child of its sweep's parent run (created if the store "
                    "never saw it). Running it again adds nothing.",
        epilog="exit codes: 0 synced (or nothing to do); 2 no run folder under PATH, or the server refused the user or password; 3 MLflow unreachable.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    parser.add_argument("--tracking-uri", help="store to log to (default: $MLFLOW_TRACKING_URI, else the URI the "
                                               "runs were meant for, else sqlite:///mlflow.db)")
    parser.add_argument("--experiment", help="experiment (default: the one each run was meant for)")
    return parser


def _results(paths: list[Path]) -> list[tuple[Path, RunResult]]:
    found = []
    for path in paths:
        files = [path] if path.name == RESULT_FILE else sorted(path.glob(f"**/{RESULT_FILE}"))
        if not path.exists() or not files:
            raise ConfigError(f"{path}: no {RESULT_FILE} there; give a sweep's or a run's folder (e.g. outputs/sweeps/...)")
        found += [(file.parent, RunResult.from_json(json.loads(file.read_text()))) for file in files]
    return sorted(found, key=lambda entry: len(entry[0].parts))  # a run before the runs nested in its folder


def _sweep_records(folders: list[Path]) -> dict[str, dict]:
    """sweep.json of every sweep the folders belong to, by sweep uid."""
    records = {}
    for folder in {folder.parent for folder in folders}:
        path = folder / SWEEP_FILE
        if path.exists():
            record = json.loads(path.read_text())
            records[record["sweep_uid"]] = record
    return records


def _parent(tracker: Tracker, uid: str, sweep: dict) -> str:
    found = tracker.find_parent(uid)
    if found:
        return found.info.run_id
    return tracker.start_parent(sweep.get("name", f"sweep {uid[:8]} (synced)"), {SWEEP_UID_TAG: uid, "embench.synced": "true"})


def _close(tracker: Tracker, run_id: str, sweep: dict) -> None:
    """The parent takes the sweep's own final status; a sweep that never ended is KILLED."""
    run = tracker.client.get_run(run_id)
    status = sweep.get("status", "RUNNING")
    if run.info.status == "RUNNING" and status == "RUNNING" and run.data.tags.get("embench.pid"):
        return  # its sweep may still be running; close_stale_runs handles a dead one
    tracker.terminate(run_id, status if status != "RUNNING" else "KILLED")


def sync(paths: list[Path], uri: str | None, experiment: str | None) -> tuple[int, int]:
    """(runs logged now, runs already in the store)."""
    found = _results(paths)
    sweeps = _sweep_records([folder for folder, _ in found])
    logged = present = 0
    trackers: dict[tuple[str, str], Tracker] = {}
    known: dict[tuple[str, str], set[str]] = {}
    for folder, result in found:
        target = (uri or os.environ.get("MLFLOW_TRACKING_URI") or result.tracking.get("uri") or DEFAULT_URI,
                  experiment or result.tracking.get("experiment") or "embench")
        if target not in trackers:
            trackers[target] = Tracker(*target, http_max_retries=2, http_timeout_s=20)
            trackers[target].close_stale_runs()
            known[target] = trackers[target].whole_runs({result.run_uid for _, result in found})
        tracker = trackers[target]
        if result.run_uid in known[target]:
            present += 1
            continue
        uid, nested_in = result.tracking.get("sweep_uid"), result.tags.get(NESTED_IN_TAG)
        if nested_in:  # a probe of a max-QPS search: under its search's run
            parent = tracker.run_id_of(nested_in)
        else:
            parent = _parent(tracker, uid, sweeps.get(uid, {})) if uid else None
        tracker.log_result(result, folder, parent)
        known[target].add(result.run_uid)
        logged += 1
    for tracker in trackers.values():
        for uid, sweep in sweeps.items():
            found_parent = tracker.find_parent(uid)
            if found_parent and found_parent.info.status in ("RUNNING", "KILLED"):
                _close(tracker, found_parent.info.run_id, sweep)
    return logged, present


def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    try:
        logged, present = sync(args.paths, args.tracking_uri, args.experiment)
    except (ConfigError, TrackingError) as err:
        outcome.say_error(str(err))
        sys.exit(err.exit_code)
    print(f"embench sync: {logged} run(s) logged, {present} already in the store")

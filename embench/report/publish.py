"""Logs a report folder to MLflow: under report/ of the sweep's parent run, or of a run of its own."""

import time
from pathlib import Path

from embench.names import REPORT_TAG
from embench.report.selection import Selection
from embench.report.store import ReportError, short

ARTIFACT_DIR = "report"


def sweep_parent(sel: Selection) -> str | None:
    """The parent run when every selected run comes from one sweep, else None."""
    parents = sel.runs["parent_run_id"]
    if parents.isna().any() or parents.nunique() != 1:
        return None
    parent = parents.iloc[0]
    return parent if parent in set(sel.parents["run_id"]) else None


def publish(client, sel: Selection, out_dir: Path) -> tuple[str, str]:
    """Logs out_dir; returns (run id, what the run is)."""
    run_id, own = sweep_parent(sel), None
    try:
        if run_id:
            what = "the sweep's parent run"
            client.log_artifacts(run_id, str(out_dir), ARTIFACT_DIR)
            client.set_tag(run_id, "embench.report_html", f"{ARTIFACT_DIR}/report.html")
            return run_id, what
        what = "a report run of its own"
        run = client.create_run(sel.experiment_id, run_name=f"report {time.strftime('%Y-%m-%d_%H-%M-%S')}", tags={
            REPORT_TAG: "true", "embench.report_html": f"{ARTIFACT_DIR}/report.html",
            "embench.report.filters": sel.filters.describe(), "embench.report.aggregate": sel.aggregate})
        own = run_id = run.info.run_id
        client.log_artifacts(run_id, str(out_dir), ARTIFACT_DIR)
        client.set_terminated(run_id, status="FINISHED")
        return run_id, what
    except Exception as err:
        if own:  # never leave a half-logged report run RUNNING
            try:
                client.set_terminated(own, status="FAILED")
            except Exception:
                pass
        raise ReportError(f"the report is in {out_dir}, but logging it to MLflow at {sel.uri} failed: {short(err)}",
                          3) from err

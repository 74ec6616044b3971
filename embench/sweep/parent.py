"""A sweep's MLflow parent run (its jobs' runs nest under it), its link in the MLflow UI, and sweep.json."""

import json
import socket
import time
from pathlib import Path

from omegaconf import DictConfig

from embench import credentials, outcome, ui_link
from embench.errors import ConfigError, TrackingError
from embench.names import PARENT_RUN_TAG, SWEEP_DIR_TAG, SWEEP_UID_TAG
from embench.result import RunResult
from embench.sweep.summary import shown_columns
from embench.tracking import Refused, absolute_uri

SWEEP_FILE = "sweep.json"


class ParentRun:
    """The parent run of the sweep in `folder` (none when the store is off or down) and its record for `embench sync`."""

    def __init__(self, config: DictConfig, tracking: DictConfig, tracker, uid: str):
        self.config, self.tracking, self.tracker, self.uid = config, tracking, tracker, uid
        self.run_id = None

    def start(self, folder: Path) -> None:
        """Opens the parent run; a store that fails is said in one line, and the sweep goes on; one that refuses
        the user or its rights stops the sweep before anything is measured (ConfigError)."""
        if self.tracker is None or self.tracker.down:
            return
        try:
            self.run_id = self.tracker.start_parent(
                run_name=f"sweep {folder.name}",
                tags={SWEEP_DIR_TAG: str(folder.resolve()), SWEEP_UID_TAG: self.uid,
                      "embench.overrides": " ".join(self.config.hydra.overrides.task)},
            )
        except Refused as err:
            raise ConfigError(str(err)) from err
        except TrackingError as err:
            outcome.say_error(f"{err}; measuring anyway: results stay in {folder} "
                              f"(upload them later with `embench sync {folder}`)")

    def save(self, folder: Path, status: str, jobs: int, skipped: int) -> None:
        """sweep.json: what `embench sync` needs to put the sweep's runs under one parent later."""
        record = {
            "sweep_uid": self.uid, "parent_run_id": self.run_id, "status": status,
            "experiment": self.tracking.experiment, "tracking_uri": credentials.redact(absolute_uri(str(self.tracking.uri))),
            "name": f"sweep {folder.name}", "overrides": list(self.config.hydra.overrides.task),
            "host": socket.gethostname(), "time": time.time(), "jobs": jobs, "skipped": skipped,
        }
        try:
            (folder / SWEEP_FILE).write_text(json.dumps(record, indent=2))
        except OSError:
            pass  # the folder became unwritable: said where the runs' files went

    def close(self, status: str, summary: Path, results: list[RunResult], rows: list[dict], name: str,
              figures: dict[str, float]) -> int:
        """Ends the parent run with the sweep's status and its time `figures` (embench.sweep.timeline) and shows it in
        the UI; returns the exit code it adds."""
        if not self.run_id:
            return 0
        if self.tracker.down:  # already said; `embench sync` closes it later
            return TrackingError.exit_code
        try:
            if summary.exists():
                self.tracker.client.log_artifact(self.run_id, str(summary))
            self.tracker.log_metrics(self.run_id, figures)
            self.tracker.terminate(self.run_id, status)
            self._link_to_ui(results, rows, name)
        except Exception as err:
            outcome.say_error(f"could not close the sweep's MLflow run {self.run_id}: {credentials.redact(str(err))}")
            return TrackingError.exit_code
        return 0

    def _link_to_ui(self, results: list[RunResult], rows: list[dict], name: str) -> None:
        """The sweep's view in the MLflow UI (its runs, sorted, with the columns that tell them apart), stored as the
        experiment's shared view; the parent's description gets the link and the summary table; the link is printed."""
        params = [result.params for result in results]
        headline = ui_link.headline_metric(params[0] if params else {})
        logged = {key for result in results for key in result.metrics}
        state = ui_link.view_state(f"tags.{PARENT_RUN_TAG} = '{self.run_id}'", headline,
                                   ui_link.varying_settings(params, self._overridden()),
                                   [metric for metric in ui_link.FIGURES if metric in logged])
        key = ui_link.share_key(state)
        client, experiment_id = self.tracker.client, self.tracker.experiment_id
        client.set_experiment_tag(experiment_id, ui_link.SHARE_TAG_PREFIX + key, json.dumps(state))
        base, command = ui_link.ui_base(self.tracker.uri)
        link = ui_link.runs_link(base, experiment_id, key)
        table = ui_link.markdown_table(rows, shown_columns(rows))
        client.set_tag(self.run_id, ui_link.DESCRIPTION_TAG, ui_link.sweep_description(name, link, command, table))
        print(ui_link.how_to_open(link, command))

    def _overridden(self) -> list[str]:
        """The keys the command line set (`batch=1,2` -> batch)."""
        return [item.split("=", 1)[0].lstrip("+~") for item in self.config.hydra.overrides.task]

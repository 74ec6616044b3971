"""A multirun sweep: check every job first, then one MLflow parent run, the jobs, a summary table.

Hydra's basic sweeper expands the sweep; embench's own sweeper (hydra_plugins/embench_sweeper)
hands the list of jobs to `run_sweep`, which owns the sweep's whole life: nothing is measured
before every job's config, device and backend are checked, the parent run ends FINISHED, FAILED
or KILLED on every path the process can take, and a folder that cannot be written is replaced.
"""

import copy
import csv
import functools
import json
import logging
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from embench import credentials, outcome, preflight, signals, ui_link
from embench.artifacts import fallback_dir, writable
from embench.errors import ConfigError, TrackingError
from embench.job import keep_measured, keep_measured_in
from embench.progress import Progress
from embench.result import RunResult, point_key, run_params
from embench.tracking import SWEEP_UID_TAG, absolute_uri

SUMMARY_FILE = "sweep_summary.csv"
SWEEP_FILE = "sweep.json"
_COLUMNS = ("job", "model", "platform", "backend", "batch", "scenario", "median_ms", "min_ms", "p99_ms", "query_p99_ms",
            "inferences_per_s", "status")
_NUMBERS = ("job", "batch", "median_ms", "min_ms", "p99_ms", "query_p99_ms", "inferences_per_s")
log = logging.getLogger("embench")


def _task_config(job_cfg: DictConfig) -> DictConfig:
    """A job's config as its task function sees it: without the hydra node."""
    task_cfg = copy.deepcopy(job_cfg)
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg


@dataclass
class Job:
    """One job of the sweep: its number, overrides, full config, and the config its measurement sees."""

    number: int
    overrides: list[str]
    config: DictConfig
    retried: str = ""  # why it was sent out a second time, if it was

    def __post_init__(self):
        self.task = _task_config(self.config)
        self.task_yaml = OmegaConf.to_yaml(self.task, resolve=True)
        self.platform = str(self.task.platform.name)
        self.check_key = "".join(OmegaConf.to_yaml(self.task[part]) for part in ("platform", "backend")) \
            + str(self.task.model.factory)


def status_label(result: RunResult) -> str:
    """The run's status, with what makes an "ok" number doubtful: `ok (unstable, host busy)`."""
    return ui_link.status_label(result.status, result.tags)


def summary_row(job: int, result: RunResult) -> dict:
    params, metrics = result.params, result.metrics
    return {
        "job": job, "model": params.get("model"), "platform": params.get("platform"),
        "backend": params.get("backend"), "batch": params.get("batch"), "scenario": params.get("scenario.name"),
        "median_ms": metrics.get("latency_median_ms"),
        "min_ms": metrics.get("latency_min_ms"), "p99_ms": metrics.get("latency_p99_ms"),
        "query_p99_ms": metrics.get("query_latency_p99_ms"),  # LoadGen's: issue to completion, waiting included
        "inferences_per_s": metrics.get("throughput_ips"), "status": status_label(result), "error": result.error,
    }


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="embench sweep")
    for column in _COLUMNS:
        table.add_column(column, justify="right" if column in _NUMBERS else "left")
    for row in rows:
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else ("-" if row[c] is None else str(row[c])) for c in _COLUMNS]
        table.add_row(*cells)
    Console(file=sys.stdout, width=160).print(table)


class Sweep:
    """One sweep's state: its folder, tracker, parent run, and the jobs' reports as they come back."""

    def __init__(self, config: DictConfig, jobs: list[Job]):
        self.config, self.jobs = config, jobs
        self.uid = uuid.uuid4().hex
        self.dir = Path(config.hydra.sweep.dir).absolute()
        self.tracker = None
        self.parent_run_id = None
        self.rows: list[dict] = []
        self.results: list[RunResult] = []  # what the UI link's columns are chosen from
        self.skipped = 0
        self.unlogged = 0
        self.status = "RUNNING"

    def check(self) -> None:
        """Every job's config, then (here, unless on the farm) each distinct (model factory, platform, backend) once."""
        for job in self.jobs:
            preflight.check_config(job.task, list(job.config.hydra.overrides.task))
        for section, why in (("tracking", "logs to one store and experiment"), ("farm", "runs on one farm")):
            if len({OmegaConf.to_yaml(job.task[section]) for job in self.jobs}) > 1:
                raise ConfigError(f"{section}.* differs between the jobs of this sweep: a sweep {why}")
        first = self.jobs[0].task
        self.tracking, self.resume, self.farm = first.tracking, first.resume, first.farm
        if self.farm.name != "ray":
            for job in {job.check_key: job for job in self.jobs}.values():
                preflight.check_point(job.task)
        self.keys = [point_key(job.task) for job in self.jobs]

    def open(self) -> None:
        """The folder (or a stand-in), the store, the jobs resume skips, and the parent run."""
        if not writable(self.dir):
            self.dir = self._stand_in("its files")
            self.dir.mkdir(parents=True, exist_ok=True)
        self.tracker = preflight.open_store(self.tracking, str(self.dir))
        online = self.tracker is not None and not self.tracker.down
        if self.resume and online:
            finished = self.tracker.finished_point_keys()
            todo = [job for job, key in zip(self.jobs, self.keys) if key not in finished]
            self.skipped = len(self.jobs) - len(todo)
            self.jobs = todo
            outcome.say_note(f"resume=true: {self.skipped} point(s) already finished in experiment "
                             f"{self.tracker.experiment_name!r} are skipped; {len(todo)} to measure")
        (self.dir / "multirun.yaml").write_text(credentials.redact(OmegaConf.to_yaml(self.config)))
        if online:
            try:
                self.parent_run_id = self.tracker.start_parent(
                    run_name=f"sweep {self.dir.name}",
                    tags={"embench.sweep_dir": str(self.dir.resolve()), SWEEP_UID_TAG: self.uid,
                          "embench.overrides": " ".join(self.config.hydra.overrides.task)},
                )
            except TrackingError as err:
                outcome.say_error(f"{err}; measuring anyway: results stay in {self.dir} "
                                  f"(upload them later with `embench sync {self.dir}`)")
        self.save()

    def save(self) -> None:
        """sweep.json: what `embench sync` needs to put the sweep's runs under one parent later."""
        record = {
            "sweep_uid": self.uid, "parent_run_id": self.parent_run_id, "status": self.status,
            "experiment": self.tracking.experiment, "tracking_uri": credentials.redact(absolute_uri(str(self.tracking.uri))),
            "name": f"sweep {self.dir.name}", "overrides": list(self.config.hydra.overrides.task),
            "host": socket.gethostname(), "time": time.time(), "jobs": len(self.jobs), "skipped": self.skipped,
        }
        try:
            (self.dir / SWEEP_FILE).write_text(json.dumps(record, indent=2))
        except OSError:
            pass  # the folder became unwritable: said where the runs' files went

    def job_config(self, number: int, job_cfg: DictConfig) -> DictConfig:
        job_cfg = copy.deepcopy(job_cfg)
        with open_dict(job_cfg):
            job_cfg.hydra.job.id = number
            job_cfg.hydra.job.num = number
            job_cfg.tracking.parent_run_id = self.parent_run_id
            job_cfg.tracking.sweep_uid = self.uid
        if not writable(self.dir):  # it became unwritable (or full) since the last job: this and later jobs go elsewhere
            self.dir = self._stand_in(f"job {number}'s files")
        with open_dict(job_cfg):
            job_cfg.hydra.sweep.dir = str(self.dir)
        return job_cfg

    def _stand_in(self, what: str) -> Path:
        """The folder that replaces an unwritable sweep folder, said in one line."""
        elsewhere = fallback_dir(self.dir)
        outcome.say_error(f"cannot write the sweep folder {self.dir}; {what} go to {elsewhere}")
        outcome.record(1)  # kept, but not where the user asked
        return elsewhere

    def record(self, job: Job, ret) -> str:
        """One job's outcome into the summary (its report, or the error that stopped it); returns its status."""
        if ret.status == JobStatus.FAILED:  # an error outside the measurement (I/O, a bug): the sweep goes on
            err = ret._return_value
            outcome.say_error(f"job {job.number} failed outside its measurement: {type(err).__name__}: {err}")
            outcome.record(1)
            result = RunResult(params=run_params(job.task))
            result.finish("failed", f"{type(err).__name__}: {err}")
        else:
            result = ret.return_value.result
            self.unlogged += bool(self.tracker and not ret.return_value.logged)
            outcome.record(ret.return_value.exit_code)
        row = summary_row(job.number, result)
        self.rows.append(row)
        self.results.append(result)
        return row["status"]

    def finish(self) -> None:
        """The summary table and file, and the parent run closed with the sweep's outcome."""
        failed = [row for row in self.rows if not row["status"].startswith("ok")]
        if self.status == "RUNNING":
            self.status = "FAILED" if failed else "FINISHED"
        self.rows.sort(key=lambda row: row["job"])  # a farm finishes jobs out of order
        _print_table(self.rows)
        for row in failed:
            print(f"failed: job {row['job']} model={row['model']} batch={row['batch']}: {row['status']}: {row['error']}",
                  file=sys.stderr)
        if failed:
            outcome.record(1)
        not_run = len(self.jobs) - len(self.rows)
        print(f"{len(self.rows)} job(s) run, {len(failed)} failed" + (f", {not_run} not run" if not_run else "")
              + (f", {self.skipped} skipped (already finished)" if self.skipped else ""))
        summary = self.dir / SUMMARY_FILE
        try:
            if self.rows:
                with summary.open("w", newline="") as handle:
                    writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
                    writer.writeheader()
                    writer.writerows(self.rows)
        except OSError as err:
            outcome.say_error(f"cannot write {summary} ({err.strerror}); the table above is the summary")
            outcome.record(1)
        self.save()
        self._close_parent(summary)
        if self.unlogged:
            outcome.say_note(f"{self.unlogged} run(s) did not reach MLflow; upload them with `embench sync {self.dir}`")

    def _close_parent(self, summary: Path) -> None:
        if not self.parent_run_id:
            return
        if self.tracker.down:  # already said; `embench sync` closes it later
            outcome.record(TrackingError.exit_code)
            return
        try:
            if summary.exists():
                self.tracker.client.log_artifact(self.parent_run_id, str(summary))
            self.tracker.terminate(self.parent_run_id, self.status)
            self._link_to_ui()
        except Exception as err:
            outcome.say_error(f"could not close the sweep's MLflow run {self.parent_run_id}: {credentials.redact(str(err))}")
            outcome.record(TrackingError.exit_code)

    def _link_to_ui(self) -> None:
        """The sweep's view in the MLflow UI (its runs, sorted, with the columns that tell them apart), stored as the
        experiment's shared view; the parent's description gets the link and the summary table; the link is printed."""
        params = [result.params for result in self.results]
        headline = ui_link.headline_metric(params[0] if params else {})
        logged = {key for result in self.results for key in result.metrics}
        state = ui_link.view_state(f"tags.mlflow.parentRunId = '{self.parent_run_id}'", headline,
                                   ui_link.varying_settings(params, self._overridden()),
                                   [metric for metric in ui_link.FIGURES if metric in logged])
        key = ui_link.share_key(state)
        client, experiment_id = self.tracker.client, self.tracker.experiment_id
        client.set_experiment_tag(experiment_id, ui_link.SHARE_TAG_PREFIX + key, json.dumps(state))
        base, command = ui_link.ui_base(self.tracker.uri)
        link = ui_link.runs_link(base, experiment_id, key)
        table = ui_link.markdown_table(self.rows, list(_COLUMNS))
        client.set_tag(self.parent_run_id, ui_link.DESCRIPTION_TAG,
                       ui_link.sweep_description(f"sweep {self.dir.name}", link, command, table))
        print(ui_link.how_to_open(link, command))

    def _overridden(self) -> list[str]:
        """The keys the command line set (`batch=1,2` -> batch)."""
        return [item.split("=", 1)[0].lstrip("+~") for item in self.config.hydra.overrides.task]


def _jobs_runner(farm: DictConfig):
    """Where the jobs run: farm=local (a worker process), farm=inline (this process) or farm=ray."""
    if farm.name == "ray":
        from embench.farm import RayFarm

        return RayFarm(farm)
    from embench.workers import InlineJobs, LocalJobs

    return InlineJobs() if farm.name == "inline" else LocalJobs()


def _keep(hydra_context, job_config: DictConfig, measured) -> JobReturn:
    """The job's folder and MLflow run, through Hydra; when Hydra cannot write the folder (a full disk), without
    Hydra: the run's files then go to their stand-in folder, or to MLflow alone."""
    try:
        return run_job(hydra_context=hydra_context, task_function=functools.partial(keep_measured, measured=measured),
                       config=job_config, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except OSError:
        task_cfg = copy.deepcopy(job_config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        out_dir, log_name = Path(job_config.hydra.runtime.output_dir), f"{job_config.hydra.job.name}.log"
        return JobReturn(status=JobStatus.COMPLETED, _return_value=keep_measured_in(task_cfg, measured, out_dir, log_name))


def run_sweep(config: DictConfig, hydra_context, job_overrides: list[list[str]]) -> list:
    """Checks every job, then runs them where farm=* says and keeps each result here; returns Hydra JobReturns."""
    loader = hydra_context.config_loader
    str(config.hydra.sweep.dir)  # resolve the folder's time and name once: every job's config copies them
    jobs = [Job(number, list(overrides), loader.load_sweep_config(config, list(overrides)))
            for number, overrides in enumerate(job_overrides)]
    sweep = Sweep(config, jobs)
    sweep.check()
    runner = _jobs_runner(sweep.farm)
    returns = []
    try:
        runner.check(sweep.jobs)
        setup_globals()
        with signals.deferred():
            sweep.open()
        progress = Progress(len(sweep.jobs))
        try:
            for job, measured in runner.run(sweep.jobs):
                measured.result.tags["embench.farm"] = sweep.farm.name
                if job.retried:
                    measured.result.tags["farm.retried"] = job.retried
                ret = _keep(hydra_context, sweep.job_config(job.number, job.config), measured)
                configure_log(config.hydra.hydra_logging, config.hydra.verbose)
                progress.finished(f"#{job.number} {measured.result.point()}", sweep.record(job, ret))
                returns.append(ret)
                if measured.interrupted_by:
                    raise signals.Interrupted(measured.interrupted_by)
        except signals.Interrupted:
            sweep.status = "KILLED"
            raise
        except BaseException:
            sweep.status = "FAILED"
            raise
        finally:
            progress.close()
            with signals.deferred():
                sweep.finish()
    finally:
        runner.close()
    return returns

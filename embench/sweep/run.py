"""A multirun sweep: check every job first, then one MLflow parent run, the jobs, a summary table.

embench's Hydra sweeper (hydra_plugins/embench_sweeper) expands the sweep and hands the list of jobs
to `run_sweep`, which owns the sweep's whole life: nothing is measured before every job passes the
checks (embench.checks), the parent run ends FINISHED, FAILED or KILLED on every path the process
can take, and a folder that cannot be written is replaced.
"""

import copy
import functools
import logging
import sys
import uuid
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from omegaconf import DictConfig, OmegaConf, open_dict

from embench import checks, credentials, outcome, signals
from embench.artifacts import fallback_dir, writable
from embench.config.paths import add_colocated_models, search_dirs
from embench.farms.base import Farm, Job, task_config
from embench.point.keep import keep_measured, keep_measured_in
from embench.progress import Progress
from embench.result import RunResult, point_key, run_params
from embench.sweep.parent import ParentRun
from embench.sweep.summary import SUMMARY_FILE, print_table, summary_row, write_csv
from embench.sweep.timeline import Timeline, describe
from embench.tracking import tracker_for

log = logging.getLogger("embench")


class Sweep:
    """One sweep's state: its folder, farm, parent run, exit code, and the jobs' reports as they come back."""

    def __init__(self, config: DictConfig, jobs: list[Job], farm: Farm, result: outcome.Outcome):
        self.config, self.jobs, self.farm, self.outcome = config, jobs, farm, result
        first = jobs[0].task
        self.tracking, self.resume = first.tracking, first.resume
        self.dir = Path(config.hydra.sweep.dir).absolute()
        self.parent: ParentRun | None = None
        self.rows: list[dict] = []
        self.results: list[RunResult] = []  # what the UI link's columns are chosen from
        self.skipped = 0
        self.unlogged = 0
        self.timeline = Timeline()
        self.status = "RUNNING"

    def open(self) -> None:
        """The folder (or a stand-in), the store, the jobs resume skips, and the parent run."""
        if not writable(self.dir):
            self.dir = self._stand_in("its files")
            self.dir.mkdir(parents=True, exist_ok=True)
        tracker = checks.open_store(self.tracking, str(self.dir))
        online = tracker is not None and not tracker.down
        if self.resume and online:
            finished = tracker.finished_point_keys()
            todo = [job for job in self.jobs if point_key(job.task) not in finished]
            self.skipped = len(self.jobs) - len(todo)
            self.jobs = todo
            outcome.say_note(f"resume=true: {self.skipped} point(s) already finished in experiment "
                             f"{tracker.experiment_name!r} are skipped; {len(todo)} to measure")
        (self.dir / "multirun.yaml").write_text(credentials.redact(OmegaConf.to_yaml(self.config)))
        self.parent = ParentRun(self.config, self.tracking, tracker, uuid.uuid4().hex)
        self.parent.start(self.dir)
        self.save()

    def save(self) -> None:
        self.parent.save(self.dir, self.status, len(self.jobs), self.skipped)

    def job_config(self, number: int, job_cfg: DictConfig) -> DictConfig:
        job_cfg = copy.deepcopy(job_cfg)
        with open_dict(job_cfg):
            job_cfg.hydra.job.id = number
            job_cfg.hydra.job.num = number
            job_cfg.tracking.parent_run_id = self.parent.run_id
            job_cfg.tracking.sweep_uid = self.parent.uid
        if not writable(self.dir):  # it became unwritable (or full) since the last job: this and later jobs go elsewhere
            self.dir = self._stand_in(f"job {number}'s files")
        with open_dict(job_cfg):
            job_cfg.hydra.sweep.dir = str(self.dir)
        return job_cfg

    def _stand_in(self, what: str) -> Path:
        """The folder that replaces an unwritable sweep folder, said in one line."""
        elsewhere = fallback_dir(self.dir)
        outcome.say_error(f"cannot write the sweep folder {self.dir}; {what} go to {elsewhere}")
        self.outcome.record(1)  # kept, but not where the user asked
        return elsewhere

    def record(self, job: Job, ret: JobReturn) -> str:
        """One job's outcome into the summary (its report, or the error that stopped it); returns its status."""
        try:
            report = ret.return_value  # Hydra raises here what stopped the job outside its measurement
        except Exception as err:  # an error outside the measurement (I/O, a bug): the sweep goes on
            outcome.say_error(f"job {job.number} failed outside its measurement: {type(err).__name__}: {err}")
            self.outcome.record(1)
            result = RunResult(params=run_params(job.task))
            result.finish("failed", f"{type(err).__name__}: {err}")
        else:
            result = report.result
            self.unlogged += bool(self.parent.tracker and not report.logged)
            self.outcome.record(report.exit_code)
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
        print_table(self.rows)
        for row in failed:
            print(f"failed: job {row['job']} model={row['model']} batch={row['batch']}: {row['status']}: {row['error']}",
                  file=sys.stderr)
        if failed:
            self.outcome.record(1)
        not_run = len(self.jobs) - len(self.rows)
        print(f"{len(self.rows)} job(s) run, {len(failed)} failed" + (f", {not_run} not run" if not_run else "")
              + (f", {self.skipped} skipped (already finished)" if self.skipped else ""))
        figures = self.timeline.figures(self.results, serial=self.farm.measures_here)
        print(describe(figures))
        summary = self.dir / SUMMARY_FILE
        try:
            write_csv(self.rows, summary)
        except OSError as err:
            outcome.say_error(f"cannot write {summary} ({err.strerror}); the table above is the summary")
            self.outcome.record(1)
        self.save()
        self.outcome.record(self.parent.close(self.status, summary, self.results, self.rows, f"sweep {self.dir.name}",
                                              figures))
        if self.unlogged:
            outcome.say_note(f"{self.unlogged} run(s) did not reach MLflow; upload them with `embench sync {self.dir}`")


def _keep(hydra_context, job_config: DictConfig, measured) -> JobReturn:
    """The job's folder and MLflow run, through Hydra; when Hydra cannot write the folder (a full disk), without
    Hydra: the run's files then go to their stand-in folder, or to MLflow alone."""
    try:
        return run_job(hydra_context=hydra_context, task_function=functools.partial(keep_measured, measured=measured),
                       config=job_config, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except OSError:
        out_dir, log_name = Path(job_config.hydra.runtime.output_dir), f"{job_config.hydra.job.name}.log"
        ret = JobReturn(status=JobStatus.COMPLETED)
        ret.return_value = keep_measured_in(task_config(job_config), measured, out_dir, log_name)
        return ret


def _checked_jobs(config: DictConfig, hydra_context, job_overrides: list[list[str]]) -> tuple[list[Job], Farm]:
    """The sweep's jobs, each through embench.checks (all before the first is measured), and its farm."""
    loader = hydra_context.config_loader
    str(config.hydra.sweep.dir)  # resolve the folder's time and name once: every job's config copies them
    configs = [loader.load_sweep_config(config, list(overrides)) for overrides in job_overrides]
    dirs = search_dirs(config.hydra)
    tasks = [task_config(job_cfg) for job_cfg in configs]
    for task, job_cfg in zip(tasks, configs):
        checks.check_config(task, list(job_cfg.hydra.overrides.task), dirs)
    checks.check_shared(tasks)
    farm = checks.make_farm(tasks[0].farm)  # farm.check checks the points where they are measured
    for task in tasks:
        add_colocated_models(task, dirs)
    jobs = [Job(number, list(overrides), job_cfg, task)
            for number, (overrides, job_cfg, task) in enumerate(zip(job_overrides, configs, tasks))]
    return jobs, farm


def run_sweep(config: DictConfig, hydra_context, job_overrides: list[list[str]], result: outcome.Outcome) -> list:
    """Checks every job, then runs them on the farm and keeps each result here; returns Hydra JobReturns and
    records the sweep's exit code in `result`."""
    jobs, farm = _checked_jobs(config, hydra_context, job_overrides)
    sweep = Sweep(config, jobs, farm, result)
    returns = []
    try:
        meanwhile = tracker_for(sweep.tracking).import_meanwhile() if sweep.tracking.enabled else None
        farm.check(sweep.jobs)
        if meanwhile:
            meanwhile.join()
        setup_globals()
        with signals.deferred():
            sweep.open()
        progress = Progress(len(sweep.jobs))
        sweep.timeline.start_jobs()
        try:
            for job, measured in farm.run(sweep.jobs):
                measured.result.tags["embench.farm"] = farm.name
                if job.retried:
                    measured.result.tags["farm.retried"] = job.retried
                with sweep.timeline.keeping():
                    ret = _keep(hydra_context, sweep.job_config(job.number, job.config), measured)
                configure_log(config.hydra.hydra_logging, config.hydra.verbose)
                progress.finished(f"#{job.number} {measured.result.point()}", sweep.record(job, ret))
                returns.append(ret)
                if measured.interrupted_by:
                    raise signals.Interrupted(measured.interrupted_by)
        except KeyboardInterrupt:  # a signal (signals.Interrupted), or one a library's own loop turned into this
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
        farm.close()
    return returns

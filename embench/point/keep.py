"""Keeping a measured job: its folder (log, traceback, result files) and its MLflow run."""

import logging
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from embench import credentials, outcome, signals
from embench.artifacts import scrub_credentials, write_run_files, write_traceback
from embench.errors import TrackingError
from embench.names import (
    BATCH_TIME_MS,
    COLOCATED,
    EARLY_STOPPING_P90_MS,
    LATENCY_CV,
    LATENCY_MAX_MS,
    LATENCY_MEDIAN_MS,
    LATENCY_MIN_MS,
    LATENCY_P99_MS,
    LOADGEN_UNMET_TAG,
    LOADGEN_VALIDITY_TAG,
    OFFERED_QPS,
    PROTOCOL_HEADLINE_PARAM,
    QUERY_LATENCY_P50_MS,
    QUERY_LATENCY_P99_MS,
    SCENARIO_PARAM,
    SERVER_MAX_QPS,
    TARGET_QPS_PARAM,
    THROUGHPUT_IPS,
)
from embench.point.job import Measured
from embench.result import RunResult
from embench.tracking import absolute_uri, tracker_for
from embench.ui_link import accuracy_phrase

log = logging.getLogger("embench")


@dataclass
class JobReport:
    """What one job hands back to whoever ran it: its result (None if it never started) and exit code."""

    result: RunResult | None
    exit_code: int
    files: Path | None = None  # where its files are, when they could be written
    logged: bool = False  # whether the run reached MLflow
    run_id: str | None = None  # its MLflow run, when it did


def keep(cfg: DictConfig, result: RunResult, out_dir: Path) -> JobReport:
    """Writes the run's files, then logs it to MLflow; a signal waits until both are done."""
    with signals.deferred():
        child_files = _write_children(result, out_dir, cfg)
        files = write_run_files(out_dir, result, cfg)
        code = 0 if files == out_dir else 1
        if not cfg.tracking.enabled:
            return JobReport(result, code, files)
        tracker = tracker_for(cfg.tracking)
        if tracker.down:  # already said, once
            return JobReport(result, max(code, TrackingError.exit_code), files)
        log.info("logging %s to MLflow", result.point())
        try:
            run_id = tracker.log_result(result, files, cfg.tracking.parent_run_id)
            for child, folder in zip(result.children, child_files):
                tracker.log_result(child, folder, run_id)
        except TrackingError as err:
            outcome.say_error(f"{err}; the result is kept in {files} (upload it later with `embench sync {files}`)")
            return JobReport(result, max(code, err.exit_code), files)
    log.info("logged to MLflow %s, experiment %r, run %s", tracker.uri, tracker.experiment_name, run_id)
    return JobReport(result, code, files, logged=True, run_id=run_id)


def _write_children(result: RunResult, out_dir: Path, cfg: DictConfig) -> list[Path | None]:
    """Each nested run's files in `<run folder>/children/<n>_<what>/`, before anything reaches MLflow."""
    return [write_run_files(out_dir / "children" / f"{number}_{_child_name(child)}", child, cfg)
            for number, child in enumerate(result.children)]


def _child_name(child: RunResult) -> str:
    return f"qps{float(child.params[TARGET_QPS_PARAM]):.4g}"


def keep_measured(cfg: DictConfig, measured: Measured) -> JobReport:
    """In the job's Hydra context: its folder (log, traceback, result files), then its MLflow run."""
    hydra_cfg = HydraConfig.get()
    return keep_measured_in(cfg, measured, Path(hydra_cfg.runtime.output_dir), f"{hydra_cfg.job.name}.log")


def keep_measured_in(cfg: DictConfig, measured: Measured, out_dir: Path, log_name: str) -> JobReport:
    """The job's folder `out_dir` (log, traceback, result files, or their stand-ins), then its MLflow run."""
    scrub_credentials(out_dir / ".hydra")
    result = measured.result
    result.tracking = {
        "uri": credentials.redact(absolute_uri(cfg.tracking.uri)), "experiment": cfg.tracking.experiment,
        "parent_run_id": cfg.tracking.parent_run_id, "sweep_uid": cfg.tracking.sweep_uid,
    }
    for child in result.children:
        child.tracking = result.tracking
    if measured.log:  # measured elsewhere: its lines join the job's log
        try:
            with (out_dir / log_name).open("a") as job_log:
                job_log.writelines(line + "\n" for line in measured.log)
        except OSError:
            pass  # the folder cannot be written: write_run_files says so and keeps the result elsewhere
    if measured.traceback:
        where = write_traceback(out_dir, measured.traceback)
        outcome.say_error(f"{result.point()}: {result.status}: {result.error} (traceback in {where})")
    report = keep(cfg, result, out_dir)
    report.exit_code = max(measured.exit_code, report.exit_code)
    if result.status == "ok":
        _report(result, report.files)
    return report


def _report(result: RunResult, files: Path | None) -> None:
    m = result.metrics
    slowdowns = {key.split(".")[1]: value for key, value in m.items() if key.startswith(COLOCATED) and key.endswith(".slowdown_p50")}
    if slowdowns:
        figure = "co-located, median query latency together / alone: " + ", ".join(
            f"{name} {m[f'{COLOCATED}{name}.alone.{QUERY_LATENCY_P50_MS}']:.3f} -> "
            f"{m[f'{COLOCATED}{name}.together.{QUERY_LATENCY_P50_MS}']:.3f} ms (x{ratio:.2f})" for name, ratio in slowdowns.items())
        log.info("%s: %s; files in %s", result.point(), figure, files)
        return
    if LATENCY_MEDIAN_MS in m:
        tail = f"p99 {m[LATENCY_P99_MS]:.3f}" if LATENCY_P99_MS in m else f"max {m[LATENCY_MAX_MS]:.3f}"  # p99 from 100 calls
        spread = f"{tail}, CV {100 * m[LATENCY_CV]:.1f}%"
        if result.params.get(PROTOCOL_HEADLINE_PARAM) == "min":  # the paper's statistic leads
            figure = f"min {m[LATENCY_MIN_MS]:.3f} ms (median {m[LATENCY_MEDIAN_MS]:.3f}, {spread})"
        else:
            figure = f"median {m[LATENCY_MEDIAN_MS]:.3f} ms (min {m[LATENCY_MIN_MS]:.3f}, {spread})"
        if EARLY_STOPPING_P90_MS in m:
            figure += f", LoadGen's early-stopping p90 {m[EARLY_STOPPING_P90_MS]:.3f} ms"
    elif QUERY_LATENCY_P99_MS in m:
        offered = f" at {m[OFFERED_QPS]:.4g} QPS offered" if OFFERED_QPS in m else ""
        figure = f"{result.params.get(SCENARIO_PARAM)}{offered}: query latency p50 {m[QUERY_LATENCY_P50_MS]:.3f} ms, " \
                 f"p99 {m[QUERY_LATENCY_P99_MS]:.3f} ms, LoadGen {result.tags[LOADGEN_VALIDITY_TAG]}" + \
                 ("" if result.tags[LOADGEN_UNMET_TAG] == "none" else f" (unmet: {result.tags[LOADGEN_UNMET_TAG]})")
        if SERVER_MAX_QPS in m:
            figure += f"; highest valid QPS {m[SERVER_MAX_QPS]:.4g}"
    else:
        figure = f"{m[BATCH_TIME_MS]:.3f} ms per batch back to back"
    accuracy = accuracy_phrase(m)
    figure += f", {m[THROUGHPUT_IPS]:.1f} inferences/s" + (f"; {accuracy}" if accuracy else "")
    log.info("%s: %s; files in %s", result.point(), figure, files)

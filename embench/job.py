"""One Hydra job: check, measure, write the result file, log to MLflow; returns what happened."""

import logging
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from embench import credentials, outcome, preflight, signals
from embench.artifacts import scrub_credentials, write_run_files, write_traceback
from embench.errors import EmbenchError, TrackingError
from embench.result import RunResult, point_key, run_params
from embench.tracking import POINT_KEY_TAG, absolute_uri, tracker_for

log = logging.getLogger("embench")


@dataclass
class JobReport:
    """What one job hands back to whoever ran it: its result (None if it never started) and exit code."""

    result: RunResult | None
    exit_code: int
    files: Path | None = None  # where its files are, when they could be written
    logged: bool = False  # whether the run reached MLflow


def _is_out_of_memory(err: BaseException) -> bool:
    import torch

    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _measure(cfg: DictConfig, result: RunResult, out_dir: Path) -> int:
    """Runs the measurement; turns every failure into a recorded status and an exit code."""
    from embench import runner

    try:
        runner.run(cfg, result)
        result.finish("ok")
        return 0
    except EmbenchError as err:
        result.finish("failed", str(err))
        outcome.say_error(str(err))
        return err.exit_code
    except Exception as err:  # a failing job is recorded, and the sweep goes on
        status = "oom" if _is_out_of_memory(err) else "failed"
        where = write_traceback(out_dir, err)
        result.finish(status, f"{type(err).__name__}: {' '.join(str(err).split())[:500]}")
        outcome.say_error(f"{result.point()}: {status}: {result.error} (traceback in {where})")
        return 1
    finally:
        _release_memory()


def _release_memory() -> None:
    """Frees what a run left behind (after an out-of-memory above all) before the sweep's next job."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def keep(cfg: DictConfig, result: RunResult, out_dir: Path) -> JobReport:
    """Writes the run's files, then logs it to MLflow; a signal waits until both are done."""
    with signals.deferred():
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
        except TrackingError as err:
            outcome.say_error(f"{err}; the result is kept in {files} (upload it later with `embench sync {files}`)")
            return JobReport(result, max(code, err.exit_code), files)
    log.info("logged to MLflow %s, experiment %r, run %s", tracker.uri, tracker.experiment_name, run_id)
    return JobReport(result, code, files, logged=True)


def _check_single_run(cfg: DictConfig, out_dir: Path) -> JobReport | None:
    """A single run's preflight (a sweep checks all its jobs before the first): a report if it must stop."""
    try:
        preflight.check_config(cfg, list(HydraConfig.get().overrides.task))
        preflight.check_point(cfg)
        tracker = preflight.open_store(cfg.tracking, str(out_dir))
    except EmbenchError as err:
        outcome.say_error(str(err))
        return JobReport(None, err.exit_code)
    if cfg.resume and tracker and not tracker.down and point_key(cfg) in tracker.finished_point_keys():
        outcome.say_note(f"resume=true: this point is already measured in experiment {cfg.tracking.experiment!r}; skipped")
        return JobReport(None, 0)
    return None


def run_job(cfg: DictConfig) -> JobReport:
    """Measures one point: 0 ok, 1 failed run, 2 bad input, 3 MLflow unreachable, 128+N a signal."""
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    scrub_credentials(out_dir / ".hydra")
    if hydra_cfg.mode != RunMode.MULTIRUN:
        stop = _check_single_run(cfg, out_dir)
        if stop:
            return stop
    result = RunResult(params=run_params(cfg), tracking={
        "uri": credentials.redact(absolute_uri(cfg.tracking.uri)), "experiment": cfg.tracking.experiment,
        "parent_run_id": cfg.tracking.parent_run_id, "sweep_uid": cfg.tracking.sweep_uid,
    })
    result.tags[POINT_KEY_TAG] = point_key(cfg)
    try:
        code = _measure(cfg, result, out_dir)
    except signals.Interrupted as err:
        result.finish("killed", err.describe())
        keep(cfg, result, out_dir)
        raise
    report = keep(cfg, result, out_dir)
    report.exit_code = max(code, report.exit_code)
    if result.status == "ok":
        _report(result, report.files)
    return report


def _report(result: RunResult, files: Path | None) -> None:
    m = result.metrics
    if "latency_median_ms" in m:
        figure = f"median {m['latency_median_ms']:.3f} ms (min {m['latency_min_ms']:.3f}, p99 {m['latency_p99_ms']:.3f}, " \
                 f"CV {100 * m['latency_cv']:.1f}%)"
    else:
        figure = f"{m['batch_time_ms']:.3f} ms per batch back to back"
    log.info("%s: %s, %.1f inferences/s; files in %s", result.point(), figure, m["throughput_ips"], files)

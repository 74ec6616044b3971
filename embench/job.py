"""One Hydra job: validate, measure, write the result file, log to MLflow, report."""

import logging
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from embench import outcome
from embench.artifacts import write_run_files, write_traceback
from embench.errors import EmbenchError, TrackingError
from embench.result import RunResult, run_params
from embench.validate import validate

log = logging.getLogger("embench")


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


def _track(cfg: DictConfig, result: RunResult, out_dir: Path) -> int:
    if not cfg.tracking.enabled:
        return 0
    from embench.tracking import PARENT_RUN_ENV, tracker_for

    try:
        tracker = tracker_for(cfg.tracking)
        run_id = tracker.log_result(result, out_dir, os.environ.get(PARENT_RUN_ENV))
    except TrackingError as err:
        outcome.say_error(f"{err}; the result is kept in {out_dir / 'result.json'}")
        return err.exit_code
    log.info("logged to MLflow %s, experiment %r, run %s", tracker.uri, tracker.experiment_name, run_id)
    return 0


def _kill_sweep_parent(cfg: DictConfig) -> None:
    """After Ctrl-C the sweep's end is never reached: close its parent run here."""
    from embench.tracking import PARENT_RUN_ENV, tracker_for

    parent = os.environ.get(PARENT_RUN_ENV)
    if not (parent and cfg.tracking.enabled):
        return
    try:
        tracker_for(cfg.tracking).terminate(parent, "KILLED")
    except TrackingError:
        pass


def run_job(cfg: DictConfig) -> int:
    """Measures one point; returns the exit code (0 ok, 1 failed run, 2 bad input, 3 MLflow)."""
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    result = RunResult(params=run_params(cfg))
    try:
        validate(cfg)
    except EmbenchError as err:
        outcome.say_error(str(err))
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return err.exit_code  # nothing measured, nothing to track
        result.finish("failed", str(err))
        code = err.exit_code
    else:
        try:
            code = _measure(cfg, result, out_dir)
        except KeyboardInterrupt:
            result.finish("killed", "interrupted by the user (Ctrl-C)")
            write_run_files(out_dir, result, cfg)
            _track(cfg, result, out_dir)
            _kill_sweep_parent(cfg)
            raise
    write_run_files(out_dir, result, cfg)
    code = max(code, _track(cfg, result, out_dir))
    if result.status == "ok":
        _report(result, out_dir)
    return code


def _report(result: RunResult, out_dir: Path) -> None:
    m = result.metrics
    log.info(
        "%s: median %.3f ms (p99 %.3f, CV %.1f%%), %.1f inferences/s; files in %s",
        result.point(), m["latency_median_ms"], m["latency_p99_ms"], 100 * m["latency_cv"], m["throughput_ips"], out_dir,
    )

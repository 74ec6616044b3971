"""A job as a function of its config: measure one point and return what was learned, no files, no MLflow.

It runs wherever the point's device is: in the embench process, in a local worker process, or on a
farm node. Whoever called it writes the run folder and logs the MLflow run from the `Measured`.
"""

import logging
import time
import traceback
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

from embench import outcome, phases, signals
from embench.errors import EmbenchError
from embench.names import POINT_KEY_TAG
from embench.result import RunResult, point_key, run_params

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's job log format


@dataclass
class Measured:
    """One job's outcome, as it travels back to the process that keeps it."""

    result: RunResult
    exit_code: int
    log: list[str] = field(default_factory=list)  # the job's log lines, for its folder
    traceback: str | None = None
    interrupted_by: int | None = None  # the signal that cut the job short


def new_result(cfg: DictConfig) -> RunResult:
    result = RunResult(params=run_params(cfg))
    result.tags[POINT_KEY_TAG] = point_key(cfg)
    return result


def died(cfg: DictConfig, reason: str) -> Measured:
    """The Measured of a job whose process or node died before it could answer."""
    result = new_result(cfg)
    result.finish("failed", reason)
    outcome.say_error(f"{result.point()}: failed: {reason}")
    return Measured(result, 1)


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _is_out_of_memory(err: BaseException) -> bool:
    import torch

    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def measure_point(cfg: DictConfig, asked_at: float | None = None) -> Measured:
    """Measures the point; every failure, and a signal, becomes a recorded status and an exit code.

    `asked_at` (time.monotonic) is when the job's process was asked for: the wait until now is its start.
    """
    from embench.point import runner

    began = time.monotonic()
    result = new_result(cfg)
    if asked_at is not None:
        result.metrics["job_start_s"] = began - asked_at
    capture = _Capture()
    logging.getLogger().addHandler(capture)
    measured = Measured(result, 0, capture.lines)
    try:
        runner.run(cfg, result)
        result.finish("ok")
    except signals.Interrupted as stop:
        result.finish("killed", stop.describe())
        measured.exit_code, measured.interrupted_by = stop.exit_code, stop.signum
    except EmbenchError as err:
        result.finish("failed", str(err))
        outcome.say_error(str(err))
        measured.exit_code = err.exit_code
    except Exception as err:  # a failing job is recorded, and the sweep goes on
        result.finish("oom" if _is_out_of_memory(err) else "failed",
                      f"{type(err).__name__}: {' '.join(str(err).split())[:500]}")
        measured.exit_code, measured.traceback = 1, traceback.format_exc()
    finally:
        logging.getLogger().removeHandler(capture)
        _release_memory()
        phases.close(result.metrics, began if asked_at is None else asked_at)
    return measured


def measure_yaml(task: str, asked_at: float | None = None) -> Measured:
    """measure_point for a config sent as YAML text: what workers and farm nodes receive."""
    return measure_point(OmegaConf.create(task), asked_at)


def _release_memory() -> None:
    """Frees what a run left behind (after an out-of-memory above all) before the next job."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()

"""MLflow: one run per measured point, one parent run per sweep, nothing left RUNNING."""

import logging
import os
import time
from functools import cache
from pathlib import Path

from omegaconf import DictConfig

from embench.errors import TrackingError
from embench.result import RunResult

PARENT_RUN_ENV = "EMBENCH_PARENT_RUN_ID"
_STATUS = {"ok": "FINISHED", "failed": "FAILED", "oom": "FAILED", "killed": "KILLED"}
_MAX_PARAM_CHARS = 6000
_MAX_TAG_CHARS = 8000


def absolute_uri(uri: str) -> str:
    """A relative sqlite path made absolute, so every job of a sweep writes to one store."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def tracker_for(tracking_cfg: DictConfig) -> "Tracker":
    """One tracker per store and experiment for the whole process: a sweep's jobs share it."""
    return _tracker(str(tracking_cfg.uri), str(tracking_cfg.experiment), int(tracking_cfg.http_max_retries), float(tracking_cfg.http_timeout_s))


@cache
def _tracker(uri: str, experiment: str, http_max_retries: int, http_timeout_s: float) -> "Tracker":
    return Tracker(uri, experiment, http_max_retries, http_timeout_s)


def _short(err: Exception) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 300 else text[:297] + "..."


class Tracker:
    """An MLflow client bound to one tracking URI and experiment."""

    def __init__(self, uri: str, experiment: str, http_max_retries: int, http_timeout_s: float):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(http_max_retries))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(http_timeout_s))
        from mlflow import MlflowClient

        # After the import: importing mlflow configures its own loggers at INFO.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)

        self.uri = absolute_uri(uri)
        self.experiment_name = experiment
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            experiment = self.client.get_experiment_by_name(self.experiment_name)
            self.experiment_id = (
                experiment.experiment_id if experiment else self.client.create_experiment(self.experiment_name)
            )
        except Exception as err:  # MLflow raises many kinds: connection, SQL, REST, bad URI
            raise TrackingError(f"could not reach MLflow at {self.uri}: {_short(err)}") from err

    def start_parent(self, run_name: str, tags: dict[str, str]) -> str:
        """Creates a RUNNING parent run for a sweep and returns its id."""
        try:
            return self.client.create_run(self.experiment_id, run_name=run_name, tags=tags).info.run_id
        except Exception as err:
            raise TrackingError(f"could not create the sweep's MLflow run at {self.uri}: {_short(err)}") from err

    def terminate(self, run_id: str, status: str) -> None:
        try:
            self.client.set_terminated(run_id, status=status)
        except Exception as err:
            raise TrackingError(f"could not close MLflow run {run_id} at {self.uri}: {_short(err)}") from err

    def log_result(self, result: RunResult, artifact_dir: Path, parent_run_id: str | None) -> str:
        """Logs one run (params, metrics, tags, artifacts) and closes it; returns its run id."""
        from mlflow.entities import Metric, Param
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        tags = dict(result.tags, status=result.status)
        if result.error:
            tags["error"] = result.error[:_MAX_TAG_CHARS]
        if parent_run_id:
            tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        name = "_".join(result.params[key] for key in ("model", "platform", "backend")) + f"_b{result.params['batch']}"
        run_id = None
        try:
            run = self.client.create_run(
                self.experiment_id, start_time=int(result.start_time * 1000), run_name=name, tags=tags
            )
            run_id = run.info.run_id
            now = int(time.time() * 1000)
            self.client.log_batch(
                run_id,
                metrics=[Metric(key, float(value), now, 0) for key, value in result.metrics.items()],
                params=[Param(key, value[:_MAX_PARAM_CHARS]) for key, value in result.params.items()],
            )
            self.client.log_artifacts(run_id, str(artifact_dir))
            self.client.set_terminated(run_id, status=_STATUS[result.status], end_time=int(result.end_time * 1000))
            return run_id
        except Exception as err:
            if run_id:
                self._close_quietly(run_id)
            raise TrackingError(f"could not log to MLflow at {self.uri}: {_short(err)}") from err

    def _close_quietly(self, run_id: str) -> None:
        """Best effort: a run whose logging broke off is marked FAILED, not left RUNNING."""
        try:
            self.client.set_terminated(run_id, status="FAILED")
        except Exception:
            pass

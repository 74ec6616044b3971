"""MLflow: one run per measured point, one parent run per sweep, nothing left RUNNING.

Every run embench creates carries the host and process that own it, so that a later embench
command can close the runs of a process that died without a word (SIGKILL, the OOM killer).
"""

import contextlib
import hashlib
import importlib
import logging
import os
import socket
import threading
import time
from functools import cache
from pathlib import Path

import psutil
from omegaconf import DictConfig

from embench import credentials, outcome, ui_link
from embench.errors import ConfigError, TrackingError
from embench.names import (
    BACKEND_PARAM,
    BATCH_PARAM,
    ERROR_TAG,
    MODEL_PARAM,
    PARENT_RUN_TAG,
    PLATFORM_PARAM,
    POINT_KEY_TAG,
    PRECISION_TAG,
    PROTOCOL_PARAM,
    RUN_UID_TAG,
    RUNTIME_PRECISION_PARAM,
    SCENARIO_PARAM,
    STATUS_TAG,
    SWEEP_UID_TAG,
)
from embench.result import RunResult

_STATUS = {"ok": "FINISHED", "failed": "FAILED", "oom": "FAILED", "killed": "KILLED"}
_MAX_PARAM_CHARS = 6000
_MAX_TAG_CHARS = 8000
HOST_TAG, PID_TAG, PID_START_TAG = "embench.host", "embench.pid", "embench.pid_started"
_SQL_STORE = "mlflow.store.tracking.sqlalchemy_store"  # what a database URI's store imports (1 s)
_NOT_A_STORE = ("registered tracking store", "unsupported URI", "Invalid SQLite URL")  # bad input, not an outage
LOGGED_TAG = "embench.logged"  # set last: a run without it was cut off while being logged


def absolute_uri(uri: str) -> str:
    """A relative sqlite path made absolute, so every job of a sweep writes to one store."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def owner_tags() -> dict[str, str]:
    """Which process on which host owns a run while it is RUNNING."""
    me = psutil.Process()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(me.pid), PID_START_TAG: f"{me.create_time():.2f}"}


def _owner_is_dead(tags: dict[str, str]) -> bool:
    """True when the run's owner ran on this host and that process is gone (its PID reused or free)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    try:
        return f"{psutil.Process(int(tags[PID_TAG])).create_time():.2f}" != tags.get(PID_START_TAG)
    except psutil.NoSuchProcess:
        return True


def tracker_for(tracking_cfg: DictConfig) -> "Tracker":
    """One tracker per store and experiment for the whole process: a sweep's jobs share it."""
    return _tracker(str(tracking_cfg.uri), str(tracking_cfg.experiment), int(tracking_cfg.http_max_retries),
                    int(tracking_cfg.http_timeout_s))


@cache
def _tracker(uri: str, experiment: str, http_max_retries: int, http_timeout_s: int) -> "Tracker":
    return Tracker(uri, experiment, http_max_retries, http_timeout_s)


def _short(err: Exception) -> str:
    text = credentials.redact(" ".join(str(err).split()))
    return text if len(text) <= 300 else text[:297] + "..."


def _refused(err: Exception) -> int | None:
    """401 or 403 when the server refused the user or its rights; None for any other failure."""
    status = getattr(err, "get_http_status_code", lambda: None)()
    return status if status in (401, 403) else None


def _sqlite_lock(uri: str):
    """A lock across processes for creating one sqlite store: MLflow's schema migration races."""
    from filelock import FileLock

    from embench.cache import cache_dir

    return FileLock(str(cache_dir("locks") / f"{hashlib.sha1(uri.encode()).hexdigest()[:16]}.lock"), timeout=120)


class Refused(TrackingError):
    """The server refused the user (401) or its rights on the experiment (403)."""


class Tracker:
    """An MLflow client bound to one tracking URI and experiment; connects on first use.

    Once the store has failed, every later call fails at once (no sweep waits out a dead server
    job after job); `down` says why. A server that refuses the credentials when embench connects
    (before anything is measured) is a ConfigError.
    """

    def __init__(self, uri: str, experiment: str, http_max_retries: int, http_timeout_s: int):
        # MLflow reads these from the environment: the run's settings (which took the environment's as defaults) win
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(http_max_retries)
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(http_timeout_s)  # MLflow wants whole seconds
        self.uri = absolute_uri(credentials.move_to_environment(uri))
        self.experiment_name = experiment
        self.down: str | None = None
        self._client = None
        self._experiment_id = None

    @property
    def client(self):
        self._connect()
        return self._client

    @property
    def experiment_id(self) -> str:
        self._connect()
        return self._experiment_id

    def import_meanwhile(self) -> threading.Thread:
        """Imports MLflow (and its SQL store for a database URI), 2 s, in a thread while this process waits on
        others (a farm's checks); join it before the first use."""
        modules = ["mlflow"] + ([] if self.uri.startswith(("http:", "https:", "file:")) else [_SQL_STORE])
        thread = threading.Thread(target=lambda: [importlib.import_module(module) for module in modules], daemon=True)
        thread.start()
        return thread

    def _connect(self) -> None:
        if self._client is not None:
            return
        if self.down:
            raise TrackingError(self.down)
        from mlflow import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # importing mlflow sets its loggers to INFO
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # It prints a traceback with every SQL error (a full disk, a locked store); embench says each in one line.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        try:
            with _sqlite_lock(self.uri) if self.uri.startswith("sqlite:") else contextlib.nullcontext():
                client, experiment_id = self._open(MlflowClient)
        except (ConfigError, TrackingError):
            raise
        except Exception as err:  # MLflow raises many kinds: connection, SQL, REST, bad URI
            if _refused(err):
                raise ConfigError(self._refusal(err, "open the experiment")) from err
            if any(sign in str(err) for sign in _NOT_A_STORE):
                raise ConfigError(f"tracking.uri={self.uri!r} is not a store MLflow can use: {_short(err)}") from err
            self.down = f"could not reach MLflow at {self.uri}: {_short(err)}"
            raise TrackingError(self.down) from err
        self._client, self._experiment_id = client, experiment_id

    def _open(self, client_class):
        client = client_class(tracking_uri=self.uri)
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            try:
                return client, client.create_experiment(self.experiment_name)
            except Exception:  # another process created it meanwhile
                experiment = client.get_experiment_by_name(self.experiment_name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            raise ConfigError(
                f"tracking.experiment={self.experiment_name!r} is deleted in {self.uri}; restore it with "
                f"`MLFLOW_TRACKING_URI={self.uri} mlflow experiments restore --experiment-id {experiment.experiment_id}`, "
                "or name another experiment"
            )
        return client, experiment.experiment_id

    def _call(self, what: str, action):
        """Runs one MLflow call; a failure marks the store down and becomes a TrackingError."""
        try:
            return action()
        except (TrackingError, ConfigError):
            raise
        except Exception as err:
            if _refused(err):
                self.down = self._refusal(err, what)
                raise Refused(self.down) from err
            self.down = f"could not {what} at {self.uri}: {_short(err)}"
            raise TrackingError(self.down) from err

    def _refusal(self, err: Exception, what: str) -> str:
        from mlflow.utils.credentials import read_mlflow_creds  # the environment, else ~/.mlflow/credentials

        return credentials.refusal(self.uri, _refused(err), read_mlflow_creds().username, self.experiment_name,
                                   what)

    def search(self, filter_string: str = "") -> list:
        """Every run of the experiment matching `filter_string`, all pages."""
        def query():
            runs, token = [], None
            while True:
                page = self.client.search_runs([self.experiment_id], filter_string, max_results=5000, page_token=token)
                runs.extend(page)
                token = page.token
                if not token:
                    return runs
        return self._call("search MLflow runs", query)

    def close_stale_runs(self) -> None:
        """Marks KILLED the RUNNING runs whose embench process on this host has died; says so in one line."""
        stale = [run for run in self.search("attributes.status = 'RUNNING'") if _owner_is_dead(run.data.tags)]
        for run in stale:
            self._call("close a stale run", lambda: self.client.set_terminated(run.info.run_id, status="KILLED"))
            self._call("tag a stale run", lambda: self.client.set_tag(
                run.info.run_id, "embench.closed_stale", f"process {run.data.tags[PID_TAG]} died while the run was RUNNING"))
        if stale:
            pids = sorted({run.data.tags[PID_TAG] for run in stale})
            outcome.say_note(
                f"closed {len(stale)} run(s) left RUNNING by embench process(es) {', '.join(pids)} on this host, "
                f"which died (SIGKILL or out of memory): marked KILLED in {self.uri}, experiment {self.experiment_name!r}"
            )

    def finished_point_keys(self) -> set[str]:
        return {run.data.tags.get(POINT_KEY_TAG) for run in self.search("attributes.status = 'FINISHED'")} - {None}

    def whole_runs(self, run_uids: set[str]) -> set[str]:
        """Which of `run_uids` are in the store logged whole. Their half-logged runs (cut off mid-logging) are
        deleted, to be logged again; every other run is left alone."""
        whole = set()
        for run in self.search():
            uid = run.data.tags.get(RUN_UID_TAG)
            if uid not in run_uids:
                continue
            if run.data.tags.get(LOGGED_TAG) == "true":
                whole.add(uid)
            elif run.info.status != "RUNNING":
                self._call("delete a half-logged run", lambda: self.client.delete_run(run.info.run_id))
        return whole

    def run_id_of(self, run_uid: str) -> str | None:
        """The MLflow run id of the run embench logged with `run_uid`."""
        runs = self.search(f"tags.`{RUN_UID_TAG}` = '{run_uid}'")
        return runs[0].info.run_id if runs else None

    def find_parent(self, sweep_uid: str):
        runs = self.search(f"tags.`{SWEEP_UID_TAG}` = '{sweep_uid}'")
        parents = [run for run in runs if PARENT_RUN_TAG not in run.data.tags]
        return parents[0] if parents else None

    def start_parent(self, run_name: str, tags: dict[str, str]) -> str:
        """Creates a RUNNING parent run for a sweep and returns its id."""
        return self._call("create the sweep's MLflow run", lambda: self.client.create_run(
            self.experiment_id, run_name=run_name, tags=tags | owner_tags()).info.run_id)

    def terminate(self, run_id: str, status: str) -> None:
        self._call(f"close MLflow run {run_id}", lambda: self.client.set_terminated(run_id, status=status))

    def log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        self._call(f"log metrics to MLflow run {run_id}", lambda: self.client.log_batch(run_id, metrics=_entities(metrics)))

    def log_result(self, result: RunResult, artifact_dir: Path | None, parent_run_id: str | None) -> str:
        """Logs one run (params, metrics, tags, artifacts) and closes it; returns its run id."""
        from mlflow.entities import Param

        tags = result.tags | {STATUS_TAG: result.status} | owner_tags()
        tags[RUN_UID_TAG] = result.run_uid
        tags[ui_link.DESCRIPTION_TAG] = ui_link.result_line(  # the run's description in the UI
            result.point(), ui_link.status_label(result.status, result.tags), result.metrics,
            ui_link.headline_metric(result.params), result.error)[:_MAX_TAG_CHARS]
        if result.error:
            tags[ERROR_TAG] = result.error[:_MAX_TAG_CHARS]
        if parent_run_id:
            tags[PARENT_RUN_TAG] = parent_run_id
        # what a sweep varies, so the UI's run list tells runs apart: the precision that ran, then the scenario and
        # the protocol where they are not the defaults (single_stream, latency)
        name = "_".join(filter(None, [
            *(result.params[key] for key in (MODEL_PARAM, PLATFORM_PARAM, BACKEND_PARAM)), f"b{result.params[BATCH_PARAM]}",
            result.tags.get(PRECISION_TAG) or result.params.get(RUNTIME_PRECISION_PARAM),
            *(value for key, default in ((SCENARIO_PARAM, "single_stream"), (PROTOCOL_PARAM, "latency"))
              if (value := result.params.get(key)) != default)]))
        run_id = None

        def log() -> str:
            nonlocal run_id
            run = self.client.create_run(self.experiment_id, start_time=int(result.start_time * 1000), run_name=name, tags=tags)
            run_id = run.info.run_id
            self.client.log_batch(
                run_id,
                metrics=_entities(result.metrics),
                params=[Param(key, value[:_MAX_PARAM_CHARS]) for key, value in result.params.items()],
            )
            if artifact_dir is not None:
                self.client.log_artifacts(run_id, str(artifact_dir))
            self.client.set_tag(run_id, LOGGED_TAG, "true")
            self.client.set_terminated(run_id, status=_STATUS[result.status], end_time=int(result.end_time * 1000))
            return run_id

        try:
            return self._call("log to MLflow", log)
        except TrackingError:
            if run_id:
                self._close_quietly(run_id)
            raise

    def _close_quietly(self, run_id: str) -> None:
        """Best effort: a run whose logging broke off is marked FAILED, not left RUNNING."""
        try:
            self._client.set_terminated(run_id, status="FAILED")
        except Exception:
            pass


def _entities(metrics: dict[str, float]) -> list:
    """MLflow's Metric entities for `metrics`, all stamped now."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(key, float(value), now, 0) for key, value in metrics.items()]

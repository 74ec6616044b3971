"""MLflow access for the report: the tracking URI, the client, and the runs of one experiment as MLflow's frame."""

import logging
import os
from pathlib import Path

import pandas as pd

DEFAULT_URI = "sqlite:///mlflow.db"  # embench's own default store, in the current directory


class ReportError(Exception):
    """A problem reported in one line; exit_code 2 for bad input, 3 for an unreachable MLflow."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def tracking_uri(given: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else embench's default ./mlflow.db."""
    return given or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def _local_store(uri: str) -> Path | None:
    """The file or folder behind a local URI (sqlite, file:, a plain path); None for a server."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if "://" not in uri and not uri.startswith(("databricks", "uc:")):
        return Path(uri)
    return None


def short(err: Exception) -> str:
    """An exception's message on one line, at most 240 characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 240 else text[:237] + "..."


def connect(uri: str):
    """An MlflowClient for uri; never creates a store that is not there."""
    store = _local_store(uri)
    if store is not None and not store.exists():
        raise ReportError(f"no MLflow store at {uri} ({store.resolve()} does not exist); "
                          "pass --tracking-uri or set MLFLOW_TRACKING_URI", 2)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # a down server fails in seconds
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    import mlflow
    from mlflow import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        mlflow.set_tracking_uri(uri)
        return MlflowClient(tracking_uri=uri)
    except Exception as err:  # an unsupported scheme, a malformed sqlite URI, ...
        raise ReportError(f"--tracking-uri {uri!r} is not a store MLflow can use: {short(err)}", 2) from err


def find_experiment(client, uri: str, name: str):
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment
        names = sorted(e.name for e in client.search_experiments())
    except Exception as err:  # connection refused, bad URI, REST or SQL errors: MLflow raises many kinds
        raise ReportError(f"could not reach MLflow at {uri}: {short(err)}", 3) from err
    raise ReportError(f"no experiment {name!r} in {uri}; experiments there: {', '.join(names) or 'none'}", 2)


def search(client, uri: str, experiment) -> pd.DataFrame:
    """Every active run of the experiment, one row each (MLflow's own pandas frame)."""
    import mlflow

    try:
        return mlflow.search_runs(experiment_ids=[experiment.experiment_id], output_format="pandas", max_results=1_000_000)
    except Exception as err:
        raise ReportError(f"could not read the runs of experiment {experiment.name!r} at {uri}: {short(err)}", 3) from err

"""Links into the MLflow UI (written against mlflow 3.17): a sweep's runs, sorted, with the columns a comparison needs.

The UI's URL carries the view (`workflowType`), the filter and the sort, but not the run table's columns:
those live in the UI's per-browser state. The UI's own "Share" button stores a whole view (filter, sort,
columns) as an experiment tag `mlflow.sharedViewState.<key>` and opens it with `?viewStateShareKey=<key>`;
embench stores its view the same way, so the one link opens the table with its columns chosen.
Pure functions: the caller writes the tags.
"""

import hashlib
import json
import shlex
from urllib.parse import quote, urlencode, urlsplit

from embench.names import (
    ACCURACY_SAMPLES,
    ACCURACY_TOP1,
    ACCURACY_TOP1_CI95_HIGH,
    ACCURACY_TOP1_CI95_LOW,
    ACCURACY_TOP1_DELTA,
    ACCURACY_TOP1_DELTA_CI95_HIGH,
    ACCURACY_TOP1_DELTA_CI95_LOW,
    BACKEND_PARAM,
    BATCH_PARAM,
    HOST_BUSY_TAG,
    LATENCY_MEDIAN_MS,
    LATENCY_MIN_MS,
    LATENCY_P99_MS,
    MODEL_PARAM,
    PEAK_DEVICE_MEMORY_MB,
    PEAK_MEMORY_MB,
    PLATFORM_PARAM,
    PROTOCOL_HEADLINE_PARAM,
    PROTOCOL_PARAM,
    QUERY_LATENCY_P99_MS,
    RUNTIME_PRECISION_PARAM,
    SCENARIO_PARAM,
    STATUS_TAG,
    TARGET_QPS_PARAM,
    THREADS_OVERSUBSCRIBED_TAG,
    THROUGHPUT_IPS,
    UNSTABLE_TAG,
)

SHARE_TAG_PREFIX = "mlflow.sharedViewState."  # the UI reads an experiment tag with this prefix
DESCRIPTION_TAG = "mlflow.note.content"  # a run's description on its page, and the table's Description column
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
# settings a sweep may vary, as MLflow params, in the order the table shows them
SETTINGS = (MODEL_PARAM, PLATFORM_PARAM, BACKEND_PARAM, RUNTIME_PRECISION_PARAM, BATCH_PARAM, SCENARIO_PARAM,
            TARGET_QPS_PARAM, PROTOCOL_PARAM, "platform.threads")
# what makes an "ok" number doubtful: (tag, label)
FLAGS = ((UNSTABLE_TAG, "unstable"), (HOST_BUSY_TAG, "host busy"), (THREADS_OVERSUBSCRIBED_TAG, "oversubscribed"))
# the headline figures, where the runs logged them
FIGURES = (LATENCY_MEDIAN_MS, LATENCY_MIN_MS, LATENCY_P99_MS, QUERY_LATENCY_P99_MS, THROUGHPUT_IPS, PEAK_MEMORY_MB,
           PEAK_DEVICE_MEMORY_MB, ACCURACY_TOP1, ACCURACY_TOP1_DELTA)


def column(kind: str, key: str) -> str:
    """A run-table column as the UI names it: kind is attributes, params, metrics or tags."""
    return f"{kind}.`{key}`"


def headline_metric(params: dict) -> str:
    """The metric a run leads with: the minimum under `protocol.headline=min` (the paper's), else the median."""
    return LATENCY_MIN_MS if params.get(PROTOCOL_HEADLINE_PARAM) == "min" else LATENCY_MEDIAN_MS


def varying_settings(runs_params: list[dict], overridden: list[str]) -> list[str]:
    """The settings whose values differ between the runs: the known ones, then any other key the sweep overrode
    (not the model's own fields, which change with the model)."""
    def varies(key: str) -> bool:
        return len({params.get(key) for params in runs_params}) > 1

    keys = list(SETTINGS) + [key for key in overridden if key not in SETTINGS]
    return [key for key in dict.fromkeys(keys) if varies(key)]


def view_state(filter_string: str, sort_metric: str, settings: list[str], metrics: list[str]) -> dict:
    """The run table's view as the UI's shared view state: filter, columns, sorted by `sort_metric` (smallest first),
    or where no run logged it (protocol=throughput), by inferences/s (largest first)."""
    columns = [column("params", key) for key in settings] + [column("metrics", key) for key in metrics]
    ascending = sort_metric in metrics or THROUGHPUT_IPS not in metrics
    return {
        "searchFilter": filter_string, "orderByKey": column("metrics", sort_metric if ascending else THROUGHPUT_IPS),
        "orderByAsc": ascending,
        "lifecycleFilter": "Active", "datasetsFilter": [],
        "selectedColumns": columns + [column("tags", STATUS_TAG)],  # the one-line result is on each run's page
        "runsHiddenMode": "SHOW_ALL",  # the charts show every run of the sweep, not the UI's first 10
    }


def share_key(state: dict) -> str:
    """A key for `state` that is the same for the same view."""
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:32]


def ui_base(tracking_uri: str) -> tuple[str, str | None]:
    """The UI's address for a tracking URI, and the command that starts it for a local store (None for a server)."""
    if tracking_uri.startswith(("http://", "https://")):
        parts = urlsplit(tracking_uri)
        host = parts.hostname + (f":{parts.port}" if parts.port else "")  # no user:password in a printed link
        return f"{parts.scheme}://{host}{parts.path.rstrip('/')}", None
    return LOCAL_UI, f"mlflow ui --backend-store-uri {shlex.quote(tracking_uri)}"


def runs_link(base: str, experiment_id: str, key: str) -> str:
    """The experiment's run table, in the model-training view, showing the shared view `key`."""
    query = urlencode({"workflowType": "machine_learning", "viewStateShareKey": key})
    return f"{base}/#/experiments/{experiment_id}/runs?{query}"


def run_link(base: str, experiment_id: str, run_id: str) -> str:
    """One run's page: its params, metrics, description and files."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def compare_link(base: str, experiment_id: str, run_ids: list[str]) -> str:
    """The UI's compare view of `run_ids`: params and metrics side by side, differences highlighted."""
    query = urlencode({"runs": json.dumps(run_ids, separators=(",", ":")),
                       "experiments": json.dumps([experiment_id], separators=(",", ":"))}, quote_via=quote)
    return f"{base}/#/compare-runs?{query}"


def how_to_open(link: str, command: str | None) -> str:
    """The one line printed after a run or a sweep."""
    return f"MLflow UI: {link}" + (f"  (start it first: {command})" if command else "")


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """`rows` as a markdown table (the parent run's description shows it rendered)."""
    def cell(value) -> str:
        text = "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key in columns) + " |" for row in rows]
    return "\n".join(lines)


def status_label(status: str, tags: dict) -> str:
    """The run's status, with what makes an "ok" number doubtful: `ok (unstable, host busy)`."""
    flags = [label for tag, label in FLAGS if tags.get(tag) == "true"]
    return status + (f" ({', '.join(flags)})" if flags else "")


def result_line(point: str, status: str, metrics: dict, headline: str, error: str | None = None) -> str:
    """A run's result in one line, for its description: the point, the headline latency, the rest, the status."""
    if not status.startswith("ok") and error:
        return f"{point}: {status}: {error}"
    figures = [f"{key.removesuffix('_ms').replace('_', ' ')} {metrics[key]:.3f} ms"
               for key in dict.fromkeys((headline, *FIGURES)) if key.endswith("_ms") and key in metrics]
    if THROUGHPUT_IPS in metrics:
        figures.append(f"{metrics[THROUGHPUT_IPS]:.1f} inferences/s")
    figures += [f"{key.removesuffix('_mb').replace('_', ' ')} {metrics[key]:.0f} MB" for key in FIGURES
                if key.endswith("_mb") and key in metrics]
    accuracy = accuracy_phrase(metrics)
    return f"{point}: " + ", ".join(figures + ([accuracy] if accuracy else [])) + f"; {status}"


def accuracy_phrase(metrics: dict) -> str | None:
    """A run's measured accuracy with its sample and intervals, e.g. `top-1 97.87 % [96.62, 98.66] on 797 images,
    -0.13 pp [-0.91, +0.63] against FP32`; None when it measured none."""
    if ACCURACY_TOP1 not in metrics:
        return None
    phrase = (f"top-1 {metrics[ACCURACY_TOP1]:.2f} % [{metrics[ACCURACY_TOP1_CI95_LOW]:.2f}, "
              f"{metrics[ACCURACY_TOP1_CI95_HIGH]:.2f}] on {metrics[ACCURACY_SAMPLES]:.0f} images")
    if ACCURACY_TOP1_DELTA in metrics:
        phrase += (f", {metrics[ACCURACY_TOP1_DELTA]:+.2f} pp [{metrics[ACCURACY_TOP1_DELTA_CI95_LOW]:+.2f}, "
                   f"{metrics[ACCURACY_TOP1_DELTA_CI95_HIGH]:+.2f}] against FP32")
    return phrase


def sweep_description(name: str, link: str, command: str | None, table: str) -> str:
    """The parent run's description (markdown): the link to the sweep's runs, then its summary table."""
    start = f"\n\nStart the UI with `{command}`." if command else ""
    return f"**{name}**: [compare its runs in the MLflow UI]({link}) (filtered to this sweep, sorted by " \
           f"the headline latency).{start}\n\n{table}\n"


def single_run_line(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The line printed after a single run: its page in the UI (and how to start the UI for a local store)."""
    base, command = ui_base(tracking_uri)
    return how_to_open(run_link(base, experiment_id, run_id), command)

"""MLflow runs -> a Selection: the store's runs (store.py), data runs only, filtered, labelled and folded
into points (selection.py)."""

from embench.report.selection import (
    Filters,
    Selection,
    aggregate,
    apply_filters,
    available,
    label,
    sort_out,
    tidy,
)
from embench.report.store import ReportError, connect, find_experiment, search


def load(uri: str, experiment_name: str, filters: Filters, how: str = "latest") -> Selection:
    """Reads, filters and folds the runs; raises ReportError when there is nothing to report."""
    client = connect(uri)
    experiment = find_experiment(client, uri, experiment_name)
    raw = search(client, uri, experiment)
    where = f"experiment {experiment_name!r} at {uri}"
    if raw.empty:
        raise ReportError(f"{where} has no runs; make some with e.g. `python -m embench -m experiment=quickstart`", 2)
    runs, metrics = tidy(raw)
    data, parents, skipped = sort_out(raw, runs)
    if data.empty:
        raise ReportError(f"{where} has {len(raw)} runs but none is a measurement (no `model` param)", 2)
    selected = apply_filters(data, raw.loc[data.index], filters)
    if selected.empty:
        raise ReportError(f"no run of {where} matches the filters ({filters.describe()}); it has {available(data)}", 2)
    selected = label(selected, raw).sort_values("start_time").reset_index(drop=True)
    points, folded = aggregate(selected, metrics, how)
    parents = parents[parents["run_id"].isin(selected["parent_run_id"].dropna())].reset_index(drop=True)
    return Selection(uri=uri, experiment=experiment_name, experiment_id=experiment.experiment_id, runs=selected,
                     points=points, parents=parents, metrics=metrics, aggregate=how, folded=folded,
                     filters=filters, skipped=skipped)

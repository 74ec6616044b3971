"""Everything that can be wrong with a run before it measures: config, device, backend, store."""

from omegaconf import DictConfig

from embench import outcome
from embench.errors import TrackingError
from embench.validate import validate


def check_config(cfg: DictConfig, overrides: list[str]) -> None:
    """Values and keys; fast, imports no torch. Raises ConfigError."""
    validate(cfg, overrides)


def check_point(cfg: DictConfig) -> None:
    """The platform's device is here and the backend accepts its options. Raises EmbenchError."""
    from embench.runner import check_point as check

    check(cfg)


def open_store(tracking: DictConfig, results_in: str):
    """The tracker, connected, with stale runs of dead processes closed; None when tracking is off.

    A deleted experiment or an unusable URI raises ConfigError. An unreachable store is said in one
    line and the run goes on: its results stay in `results_in` for `embench sync`.
    """
    if not tracking.enabled:
        return None
    from embench.tracking import tracker_for

    tracker = tracker_for(tracking)
    try:
        tracker.close_stale_runs()
    except TrackingError as err:
        outcome.say_error(f"{err}; measuring anyway: results stay in {results_in} (upload them later with "
                          f"`embench sync {results_in}`)")
    return tracker

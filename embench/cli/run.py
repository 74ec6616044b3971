"""The command line: `python -m embench` and `embench`, one Hydra app over conf/; `embench sync`, `embench node`."""

import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from embench import checks, credentials, outcome, signals, ui_link
from embench.artifacts import CANNOT_WRITE
from embench.config.paths import add_colocated_models, config_dir, search_dirs
from embench.errors import ConfigError, EmbenchError
from embench.outcome import Outcome
from embench.point.keep import JobReport
from embench.result import point_key


def _models_label(model: str, colocate) -> str:
    """The run folder's model part: the model, or the co-located ones joined by + (validate checks colocate)."""
    listed = isinstance(colocate, Sequence) and not isinstance(colocate, str)
    return "+".join(map(str, colocate)) if listed and colocate else model


class SingleRun:
    """Hydra's task function: one run, measured in this process. It carries the process's outcome, which
    embench's sweeper records a sweep's jobs into; `main` exits with it."""

    def __init__(self):
        self.outcome = Outcome()

    def __call__(self, cfg: DictConfig) -> JobReport:
        report = _run_one(cfg)
        self.outcome.record(report.exit_code)
        return report


def _check_single_run(cfg: DictConfig, out_dir: Path) -> JobReport | None:
    """A single run's checks (a sweep checks all its jobs before the first): a report if it must stop."""
    hydra_cfg = HydraConfig.get()
    try:
        dirs = search_dirs(hydra_cfg)
        checks.check_config(cfg, list(hydra_cfg.overrides.task), dirs)
        farm = checks.make_farm(cfg.farm)
        if not farm.measures_here:
            raise ConfigError(f"farm={farm.name} sends a sweep's jobs to the farm's nodes: add -m (a sweep of one point "
                              f"is fine), e.g. python -m embench -m model=resnet50 platform=xavier farm={farm.name}")
        checks.check_point(cfg)
        add_colocated_models(cfg, dirs)
        tracker = checks.open_store(cfg.tracking, str(out_dir))
    except EmbenchError as err:
        outcome.say_error(str(err))
        return JobReport(None, err.exit_code)
    if cfg.resume and tracker and not tracker.down and point_key(cfg) in tracker.finished_point_keys():
        outcome.say_note(f"resume=true: this point is already measured in experiment {cfg.tracking.experiment!r}; skipped")
        return JobReport(None, 0)
    return None


def _run_one(cfg: DictConfig) -> JobReport:
    """A single run, in this process: 0 ok, 1 failed run, 2 bad input, 3 MLflow unreachable, 128+N a signal."""
    from embench.point.job import measure_point  # imported here so --help and config errors stay fast
    from embench.point.keep import keep_measured
    from embench.tracking import tracker_for

    stop = _check_single_run(cfg, Path(HydraConfig.get().runtime.output_dir))
    if stop:
        return stop
    measured = measure_point(cfg)
    measured.log = []  # Hydra's file handler has them already
    report = keep_measured(cfg, measured)
    if report.logged:  # where to see it
        tracker = tracker_for(cfg.tracking)
        print(ui_link.single_run_line(tracker.uri, tracker.experiment_id, report.run_id))
    if measured.interrupted_by:
        raise signals.Interrupted(measured.interrupted_by)
    return report


RENAMED = {"backend.runtime.dtype": "backend.runtime.precision"}  # keys users' scripts may still name


def _describe(err: Exception) -> str:
    """What went wrong composing the config: Hydra's own words (with its list of valid choices)."""
    import yaml
    from hydra.errors import HydraException

    if isinstance(err, yaml.YAMLError):
        return "cannot read a config file: " + " ".join(str(err).split())
    message = str(err).strip()
    if getattr(err, "override", None):  # OverrideParseException
        message = f"cannot parse override {err.override!r}: {message}"
    cause = err.__cause__
    if isinstance(err, HydraException) and getattr(cause, "full_key", None) and "not in struct" in str(cause):
        key = cause.full_key  # an override of a key the config lacks: one line, and where a renamed key went
        renamed = f"; it is now {RENAMED[key]}" if key in RENAMED else ""
        return f"{key} is not a setting of this config{renamed} (a new key of your own is added with +{key}=...)"
    if isinstance(err, HydraException) and cause is not None:
        message += f"\n{cause}"
    return message if isinstance(err, HydraException) else f"{type(err).__name__}: {message}"


def _register_sweeper() -> None:
    """Hydra finds plugins by walking hydra_plugins/, which an editable install hides: register ours by hand."""
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()  # scans (and re-executes) Hydra's core plugins: import ours after it
    from hydra_plugins.embench_sweeper.embench_sweeper import EmbenchSweeper

    plugins.register(EmbenchSweeper)


def main() -> None:
    if sys.argv[1:2] == ["sync"]:
        from embench.cli.sync import main as sync

        sync(sys.argv[2:])
        return
    if sys.argv[1:2] == ["node"]:
        from embench.cli.node import main as node

        node(sys.argv[2:])
        return
    if sys.argv[1:2] == ["data"]:
        from embench.cli.data import main as data

        data(sys.argv[2:])
        return
    signals.install()
    logging.raiseExceptions = False  # a log line that cannot be written (a full disk) is dropped, not a traceback
    _register_sweeper()
    sys.argv[1:] = credentials.strip_from_command_line(sys.argv[1:])
    # A short random name shared by every job of a sweep: folders of two sweeps never collide.
    OmegaConf.register_new_resolver("embench.uid", lambda: secrets.token_hex(3), use_cache=True, replace=True)
    OmegaConf.register_new_resolver("embench.models", _models_label, replace=True)
    wants_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us instead of Hydra's traceback printer
    task = SingleRun()
    try:
        hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(task)()
    except KeyboardInterrupt as err:
        stop = signals.as_interrupted(err)
        outcome.say_error(f"{stop.describe()}: the run in progress is recorded as killed; finished runs are kept")
        from embench.scenarios.loadgen import cut_short

        signals.leave(stop.exit_code, abruptly=cut_short())
    except EmbenchError as err:
        if wants_traceback:
            raise
        outcome.say_error(str(err))
        sys.exit(err.exit_code)
    except Exception as err:
        if wants_traceback:
            raise
        if isinstance(err, OSError) and err.errno in CANNOT_WRITE:  # Hydra's run folder (a full disk): nothing measured
            outcome.say_error(f"cannot write {err.filename or 'the run folder (hydra.run.dir)'}: {err.strerror}")
            sys.exit(1)
        outcome.say_error(credentials.redact(_describe(err)))  # Hydra's missing-config error is an OSError too
        sys.exit(2)
    sys.exit(task.outcome.code)

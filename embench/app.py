"""The command line: `python -m embench` and `embench`, one Hydra app over conf/; `embench sync`."""

import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from embench import credentials, outcome, signals
from embench.artifacts import CANNOT_WRITE
from embench.errors import EmbenchError


def config_dir() -> str:
    """conf/ inside an installed package, else conf/ beside the package in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"embench's conf/ is missing next to {package}: reinstall embench")


def _models_label(model: str, colocate) -> str:
    """The run folder's model part: the model, or the co-located ones joined by + (validate checks colocate)."""
    listed = isinstance(colocate, Sequence) and not isinstance(colocate, str)
    return "+".join(map(str, colocate)) if listed and colocate else model


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def _hydra_main(cfg: DictConfig):
    from embench.job import run_job  # imported here so --help and config errors stay fast

    report = run_job(cfg)
    outcome.record(report.exit_code)
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
    """Hydra finds plugins by walking hydra_plugins/, which an editable install hides: name ours directly."""
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()  # scans (and re-executes) Hydra's core plugins: import ours after it
    from hydra_plugins.embench_sweeper.embench_sweeper import EmbenchSweeper

    plugins.class_name_to_class[f"{EmbenchSweeper.__module__}.{EmbenchSweeper.__name__}"] = EmbenchSweeper


def main() -> None:
    if sys.argv[1:2] == ["sync"]:
        from embench.sync import main as sync

        sync(sys.argv[2:])
        return
    if sys.argv[1:2] == ["node"]:
        from embench.node import main as node

        node(sys.argv[2:])
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
    try:
        _hydra_main()
    except KeyboardInterrupt as err:
        stop = err if isinstance(err, signals.Interrupted) else signals.Interrupted()
        outcome.say_error(f"{stop.describe()}: the run in progress is recorded as killed; finished runs are kept")
        signals.leave(stop.exit_code)
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
    sys.exit(outcome.exit_code())

"""The command line: `python -m embench` and `embench`, one Hydra app over conf/."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from embench import outcome


def config_dir() -> str:
    """conf/ inside an installed package, else conf/ beside the package in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"embench's conf/ is missing next to {package}: reinstall embench")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    from embench.job import run_job  # imported here so --help and config errors stay fast

    outcome.record(run_job(cfg))


def _describe(err: Exception) -> str:
    """What went wrong composing the config: Hydra's own words (with its list of valid choices)."""
    import yaml
    from hydra.errors import HydraException

    if isinstance(err, yaml.YAMLError):
        return "cannot read a config file: " + " ".join(str(err).split())
    message = str(err).strip()
    if getattr(err, "override", None):  # OverrideParseException
        message = f"cannot parse override {err.override!r}: {message}"
    if isinstance(err, HydraException) and err.__cause__ is not None:
        message += f"\n{err.__cause__}"
    return message if isinstance(err, HydraException) else f"{type(err).__name__}: {message}"


def main() -> None:
    wants_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us instead of Hydra's traceback printer
    try:
        _hydra_main()
    except KeyboardInterrupt:
        outcome.say_error("interrupted (Ctrl-C); finished runs are kept")
        sys.exit(130)
    except Exception as err:
        if wants_traceback:
            raise
        outcome.say_error(_describe(err))
        sys.exit(2)
    sys.exit(outcome.exit_code())

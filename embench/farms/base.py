"""What a farm is: where a sweep's jobs run. A farm is a plugin, as a backend is.

conf/farm/NAME.yaml names the class (`_target_`) and its options; the class declares the options it
takes (`OPTIONS`, checked before anything runs) and implements `check`, `run` and `close`. Adding a
farm is one module and one YAML.
"""

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from embench.checks import check_points_here, point_check_key
from embench.config.schema import Setting
from embench.point.job import Measured


@dataclass
class Job:
    """One job of a sweep: its number, overrides, full config (Hydra's node included) and task config."""

    number: int
    overrides: list[str]
    config: DictConfig
    task: DictConfig
    retried: str = ""  # why it was sent out a second time, if it was

    def __post_init__(self):
        self.task_yaml = OmegaConf.to_yaml(self.task, resolve=True)
        self.platform = str(self.task.platform.name)
        self.check_key = point_check_key(self.task)


def task_config(job_cfg: DictConfig) -> DictConfig:
    """A job's config as its measurement sees it: without the hydra node."""
    task_cfg = copy.deepcopy(job_cfg)
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg


class Farm(Protocol):
    """Where a sweep's jobs run. Built from its YAML (cheap: no connection before `check`)."""

    OPTIONS: ClassVar[dict[str, Setting]]  # its YAML's keys besides _target_ and name, with what each accepts
    measures_here: ClassVar[bool]  # False: jobs run on other hosts, so the sweep does not check them on this one

    name: str

    def check(self, jobs: list[Job]) -> None:
        """Before the first job: raises ConfigError when a job cannot run where the farm would send it."""

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Measured]]:
        """Measures the jobs; yields each with its Measured as it finishes (in any order)."""

    def close(self) -> None:
        """Frees what the farm holds (processes, connections); called on every path."""


class OnThisHost:
    """A farm whose jobs run on this host, where the sweep has checked every point already."""

    OPTIONS: ClassVar[dict[str, Setting]] = {}
    measures_here = True

    def check(self, jobs: list[Job]) -> None:
        """embench.checks.check_point, once for each distinct point."""
        check_points_here([job.task for job in jobs])

    def close(self) -> None:
        pass

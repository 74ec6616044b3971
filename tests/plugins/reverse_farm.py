"""A user's own farm (one module and one YAML): measures a sweep's jobs in this process, last job first,
and writes the order it ran them in to `order_file`, an independent record of what the farm did."""

from pathlib import Path

from embench.config.schema import TEXT, Choice
from embench.farms.base import OnThisHost
from embench.point.job import measure_point


class ReverseFarm(OnThisHost):
    OPTIONS = {"order_file": TEXT, "direction": Choice(("backwards", "forwards"))}

    def __init__(self, name: str, order_file: str, direction: str):
        self.name, self.order_file, self.direction = name, Path(order_file), direction

    def run(self, jobs):
        for job in reversed(jobs) if self.direction == "backwards" else jobs:
            with self.order_file.open("a") as handle:
                handle.write(f"{job.number}\n")
            yield job, measure_point(job.task)

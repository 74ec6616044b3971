"""`farm=inline`: a sweep's jobs run in the embench process itself, for a debugger (a crash there ends the sweep)."""

from embench.farms.base import Job, OnThisHost
from embench.point.job import measure_point


class InlineFarm(OnThisHost):
    """Measures each job in the embench process. Only the first job's first call is a cold one: the later
    jobs leave `first_inference_ms` out."""

    def __init__(self, name: str = "inline"):
        self.name = name

    def run(self, jobs: list[Job]):
        for number, job in enumerate(jobs):
            measured = measure_point(job.task)
            if number:  # an earlier job warmed this process: its first call is not a cold one
                measured.result.metrics.pop("first_inference_ms", None)
            yield job, measured

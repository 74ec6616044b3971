"""Where a sweep's wall time went: its start-up, its jobs' phases (embench.phases), keeping their results.

Its figures go to the parent run as metrics and to one line under the summary table. Per job, `overhead` is
the wall time outside the measuring phases (what a sweep pays besides measuring), and `outside phases` the part
of it no recorded phase holds (start-up, each job's start and checks, and keeping its result are recorded).
"""

import time
from contextlib import contextmanager

import psutil

from embench import phases
from embench.result import RunResult


class Timeline:
    """The sweep's clock: from the command's start to its summary."""

    def __init__(self):
        self.began = psutil.Process().create_time()  # the command's start (seconds since the epoch)
        self.jobs_began: float | None = None
        self.keep_s = 0.0

    def start_jobs(self) -> None:
        self.jobs_began = time.time()

    @contextmanager
    def keeping(self):
        """Times the writing of a job's files and its MLflow run."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.keep_s += time.monotonic() - start

    def figures(self, results: list[RunResult], serial: bool) -> dict[str, float]:
        """The sweep's figures; the per-job ones only for jobs run one after another (`serial`)."""
        now = time.time()
        wall = now - self.began
        start = (self.jobs_began or now) - self.began
        figures = {"sweep_wall_s": wall, "sweep_start_s": start, "sweep_keep_s": self.keep_s,
                   "sweep_timed_share": sum(result.metrics.get("measure_s", 0.0) for result in results) / wall}
        if serial and results:
            measuring = sum(phases.seconds(result.metrics, phases.MEASURING) for result in results)
            in_jobs = sum(result.metrics.get(phases.JOB_WALL, 0.0) for result in results)
            outside = sum(result.metrics.get(phases.OUTSIDE, 0.0) for result in results)
            between = (now - (self.jobs_began or now)) - in_jobs - self.keep_s  # progress lines, the summary table
            figures["sweep_measuring_share"] = measuring / wall
            figures["sweep_overhead_per_job_s"] = (wall - measuring) / len(results)
            figures["sweep_outside_phases_per_job_s"] = (outside + between) / len(results)
        return figures


def describe(figures: dict[str, float]) -> str:
    """The line under the summary table."""
    line = (f"sweep time {figures['sweep_wall_s']:.1f} s: {100 * figures['sweep_timed_share']:.0f} % in timed windows; "
            f"start-up {figures['sweep_start_s']:.1f} s")
    if "sweep_overhead_per_job_s" in figures:
        line += (f"; per job {figures['sweep_overhead_per_job_s']:.2f} s besides measuring, "
                 f"{figures['sweep_outside_phases_per_job_s']:.2f} s of it in no recorded phase")
    return line

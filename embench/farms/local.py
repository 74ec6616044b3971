"""`farm=local`: a sweep's jobs run on this host, each in a fresh process.

It starts a fresh (spawned) process for each job: every job starts without the caches,
allocator pools and lazily built kernels an earlier job left behind, so its first inference is a cold
call wherever it sits in the sweep, and its memory figures count what a run alone counts. Each job
pays torch's import (a process forked from one template would not, but its resident set lacks the
library pages the template touched: its memory peak read 270 MB lower for resnet18). A job's process
sits in its own process group, so a signal reaches it only through the sweep, which forwards it and
waits for the cut-short result. A job whose process dies (a segfault, SIGKILL, the kernel's OOM
killer) fails with the reason, and the sweep goes on.
"""

import logging
import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing.connection import wait

from embench import signals
from embench.farms.base import Job, OnThisHost
from embench.point.job import LOG_FORMAT, Measured, died, measure_yaml

STOP_GRACE_S = 30  # how long a signalled job has to hand back what it measured


class LocalFarm(OnThisHost):
    """`farm=local`: each job in a fresh process of its own on this host, one after another."""

    def __init__(self, name: str = "local"):
        self.name = name
        self.worker = LocalWorker()

    def run(self, jobs: list[Job]):
        for job in jobs:
            yield job, self.worker.run(job)


def _death_reason(exit_code: int) -> str:
    if exit_code < 0:
        name = signal.Signals(-exit_code).name
        hint = " (the kernel's OOM killer sends it when memory runs out)" if -exit_code == signal.SIGKILL else ""
        return f"the job's process was killed by {name}{hint}"
    return f"the job's process exited with code {exit_code} before it reported"


class LocalWorker:
    """Starts one process per job."""

    def __init__(self):
        self.context = multiprocessing.get_context("spawn")

    def run(self, job) -> Measured:
        conn, child_end = self.context.Pipe()
        process = self.context.Process(target=_measure_one, args=(job.task_yaml, child_end), name="embench-job")
        process.start()
        child_end.close()
        try:
            answer = _answer(process, conn, timeout=None)
        except signals.Interrupted as stop:
            os.kill(process.pid, stop.signum)  # the job records itself as killed and answers
            answer = _answer(process, conn, timeout=STOP_GRACE_S)
            if not isinstance(answer, Measured):
                raise
        finally:
            process.join(STOP_GRACE_S)  # it ends once it has answered; its end of the pipe goes with it
            conn.close()
        return answer if isinstance(answer, Measured) else died(job.task, answer)


def _answer(process, conn, timeout: float | None) -> Measured | str:
    """The job's Measured, or why its process died (it is killed when it overruns `timeout`)."""
    ready = wait([conn, process.sentinel], timeout)
    if conn in ready:
        try:
            return conn.recv()
        except EOFError:
            pass
    if not ready:
        process.kill()
    process.join()
    return _death_reason(process.exitcode)


def _measure_one(task: str, conn) -> None:
    """A job's process: measure the config, hand the Measured back, end."""
    os.setpgrp()  # Ctrl-C reaches the sweep, which forwards it here once
    signals.install()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    threading.Thread(target=_exit_with_parent, args=(conn,), daemon=True).start()
    conn.send(measure_yaml(task))
    from embench.scenarios.loadgen import cut_short

    signals.leave(0, abruptly=cut_short())


def _exit_with_parent(conn) -> None:
    """Ends the job's process when the sweep is gone (the sweep never writes to `conn`: it can only close)."""
    wait([conn])
    os._exit(1)  # nobody will keep what this job measures

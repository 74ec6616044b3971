"""`farm=local`: a sweep's jobs run on this host, each in a fresh process.

Every job starts in a process of its own, forked from a template that has imported torch, torchvision and
embench and run nothing (multiprocessing's fork server, started once per sweep): it starts without the
caches, allocator pools and lazily built kernels an earlier job left behind, so its first inference is a
cold call wherever it sits in the sweep, and it pays none of the imports (3.5 s a job on a 2-core AMD EPYC,
measured before: a spawned process per job). Fork leaves the template's library pages unmapped in the
job, so the job maps them again first (embench.farms.template): its memory figures count what a freshly
started process counts. A job's process sits in its own process group, so a signal reaches it only
through the sweep, which forwards it and waits for the cut-short result. A job whose process dies (a
segfault, SIGKILL, the kernel's OOM killer) fails with the reason, and the sweep goes on.
"""

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait

from omegaconf import OmegaConf

from embench import checks, memory, phases, signals
from embench.errors import EmbenchError
from embench.farms.base import Job, OnThisHost
from embench.point.job import LOG_FORMAT, Measured, died, measure_yaml

STOP_GRACE_S = 30  # how long a signalled job has to hand back what it measured
# What the template imports, in this order (see embench.farms.template): everything a job imports before its
# backend's runtime. Not the runtimes, which a job imports itself (0.1 s each): ONNX Runtime starts threads when
# imported, and a fork copies no thread.
TEMPLATE_IMPORTS = ["torch", "torchvision", "embench.point.job", "embench.point.runner", "embench.farms.template"]


class LocalFarm(OnThisHost):
    """`farm=local`: each job in a fresh process of its own on this host, one after another."""

    def __init__(self, name: str = "local"):
        self.name = name
        self.worker = LocalWorker()

    def check(self, jobs: list[Job]) -> None:
        """Checks the points in a process forked from the template: the sweep's own process never imports torch, and
        the template's imports are done once."""
        self.worker.check(jobs)

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
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(TEMPLATE_IMPORTS)

    def check(self, jobs: list[Job]) -> None:
        """embench.checks.check_points_here for the jobs, in a template process; raises what it raised."""
        conn, child_end = self.context.Pipe()
        process = self.context.Process(target=_check_points, args=([job.task_yaml for job in jobs], child_end),
                                       name="embench-check")
        process.start()
        child_end.close()
        try:
            answer = _answer(process, conn, timeout=None)
        finally:
            conn.close()
        if isinstance(answer, str):
            raise EmbenchError(f"checking the sweep's points failed: {answer}")
        if answer is not None:
            raise answer

    def run(self, job) -> Measured:
        conn, child_end = self.context.Pipe()
        asked_at = time.monotonic()  # one clock for all processes of this host
        process = self.context.Process(target=_measure_one, args=(job.task_yaml, child_end, asked_at), name="embench-job")
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
        if not isinstance(answer, Measured):
            return died(job.task, answer)
        phases.close(answer.result.metrics, asked_at)  # the hand-off back to the sweep included
        return answer


def _answer(process, conn, timeout: float | None):
    """What the process sent, or why it died (it is killed when it overruns `timeout`)."""
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


def _check_points(tasks: list[str], conn) -> None:
    """A check's process: embench.checks.check_points_here on the configs; sends None, or the error that stopped it."""
    try:
        checks.check_points_here([OmegaConf.create(task) for task in tasks])
    except EmbenchError as err:
        conn.send(err)
        return
    conn.send(None)


def _measure_one(task: str, conn, asked_at: float) -> None:
    """A job's process: measure the config, hand the Measured back, end."""
    from embench.farms import template

    memory.fault_in(template.RESIDENT_PAGES)
    os.setpgrp()  # Ctrl-C reaches the sweep, which forwards it here once
    signals.install()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    threading.Thread(target=_exit_with_parent, args=(conn,), daemon=True).start()
    conn.send(measure_yaml(task, asked_at))
    from embench.scenarios.loadgen import cut_short

    signals.leave(0, abruptly=cut_short())


def _exit_with_parent(conn) -> None:
    """Ends the job's process when the sweep is gone (the sweep never writes to `conn`: it can only close)."""
    wait([conn])
    os._exit(1)  # nobody will keep what this job measures

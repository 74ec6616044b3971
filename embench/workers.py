"""Where a sweep's jobs run: in this process (`farm=inline`) or in a local worker process (`farm=local`).

The worker is one spawned process that measures jobs one after another, so torch is imported once
per sweep; it sits in its own process group, so a signal reaches it only through the sweep, which
forwards it and waits for the cut-short result. A worker that dies (a segfault, SIGKILL, the
kernel's OOM killer) fails its one job with the reason, and the next job gets a fresh worker.
"""

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait

from embench import signals
from embench.point import LOG_FORMAT, Measured, died, measure_point, measure_yaml

STOP_GRACE_S = 30  # how long a signalled job has to hand back what it measured


class InlineJobs:
    """Measures each job in the embench process: for a debugger; a crash there ends the sweep."""

    def check(self, jobs: list) -> None:
        pass  # the sweep checked every point on this host

    def run(self, jobs: list):
        for job in jobs:
            yield job, measure_point(job.task)

    def close(self) -> None:
        pass


class LocalJobs(InlineJobs):
    """Measures each job in a worker process, one after another."""

    def __init__(self):
        self.worker = LocalWorker()

    def run(self, jobs: list):
        for job in jobs:
            yield job, self.worker.run(job)

    def close(self) -> None:
        self.worker.close()


def _death_reason(exit_code: int) -> str:
    if exit_code < 0:
        name = signal.Signals(-exit_code).name
        hint = " (the kernel's OOM killer sends it when memory runs out)" if -exit_code == signal.SIGKILL else ""
        return f"the job's process was killed by {name}{hint}"
    return f"the job's process exited with code {exit_code} before it reported"


class LocalWorker:
    """One worker process, reused between jobs and replaced when it dies."""

    def __init__(self):
        self.process = None
        self.conn = None

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end, os.getpid()), name="embench-worker")
        self.process.start()
        child_end.close()

    def run(self, job) -> Measured:
        if self.process is None or not self.process.is_alive():
            self._start()
        self.conn.send(job.task_yaml)
        try:
            answer = self._answer(timeout=None)
        except signals.Interrupted as stop:
            os.kill(self.process.pid, stop.signum)  # the worker records the job as killed and answers
            answer = self._answer(timeout=STOP_GRACE_S)
            if not isinstance(answer, Measured):
                raise
        if isinstance(answer, Measured):
            return answer
        self.process = None
        self.conn.close()
        return died(job.task, answer)

    def _answer(self, timeout: float | None) -> Measured | str:
        """The worker's Measured, or why it died (it is killed when it overruns `timeout`)."""
        ready = wait([self.conn, self.process.sentinel], timeout)
        if self.conn in ready:
            try:
                return self.conn.recv()
            except EOFError:
                pass
        if not ready:
            self.process.kill()
        self.process.join()
        return _death_reason(self.process.exitcode)

    def close(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.conn.send(None)
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()


def _serve(conn, parent_pid: int) -> None:
    """The worker's life: measure each config it is sent until told to stop or its parent is gone."""
    os.setpgrp()  # Ctrl-C reaches the sweep, which forwards it here once
    signals.install()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    while True:
        try:
            task = conn.recv()
        except (EOFError, signals.Interrupted):
            signals.leave(0)
        if task is None:
            signals.leave(0)
        conn.send(measure_yaml(task))


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1)
    os._exit(1)  # the sweep is gone: nobody will keep what this worker measures

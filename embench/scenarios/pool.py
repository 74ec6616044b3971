"""The system under test that LoadGen drives: the backend's steps, served by the calling thread and workers."""

import queue
import threading
import time
from typing import Callable

import mlperf_loadgen as lg
import torch

_POLL_S = 0.1  # how often the serving thread looks up from an empty queue (to see the test end, or a signal)


class StepPool:
    """Runs each LoadGen sample as one step and reports it complete.

    LoadGen's callback only queues the samples; the thread that runs the test serves them with the
    prepared step, as embench's own loop does. (Run in LoadGen's callback, on LoadGen's thread,
    torch's mobilenet_v2 took 30-33 ms against the loop's 23-32 ms here; served from the queue,
    21-32 ms, and LoadGen's latency counts a hand-off of about 0.15 ms on top.) Each further worker
    thread owns a step of its own (its own request or binding), so arrivals never wait for a busy
    thread. `service_ns` is the time each step took; `window_ns` runs from the first sample's issue
    to the last sample's completion (the test's timed window, without LoadGen's start-up and wind-down).
    A step that raises ends the work: later samples complete at once, and the caller raises `error`
    once LoadGen has finished.
    """

    def __init__(self, steps: list[Callable[[], object]], sync: Callable[[], None]):
        self.service_ns: list[int] = []
        self.first_issue_ns = self.last_done_ns = 0
        self.error: BaseException | None = None
        self.stopped = False
        self._steps, self._sync = steps, sync
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._done_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, args=(step,), daemon=True, name=f"embench-worker-{number}")
                         for number, step in enumerate(steps[1:], start=1)]

    def __enter__(self) -> "StepPool":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    @property
    def window_ns(self) -> int:
        return max(self.last_done_ns - self.first_issue_ns, 0)

    def issue(self, samples) -> None:
        """LoadGen's issue_queries callback."""
        if not self.first_issue_ns:
            self.first_issue_ns = time.perf_counter_ns()
        for sample in samples:
            self._queue.put(sample)

    def end(self) -> None:
        """Called when LoadGen's test has returned: wakes every serving thread at once."""
        for _ in self._steps:
            self._queue.put(None)

    def serve_until(self, test: threading.Thread) -> None:
        """Serves samples with the first step in this thread until LoadGen's `test` thread ends."""
        while test.is_alive():
            try:
                sample = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if sample is None:
                return
            self._serve(self._steps[0], sample)

    def _work(self, step: Callable[[], object]) -> None:
        while (sample := self._queue.get()) is not None:
            self._serve(step, sample)

    def _serve(self, step: Callable[[], object], sample) -> None:
        if self.error is None and not self.stopped:
            with torch.inference_mode():  # per thread in torch: without it, LoadGen's and the workers' calls record autograd
                start = time.perf_counter_ns()
                try:
                    step()
                    self._sync()
                    self.service_ns.append(time.perf_counter_ns() - start)
                except Exception as err:  # re-raised by the caller once LoadGen has finished; a signal goes up at once
                    self.error = err
        with self._done_lock:
            self.last_done_ns = max(self.last_done_ns, time.perf_counter_ns())
        lg.QuerySamplesComplete([lg.QuerySampleResponse(sample.id, 0, 0)])

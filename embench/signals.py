"""Ctrl-C and SIGTERM as one exception, and critical sections that a signal cannot cut in half."""

import contextlib
import logging
import os
import signal
import sys

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The user or the system asked the process to stop; `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def describe(self) -> str:
        return "interrupted (Ctrl-C)" if self.signum == signal.SIGINT else f"terminated ({signal.Signals(self.signum).name})"


_deferring = 0
_pending: list[int] = []
_received: list[int] = []


def _handler(signum, frame) -> None:
    _received.append(signum)
    if _deferring and not _pending:  # a second signal while deferring stops at once
        _pending.append(signum)
        return
    raise Interrupted(signum)


def as_interrupted(stop: KeyboardInterrupt) -> Interrupted:
    """The Interrupted behind a KeyboardInterrupt: a library that checks for signals in its own loop (Ray's
    ray.wait) raises a plain KeyboardInterrupt in place of the handler's exception."""
    if isinstance(stop, Interrupted):
        return stop
    return Interrupted(_received[-1] if _received else signal.SIGINT)


def install() -> None:
    """Turns SIGINT, SIGTERM and SIGHUP into Interrupted in the main thread."""
    for signum in HANDLED:
        signal.signal(signum, _handler)


@contextlib.contextmanager
def deferred():
    """Holds a signal until the block ends, so a result is logged whole or not begun."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring and _pending:
        raise Interrupted(_pending.pop())


def leave(code: int, abruptly: bool) -> None:
    """Ends the process with `code`; at once (os._exit, streams flushed) when `abruptly`: a signal cut a LoadGen
    test short (embench.scenarios.loadgen.cut_short), and the interpreter's normal exit would abort on its threads."""
    if abruptly:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)

"""A sweep's progress as jobs finish: done/total, failed, an ETA; a tqdm bar on a terminal, plain lines in a log."""

import sys
import time


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Counts finished jobs; the ETA is the time per finished job so far times the jobs left."""

    def __init__(self, total: int):
        self.total, self.done, self.failed = total, 0, 0
        self.start = time.monotonic()
        self.bar = None
        if total and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="job", desc="embench sweep", file=sys.stderr, dynamic_ncols=True)

    def finished(self, what: str, status: str) -> None:
        self.done += 1
        self.failed += not status.startswith("ok")
        left = self.total - self.done
        eta = (time.monotonic() - self.start) / self.done * left
        line = f"[embench] {self.done}/{self.total} done, {self.failed} failed" + (f", ETA {_duration(eta)}" if left else "") \
            + f": {what}: {status}"
        if self.bar is None:
            print(line, flush=True)
            return
        self.bar.write(line, file=sys.stderr)
        self.bar.set_postfix(failed=self.failed)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

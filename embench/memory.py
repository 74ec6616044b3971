"""Peak memory of one run: the process's resident high-water mark, reset at the run's start and again once
the backend is prepared."""

import resource
from pathlib import Path

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak() -> str:
    """Resets the resident-set high-water mark where Linux allows; returns how peaks are read."""
    try:
        _CLEAR_REFS.write_text("5")
        return "VmHWM since the backend was prepared"
    except OSError:
        return "ru_maxrss since process start"


def peak_rss_mb() -> float:
    """The resident high-water mark (VmHWM) in MiB, or ru_maxrss where /proc is unavailable."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

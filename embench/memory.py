"""Peak memory of one run: the process's resident high-water mark, reset at the run's start and again once
the backend is prepared."""

import ctypes
import os
import resource
from pathlib import Path

import numpy as np

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


def resident_file_pages() -> np.ndarray:
    """Addresses of the pages of this process's file mappings (libraries, mostly) that are resident now."""
    page = os.sysconf("SC_PAGE_SIZE")
    found = []
    try:
        with open("/proc/self/maps") as maps, open("/proc/self/pagemap", "rb") as pagemap:
            for line in maps:
                fields = line.split()
                if len(fields) < 6 or not fields[5].startswith("/") or not fields[1].startswith("r"):
                    continue
                start, end = (int(bound, 16) for bound in fields[0].split("-"))
                pagemap.seek(start // page * 8)
                entries = np.frombuffer(pagemap.read((end - start) // page * 8), dtype=np.uint64)
                found.append(start + np.flatnonzero(entries >> np.uint64(63)).astype(np.int64) * page)
    except OSError:  # no /proc: nothing to restore
        pass
    return np.concatenate(found) if found else np.empty(0, np.int64)


def fault_in(pages: np.ndarray) -> None:
    """Reads one byte of each page: a process forked from a template maps again the library pages the
    template had resident, which fork leaves unmapped, so its resident set counts what a fresh process counts."""
    page = os.sysconf("SC_PAGE_SIZE")
    breaks = np.flatnonzero(np.diff(pages) != page) + 1
    for run in np.split(pages, breaks) if pages.size else ():
        mapped = (ctypes.c_ubyte * (run.size * page)).from_address(int(run[0]))
        np.frombuffer(mapped, np.uint8)[::page].sum()  # touching the first byte of each page faults it in

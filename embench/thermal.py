"""Thermal and clock state before and after the timed window, and the cool-down before a run (sysfs, Linux).

Reads: each thermal zone's temperature (`/sys/class/thermal/thermal_zone*/temp`, m°C) with its `type` and its
passive, hot and critical trip points, the CPUs' current clock (`/sys/devices/system/cpu/cpu*/cpufreq/
scaling_cur_freq`, kHz) and a Jetson GPU's (devfreq). Linux hosts are read through sysfs only: without cpufreq (a VM) psutil falls back to
/proc/cpuinfo's nominal figure, which never moves, so a clock drop could not show; psutil.cpu_freq serves on
other systems. `EMBENCH_SYSFS_ROOT` moves the sysfs root (for tests, and sysfs mounted elsewhere).
"""

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from embench.names import (
    COOLDOWN_S,
    CPU_FREQ_MHZ,
    GPU_FREQ_MHZ,
    GPU_TEMP_C,
    TEMP_C,
    TEMP_ZONE_TAG,
    THROTTLED_REASON_TAG,
    THROTTLED_TAG,
)

log = logging.getLogger("embench")

SYSFS_ROOT_ENV = "EMBENCH_SYSFS_ROOT"
CLOCK_DROP = 0.10  # the CPU clock falling by more than this share over the timed window tags the run throttled
TRIP_TYPES = ("passive", "hot", "critical")  # trip points at which the kernel throttles or shuts down ("active": a fan)
GPU_DEVFREQ = ("gpu", "gm20b", "gp10b", "gv11b", "ga10b")  # a Jetson GPU's devfreq name after its address
IGNORED_ZONES = ("PMIC-Die",)  # Jetson's PMIC: an over-temperature flag that reads 100 °C while below its limit
POLL_S = 0.2  # the cool-down's reading interval
DEFAULT_COOLDOWN_MAX_S = 300.0  # protocol.cooldown_max_s of a protocol written before the key


def sysfs_root() -> Path:
    """The root under which `sys/...` is read: `/`, or EMBENCH_SYSFS_ROOT where set."""
    return Path(os.environ.get(SYSFS_ROOT_ENV) or "/")


def _read(path: Path) -> str:
    return path.read_text().strip()


@dataclass(frozen=True)
class Zone:
    """One thermal zone's reading: its folder name, its `type`, °C, and its (trip type, °C) throttling trip points."""

    name: str
    kind: str
    temp_c: float
    trips: tuple[tuple[str, float], ...]

    @property
    def label(self) -> str:
        return f"{self.kind} ({self.name})"


def read_zones(root: Path) -> dict[str, Zone]:
    """The readable thermal zones under `root`, by folder name; absent sensors (below -40 °C) are left out."""
    zones = {}
    for folder in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        try:
            temp_c = int(_read(folder / "temp")) / 1000
        except (OSError, ValueError):
            continue
        try:
            kind = _read(folder / "type")
        except OSError:
            kind = folder.name
        if kind in IGNORED_ZONES or temp_c < -40:
            continue
        trips = []
        for trip in sorted(folder.glob("trip_point_*_type")):
            try:
                trip_type = _read(trip)
                trip_c = int(_read(folder / trip.name.replace("_type", "_temp"))) / 1000
            except (OSError, ValueError):
                continue
            if trip_type in TRIP_TYPES:
                trips.append((trip_type, trip_c))
        zones[folder.name] = Zone(folder.name, kind, temp_c, tuple(trips))
    return zones


def cpu_freq_mhz(root: Path) -> float | None:
    """The fastest CPU's current clock in MHz (a core idle at the moment of reading does not count as a drop)."""
    clocks = []
    for path in (root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq"):
        try:
            clocks.append(int(_read(path)) / 1000)
        except (OSError, ValueError):
            pass
    if clocks:
        return max(clocks)
    if sys.platform.startswith("linux") or root != Path("/"):
        return None
    try:
        return psutil.cpu_freq().current or None
    except (AttributeError, OSError, NotImplementedError):
        return None


def gpu_freq_mhz(root: Path) -> float | None:
    """A Jetson GPU's current clock in MHz (devfreq, `/sys/class/devfreq/<address>.<gpu>/cur_freq`, Hz)."""
    for folder in sorted((root / "sys/class/devfreq").glob("*.*")):
        if folder.name.rsplit(".", 1)[1] in GPU_DEVFREQ:
            try:
                return int(_read(folder / "cur_freq")) / 1e6
            except (OSError, ValueError):
                pass
    return None


@dataclass(frozen=True)
class State:
    cpu_mhz: float | None
    gpu_mhz: float | None
    zones: dict[str, Zone]


def read_state(root: Path) -> State:
    return State(cpu_freq_mhz(root), gpu_freq_mhz(root), read_zones(root))


def throttling(before: State, after: State) -> list[str] | None:
    """Why the window throttled (empty: it did not), or None where nothing here could tell."""
    reasons = []
    clock_known = before.cpu_mhz is not None and after.cpu_mhz is not None
    if clock_known and after.cpu_mhz < (1 - CLOCK_DROP) * before.cpu_mhz:
        reasons.append(f"CPU clock fell from {before.cpu_mhz:.0f} to {after.cpu_mhz:.0f} MHz (more than "
                       f"{100 * CLOCK_DROP:.0f} %)")
    for zone in after.zones.values():
        for trip_type, trip_c in zone.trips:
            if zone.temp_c >= trip_c:
                reasons.append(f"{zone.label} at {zone.temp_c:.1f} °C, at or above its {trip_type} trip point "
                               f"{trip_c:.1f} °C")
    if not clock_known and not any(zone.trips for zone in after.zones.values()):
        return None
    return reasons


class ThermalMeter:
    """Context manager: reads the state on entering and on leaving, nothing in between; then `metrics` and `tags`."""

    def __init__(self, root: Path | None = None):
        self.root = root or sysfs_root()
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, str] = {}

    def __enter__(self) -> "ThermalMeter":
        self.before = read_state(self.root)
        return self

    def __exit__(self, *exc) -> None:
        before, after = self.before, read_state(self.root)
        for when, state in (("before", before), ("after", after)):
            if state.cpu_mhz is not None:
                self.metrics[f"{CPU_FREQ_MHZ}_{when}"] = state.cpu_mhz
            if state.gpu_mhz is not None:
                self.metrics[f"{GPU_FREQ_MHZ}_{when}"] = state.gpu_mhz
        if after.zones:
            hottest = max(after.zones.values(), key=lambda zone: zone.temp_c)
            self._temps(TEMP_C, hottest, before)
            self.tags[TEMP_ZONE_TAG] = hottest.label
        gpu = [zone for zone in after.zones.values() if "gpu" in zone.kind.lower()]
        if gpu:
            self._temps(GPU_TEMP_C, max(gpu, key=lambda zone: zone.temp_c), before)
        reasons = throttling(before, after)
        if reasons is not None:
            self.tags[THROTTLED_TAG] = str(bool(reasons)).lower()
        if reasons:
            self.tags[THROTTLED_REASON_TAG] = "; ".join(reasons)

    def _temps(self, name: str, zone: Zone, before: State) -> None:
        if zone.name in before.zones:
            self.metrics[f"{name}_before"] = before.zones[zone.name].temp_c
        self.metrics[f"{name}_after"] = zone.temp_c


def cool_down(below_c: float, max_s: float, root: Path | None = None) -> dict[str, float]:
    """Waits until the hottest zone is below `below_c` °C, at most `max_s` seconds; returns the metric
    {cooldown_s: seconds waited}, or nothing where no zone is readable."""
    root = root or sysfs_root()
    start = time.monotonic()
    while True:
        zones = read_zones(root)
        waited = time.monotonic() - start
        if not zones:
            log.warning("protocol.cooldown_below_c=%g: no thermal zone is readable on this host: no cool-down", below_c)
            return {}
        hottest = max(zones.values(), key=lambda zone: zone.temp_c)
        if hottest.temp_c < below_c:
            if waited >= POLL_S:
                log.info("cooled down below %g °C in %.1f s", below_c, waited)
            return {COOLDOWN_S: waited}
        if waited >= max_s:
            log.warning("cool-down ceiling hit: %s still at %.1f °C after protocol.cooldown_max_s=%g s "
                        "(protocol.cooldown_below_c=%g): measuring anyway", hottest.label, hottest.temp_c, max_s, below_c)
            return {COOLDOWN_S: waited}
        time.sleep(min(POLL_S, max_s - waited))

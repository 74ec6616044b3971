"""Energy of the timed loop: NVML on NVIDIA GPUs, RAPL powercap where readable, a Jetson's INA3221 power
monitors where neither serves, else TDP x time."""

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from embench.platform import Device
from embench.thermal import sysfs_root

POWERCAP = Path("/sys/class/powercap")
INA3221_INTERVAL_S = 0.02  # power is instantaneous: sampled this often over the window
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")  # the module's input (Orin, Xavier NX, TX2; Nano), which holds every other rail


def _rapl_zones(root: Path) -> list[Path]:
    """The readable top-level RAPL zones (intel-rapl:0, intel-rapl:1, ...); sub-zones (core, uncore, dram)
    are inside their package."""
    zones = []
    for zone in sorted(root.glob("intel-rapl:*")):
        if ":" in zone.name.split("intel-rapl:", 1)[1]:
            continue
        try:
            int((zone / "energy_uj").read_text())
            zones.append(zone)
        except (OSError, ValueError):
            pass
    return zones


def _zone_name(zone: Path) -> str:
    try:
        return (zone / "name").read_text().strip()
    except OSError:
        return ""


def _rapl_domains(root: Path) -> list[Path]:
    """The zones that count each joule once: `psys` (the whole platform, package included, on Intel client
    machines) alone where present, else every package."""
    zones = _rapl_zones(root)
    psys = [zone for zone in zones if _zone_name(zone) == "psys"]
    return psys or [zone for zone in zones if _zone_name(zone).startswith("package")]


def rapl_joules(before: dict[Path, int]) -> float:
    """Joules since `before` (from rapl_counters), over its domains, with counter wrap-around."""
    total_uj = 0
    for domain, start in before.items():
        end = int((domain / "energy_uj").read_text())
        if end < start:
            end += int((domain / "max_energy_range_uj").read_text())
        total_uj += end - start
    return total_uj / 1e6


def rapl_counters(root: Path = POWERCAP) -> dict[Path, int]:
    return {domain: int((domain / "energy_uj").read_text()) for domain in _rapl_domains(root)}


def rapl_source(counters: dict[Path, int]) -> str:
    """The energy_source tag: which RAPL domains were summed."""
    return "rapl powercap: " + " + ".join(_zone_name(domain) for domain in counters)


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel: its name and the files whose product, times `scale`, is its power in W."""

    name: str
    files: tuple[Path, ...]
    scale: float

    def watts(self) -> float:
        return math.prod(float(path.read_text()) for path in self.files) * self.scale


def ina3221_rails(root: Path) -> list[Rail]:
    """The readable, connected INA3221 channels under the sysfs root `root`: JetPack 5/6's hwmon
    (in{N}_input mV x curr{N}_input mA) and JetPack 4's iio (in_power{N}_input mW)."""
    found = []
    for hwmon in sorted(root.glob("sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*")):
        for channel in (1, 2, 3):
            found.append((hwmon / f"in{channel}_label", Rail("", (hwmon / f"in{channel}_input",
                                                                  hwmon / f"curr{channel}_input"), 1e-6)))
    for iio in sorted(root.glob("sys/bus/i2c/drivers/ina3221x/*/iio:device*")):
        for label in sorted(iio.glob("rail_name_*")):
            channel = label.name.rsplit("_", 1)[1]
            found.append((label, Rail("", (iio / f"in_power{channel}_input",), 1e-3)))
    rails = []
    for label, rail in found:
        try:
            name = label.read_text().strip()
            rail.watts()
        except (OSError, ValueError):
            continue
        if name and name != "NC":  # NC: a channel not connected
            rails.append(Rail(name, rail.files, rail.scale))
    return rails


def module_rails(rails: list[Rail]) -> list[Rail]:
    """The rails that measure the module once: its input rail alone where one exists, else the sum of them all
    (AGX Xavier's GPU, CPU, SOC, CV, VDDRQ and SYS5V)."""
    return [rail for rail in rails if rail.name in INPUT_RAILS][:1] or rails


class PowerSampler:
    """Samples the summed power of `rails` every `interval_s` on a thread, from start() to stop(), and integrates it."""

    def __init__(self, rails: list[Rail], interval_s: float = INA3221_INTERVAL_S):
        self.rails, self.interval_s = rails, interval_s
        self.samples: list[tuple[float, float]] = []  # (perf_counter s, W)
        self.error: Exception | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embench-ina3221", daemon=True)

    def _sample(self) -> None:
        try:
            self.samples.append((time.perf_counter(), sum(rail.watts() for rail in self.rails)))
        except (OSError, ValueError) as error:
            self.error = error

    def _run(self) -> None:
        due = time.perf_counter()
        while self.error is None:
            due = max(due + self.interval_s, time.perf_counter())
            if self._done.wait(due - time.perf_counter()):
                return
            self._sample()

    def start(self) -> None:
        self._sample()
        self._thread.start()

    def stop(self) -> tuple[float, float] | None:
        """(joules, seconds) over the samples by the trapezoid rule; None if a read failed."""
        self._done.set()
        self._thread.join()
        if self.error is None:
            self._sample()
        if self.error is not None or len(self.samples) < 2:
            return None
        joules = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(self.samples, self.samples[1:]))
        return joules, self.samples[-1][0] - self.samples[0][0]

    def source(self) -> str:
        return (f"ina3221 sysfs: {' + '.join(rail.name for rail in self.rails)}, "
                f"sampled every {1e3 * self.interval_s:.0f} ms")


class EnergyMeter:
    """Context manager: `joules` used while inside it over `seconds`, and `source`, how they were obtained."""

    def __init__(self, device: Device, tdp_w: float | None, powercap: Path | None = None, sysfs: Path | None = None):
        self.device, self.tdp_w = device, tdp_w
        self.sysfs = sysfs or sysfs_root()
        self.powercap = powercap or self.sysfs / "sys/class/powercap"
        self.joules: float | None = None
        self.seconds = 0.0
        self.source = "none"

    def __enter__(self) -> "EnergyMeter":
        self._start = time.perf_counter()
        self._nvml_mj = self._rapl = self._ina = None
        if self.device.kind == "cuda":
            from embench.gpu import energy_mj

            self._nvml_mj = energy_mj(self.device.torch_device.index or 0)
        elif self.device.kind == "cpu":
            self._rapl = rapl_counters(self.powercap) or None
        if self._nvml_mj is None and self._rapl is None and self.device.kind in ("cuda", "cpu"):
            rails = module_rails(ina3221_rails(self.sysfs))
            if rails:
                self._ina = PowerSampler(rails)
                self._ina.start()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = seconds = time.perf_counter() - self._start
        if self._nvml_mj is not None:
            from embench.gpu import energy_mj

            self.joules, self.source = (energy_mj(self.device.torch_device.index or 0) - self._nvml_mj) / 1e3, "nvml energy counter"
        elif self._rapl:
            self.joules, self.source = rapl_joules(self._rapl), rapl_source(self._rapl)
        elif self._ina is not None:
            sampled = self._ina.stop()
            if sampled is None:
                self.source = f"none: {self._ina.source()}, a read failed: {self._ina.error}"
            else:
                (self.joules, self.seconds), self.source = sampled, self._ina.source()
        elif self.tdp_w:
            self.joules, self.source = self.tdp_w * seconds, "estimate: platform TDP x time"

"""Energy of the timed loop: NVML on NVIDIA GPUs, RAPL powercap where readable, else TDP x time."""

import time
from pathlib import Path

from embench.platform import Device

POWERCAP = Path("/sys/class/powercap")


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


class EnergyMeter:
    """Context manager: `joules` used while inside it over `seconds`, and `source`, how they were obtained."""

    def __init__(self, device: Device, tdp_w: float | None, powercap: Path = POWERCAP):
        self.device, self.tdp_w, self.powercap = device, tdp_w, powercap
        self.joules: float | None = None
        self.seconds = 0.0
        self.source = "none"

    def __enter__(self) -> "EnergyMeter":
        self._start = time.perf_counter()
        self._nvml_mj = self._rapl = None
        if self.device.kind == "cuda":
            from embench.gpu import energy_mj

            self._nvml_mj = energy_mj(self.device.torch_device.index or 0)
        elif self.device.kind == "cpu":
            self._rapl = rapl_counters(self.powercap) or None
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = seconds = time.perf_counter() - self._start
        if self._nvml_mj is not None:
            from embench.gpu import energy_mj

            self.joules, self.source = (energy_mj(self.device.torch_device.index or 0) - self._nvml_mj) / 1e3, "nvml energy counter"
        elif self._rapl:
            self.joules, self.source = rapl_joules(self._rapl), rapl_source(self._rapl)
        elif self.tdp_w:
            self.joules, self.source = self.tdp_w * seconds, "estimate: platform TDP x time"

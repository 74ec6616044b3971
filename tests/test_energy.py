"""RAPL powercap reading, on a sysfs tree laid out as Linux does (this VM exposes none)."""

import os
import threading
import time
from pathlib import Path

import pytest

from embench.energy import rapl_counters, rapl_joules, rapl_source


def domain(root: Path, name: str, energy_uj: int, max_uj: int = 262143328850, zone: str = "package-0") -> Path:
    """A powercap zone as the kernel lays it out: its counter, the counter's range, and its `name`."""
    path = root / name
    path.mkdir(parents=True)
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (path / "name").write_text(f"{zone}\n")
    return path


def test_packages_are_summed_and_subdomains_skipped(tmp_path):
    package0 = domain(tmp_path, "intel-rapl:0", 1_000_000)
    domain(tmp_path, "intel-rapl:0:0", 500_000, zone="core")  # core sub-domain: already inside package 0
    package1 = domain(tmp_path, "intel-rapl:1", 2_000_000, zone="package-1")
    before = rapl_counters(tmp_path)
    assert set(before) == {package0, package1}
    (package0 / "energy_uj").write_text("3000000\n")
    (package1 / "energy_uj").write_text("2500000\n")
    assert rapl_joules(before) == pytest.approx(2.0 + 0.5)


def test_psys_already_holds_the_package_and_is_counted_alone(tmp_path):
    """An Intel client machine: package-0 drew 15 W and the whole platform (psys, which contains the package)
    25 W for 2 s: the energy is psys's 50 J, not 80 J, and the source says which domain it read."""
    package = domain(tmp_path, "intel-rapl:0", 0)
    psys = domain(tmp_path, "intel-rapl:1", 0, zone="psys")
    domain(tmp_path, "intel-rapl:0:0", 0, zone="core")
    before = rapl_counters(tmp_path)
    (package / "energy_uj").write_text(f"{15 * 2 * 10**6}\n")
    (psys / "energy_uj").write_text(f"{25 * 2 * 10**6}\n")
    assert rapl_joules(before) == pytest.approx(50.0)
    assert rapl_source(before) == "rapl powercap: psys"


def test_counter_wrap_around(tmp_path):
    package = domain(tmp_path, "intel-rapl:0", 999_000_000, max_uj=1_000_000_000)
    before = rapl_counters(tmp_path)
    (package / "energy_uj").write_text("1000000\n")  # wrapped past the maximum
    assert rapl_joules(before) == pytest.approx(2.0)


def test_unreadable_counters_are_ignored(tmp_path):
    package = domain(tmp_path, "intel-rapl:0", 5)
    (package / "energy_uj").write_text("")  # as when a non-root user may not read it
    assert rapl_counters(tmp_path) == {}


def test_energy_is_metered_over_the_timed_loop_only(tmp_path):
    """A package whose counter grows 10 mJ per step: the first inference and 20 warm-up steps must not count."""
    import time

    import torch

    from embench.energy import EnergyMeter
    from embench.measure import StopRule, time_loop
    from embench.platform import Device

    package = domain(tmp_path, "intel-rapl:0", 0)
    counter = {"uj": 0}

    def step():  # 2 ms of work that costs 10 mJ, as a RAPL counter would show it
        end = time.perf_counter() + 0.002
        counter["uj"] += 10_000
        (package / "energy_uj").write_text(f"{counter['uj']}\n")
        while time.perf_counter() < end:
            pass

    rule = StopRule(warmup_iterations=20, warmup_duration_s=0.0, min_iterations=50, min_duration_s=0.0,
                    max_iterations=50, max_duration_s=10.0)
    meter = EnergyMeter(Device("cpu", "test", torch.device("cpu"), lambda: None, 1), None, powercap=tmp_path)
    time_loop(step, lambda: None, rule, meters=(meter,))
    assert meter.source == "rapl powercap: package-0"
    assert meter.joules == pytest.approx(50 * 0.010)  # the 50 timed steps' energy; the 21 before them stay out


# INA3221 power monitors (Jetson), on sysfs trees laid out as JetPack 5/6 (hwmon) and JetPack 4 (iio) do


def write(path: Path, value) -> None:
    """Replaces a file's content at once, as a sysfs read sees it: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{value}\n")
    os.replace(partial, path)


def hwmon(root: Path, rails: dict[str, tuple[int, int]], device: str = "1-0040") -> Path:
    """JetPack 5/6: one INA3221 as hwmon, channel N's label, bus voltage (mV) and current (mA)."""
    folder = root / "sys/bus/i2c/drivers/ina3221" / device / "hwmon/hwmon3"
    for channel, (name, (millivolts, milliamps)) in enumerate(rails.items(), 1):
        write(folder / f"in{channel}_label", name)
        write(folder / f"in{channel}_input", millivolts)
        write(folder / f"curr{channel}_input", milliamps)
    return folder


def iio(root: Path, rails: dict[str, int], device: str = "1-0040") -> Path:
    """JetPack 4: one INA3221 as iio, channel N's rail name and power (mW)."""
    folder = root / "sys/bus/i2c/drivers/ina3221x" / device / "iio:device0"
    for channel, (name, milliwatts) in enumerate(rails.items()):
        write(folder / f"rail_name_{channel}", name)
        write(folder / f"in_power{channel}_input", milliwatts)
    return folder


def cpu_meter(root: Path, tdp_w: float | None = None):
    import torch

    from embench.energy import EnergyMeter
    from embench.platform import Device

    return EnergyMeter(Device("cpu", "test", torch.device("cpu"), lambda: None, 1), tdp_w, sysfs=root)


def metered(meter, seconds: float) -> float:
    """Holds `meter` open for `seconds`; returns the wall time around it, which holds its window."""
    start = time.perf_counter()
    with meter:
        time.sleep(seconds)
    return time.perf_counter() - start


def orin(root: Path) -> Path:
    """An Orin NX: the module's input VDD_IN at 5.000 V x 2.000 A = 10 W, and two rails inside it."""
    return hwmon(root, {"VDD_IN": (5000, 2000), "VDD_CPU_GPU_CV": (5000, 800), "VDD_SOC": (5000, 600)})


def agx_xavier(root: Path) -> None:
    """An AGX Xavier (JetPack 4): no input rail; six rails on two monitors summing to 10 W, one channel unconnected."""
    iio(root, {"GPU": 3000, "CPU": 2000, "SOC": 1500})
    iio(root, {"CV": 1000, "VDDRQ": 500, "SYS5V": 2000, "NC": 7000}, device="1-0041")


@pytest.mark.parametrize("layout, rails", [(orin, "VDD_IN"), (agx_xavier, "GPU + CPU + SOC + CV + VDDRQ + SYS5V")])
def test_ina3221_constant_power_is_integrated_over_the_window(tmp_path, layout, rails):
    layout(tmp_path)
    meter = cpu_meter(tmp_path, tdp_w=99.0)  # a TDP estimate is only the last resort
    wall_s = metered(meter, 0.5)
    assert meter.source == f"ina3221 sysfs: {rails}, sampled every 20 ms"
    assert 0.5 <= meter.seconds <= wall_s
    assert 10.0 * 0.5 <= meter.joules <= 10.0 * wall_s  # 10 W, whatever the host's scheduling did to the window
    assert meter.joules / meter.seconds == pytest.approx(10.0)


def test_ina3221_power_that_changes_mid_window_is_integrated(tmp_path):
    """10 W for the first quarter of a 1 s window, 20 W after: 17.5 J, where the window's two ends alone (its first
    and last reading) would give 15 J."""
    folder = orin(tmp_path)
    switched = []

    def raise_current():
        time.sleep(0.25)
        write(folder / "curr1_input", 4000)
        switched.append(time.perf_counter())

    meter, writer = cpu_meter(tmp_path), threading.Thread(target=raise_current)
    start = time.perf_counter()
    with meter:
        writer.start()
        time.sleep(1.0)
    end = time.perf_counter()
    writer.join()
    expected = 10.0 * (switched[0] - start) + 20.0 * (end - switched[0])
    assert meter.joules == pytest.approx(expected, abs=0.5)  # 0.5 J: a 50 ms stall of the sampler at the change
    assert meter.joules / meter.seconds > 16.0


def test_ina3221_file_vanishing_mid_window_gives_no_figure(tmp_path):
    folder = orin(tmp_path)
    meter = cpu_meter(tmp_path, tdp_w=15.0)
    with meter:
        time.sleep(0.1)
        (folder / "curr1_input").unlink()  # the monitor's driver unbound while measuring
        time.sleep(0.1)
    assert meter.joules is None
    assert meter.source.startswith("none: ina3221 sysfs: VDD_IN, sampled every 20 ms, a read failed:")


def test_ina3221_unreadable_rails_are_skipped_and_rapl_comes_first(tmp_path):
    from embench.energy import ina3221_rails

    folder = hwmon(tmp_path, {"VDD_IN": (5000, 2000), "VDD_SOC": (5000, 600)})
    (folder / "in1_input").write_text("")  # unreadable, as a read error gives it
    assert [rail.name for rail in ina3221_rails(tmp_path)] == ["VDD_SOC"]
    domain(tmp_path / "sys/class/powercap", "intel-rapl:0", 0)
    meter = cpu_meter(tmp_path)
    metered(meter, 0.05)
    assert meter.source == "rapl powercap: package-0"

"""Thermal and clock state around the timed window, and the cool-down, on sysfs trees laid out as Linux does (this
VM has no thermal zone and no cpufreq)."""

import logging
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error, only_result

from embench.thermal import ThermalMeter, cool_down, read_zones


def write(path: Path, value) -> None:
    """Replaces a file's content at once, as a sysfs read sees it: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{value}\n")
    os.replace(partial, path)


def zone(root: Path, number: int, kind: str, temp_c: float, trips: tuple[tuple[str, float], ...] = ()) -> Path:
    """thermal_zone<number>: its type, temperature and trip points, in m°C as the kernel writes them."""
    folder = root / f"sys/class/thermal/thermal_zone{number}"
    write(folder / "type", kind)
    write(folder / "temp", round(temp_c * 1000))
    for index, (trip_type, trip_c) in enumerate(trips):
        write(folder / f"trip_point_{index}_type", trip_type)
        write(folder / f"trip_point_{index}_temp", round(trip_c * 1000))
    return folder / "temp"


def cpus(root: Path, *khz: int) -> list[Path]:
    """One cpufreq folder per CPU, each at its clock in kHz."""
    paths = [root / f"sys/devices/system/cpu/cpu{n}/cpufreq/scaling_cur_freq" for n in range(len(khz))]
    for path, clock in zip(paths, khz):
        write(path, clock)
    return paths


def jetson(root: Path, cpu_c: float = 45.0) -> None:
    """A Jetson (AGX Xavier): zones for CPU and GPU with passive/critical trips, a fan trip (active), and the PMIC's
    flag at 100 °C; two CPUs' clocks and the GPU's."""
    zone(root, 0, "CPU-therm", cpu_c, (("active", 50.0), ("passive", 95.0), ("critical", 105.0)))
    zone(root, 1, "GPU-therm", 42.5, (("passive", 95.0),))
    zone(root, 2, "PMIC-Die", 100.0, (("critical", 120.0),))
    cpus(root, 1_900_800, 1_190_400)
    write(root / "sys/class/devfreq/17000000.gv11b/cur_freq", 1_377_000_000)
    write(root / "sys/class/devfreq/2c00000.external-memory-controller/cur_freq", 2_133_000_000)


def test_zones_are_read_with_their_throttling_trip_points(tmp_path):
    jetson(tmp_path)
    write(tmp_path / "sys/class/thermal/thermal_zone3/temp", "")  # a zone whose read fails
    zones = read_zones(tmp_path)
    assert sorted(zones) == ["thermal_zone0", "thermal_zone1"]  # the PMIC's flag is no temperature
    assert zones["thermal_zone0"].temp_c == 45.0 and zones["thermal_zone1"].temp_c == 42.5
    assert zones["thermal_zone0"].trips == (("passive", 95.0), ("critical", 105.0))  # a fan's trip throttles nothing


def test_steady_state_is_recorded_and_not_throttled(tmp_path):
    jetson(tmp_path)
    with ThermalMeter(tmp_path) as meter:
        pass
    assert meter.metrics == {"cpu_freq_mhz_before": 1900.8, "cpu_freq_mhz_after": 1900.8, "gpu_freq_mhz_before": 1377.0,
                             "gpu_freq_mhz_after": 1377.0, "temp_c_before": 45.0, "temp_c_after": 45.0,
                             "gpu_temp_c_before": 42.5, "gpu_temp_c_after": 42.5}
    assert meter.tags == {"temp_zone": "CPU-therm (thermal_zone0)", "throttled": "false"}


@pytest.mark.parametrize("after_khz, throttled", [(1_700_000, "true"), (1_720_000, "false")])
def test_a_clock_drop_of_more_than_ten_percent_is_throttling(tmp_path, after_khz, throttled):
    """From 1900.8 MHz: 1700 MHz is 10.6 % less, 1720 MHz 9.5 %."""
    fastest, _ = cpus(tmp_path, 1_900_800, 1_190_400)
    with ThermalMeter(tmp_path) as meter:
        write(fastest, after_khz)
    assert meter.metrics["cpu_freq_mhz_after"] == after_khz / 1000
    assert meter.tags["throttled"] == throttled
    if throttled == "true":
        assert meter.tags["throttled_reason"] == "CPU clock fell from 1901 to 1700 MHz (more than 10 %)"


def test_crossing_a_passive_trip_point_is_throttling(tmp_path):
    jetson(tmp_path, cpu_c=80.0)
    with ThermalMeter(tmp_path) as meter:
        write(tmp_path / "sys/class/thermal/thermal_zone0/temp", 96_000)
    assert (meter.metrics["temp_c_before"], meter.metrics["temp_c_after"]) == (80.0, 96.0)
    assert meter.tags["throttled"] == "true"
    assert meter.tags["throttled_reason"] == "CPU-therm (thermal_zone0) at 96.0 °C, at or above its passive trip point 95.0 °C"


def test_a_host_that_cannot_tell_claims_nothing(tmp_path):
    with ThermalMeter(tmp_path) as meter:  # no zone, no cpufreq
        pass
    assert meter.metrics == {} and meter.tags == {}
    zone(tmp_path, 0, "acpitz", 30.0)  # a temperature, but no trip point and no clock: throttling cannot show
    with ThermalMeter(tmp_path) as meter:
        pass
    assert meter.metrics == {"temp_c_before": 30.0, "temp_c_after": 30.0} and "throttled" not in meter.tags


def test_cool_down_waits_until_the_zone_is_below(tmp_path):
    """The zone falls from 70 to 30 °C 1 s after the wait starts: the wait lasts about 1 s."""
    temp = zone(tmp_path, 0, "CPU-therm", 70.0)
    cooler = threading.Timer(1.0, lambda: write(temp, 30_000))
    cooler.start()
    waited = cool_down(40.0, 30.0, tmp_path)["cooldown_s"]
    cooler.join()
    assert 1.0 <= waited < 5.0


def test_cool_down_stops_at_its_ceiling_and_says_so(tmp_path, caplog):
    zone(tmp_path, 0, "CPU-therm", 70.0)
    with caplog.at_level(logging.INFO, logger="embench"):
        start = time.monotonic()
        waited = cool_down(40.0, 1.0, tmp_path)["cooldown_s"]
        elapsed = time.monotonic() - start
    assert 1.0 <= waited <= elapsed < 5.0
    assert [record.message for record in caplog.records] == [
        "cool-down ceiling hit: CPU-therm (thermal_zone0) still at 70.0 °C after protocol.cooldown_max_s=1 s "
        "(protocol.cooldown_below_c=40): measuring anyway"]
    assert cool_down(80.0, 1.0, tmp_path)["cooldown_s"] < 0.1  # already below: no wait
    assert cool_down(40.0, 1.0, tmp_path / "no_sysfs") == {}  # nothing to read: no figure, no wait


@pytest.mark.slow
def test_a_run_records_thermal_state_energy_and_cool_down_from_sysfs(run_cli, tmp_path):
    """A Jetson CPU run: no RAPL, VDD_IN at 10 W; CPU-therm at 45 °C keeps the cool-down below 40 °C waiting until its
    1 s ceiling."""
    sysfs = tmp_path / "sysfs"
    jetson(sysfs)
    rail = sysfs / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    for name, value in (("in1_label", "VDD_IN"), ("in1_input", 5000), ("curr1_input", 2000)):
        write(rail / name, value)
    result = run_cli("model=squeezenet1_1", "protocol=quick", "protocol.cooldown_below_c=40",
                     "protocol.cooldown_max_s=1", EMBENCH_SYSFS_ROOT=str(sysfs))
    assert result.returncode == 0, result.output
    assert "cool-down ceiling hit: CPU-therm (thermal_zone0) still at 45.0 °C" in result.output
    record = only_result(tmp_path)
    metrics, tags = record["metrics"], record["tags"]
    assert 1.0 <= metrics["cooldown_s"] < 5.0
    assert metrics["cpu_freq_mhz_before"] == metrics["cpu_freq_mhz_after"] == 1900.8
    assert metrics["temp_c_before"] == metrics["temp_c_after"] == 45.0
    assert metrics["gpu_temp_c_before"] == metrics["gpu_temp_c_after"] == 42.5
    assert metrics["gpu_freq_mhz_before"] == metrics["gpu_freq_mhz_after"] == 1377.0
    assert tags["temp_zone"] == "CPU-therm (thermal_zone0)" and tags["throttled"] == "false"
    assert tags["energy_source"] == "ina3221 sysfs: VDD_IN, sampled every 20 ms"
    assert metrics["power_w"] == pytest.approx(10.0)


@pytest.mark.slow
def test_a_run_past_a_trip_point_is_tagged_throttled(run_cli, tmp_path):
    sysfs = tmp_path / "sysfs"
    jetson(sysfs, cpu_c=96.0)
    result = run_cli("model=squeezenet1_1", "protocol=quick", EMBENCH_SYSFS_ROOT=str(sysfs))
    assert result.returncode == 0, result.output
    reason = "CPU-therm (thermal_zone0) at 96.0 °C, at or above its passive trip point 95.0 °C"
    assert f"the device throttled during the timed window ({reason})" in result.output
    tags = only_result(tmp_path)["tags"]
    assert (tags["throttled"], tags["throttled_reason"]) == ("true", reason)
    assert "cooldown_s" not in only_result(tmp_path)["metrics"]  # protocol.cooldown_below_c: null, the default


@pytest.mark.parametrize("override, needles", [
    ("protocol.cooldown_below_c=-5", ["protocol.cooldown_below_c=-5", "> 0", "null"]),
    ("protocol.cooldown_below_c=hot", ["protocol.cooldown_below_c='hot'", "> 0"]),
    ("protocol.cooldown_max_s=-1", ["protocol.cooldown_max_s=-1", ">= 0"]),
])
def test_a_bad_cool_down_is_one_line(run_cli, tmp_path, override, needles):
    result = run_cli("model=squeezenet1_1", "protocol=quick", override)
    assert result.returncode == 2
    assert_one_line_error(result, *needles)
    assert not list(tmp_path.glob("outputs/**/result.json"))

"""RAPL powercap reading, on a sysfs tree laid out as Linux does (this VM exposes none)."""

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

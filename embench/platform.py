"""The device a run measures on: availability checks, threads and host metadata."""

import os
import platform as pyplatform
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable

import psutil
import torch

import embench
from embench.errors import ConfigError, DeviceUnavailable

SUPPORTED_DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Device:
    """A resolved device: the torch device, how to wait for it, and what it really is."""

    torch_device: torch.device
    name: str  # CPU model or GPU name
    sync: Callable[[], None]


def _no_sync() -> None:
    """CPU work is synchronous: nothing to wait for."""


@cache
def cpu_model() -> str:
    """The CPU's marketing name, e.g. 'AMD EPYC'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return pyplatform.processor() or pyplatform.machine()


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def _cpu() -> Device:
    return Device(torch.device("cpu"), cpu_model(), _no_sync)


def _cuda() -> Device:
    return Device(torch.device("cuda", 0), torch.cuda.get_device_name(0), torch.cuda.synchronize)


def resolve_device(platform_cfg) -> Device:
    """The device the platform asks for; fails in one line when this host lacks it (strict)."""
    wanted = platform_cfg.device
    if wanted not in SUPPORTED_DEVICES:
        raise ConfigError(f"platform.device={wanted!r} is not supported; valid: {', '.join(SUPPORTED_DEVICES)}")
    if wanted == "cpu":
        return _cpu()
    if torch.cuda.is_available():
        return _cuda()
    if platform_cfg.strict:
        raise DeviceUnavailable(
            f"platform={platform_cfg.name} needs a CUDA GPU, but this host has none "
            f"(torch.cuda.is_available() is False; CPU: {cpu_model()}); "
            f"use platform=cpu, or platform.strict=false to run on the CPU instead"
        )
    return _cpu()


def configure_host(platform_cfg) -> dict[str, str]:
    """Sets torch's intra-op threads (default: all physical cores); returns them as a tag."""
    torch.set_num_threads(int(platform_cfg.threads or physical_cores()))
    return {"threads": str(torch.get_num_threads())}


@cache
def _git_commit() -> str:
    """The embench checkout's commit, or 'unknown' for an installed package."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(embench.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _library_versions() -> dict[str, str]:
    import torchvision

    versions = {"python": pyplatform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__}
    for name in ("timm", "pretrainedmodels"):
        try:
            versions[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            pass
    return {f"version.{k}": v for k, v in versions.items()}


def host_tags(device: Device) -> dict[str, str]:
    """Host metadata stamped on every run."""
    freq = psutil.cpu_freq()
    tags = {
        "host.name": pyplatform.node(),
        "host.os": pyplatform.platform(),
        "host.cpu_model": cpu_model(),
        "host.cpu_physical_cores": str(physical_cores()),
        "host.cpu_logical_cores": str(psutil.cpu_count(logical=True)),
        "host.cpu_freq_mhz": f"{freq.current:.0f}" if freq else "unknown",
        "host.load_avg_1m": f"{os.getloadavg()[0]:.2f}",
        "host.memory_gb": f"{psutil.virtual_memory().total / 2**30:.1f}",
        "device.type": device.torch_device.type,
        "device.name": device.name,
        "embench.version": embench.__version__,
        "embench.git_commit": _git_commit(),
    }
    if device.torch_device.type == "cuda":
        tags["version.cuda"] = str(torch.version.cuda)
    tags.update(_library_versions())
    return tags

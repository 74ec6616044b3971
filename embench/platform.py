"""The platform a run measures on: does this host have its device, and which device runs it."""

import platform as pyplatform
import re
from dataclasses import dataclass
from typing import Callable

import torch

from embench.errors import ConfigError, DeviceUnavailable
from embench.host import cpu_model, physical_cores

DEVICE_KINDS = ("cpu", "cuda", "openvino")


@dataclass(frozen=True)
class Device:
    """A resolved device: what runs the model, how to wait for it, and what it really is."""

    kind: str  # cpu | cuda | openvino
    name: str  # CPU model, GPU name or OpenVINO device name
    torch_device: torch.device  # where torch work (build, reference output) runs
    sync: Callable[[], None]
    threads: int
    openvino_device: str = "CPU"  # the OpenVINO device for the openvino backend


def _no_sync() -> None:
    """CPU work is synchronous: nothing to wait for."""


def _cuda_name() -> str | None:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _openvino_devices() -> list[str]:
    try:
        import openvino

        return list(openvino.Core().available_devices)
    except ImportError:
        return []


def host_summary() -> str:
    """What this host has, in the words of platform requirements."""
    gpu = _cuda_name()
    return (
        f"{pyplatform.machine()} CPU {cpu_model()}, {f'CUDA GPU {gpu}' if gpu else 'no CUDA GPU'}, "
        f"OpenVINO devices: {', '.join(_openvino_devices()) or 'none'}"
    )


def _unmet(platform_cfg) -> list[str]:
    """The platform's requirements this host does not meet."""
    requires = platform_cfg.get("requires") or {}
    unmet = []
    if platform_cfg.device == "cuda" and _cuda_name() is None:
        unmet.append("a CUDA GPU")
    if requires.get("cuda_name") and not re.search(requires.cuda_name, _cuda_name() or "", re.IGNORECASE):
        unmet.append(f"a CUDA GPU named like {requires.cuda_name!r}")
    if requires.get("arch") and not re.search(requires.arch, pyplatform.machine()):
        unmet.append(f"a {requires.arch} CPU")
    if requires.get("cpu_model") and not re.search(requires.cpu_model, cpu_model(), re.IGNORECASE):
        unmet.append(f"a CPU named like {requires.cpu_model!r}")
    if platform_cfg.device == "openvino" and platform_cfg.openvino_device not in _openvino_devices():
        unmet.append(f"the OpenVINO device {platform_cfg.openvino_device}")
    return unmet


def _make(kind: str, threads: int, openvino_device: str = "CPU") -> Device:
    if kind == "cuda":
        return Device("cuda", torch.cuda.get_device_name(0), torch.device("cuda", 0), torch.cuda.synchronize, threads)
    if kind == "openvino":
        return Device("openvino", openvino_device, torch.device("cpu"), _no_sync, threads, openvino_device)
    return Device("cpu", cpu_model(), torch.device("cpu"), _no_sync, threads)


def _fallback_kind(platform_cfg) -> str:
    """What a non-strict platform runs on when its device is absent: a GPU if any, else the CPU."""
    if platform_cfg.device == "cuda" and _cuda_name() is not None:
        return "cuda"
    return "cpu"


def resolve_device(platform_cfg) -> tuple[Device, bool]:
    """The device to run on, and whether it stands in for an absent one (platform.strict=false).

    Sets torch's intra-op threads (default: all physical cores). A strict platform whose device
    this host lacks fails in one line naming the platform, what it needs and what the host has.
    """
    if platform_cfg.device not in DEVICE_KINDS:
        raise ConfigError(f"platform.device={platform_cfg.device!r} is not valid; valid: {', '.join(DEVICE_KINDS)}")
    torch.set_num_threads(int(platform_cfg.get("threads") or physical_cores()))
    threads = torch.get_num_threads()
    unmet = _unmet(platform_cfg)
    if not unmet:
        return _make(platform_cfg.device, threads, platform_cfg.get("openvino_device", "CPU")), False
    if platform_cfg.strict:
        what = (platform_cfg.get("requires") or {}).get("what") or " and ".join(unmet)
        note = (platform_cfg.get("requires") or {}).get("note")
        raise DeviceUnavailable(
            f"platform={platform_cfg.name} needs {what}, which this host lacks (it has: {host_summary()})"
            f"{f'; {note}' if note else ''}; use platform=cpu, or platform.strict=false to run on this host instead"
        )
    return _make(_fallback_kind(platform_cfg), threads), True

"""Facts about this host: CPU, cores, memory, library versions, embench's commit and code."""

import hashlib
import os
import platform as pyplatform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

import psutil

import embench
from embench.names import EMBENCH_CODE_TAG, VERSION_TAG

# on every run; each backend tags its own runtime's version (embench.names.RUNTIME_VERSION_TAGS)
_VERSIONED = ("torch", "torchvision", "timm", "pretrainedmodels", "mlflow", "hydra-core")


@cache
def cpu_model() -> str:
    """The CPU's name, e.g. 'AMD EPYC'; on ARM, its implementer and part numbers."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    fields = {}
    for line in info.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if fields.get("model name"):
        return fields["model name"]
    if fields.get("CPU implementer"):
        return f"ARM implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}"
    return pyplatform.processor() or pyplatform.machine()


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


@cache
def _git_commit() -> str:
    """The embench checkout's commit, or 'unknown' for an installed package."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(embench.__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@cache
def code_identity() -> str:
    """A short hash of embench's own source files: equal where the code that measures is the same."""
    code = hashlib.sha1()
    for path in sorted(Path(embench.__file__).parent.rglob("*.py")):
        code.update(path.read_bytes())
    return code.hexdigest()[:10]


def package_versions(packages) -> dict[str, str]:
    """version.<package> -> its installed version, for those of `packages` installed here."""
    versions = {}
    for name in packages:
        try:
            versions[VERSION_TAG + name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _versions() -> dict[str, str]:
    return {VERSION_TAG + "python": pyplatform.python_version(), VERSION_TAG + "embench": embench.__version__,
            EMBENCH_CODE_TAG: code_identity(), **package_versions(_VERSIONED)}


def host_tags() -> dict[str, str]:
    """Host metadata stamped on every run."""
    freq = psutil.cpu_freq()
    tags = {
        "host.name": pyplatform.node(),
        "host.os": pyplatform.platform(),
        "host.arch": pyplatform.machine(),
        "host.cpu_model": cpu_model(),
        "host.cpu_physical_cores": str(physical_cores()),
        "host.cpu_logical_cores": str(psutil.cpu_count(logical=True)),
        "host.cpu_freq_mhz": f"{freq.current:.0f}" if freq else "unknown",
        "host.load_avg_1m": f"{os.getloadavg()[0]:.2f}",
        "host.memory_gb": f"{psutil.virtual_memory().total / 2**30:.1f}",
        "embench.git_commit": _git_commit(),
    }
    tags.update(_versions())
    return tags

"""NVIDIA GPU facts through NVML (nvidia-ml-py): driver, clocks, and the energy counter."""

import pynvml


def _handle():
    pynvml.nvmlInit()
    return pynvml.nvmlDeviceGetHandleByIndex(0)


def gpu_tags() -> dict[str, str]:
    """Driver, clocks and memory of GPU 0; empty where NVML is unavailable."""
    try:
        handle = _handle()
        return {
            "gpu.driver": pynvml.nvmlSystemGetDriverVersion(),
            "gpu.sm_clock_mhz": str(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)),
            "gpu.max_sm_clock_mhz": str(pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM)),
            "gpu.mem_clock_mhz": str(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM)),
            "gpu.memory_gb": f"{pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30:.1f}",
            "gpu.power_limit_w": f"{pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000:.0f}",
        }
    except pynvml.NVMLError:
        return {}


def energy_mj() -> float | None:
    """GPU 0's energy counter since the driver loaded, in millijoules (Volta and newer)."""
    try:
        return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(_handle()))
    except pynvml.NVMLError:
        return None

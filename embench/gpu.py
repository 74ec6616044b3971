"""NVIDIA GPU facts through NVML (nvidia-ml-py): driver, clocks, and the energy counter."""

import pynvml


def _handle(index: int):
    """NVML's handle for torch's CUDA device `index`, found by UUID: NVML numbers GPUs its own way
    (CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER renumber torch's, not NVML's)."""
    import torch

    pynvml.nvmlInit()
    uuid = str(torch.cuda.get_device_properties(index).uuid)
    return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")


def gpu_tags(index: int) -> dict[str, str]:
    """Driver, clocks and memory of torch's CUDA device `index`; empty where NVML is unavailable."""
    try:
        handle = _handle(index)
        return {
            "gpu.driver": pynvml.nvmlSystemGetDriverVersion(),
            "gpu.sm_clock_mhz": str(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)),
            "gpu.max_sm_clock_mhz": str(pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM)),
            "gpu.mem_clock_mhz": str(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM)),
            "gpu.memory_gb": f"{pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30:.1f}",
            "gpu.power_limit_w": f"{pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000:.0f}",
            "gpu.uuid": pynvml.nvmlDeviceGetUUID(handle),
        }
    except pynvml.NVMLError:
        return {}


def energy_mj(index: int) -> float | None:
    """The energy counter of torch's CUDA device `index` since the driver loaded, in mJ (Volta and newer)."""
    try:
        return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(_handle(index)))
    except pynvml.NVMLError:
        return None

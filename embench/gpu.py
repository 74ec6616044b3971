"""NVIDIA GPU facts through NVML (nvidia-ml-py): driver, clocks, the energy counter, and device memory."""

import os

import pynvml

TORCH_ALLOCATOR_BACKENDS = ("torch", "torch_compile")  # their device memory is all torch's allocator's


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


def process_memory_mb(index: int) -> float | None:
    """This process's memory on torch's CUDA device `index` as the driver counts it (CUDA context and every
    runtime's allocations), in MiB; None where NVML lists no process with this PID (a container's own PID
    namespace) or gives no figure."""
    try:
        processes = pynvml.nvmlDeviceGetComputeRunningProcesses(_handle(index))
    except pynvml.NVMLError:
        return None
    used = [p.usedGpuMemory for p in processes if p.pid == os.getpid() and p.usedGpuMemory is not None]
    return used[0] / 2**20 if used else None


def device_memory(backend: str, index: int) -> tuple[dict[str, float], dict[str, str]]:
    """A CUDA run's device-memory metrics, read right after the timed loop, and the tag saying where each came from.

    peak_device_memory_mb is torch's allocator's peak, so only for backends whose memory that allocator holds
    (TensorRT and ONNX Runtime allocate their own); device_memory_after_loop_mb is the driver's figure."""
    import torch

    metrics, sources = {}, []
    if backend in TORCH_ALLOCATOR_BACKENDS:
        metrics["peak_device_memory_mb"] = torch.cuda.max_memory_allocated(index) / 2**20
        sources.append("peak: torch allocator since the backend was prepared")
    else:
        sources.append(f"peak: none, {backend} allocates outside torch's allocator")
    used = process_memory_mb(index)
    if used is not None:
        metrics["device_memory_after_loop_mb"] = used
    sources.append("after loop: " + ("nvml, this process" if used is not None else "none, NVML lists no process with this PID"))
    return metrics, {"device_memory_source": "; ".join(sources)}

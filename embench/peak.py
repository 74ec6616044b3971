"""Peak FP32 rate of a device: the platform's published figure, or measured once and cached."""

import json
import time

import torch

from embench.cache import cache_dir
from embench.contention import CpuContention
from embench.platform import Device

_SIZES = {"cpu": 2048, "cuda": 8192}


def _measure_gflops(device: Device) -> float:
    """Best of several large FP32 matrix products (TF32 off), in GFLOP/s."""
    n = _SIZES[device.kind]
    a = torch.randn(n, n, device=device.torch_device)
    b = torch.randn(n, n, device=device.torch_device)
    allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        torch.mm(a, b)
        device.sync()
        best = float("inf")
        deadline = time.perf_counter() + 1.0
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            torch.mm(a, b)
            device.sync()
            best = min(best, time.perf_counter() - start)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    return 2 * n**3 / best / 1e9


def peak_gflops(device: Device, published: float | None) -> tuple[float | None, str]:
    """(peak GFLOP/s, where it came from); None where neither a figure nor a measurement exists."""
    if published:
        return float(published), "platform spec"
    if device.kind not in _SIZES:
        return None, "unknown"
    key = f"{device.kind}|{device.name}|threads={device.threads}|torch={torch.__version__}"
    path = cache_dir() / "peak_gflops.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    if key in known:
        return known[key], f"measured FP32 matmul, cached in {path}"
    with CpuContention() as contention:
        gflops = _measure_gflops(device)
    if contention.busy:  # a busy host understates the peak: use it for this run only
        return gflops, "measured FP32 matmul on a busy host, not cached"
    known[key] = gflops
    path.write_text(json.dumps(known, indent=2))
    return gflops, f"measured FP32 matmul, cached in {path}"

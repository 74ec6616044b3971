"""Peak rate of a device at a precision: the platform's published FP32 figure, or measured once per precision and cached."""

import json
import os
import time
from pathlib import Path

import torch
from filelock import FileLock

from embench.cache import cache_dir
from embench.contention import CpuContention
from embench.platform import Device

_SIZES = {"cpu": 2048, "cuda": 8192}
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# The precisions with a GEMM worth calling a peak, by device kind. torch's FP16 GEMM on most CPUs is emulated, about
# 0.2 GFLOP/s on an AMD EPYC (a 2048 product takes a minute and a half), and it has no INT8 GEMM to measure.
_MEASURED = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "bf16", "fp16")}
_METHOD = "best of mm and 1x1 conv"  # in the cache key: a new method never reuses an old figure


def _best_seconds(kernel, sync) -> float:
    """Fastest of repeated runs over about a second, after one untimed run."""
    kernel()
    sync()
    best, deadline = float("inf"), time.perf_counter() + 1.0
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        kernel()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def _measure_gflops(device: Device, precision: str) -> float:
    """GFLOP/s of the faster of two GEMMs in `precision`: torch.mm, and on CPUs a 1x1 convolution.

    On CPUs torch.mm goes through MKL and convolutions through oneDNN; on this AMD host MKL
    reached 213 GFLOP/s and oneDNN 435, so the peak is the better of the two. TF32 is off.
    """
    n = _SIZES[device.kind]
    a = torch.randn(n, n, device=device.torch_device, dtype=_DTYPES[precision])
    b = torch.randn(n, n, device=device.torch_device, dtype=_DTYPES[precision])
    kernels = [lambda: torch.mm(a, b)]
    if device.kind == "cpu":
        image, weight = a.reshape(1, n, 32, n // 32), b.reshape(n, n, 1, 1)  # the same GEMM, n x n x n
        kernels.append(lambda: torch.nn.functional.conv2d(image, weight))
    allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.inference_mode():
            return max(2 * n**3 / _best_seconds(kernel, device.sync) / 1e9 for kernel in kernels)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32


def peak_gflops(device: Device, published: float | None, precision: str = "fp32") -> tuple[float | None, str]:
    """(peak GFLOP/s at `precision`, where it came from); None, and why, where neither a figure nor a measurement exists.

    `published` is the platform's FP32 figure: it is the peak of FP32 runs only.
    """
    if published and precision == "fp32":
        return float(published), "platform spec"
    if precision not in _MEASURED.get(device.kind, ()):
        return None, f"none: no {precision.upper()} peak is measured on a {device.kind} device"
    key = f"{device.kind}|{device.name}|threads={device.threads}|torch={torch.__version__}|precision={precision}|{_METHOD}"
    path = cache_dir() / "peak_gflops.json"
    measured = f"measured {precision.upper()} matmul"
    if key in _read(path):
        return _read(path)[key], f"{measured}, cached in {path}"
    with CpuContention() as contention:
        gflops = _measure_gflops(device, precision)
    if contention.busy:  # a busy host understates the peak: use it for this run only
        return gflops, f"{measured} on a busy host, not cached"
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        with FileLock(f"{path}.lock"):  # two processes add their keys one after the other
            known = _read(path) | {key: gflops}
            partial.write_text(json.dumps(known, indent=2))
            partial.replace(path)  # readers see the old file or the new one, never half of one
    except OSError as err:  # a full or read-only cache costs the next run a measurement, never this run
        partial.unlink(missing_ok=True)
        return gflops, f"{measured}, not cached ({path}: {err.strerror})"
    return gflops, f"{measured}, cached in {path}"


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}

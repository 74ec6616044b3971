"""torch.compile (TorchInductor): compiled once in prepare, so compile time is part of prepare_s."""

from collections import Counter

import torch
from torch._dynamo.utils import counters

from embench.backends.torch_eager import PreparedTorch, TorchEager
from embench.errors import ConfigError
from embench.platform import Device

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")

# Inductor's generated C++ kernels each report to torch.profiler (a RecordFunction, a no-op unless a profiler
# runs), so the per-layer profile names them ("cpp_fused_relu_3") instead of one opaque "Call CompiledFxGraph".
torch._inductor.config.cpp.enable_kernel_profile = True


def _cache_state(before: Counter) -> str:
    """Whether Inductor's on-disk graph cache served this compilation: prepare_s depends on it."""
    now = Counter(counters["inductor"]) - before
    hits, misses = now["fxgraph_cache_hit"], now["fxgraph_cache_miss"]
    if hits and not misses:
        return "warm"
    if misses and not hits:
        return "cold"
    return "partly warm" if hits else "unknown"


class TorchCompile(TorchEager):
    """torch.compile over the eager model, with a static input shape."""

    def __init__(self, mode: str = "default", precision: str = "fp32", channels_last: bool = False, cudnn_benchmark: bool = True,
                 tf32: bool = False):
        if mode not in MODES:
            raise ConfigError(f"backend.runtime.mode={mode!r} is not valid; valid: {', '.join(MODES)}")
        super().__init__(precision=precision, channels_last=channels_last, cudnn_benchmark=cudnn_benchmark, tf32=tf32)
        self.mode = mode

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device, model_id: str) -> PreparedTorch:
        model, inputs = self._place(model, example, device)
        torch._dynamo.reset()  # a sweep compiles many models in one process: start each from a clean cache
        before = Counter(counters["inductor"])
        compiled = torch.compile(model, mode=self.mode, dynamic=False)
        # compile now, and on CUDA let these modes record their CUDA graphs (a warm-up call, the recording call, a
        # first replay): the first inference after prepare is a replay, and compile and capture are in prepare_s
        for _ in range(3 if device.kind == "cuda" and self.mode in CUDA_GRAPH_MODES else 1):
            compiled(inputs)
        device.sync()
        tags = self._tags(device) | {"backend.compile_mode": self.mode, "torch_compile.cache": _cache_state(before)}
        return PreparedTorch(lambda: compiled(inputs), device, self.precision, tags, inputs=inputs)

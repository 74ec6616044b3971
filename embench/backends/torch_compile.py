"""torch.compile (TorchInductor): compiled once in prepare, so compile time is part of prepare_s."""

from collections import Counter

import torch
from torch._dynamo.utils import counters

from embench.backends.torch_eager import PreparedTorch, TorchEager
from embench.errors import ConfigError
from embench.platform import Device

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


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

    def __init__(self, mode: str = "default", dtype: str = "fp32", channels_last: bool = False, cudnn_benchmark: bool = True,
                 tf32: bool = False):
        if mode not in MODES:
            raise ConfigError(f"backend.runtime.mode={mode!r} is not valid; valid: {', '.join(MODES)}")
        super().__init__(dtype=dtype, channels_last=channels_last, cudnn_benchmark=cudnn_benchmark, tf32=tf32)
        self.mode = mode

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device, model_id: str) -> PreparedTorch:
        model, inputs = self._place(model, example, device)
        torch._dynamo.reset()  # a sweep compiles many models in one process: start each from a clean cache
        before = Counter(counters["inductor"])
        compiled = torch.compile(model, mode=self.mode, dynamic=False)
        compiled(inputs)  # compile now, not in the first timed inference
        device.sync()
        tags = self._tags(device) | {"backend.compile_mode": self.mode, "torch_compile.cache": _cache_state(before)}
        return PreparedTorch(lambda: compiled(inputs), device, self.dtype, tags)

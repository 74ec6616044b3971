"""PyTorch eager execution, optionally replayed as a CUDA graph."""

from dataclasses import dataclass, field
from typing import Callable

import torch

from embench.backends import TOLERANCE, check_flags, check_precision
from embench.errors import ConfigError
from embench.names import PRECISION_TAG
from embench.platform import Device
from embench.profiling import Profile, profile_torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}  # the precisions torch runs


@dataclass
class PreparedTorch:
    """A step that runs the bound input through a torch callable on its device."""

    step: Callable[[], object]
    device: Device
    precision: str
    tags: dict[str, str] = field(default_factory=dict)
    inferences_per_step: int = 1
    files: dict[str, bytes] = field(default_factory=dict)
    concurrent: bool = False  # whether several threads may run the step at once
    inputs: torch.Tensor | None = None  # the input the step reads (accuracy writes images into it)

    def __call__(self) -> object:
        return self.step()

    def replica(self) -> Callable[[], object] | None:
        """A step for another worker thread: the same module (torch's CPU ops release the GIL)."""
        return self.step if self.concurrent else None

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.precision]

    def output(self) -> torch.Tensor:
        return self.step().float().cpu()

    def profile(self, iterations: int) -> Profile:
        return profile_torch(self.step, self.device.sync, iterations, self.device.kind)


def _cuda_graph(model: torch.nn.Module, inputs: torch.Tensor) -> Callable[[], torch.Tensor]:
    """Captures one inference as a CUDA graph; the step replays it and returns its output."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm-up outside the graph, as capture requires
            model(inputs)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = model(inputs)

    def replay() -> torch.Tensor:
        graph.replay()
        return output

    return replay


class TorchEager:
    """Runs the model as it is, op by op, in the chosen precision and memory format."""

    DEVICE_KINDS = ("cpu", "cuda")

    def __init__(self, precision: str = "fp32", channels_last: bool = False, cudnn_benchmark: bool = True,
                 cuda_graphs: bool = False, tf32: bool = False):
        check_precision(precision, tuple(DTYPES))
        check_flags(channels_last=channels_last, cudnn_benchmark=cudnn_benchmark, cuda_graphs=cuda_graphs, tf32=tf32)
        self.precision, self.channels_last = precision, channels_last
        self.cudnn_benchmark, self.cuda_graphs, self.tf32 = cudnn_benchmark, cuda_graphs, tf32

    def _place(self, model: torch.nn.Module, example: torch.Tensor, device: Device):
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        dtype = DTYPES[self.precision]
        if device.kind == "cuda":
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
            # cuDNN convolutions default to TF32 (10-bit mantissa): fp32 means fp32 unless asked for
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = self.tf32
        model = model.to(device=device.torch_device, dtype=dtype, memory_format=memory_format).eval()
        return model, example.to(device=device.torch_device, dtype=dtype, memory_format=memory_format)

    def _tags(self, device: Device) -> dict[str, str]:
        tags = {PRECISION_TAG: self.precision, "backend.channels_last": str(self.channels_last).lower()}
        if device.kind == "cuda":
            tags["backend.cudnn_benchmark"] = str(self.cudnn_benchmark).lower()
            tags["backend.cuda_graphs"] = str(self.cuda_graphs).lower()
            tags["backend.tf32"] = str(self.tf32).lower()
        return tags

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device, model_id: str) -> PreparedTorch:
        model, inputs = self._place(model, example, device)
        if self.cuda_graphs:
            if device.kind != "cuda":
                raise ConfigError(f"backend.runtime.cuda_graphs=true needs a CUDA platform, not a {device.kind} one")
            return PreparedTorch(_cuda_graph(model, inputs), device, self.precision, self._tags(device), inputs=inputs)
        return PreparedTorch(lambda: model(inputs), device, self.precision, self._tags(device), concurrent=device.kind == "cpu",
                             inputs=inputs)

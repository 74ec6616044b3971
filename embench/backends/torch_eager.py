"""PyTorch eager execution."""

from dataclasses import dataclass

import torch

from embench.errors import ConfigError
from embench.platform import Device
from embench.profiling import Profile, profile_torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class PreparedTorch:
    """A torch module bound to its input on its device."""

    model: torch.nn.Module
    inputs: torch.Tensor
    device: Device

    def __call__(self) -> torch.Tensor:
        return self.model(self.inputs)

    def profile(self, iterations: int) -> Profile:
        return profile_torch(self, self.device.sync, iterations, self.device.torch_device.type)


class TorchEager:
    """Runs the model as it is, op by op, in the chosen dtype and memory format."""

    def __init__(self, dtype: str = "float32", channels_last: bool = False):
        if dtype not in DTYPES:
            raise ConfigError(f"backend.runtime.dtype={dtype!r} is not supported; valid: {', '.join(DTYPES)}")
        self.dtype = DTYPES[dtype]
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device) -> PreparedTorch:
        target = device.torch_device
        model = model.to(device=target, dtype=self.dtype, memory_format=self.memory_format).eval()
        inputs = example.to(device=target, dtype=self.dtype, memory_format=self.memory_format)
        return PreparedTorch(model, inputs, device)

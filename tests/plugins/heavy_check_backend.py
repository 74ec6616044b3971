"""A user's own backend whose output check touches a known 400 MB: the memory peak must not include it."""

import torch

from embench.backends.torch_eager import PreparedTorch, TorchEager

CHECK_ALLOCATION_MB = 400


class PreparedHeavyCheck(PreparedTorch):
    """Torch eager whose output(), called only by the output check, first fills CHECK_ALLOCATION_MB."""

    def output(self) -> torch.Tensor:
        ballast = torch.ones(CHECK_ALLOCATION_MB * 2**20 // 4)  # written, so resident
        assert float(ballast[-1]) == 1.0
        return super().output()


class HeavyCheckEager(TorchEager):
    def prepare(self, model, example, device, model_id):
        model, inputs = self._place(model, example, device)
        return PreparedHeavyCheck(lambda: model(inputs), device, self.dtype, self._tags(device))

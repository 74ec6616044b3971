"""User backends that touch a known 400 MB outside the timed run (in the output check, or while preparing):
the memory peak of the prepared backend must not include it."""

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
        return PreparedHeavyCheck(lambda: model(inputs), device, self.precision, self._tags(device))


class HeavyPrepareEager(TorchEager):
    """Torch eager whose preparation (as a conversion would) fills CHECK_ALLOCATION_MB, then frees it."""

    def prepare(self, model, example, device, model_id):
        ballast = torch.ones(CHECK_ALLOCATION_MB * 2**20 // 4)
        assert float(ballast[-1]) == 1.0
        del ballast
        return super().prepare(model, example, device, model_id)

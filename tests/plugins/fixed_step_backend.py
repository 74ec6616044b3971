"""A user's own backend whose every step takes a known 20 ms: an independent truth for timing figures."""

import time

import torch

from embench.backends.torch_eager import PreparedTorch, TorchEager

STEP_S = 0.020


class FixedStep(TorchEager):
    """Returns the model's output, computed once, after sleeping STEP_S on every call."""

    def prepare(self, model, example, device, model_id):
        model, inputs = self._place(model, example, device)
        with torch.inference_mode():
            output = model(inputs)

        def step():
            time.sleep(STEP_S)
            return output

        return PreparedTorch(step, device, self.dtype, self._tags(device))

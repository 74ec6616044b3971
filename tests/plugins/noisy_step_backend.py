"""A user's own backend whose steps take random times of huge spread (lognormal, median `median_ms`, sigma
`sigma`): no short run pins its median to 1 %, so a precision target meets the cap."""

import numpy as np
import torch
from fixed_step_backend import PreparedFixed, hold

from embench.backends.torch_eager import TorchEager


class NoisyStep(TorchEager):
    """Returns the model's output, computed once, after waiting a lognormal time on every call."""

    def __init__(self, median_ms: float = 2.0, sigma: float = 1.0, **options):
        super().__init__(**options)
        self.median_s, self.sigma = median_ms / 1e3, sigma

    def prepare(self, model, example, device, model_id):
        model, inputs = self._place(model, example, device)
        with torch.inference_mode():
            output = model(inputs)
        rng = np.random.default_rng(0)

        def step():
            hold(self.median_s * rng.lognormal(0.0, self.sigma))
            return output

        return PreparedFixed(step, device, self.precision, self._tags(device))

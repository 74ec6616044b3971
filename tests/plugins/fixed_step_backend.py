"""A user's own backend whose every step takes a known time (20 ms unless `step_ms` says; every other
step `alternate_ms` where given): an independent truth for timing figures. Several workers may run
it at once (`replica`)."""

import itertools
import time

import torch

from embench.backends.torch_eager import PreparedTorch, TorchEager

STEP_S = 0.020
_SPIN_S = 0.0003  # the last 0.3 ms are spun, not slept, so a step lasts its time to a few µs


def hold(seconds: float) -> None:
    """Waits `seconds` precisely, sleeping (GIL released) all but the last fraction of a millisecond."""
    end = time.perf_counter() + seconds
    if seconds > _SPIN_S:
        time.sleep(seconds - _SPIN_S)
    while time.perf_counter() < end:
        pass


class PreparedFixed(PreparedTorch):
    def replica(self):
        return self.step


class FixedStep(TorchEager):
    """Returns the model's output, computed once, after waiting `step_ms` on every call."""

    def __init__(self, step_ms: float = 1e3 * STEP_S, alternate_ms: float | None = None, **options):
        super().__init__(**options)
        self.step_s = step_ms / 1e3
        self.alternate_s = step_ms / 1e3 if alternate_ms is None else alternate_ms / 1e3  # every other step's time

    def prepare(self, model, example, device, model_id):
        model, inputs = self._place(model, example, device)
        with torch.inference_mode():
            output = model(inputs)

        times = itertools.cycle((self.step_s, self.alternate_s))

        def step():
            hold(next(times))
            return output

        return PreparedFixed(step, device, self.precision, self._tags(device))

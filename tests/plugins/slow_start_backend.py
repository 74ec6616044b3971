"""A user's own backend whose first call is slow (5 s), as a runtime's cold start can be."""

import time

from embench.backends.torch_eager import PreparedTorch, TorchEager

FIRST_CALL_S = 5.0  # stands out of a busy host's calls and output check (844 ms and 1.9 s seen on 2 shared cores)


class SlowStartEager(TorchEager):
    """Torch eager whose first inference sleeps FIRST_CALL_S before running."""

    def prepare(self, model, example, device, model_id):
        model, inputs = self._place(model, example, device)
        calls = []

        def step():
            if not calls:
                time.sleep(FIRST_CALL_S)
            calls.append(1)
            return model(inputs)

        return PreparedTorch(step, device, self.precision, self._tags(device))

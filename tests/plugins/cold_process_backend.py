"""A user's own backend whose first call in a process is slow, as a runtime's per-process caches make a cold
call: the first step this process ever runs waits COLD_CALL_MS more; every step waits `step_ms` (5 ms unless
given). Each replica (`workers` > 1) waits REPLICA_FIRST_MS more on its own first call, as a fresh request does."""

import torch
from fixed_step_backend import hold

from embench.backends.torch_eager import PreparedTorch, TorchEager

COLD_CALL_MS = 300.0
REPLICA_FIRST_MS = 400.0
_process_ran = []  # set by the first step this process runs, whichever job it belongs to


class PreparedCold(PreparedTorch):
    def replica(self):
        return _step(self.output_tensor, self.step_s, REPLICA_FIRST_MS / 1e3)


def _step(output: torch.Tensor, step_s: float, first_s: float):
    calls = []

    def step():
        extra = 0.0 if _process_ran else COLD_CALL_MS / 1e3
        extra += 0.0 if calls else first_s
        _process_ran.append(1)
        calls.append(1)
        hold(step_s + extra)
        return output

    return step


class ColdProcess(TorchEager):
    """Returns the model's output, computed once, after waiting as the module's docstring says."""

    def __init__(self, step_ms: float = 5.0, **options):
        super().__init__(**options)
        self.step_s = step_ms / 1e3

    def prepare(self, model, example, device, model_id):
        model, inputs = self._place(model, example, device)
        with torch.inference_mode():
            output = model(inputs)  # torch's own work: no step of this backend has run
        prepared = PreparedCold(_step(output, self.step_s, 0.0), device, self.precision, self._tags(device))
        prepared.output_tensor, prepared.step_s = output, self.step_s
        return prepared

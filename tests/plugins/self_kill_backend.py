"""A user's own backend whose process dies while preparing, as a segfault or the kernel's OOM killer ends one."""

import os
import signal

from embench.backends.torch_eager import TorchEager


class SelfKill(TorchEager):
    """Sends its own process `signum` (default SIGKILL) when asked to prepare a model."""

    def __init__(self, signum: int = signal.SIGKILL, **options):
        super().__init__(**options)
        self.signum = signum

    def prepare(self, model, example, device, model_id):
        os.kill(os.getpid(), self.signum)

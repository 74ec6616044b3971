"""A user's own backend whose output is deliberately wrong, to show embench's output check."""

from embench.backends.torch_eager import PreparedTorch, TorchEager


class ShiftedEager(TorchEager):
    """Torch eager, plus one on every logit."""

    def prepare(self, model, example, device, model_id):
        model, inputs = self._place(model, example, device)
        return PreparedTorch(lambda: model(inputs) + 1.0, device, self.precision, self._tags(device))

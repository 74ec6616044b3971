"""The torch model as an ONNX file, exported once per (model, input shape) and cached on disk."""

import contextlib
import io
from pathlib import Path

import torch

from embench.backends.conversion import cached, conversion_failed, shape_name


def exported_onnx(model: torch.nn.Module, example: torch.Tensor, model_id: str) -> tuple[Path, str]:
    """The cached ONNX file of the model at the example's static shape, and "hit" or "miss"."""
    def export(path: Path) -> None:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
                torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False, verbose=False)
        except Exception as err:  # an exporter failure names the network's unsupported operator
            raise conversion_failed(model_id, "torch.onnx.export", err) from None

    return cached("onnx", torch.__version__.split("+")[0], f"{model_id}-{shape_name(example)}{_dtype_suffix(example)}.onnx", export)


def _dtype_suffix(example: torch.Tensor) -> str:
    """'' for FP32 inputs, '-float16' for a model exported in half precision."""
    return "" if example.dtype == torch.float32 else "-" + str(example.dtype).removeprefix("torch.")

"""OpenVINO: the torch model converted with openvino.convert_model, static shape, cached on disk."""

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openvino as ov
import torch

from embench.backends import (
    PRECISIONS,
    check_calibration,
    check_option,
    check_precision,
    is_count,
    kernel_precision_tags,
    require,
    tolerance,
)
from embench.backends.conversion import Calibration, cached, conversion_failed, shape_name
from embench.errors import ConfigError
from embench.names import PRECISION_TAG, VERSION_TAG
from embench.platform import Device
from embench.profiling import OpTime, Profile

HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
# embench's precision -> OpenVINO's INFERENCE_PRECISION_HINT (int8: the quantized model's other layers at f32)
HINT_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
# the runtime model's `runtimePrecision` of a compute layer -> embench's precision
RUNTIME_PRECISION = {"f32": "fp32", "bf16": "bf16", "f16": "fp16", "u8": "int8", "i8": "int8"}
COMPUTE_LAYERS = ("Convolution", "Deconvolution", "FullyConnected", "MatMul")  # the runtime model's layer types


def _converted(model: torch.nn.Module, example: torch.Tensor, model_id: str) -> tuple[ov.Model, str]:
    """The model as OpenVINO IR, converted once per model (any batch) and reshaped to a static input shape."""

    def convert(path: Path) -> None:
        try:
            converted = ov.convert_model(model, example_input=example)  # batch and size left dynamic
        except Exception as err:  # an operator OpenVINO's frontend does not know
            raise conversion_failed(model_id, "openvino", err) from None
        ov.save_model(converted, path, compress_to_fp16=False)  # keep FP32 weights

    xml, cache = cached("openvino", ov.__version__.split("-")[0], f"{model_id}.xml", convert, companions=(".bin",))
    converted = ov.Core().read_model(xml)
    converted.reshape(list(example.shape))  # static shapes: faster, and per-layer counters work
    return converted, cache


def _quantized(converted: ov.Model, example: torch.Tensor, model_id: str, calibration: Calibration) -> tuple[ov.Model, str]:
    """NNCF's post-training INT8 quantization of the static-shape model, calibrated on `calibration`'s images."""
    nncf = require("nncf", "int8")

    def quantize(path) -> None:
        batches = calibration.batches(example)
        try:
            quantized = nncf.quantize(converted, nncf.Dataset(batches, lambda batch: batch.numpy()), subset_size=len(batches))
        except Exception as err:  # e.g. an operation NNCF cannot quantize
            raise conversion_failed(model_id, "nncf", err) from None
        ov.save_model(quantized, path, compress_to_fp16=False)

    name = f"{model_id}-{shape_name(example)}-int8-{calibration.key}.xml"
    xml, cache = cached("openvino", ov.__version__.split("-")[0], name, quantize, companions=(".bin",))
    return ov.Core().read_model(xml), cache


@dataclass
class PreparedOpenVINO:
    """A compiled model with its input bound; a step runs `inferences_per_step` requests."""

    core: ov.Core
    model: ov.Model
    compiled: ov.CompiledModel
    config: dict
    inputs: np.ndarray
    device: Device
    inferences_per_step: int
    precision: str  # asked for
    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.request = self._request(self.compiled)
        self.queue = None
        if self.inferences_per_step > 1:
            self.queue = ov.AsyncInferQueue(self.compiled, self.inferences_per_step)
            for request in self.queue:
                request.set_input_tensor(ov.Tensor(self.inputs, shared_memory=True))

    def _request(self, compiled: ov.CompiledModel) -> ov.InferRequest:
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(self.inputs, shared_memory=True))
        return request

    def __call__(self) -> None:
        if self.queue is None:
            self.request.infer()
            return
        for _ in range(self.inferences_per_step):
            self.queue.start_async()
        self.queue.wait_all()

    def replica(self):
        """A step for another worker thread: its own infer request on the same compiled model."""
        return self._request(self.compiled).infer if self.queue is None else None

    @property
    def tolerance(self) -> float:
        return tolerance(self.precision, self.tags[PRECISION_TAG])

    def output(self) -> torch.Tensor:
        self.request.infer()
        return torch.from_numpy(np.array(self.request.get_output_tensor().data, dtype=np.float32))

    def profile(self, iterations: int) -> Profile:
        """OpenVINO's own per-layer counters (PERF_COUNT), from a second compilation."""
        request = self._request(self.core.compile_model(self.model, self.device.openvino_device, self.config | {"PERF_COUNT": True}))
        request.infer()
        totals: dict[str, list] = {}
        start = time.perf_counter_ns()
        for _ in range(iterations):
            request.infer()
            for info in request.get_profiling_info():
                entry = totals.setdefault(info.node_name, [info.node_type, info.exec_type, 0.0])
                entry[2] += info.real_time.total_seconds() * 1e3
        wall_ms = (time.perf_counter_ns() - start) / 1e6 / iterations
        ops = [
            OpTime(op=name, calls=1.0, self_ms=ms / iterations, layer_type=layer, exec_type=kernel)
            for name, (layer, kernel, ms) in totals.items()
            if ms > 0
        ]
        return Profile(ops=ops, wall_ms=wall_ms)


def _ran_precision(compiled: ov.CompiledModel, asked: str, device: Device) -> dict[str, str]:
    """Precision tags from the compiled model's runtime model: each compute layer's `runtimePrecision`."""
    kernels = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) in COMPUTE_LAYERS:
            ran = info["runtimePrecision"].astype(str)
            kernels[RUNTIME_PRECISION.get(ran, ran)] += 1
    return kernel_precision_tags(asked, kernels, f"backend=openvino on {device.openvino_device} ({device.name})")


class OpenVINO:
    """OpenVINO runtime on the platform's OpenVINO device (CPU for the cpu platform)."""

    DEVICE_KINDS = ("cpu", "openvino")

    def __init__(self, hint: str = "latency", precision: str = "fp32", streams: int | None = None, requests: int | None = None,
                 calibration_samples: int = 32, calibration_seed: int = 1234, cpu_pinning: bool | None = None):
        if hint not in HINTS:
            raise ConfigError(f"backend.runtime.hint={hint!r} is not valid; valid: {', '.join(HINTS)}")
        check_precision(precision, PRECISIONS)
        check_option("requests", requests, requests is None or is_count(requests),
                     "null (OpenVINO's optimal number for the hint) or a whole number from 1 to 1024")
        check_option("streams", streams, streams is None or is_count(streams), "null (what the hint chooses) or 1 to 1024")
        check_calibration(calibration_samples, calibration_seed)
        check_option("cpu_pinning", cpu_pinning, cpu_pinning in (None, True, False),
                     "null (OpenVINO's default), true or false")
        if precision == "int8":
            require("nncf", "int8")  # before anything is measured
        self.hint, self.precision, self.streams, self.requests = hint, precision, streams, requests
        self.calibration = Calibration(calibration_samples, calibration_seed)  # accuracy may give real images
        self.cpu_pinning = cpu_pinning

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device, model_id: str) -> PreparedOpenVINO:
        converted, cache = _converted(model, example, model_id)
        tags = {"openvino.ir_cache": cache, VERSION_TAG + "openvino": ov.__version__.split("-")[0]}
        if self.precision == "int8":
            converted, tags["openvino.int8_cache"] = _quantized(converted, example, model_id, self.calibration)
            tags[VERSION_TAG + "nncf"] = require("nncf", "int8").__version__  # it quantized
        config = {
            "PERFORMANCE_HINT": HINTS[self.hint],
            "INFERENCE_PRECISION_HINT": HINT_PRECISION[self.precision],
            "INFERENCE_NUM_THREADS": device.threads,
        }
        if self.streams is not None:
            config["NUM_STREAMS"] = self.streams
        if self.cpu_pinning is not None and device.openvino_device == "CPU":
            config["ENABLE_CPU_PINNING"] = self.cpu_pinning
        core = ov.Core()
        compiled = core.compile_model(converted, device.openvino_device, config)
        requests = self.requests or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        tags |= _ran_precision(compiled, self.precision, device) | {
            "openvino.device": device.openvino_device,
            "openvino.hint": self.hint,
            "openvino.streams": str(compiled.get_property("NUM_STREAMS")),
            "openvino.threads": str(compiled.get_property("INFERENCE_NUM_THREADS")),
            "openvino.requests": str(requests),
        }
        if device.openvino_device == "CPU":
            tags["openvino.cpu_pinning"] = str(compiled.get_property("ENABLE_CPU_PINNING")).lower()
        inputs = np.ascontiguousarray(example.numpy())
        return PreparedOpenVINO(core, converted, compiled, config, inputs, device, requests, self.precision, tags)

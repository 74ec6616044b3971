"""OpenVINO: the torch model converted with openvino.convert_model, static shape, cached on disk."""

import os
import time
from dataclasses import dataclass, field

import numpy as np
import openvino as ov
import torch

from embench.backends import TOLERANCE, check_option, is_count
from embench.cache import cache_dir
from embench.errors import ConfigError
from embench.platform import Device
from embench.profiling import OpTime, Profile

HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
PRECISIONS = {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}  # OpenVINO's names -> embench's


def _converted(model: torch.nn.Module, example: torch.Tensor, model_id: str) -> tuple[ov.Model, str]:
    """The model as OpenVINO IR, converted once per model (any batch) and reshaped to a static input shape."""
    xml = cache_dir("openvino", ov.__version__.split("-")[0]) / f"{model_id}.xml"
    core = ov.Core()
    if xml.exists():
        converted, cache = core.read_model(xml), "hit"
    else:
        converted, cache = ov.convert_model(model, example_input=example), "miss"  # batch and size left dynamic
        partial = xml.with_name(f"{xml.stem}.{os.getpid()}.xml")
        ov.save_model(converted, partial, compress_to_fp16=False)  # keep FP32 weights
        partial.with_suffix(".bin").replace(xml.with_suffix(".bin"))
        partial.replace(xml)  # the .xml appears last: a reader never sees half a model
    converted.reshape(list(example.shape))  # static shapes: faster, and per-layer counters work
    return converted, cache


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
    tags: dict[str, str] = field(default_factory=dict)

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

    @property
    def tolerance(self) -> float:
        return TOLERANCE[PRECISIONS[self.tags["backend.precision"]]]

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


class OpenVINO:
    """OpenVINO runtime on the platform's OpenVINO device (CPU for the cpu platform)."""

    DEVICE_KINDS = ("cpu", "openvino")

    def __init__(self, hint: str = "latency", precision: str = "f32", streams: int | None = None, requests: int | None = None):
        if hint not in HINTS:
            raise ConfigError(f"backend.runtime.hint={hint!r} is not valid; valid: {', '.join(HINTS)}")
        if precision not in PRECISIONS:
            raise ConfigError(f"backend.runtime.precision={precision!r} is not valid; valid: {', '.join(PRECISIONS)}")
        check_option("requests", requests, requests is None or is_count(requests),
                     "null (OpenVINO's optimal number for the hint) or a whole number from 1 to 1024")
        check_option("streams", streams, streams is None or is_count(streams), "null (what the hint chooses) or 1 to 1024")
        self.hint, self.precision, self.streams, self.requests = hint, precision, streams, requests

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device, model_id: str) -> PreparedOpenVINO:
        converted, cache = _converted(model, example, model_id)
        config = {
            "PERFORMANCE_HINT": HINTS[self.hint],
            "INFERENCE_PRECISION_HINT": self.precision,
            "INFERENCE_NUM_THREADS": device.threads,
        }
        if self.streams is not None:
            config["NUM_STREAMS"] = self.streams
        core = ov.Core()
        compiled = core.compile_model(converted, device.openvino_device, config)
        requests = self.requests or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        tags = {
            "backend.precision": compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
            "openvino.device": device.openvino_device,
            "openvino.hint": self.hint,
            "openvino.streams": str(compiled.get_property("NUM_STREAMS")),
            "openvino.threads": str(compiled.get_property("INFERENCE_NUM_THREADS")),
            "openvino.requests": str(requests),
            "openvino.ir_cache": cache,
        }
        inputs = np.ascontiguousarray(example.numpy())
        return PreparedOpenVINO(core, converted, compiled, config, inputs, device, requests, tags)

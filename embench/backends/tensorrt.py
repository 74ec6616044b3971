"""TensorRT (CUDA only): the cached ONNX model built into an engine, cached per GPU, run with execute_async_v3.

TensorRT 11 builds strongly typed networks only: the ONNX model's own types decide the precision. FP16 is
the model exported in FP16 (inputs and outputs too), INT8 a QDQ model (explicit quantization).
"""

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from embench.backends import TOLERANCE, check_calibration, check_choice, check_option, is_count, require
from embench.backends.conversion import cached, conversion_failed
from embench.backends.onnx_export import exported_onnx
from embench.platform import Device
from embench.profiling import OpTime, Profile

trt = require("tensorrt", "tensorrt")

PRECISIONS = ("fp32", "fp16", "int8")
_LOGGER = trt.Logger(trt.Logger.ERROR)
# The first ONNX node in a TensorRT layer's name: "/layer1/layer1.0/conv1/Conv + /layer1/layer1.0/relu/Relu".
_NODE_OP = re.compile(r"/([A-Za-z]+)(?:_\d+)?(?=$|[\s+)\]])")


def _engine_bytes(onnx: Path, workspace_gib: int, model_id: str) -> bytes:
    """Parses the ONNX file and builds a serialized engine, its layers at the types the model gives them."""
    builder = trt.Builder(_LOGGER)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, _LOGGER)
    if not parser.parse_from_file(str(onnx)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise conversion_failed(model_id, "tensorrt", RuntimeError(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_gib << 30)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32, as for torch
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise conversion_failed(model_id, "tensorrt", RuntimeError("the engine build failed (see TensorRT's log above)"))
    return bytes(serialized)


class _LayerTimes(trt.IProfiler):
    """TensorRT's per-layer profiler: milliseconds per layer, summed over the profiled runs."""

    def __init__(self):
        trt.IProfiler.__init__(self)
        self.ms: dict[str, float] = {}

    def report_layer_time(self, layer_name: str, ms: float) -> None:
        self.ms[layer_name] = self.ms.get(layer_name, 0.0) + ms


@dataclass
class PreparedEngine:
    """An execution context with its input and output tensors bound on the GPU."""

    engine: "trt.ICudaEngine"
    inputs: torch.Tensor
    precision: str
    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    inferences_per_step: int = 1

    def __post_init__(self) -> None:
        self.outputs: torch.Tensor | None = None
        self.context = self._bound_context()

    def _bound_context(self) -> "trt.IExecutionContext":
        context = self.engine.create_execution_context()
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                context.set_tensor_address(name, self.inputs.data_ptr())
            else:
                if self.outputs is None:
                    shape = tuple(self.engine.get_tensor_shape(name))
                    self.outputs = torch.empty(shape, dtype=self.inputs.dtype, device=self.inputs.device)
                context.set_tensor_address(name, self.outputs.data_ptr())
        return context

    def __call__(self) -> None:
        self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream)

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.precision]

    def output(self) -> torch.Tensor:
        self()
        torch.cuda.synchronize()
        return self.outputs.float().cpu()

    def profile(self, iterations: int) -> Profile:
        """TensorRT's own per-layer times (IProfiler), on a second context; the first run is left out."""
        context = self._bound_context()
        stream = torch.cuda.current_stream()
        context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        context.profiler = layers = _LayerTimes()
        start = time.perf_counter_ns()
        for _ in range(iterations):
            context.execute_async_v3(stream.cuda_stream)
            stream.synchronize()  # the profiler reports each layer when its run completes
        wall_ms = (time.perf_counter_ns() - start) / 1e6 / iterations
        return Profile(ops=[OpTime(op=name, calls=1.0, self_ms=ms / iterations, layer_type=_layer_type(name), exec_type="tensorrt")
                            for name, ms in layers.ms.items() if ms > 0], wall_ms=wall_ms)


def _layer_type(layer_name: str) -> str:
    """The ONNX op type of a layer's first fused node ("Conv"), or the layer's own name (a reformat, a copy)."""
    found = _NODE_OP.search(layer_name)
    return found.group(1) if found else layer_name


class TensorRT:
    """TensorRT on the platform's CUDA GPU, through ONNX, at FP32, FP16 or INT8 (TensorRT 11: strongly typed)."""

    DEVICE_KINDS = ("cuda",)

    def __init__(self, precision: str = "fp32", workspace_gib: int = 4, calibration_samples: int = 32,
                 calibration_seed: int = 1234):
        check_choice("precision", precision, PRECISIONS)
        check_option("workspace_gib", workspace_gib, is_count(workspace_gib, 1024), "whole GiB from 1 to 1024")
        check_calibration(calibration_samples, calibration_seed)
        self.precision, self.workspace_gib = precision, workspace_gib
        self.calibration_samples, self.calibration_seed = calibration_samples, calibration_seed

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device, model_id: str) -> PreparedEngine:
        from embench.backends.onnxruntime import quantized_onnx

        if self.precision == "fp16":
            model, example = model.half(), example.half()
        onnx, onnx_cache = exported_onnx(model, example, model_id)
        if self.precision == "int8":  # TensorRT takes symmetric signed INT8 only
            onnx, onnx_cache = quantized_onnx(onnx, example, self.calibration_samples, self.calibration_seed, symmetric=True)
        index = device.torch_device.index or 0
        major, minor = torch.cuda.get_device_capability(index)
        gpu = re.sub(r"\W+", "_", torch.cuda.get_device_name(index)) + f"_sm{major}{minor}"
        build_start = time.perf_counter()
        path, cache = cached("tensorrt", f"{trt.__version__}-{gpu}", f"{onnx.stem}-{self.precision}-ws{self.workspace_gib}.engine",
                             lambda out: out.write_bytes(_engine_bytes(onnx, self.workspace_gib, model_id)))
        build_s = time.perf_counter() - build_start
        engine = trt.Runtime(_LOGGER).deserialize_cuda_engine(path.read_bytes())
        tags = {
            "backend.precision": self.precision,
            "tensorrt.version": trt.__version__,
            "tensorrt.engine_cache": cache,
            "tensorrt.onnx_cache": onnx_cache,
            "tensorrt.build_s": f"{build_s:.1f}",
            "tensorrt.workspace_gib": str(self.workspace_gib),
        }
        return PreparedEngine(engine, example.to(device.torch_device).contiguous(), self.precision, tags)

"""TensorRT (CUDA only): the cached ONNX model built into an engine, cached per GPU, run with execute_async_v3.

TensorRT 11 networks are strongly typed: the ONNX model's own types set the precision. fp16 is the model exported in
FP16 (its input and output too); int8 is ONNX Runtime's symmetric QDQ model (explicit quantization), the rest in FP32.
"""

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from embench.backends import TOLERANCE, check_calibration, check_option, check_precision, is_count, require
from embench.backends.conversion import Calibration, cached, conversion_failed
from embench.backends.onnx_export import exported_onnx
from embench.errors import EmbenchError
from embench.names import PRECISION_TAG, VERSION_TAG
from embench.platform import Device
from embench.profiling import OpTime, Profile

PRECISIONS = ("fp32", "fp16", "int8")
_ONNX_NODE = re.compile(r"\[ONNX Layer: ([^|\]]+)")  # the ONNX parser's layer metadata: "[ONNX Layer: node_Conv_0]"
_QDQ = ("QuantizeLinear", "DequantizeLinear")


def _tensorrt():
    """The tensorrt package, or one line naming the extra that installs it."""
    return require("tensorrt", "tensorrt")


def _error_log(trt):
    """A TensorRT logger that prints nothing and keeps the errors, for the one line of a failure."""

    class ErrorLog(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                self.errors.append(msg)

        def text(self, fallback: str) -> str:
            return "; ".join(self.errors[-3:]) or fallback

    return ErrorLog()


def _layer_timer(trt):
    """TensorRT's per-layer profiler: milliseconds by layer name, summed over the runs it sees."""

    class LayerTimes(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.ms: dict[str, float] = {}

        def report_layer_time(self, layer_name, ms):
            self.ms[layer_name] = self.ms.get(layer_name, 0.0) + ms

    return LayerTimes()


def _engine_bytes(trt, log, onnx_path: Path, workspace_gib: int | None, model_id: str) -> bytes:
    """Parses the ONNX file and builds a serialized engine, each layer at the type the model gives it."""
    builder = trt.Builder(log)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, log)
    if not parser.parse_from_file(str(onnx_path)):  # each error names its node and operator
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise conversion_failed(model_id, "tensorrt", RuntimeError(errors))
    config = builder.create_builder_config()
    config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32, as for torch
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # the engine inspector's layer metadata
    if workspace_gib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_gib << 30)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise conversion_failed(model_id, "tensorrt", RuntimeError(log.text("the engine build failed")), action="build")
    return bytes(serialized)


def _gpu(device: Device) -> str:
    """The GPU an engine is built for, as a folder name: NVIDIA_H100_80GB_HBM3-sm90."""
    index = device.torch_device.index or 0
    major, minor = torch.cuda.get_device_capability(index)
    return re.sub(r"\W+", "_", torch.cuda.get_device_name(index)) + f"-sm{major}{minor}"


def _layer_kinds(trt, engine, onnx_path: Path) -> dict[str, tuple[str, str]]:
    """(layer type, tactic) by engine layer name, from the engine inspector.

    The layer type is the ONNX op type of the first node fused into the layer (a Q/DQ node only when it has nothing
    else), else TensorRT's own layer type (a Reformat it inserted).
    """
    import onnx

    op_types = {node.name: node.op_type for node in onnx.load(str(onnx_path), load_external_data=False).graph.node}
    inspector = engine.create_engine_inspector()
    kinds = {}
    for i in range(engine.num_layers):
        info = json.loads(inspector.get_layer_information(i, trt.LayerInformationFormat.JSON), strict=False)
        if not isinstance(info, dict):  # a bare name: the engine was built without detailed verbosity
            continue
        ops = [op_types.get(name.strip(), "") for name in _ONNX_NODE.findall(info.get("Metadata", ""))]
        ops = sorted(filter(None, ops), key=lambda op: op in _QDQ)  # stable: Q/DQ nodes last
        kinds[info["Name"]] = (ops[0] if ops else info.get("LayerType", ""), info.get("TacticName", ""))
    return kinds


@dataclass
class PreparedEngine:
    """An execution context with the input and output bound on the GPU; a step is one execute_async_v3 on its stream."""

    engine: object  # trt.ICudaEngine
    runtime: object  # trt.Runtime, kept as long as its engine
    log: object  # the runtime's logger
    onnx_path: Path  # the model the engine was built from: its op types name the profiled layers
    inputs: torch.Tensor
    precision: str
    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    inferences_per_step: int = 1

    def __post_init__(self) -> None:
        trt = _tensorrt()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        outputs = [name for name in names if self.engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT]
        self.output_name = outputs[0]
        self.buffers = {name: self.inputs for name in names if name not in outputs}
        for name in outputs:  # the model's input and output share its dtype
            shape = tuple(self.engine.get_tensor_shape(name))
            self.buffers[name] = torch.empty(shape, dtype=self.inputs.dtype, device=self.inputs.device)
        # On the default stream TensorRT adds device syncs to each run: the engine runs on a stream of its own,
        # which the runner's device sync (torch.cuda.synchronize) waits for too.
        self.stream = torch.cuda.Stream(self.inputs.device)
        self.stream.wait_stream(torch.cuda.current_stream(self.inputs.device))  # the input's copy to the GPU
        self.context = self._context()

    def _context(self):
        context = self.engine.create_execution_context()
        for name, tensor in self.buffers.items():
            context.set_tensor_address(name, tensor.data_ptr())
        return context

    def _run(self, context) -> None:
        """One run to its end, or one line with TensorRT's error."""
        if not context.execute_async_v3(self.stream.cuda_stream):
            raise EmbenchError(f"tensorrt could not run the engine: {self.log.text('execute_async_v3 failed')}")
        self.stream.synchronize()

    def __call__(self) -> None:
        self.context.execute_async_v3(self.stream.cuda_stream)

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.precision]

    def output(self) -> torch.Tensor:
        self._run(self.context)
        return self.buffers[self.output_name].float().cpu()

    def profile(self, iterations: int) -> Profile:
        """TensorRT's own per-layer times (an IProfiler on a second context); the first run is left out."""
        trt = _tensorrt()
        context = self._context()
        self._run(context)
        layers = _layer_timer(trt)
        context.profiler = layers  # reports each layer's time as its run ends
        start = time.perf_counter_ns()
        for _ in range(iterations):
            self._run(context)
        wall_ms = (time.perf_counter_ns() - start) / 1e6 / iterations
        kinds = _layer_kinds(trt, self.engine, self.onnx_path)
        ops = []
        for name, ms in layers.ms.items():
            layer_type, tactic = kinds.get(name, ("", ""))
            if ms > 0:
                ops.append(OpTime(op=name, calls=1.0, self_ms=ms / iterations, layer_type=layer_type, exec_type=tactic))
        return Profile(ops=ops, wall_ms=wall_ms)


class TensorRT:
    """TensorRT on the platform's CUDA GPU through ONNX, at FP32 (TF32 off), FP16 or INT8."""

    DEVICE_KINDS = ("cuda",)

    def __init__(self, precision: str = "fp32", workspace_gib: int | None = 4, calibration_samples: int = 32,
                 calibration_seed: int = 1234):
        check_precision(precision, PRECISIONS)
        check_option("workspace_gib", workspace_gib, workspace_gib is None or is_count(workspace_gib),
                     "null (TensorRT's default: all of the GPU's memory) or a whole number of GiB from 1 to 1024")
        check_calibration(calibration_samples, calibration_seed)
        # A GPU host without the package is told so before anything is measured; on a host without a GPU, the
        # runner's refusal of a platform that is not a CUDA one comes first, installed or not.
        if torch.cuda.is_available():
            _tensorrt()
        self.precision, self.workspace_gib = precision, workspace_gib
        self.calibration = Calibration(calibration_samples, calibration_seed)  # accuracy may give real images

    def _onnx(self, model: torch.nn.Module, example: torch.Tensor, model_id: str) -> tuple[Path, dict[str, str]]:
        """The ONNX model to build (the INT8 one from the FP32 one), and its cache tags."""
        path, cache = exported_onnx(model, example, model_id)
        tags = {"tensorrt.onnx_cache": cache}
        if self.precision == "int8":
            from embench.backends.onnxruntime import ort, quantized_onnx

            try:  # TensorRT takes signed INT8 with zero points of 0
                path, tags["tensorrt.int8_cache"] = quantized_onnx(path, example, self.calibration, symmetric=True)
                tags[VERSION_TAG + "onnxruntime"] = ort.__version__  # it quantized
            except EmbenchError:
                raise
            except Exception as err:  # e.g. an operator the quantizer cannot handle
                raise conversion_failed(model_id, "onnxruntime quantization", err) from None
        return path, tags

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device, model_id: str) -> PreparedEngine:
        trt = _tensorrt()
        if self.precision == "fp16":  # strongly typed: the model exported in FP16 (the runner's reference is rebuilt)
            model, example = model.half(), example.half()
        onnx_path, tags = self._onnx(model, example, model_id)
        log = _error_log(trt)

        def build(out: Path) -> None:
            out.write_bytes(_engine_bytes(trt, log, onnx_path, self.workspace_gib, model_id))

        workspace = "" if self.workspace_gib is None else f"-ws{self.workspace_gib}"
        start = time.perf_counter()
        path, cache = cached("tensorrt", f"{trt.__version__}-{_gpu(device)}", f"{onnx_path.stem}{workspace}.engine", build)
        build_s = time.perf_counter() - start
        runtime = trt.Runtime(log)
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise conversion_failed(model_id, "tensorrt", RuntimeError(log.text(f"cannot deserialize {path}")),
                                    action="load")
        tags.update({
            PRECISION_TAG: self.precision,
            VERSION_TAG + "tensorrt": trt.__version__,
            "tensorrt.engine_cache": cache,
            "tensorrt.build_s": f"{build_s:.3f}",  # the engine build (~0 on a cache hit), part of prepare_s
        })
        if self.workspace_gib is not None:
            tags["tensorrt.workspace_gib"] = str(self.workspace_gib)
        inputs = example.to(device.torch_device).contiguous()
        return PreparedEngine(engine, runtime, log, onnx_path, inputs, self.precision, tags)

"""ONNX Runtime: the torch model exported to ONNX (cached), run in an InferenceSession with IO binding."""

import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from embench.backends import (
    TOLERANCE,
    check_calibration,
    check_choice,
    check_option,
    check_precision,
    kernel_precision_tags,
    require,
)
from embench.backends.conversion import Calibration, cached, conversion_failed
from embench.backends.onnx_export import exported_onnx
from embench.errors import ConfigError, EmbenchError
from embench.names import PRECISION_TAG, VERSION_TAG
from embench.platform import Device
from embench.profiling import OpTime, Profile

ort = require("onnxruntime", "onnxruntime")

PRECISIONS = ("fp32", "int8")  # the precisions it runs
# Node types of an optimized graph that compute (convolutions, matrix products), by the precision their kernels run in.
# Only the QDQ fusions (graph_optimization extended or all, on the CPU execution provider) give the integer ones.
KERNEL_PRECISION = {op: "int8" for op in ("QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger",
                                          "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QAttention")} | {
    op: "fp32" for op in ("Conv", "FusedConv", "NhwcFusedConv", "ConvTranspose", "Gemm", "FusedGemm", "MatMul",
                          "FusedMatMul")}
OPTIMIZATION = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}
# Execution providers by platform device kind, most preferred first; ORT falls back along the list.
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def quantized_onnx(fp32: Path, example: torch.Tensor, calibration: Calibration, symmetric: bool = False) -> tuple[Path, str]:
    """ONNX Runtime's static INT8 quantization (QDQ, per-channel weights), calibrated on `calibration`'s images.

    Activations are UINT8 (what ORT's CPU kernels run fastest), or with `symmetric` signed INT8 with a
    zero point of 0 (what TensorRT takes).
    """
    quantization = require("onnxruntime.quantization", "onnxruntime")
    batches = calibration.batches(example)
    name = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{name: batch.numpy()} for batch in batches])

        def get_next(self):
            return next(self.feeds, None)

    def quantize(path: Path) -> None:
        prepared = path.with_name(f"{path.stem}.pre.onnx")
        quantization.quant_pre_process(str(fp32), str(prepared))  # shape inference and folding, as ORT advises
        try:
            activations = quantization.QuantType.QInt8 if symmetric else quantization.QuantType.QUInt8
            quantization.quantize_static(str(prepared), str(path), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                         per_channel=True, activation_type=activations,
                                         weight_type=quantization.QuantType.QInt8,
                                         extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True,
                                                        # TensorRT dequantizes no INT32: its biases stay float
                                                        "QuantizeBias": not symmetric})
        finally:
            prepared.unlink(missing_ok=True)

    kind = "int8trt" if symmetric else "int8"
    return cached("onnx", ort.__version__, f"{fp32.stem}-{kind}-{calibration.key}.onnx", quantize)


@dataclass
class PreparedSession:
    """A session with its input and output bound once; a step is one `run_with_iobinding`."""

    model_path: Path
    options: "ort.SessionOptions"
    providers: list[str]
    inputs: torch.Tensor
    precision: str
    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    inferences_per_step: int = 1

    def __post_init__(self) -> None:
        self.session, self.binding = self._bound(self.options)

    def _bound(self, options) -> tuple:
        session = ort.InferenceSession(str(self.model_path), options, providers=self.providers)
        return session, self._binding(session)

    def _binding(self, session):
        binding = session.io_binding()
        on_gpu = self.inputs.is_cuda
        binding.bind_input(session.get_inputs()[0].name, "cuda" if on_gpu else "cpu", self.inputs.device.index or 0,
                           np.float32, list(self.inputs.shape), self.inputs.data_ptr())
        binding.bind_output(session.get_outputs()[0].name, "cuda" if on_gpu else "cpu")
        return binding

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.binding)

    def replica(self):
        """A step for another worker thread: its own IO binding on the same (thread-safe) session."""
        session, binding = self.session, self._binding(self.session)
        return lambda: session.run_with_iobinding(binding)

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.precision]

    def output(self) -> torch.Tensor:
        self()
        return torch.from_numpy(self.binding.copy_outputs_to_cpu()[0].astype(np.float32))

    def profile(self, iterations: int) -> Profile:
        """ORT's own profiler: each node's kernel time, from a second session with profiling on."""
        with tempfile.TemporaryDirectory(prefix="embench-ort-") as folder:
            options = _copy_options(self.options)
            options.enable_profiling, options.profile_file_prefix = True, os.path.join(folder, "profile")
            session, binding = self._bound(options)
            session.run_with_iobinding(binding)  # the first run allocates: not profiled as a steady step
            start = time.perf_counter_ns()
            for _ in range(iterations):
                session.run_with_iobinding(binding)
            wall_ms = (time.perf_counter_ns() - start) / 1e6 / iterations
            events = json.loads(Path(session.end_profiling()).read_text())
        return Profile(ops=_node_times(events, iterations), wall_ms=wall_ms)


def _node_times(events: list[dict], iterations: int) -> list[OpTime]:
    """Per-node kernel time per inference, over the runs after the first (which allocates)."""
    first_run_end = min(e["ts"] + e["dur"] for e in events if e.get("name") == "model_run")
    totals: dict[str, list] = {}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time") or event["ts"] < first_run_end:
            continue
        entry = totals.setdefault(event["name"].removesuffix("_kernel_time"),
                                  [event["args"]["op_name"], event["args"].get("provider", ""), 0, 0.0])
        entry[2] += 1
        entry[3] += event["dur"] / 1e3
    return [
        OpTime(op=node, calls=calls / iterations, self_ms=ms / iterations, layer_type=op_type, exec_type=provider)
        for node, (op_type, provider, calls, ms) in totals.items()
        if ms > 0
    ]


def _copy_options(options) -> "ort.SessionOptions":
    copy = ort.SessionOptions()
    for attribute in ("intra_op_num_threads", "inter_op_num_threads", "graph_optimization_level", "execution_mode"):
        setattr(copy, attribute, getattr(options, attribute))
    return copy


class OnnxRuntime:
    """ONNX Runtime on the platform's device, through the execution provider that device calls for."""

    DEVICE_KINDS = ("cpu", "cuda")

    def __init__(self, precision: str = "fp32", graph_optimization: str = "all", execution_provider: str | None = None,
                 calibration_samples: int = 32, calibration_seed: int = 1234):
        check_precision(precision, PRECISIONS)
        check_choice("graph_optimization", graph_optimization, OPTIMIZATION)
        check_option("graph_optimization", graph_optimization, precision != "int8" or graph_optimization in ("extended", "all"),
                     "precision=int8 needs extended or all: below them ONNX Runtime runs the quantized model's convolutions "
                     "and matrix products in fp32, between DequantizeLinear and QuantizeLinear")
        check_option("execution_provider", execution_provider, execution_provider in (None, *PROVIDERS),
                     f"null (the platform's) or one of {', '.join(PROVIDERS)}")
        check_calibration(calibration_samples, calibration_seed)
        self.precision, self.graph_optimization, self.execution_provider = precision, graph_optimization, execution_provider
        self.calibration = Calibration(calibration_samples, calibration_seed)  # accuracy may give real images

    def _providers(self, device: Device) -> list[str]:
        wanted = PROVIDERS[self.execution_provider or device.kind]
        available = ort.get_available_providers()
        if wanted[0] not in available:
            raise ConfigError(
                f"backend=onnxruntime: this onnxruntime has no {wanted[0]} (it has {', '.join(available)}); "
                f"for a GPU: pip uninstall onnxruntime && pip install onnxruntime-gpu"
            )
        return [provider for provider in wanted if provider in available]

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device, model_id: str) -> PreparedSession:
        providers = self._providers(device)
        path, cache = exported_onnx(model, example, model_id)
        tags = {"onnxruntime.onnx_cache": cache}
        if self.precision == "int8":
            try:
                path, tags["onnxruntime.int8_cache"] = quantized_onnx(path, example, self.calibration)
            except EmbenchError:
                raise
            except Exception as err:  # e.g. an operator the quantizer cannot handle
                raise conversion_failed(model_id, "onnxruntime quantization", err) from None
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = device.threads, 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = OPTIMIZATION[self.graph_optimization]
        options.log_severity_level = 3  # errors only: no per-session warnings about unused initialisers
        inputs = example.to(device.torch_device).contiguous()
        with tempfile.TemporaryDirectory(prefix="embench-ort-") as folder:
            if self.precision == "int8" and providers[0] != "TensorrtExecutionProvider":  # it cannot save compiled nodes
                options.optimized_model_filepath = os.path.join(folder, "optimized.onnx")  # the graph the session runs
            try:
                prepared = PreparedSession(path, options, providers, inputs, self.precision, tags)
            except Exception as err:  # ORT lacks a kernel for one of the model's nodes ("NOT_IMPLEMENTED: ... node")
                raise conversion_failed(model_id, "onnxruntime", err, action="load") from None
            tags.update(self._ran_precision(options.optimized_model_filepath, providers[0]))
            options.optimized_model_filepath = ""
        tags.update({
            VERSION_TAG + "onnxruntime": ort.__version__,
            "onnxruntime.providers": ",".join(prepared.session.get_providers()),
            "onnxruntime.graph_optimization": self.graph_optimization,
            "onnxruntime.threads": str(device.threads),
        })
        return prepared

    def _ran_precision(self, optimized: str, provider: str) -> dict[str, str]:
        """Precision tags from the node types of the optimized graph: which kernels run its convolutions and matrix
        products. An FP32 model has no integer kernels to run; TensorRT's compiled nodes keep theirs unseen."""
        if not optimized:
            unseen = {"backend.kernel_precisions": f"unknown: {provider} compiles the graph"} if self.precision == "int8" else {}
            return {PRECISION_TAG: self.precision} | unseen
        import onnx

        graph = onnx.load(optimized, load_external_data=False).graph
        kernels = Counter(KERNEL_PRECISION[node.op_type] for node in graph.node if node.op_type in KERNEL_PRECISION)
        return kernel_precision_tags(self.precision, kernels, f"backend=onnxruntime with {provider}")

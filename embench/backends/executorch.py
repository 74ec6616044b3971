"""ExecuTorch: torch.export -> the XNNPACK delegate -> a .pte program (cached), run by ExecuTorch's runtime."""

import contextlib
import io
import json
import re
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch

from embench.backends import TOLERANCE, check_calibration, check_flags, check_precision, kernel_precision_tags, require
from embench.backends.conversion import Calibration, cached, conversion_failed, shape_name
from embench.names import VERSION_TAG
from embench.platform import Device
from embench.profiling import OpTime, Profile, native_stderr_silenced

runtime = require("executorch.runtime", "executorch")
portable = require("executorch.extension.pybindings.portable_lib", "executorch")

PRECISIONS = ("fp32", "int8")
VERSION = metadata.version("executorch")
# events that wrap operators' own ones: the delegate blob, a portable kernel's call, the whole inference
_NOT_OPERATORS = ("DELEGATE_CALL", "OPERATOR_CALL", "Method::execute")
# XNNPACK's compute nodes, and the precision of the kernel it picks by the datatype of their input
_XNN_COMPUTE = ("XNNConv2d", "XNNDepthwiseConv2d", "XNNConvTranspose2d", "XNNFullyConnected", "XNNBatchMatrixMultiply")
_XNN_PRECISION = {"xnn_datatype_fp32": "fp32", "xnn_datatype_fp16": "fp16", "xnn_datatype_bf16": "bf16",
                  "xnn_datatype_qint8": "int8", "xnn_datatype_quint8": "int8", "xnn_datatype_qdint8": "int8",
                  "xnn_datatype_qpint8": "int8"}


def _lowered(model: torch.nn.Module, example: torch.Tensor, calibration: Calibration | None):
    """The model exported, INT8-quantized with the XNNPACK quantizer if asked, lowered to XNNPACK (an edge program)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(model, (example,))
    if calibration is not None:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        observed = prepare_pt2e(exported.module(), quantizer)
        for batch in calibration.batches(example):
            observed(batch)
        exported = torch.export.export(convert_pt2e(observed), (example,))
    return to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])


def _delegation(edge) -> dict[str, str]:
    """Tags: the graph nodes XNNPACK took, and those left to ExecuTorch's portable kernels (by op)."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    left = {op.op_type: op.non_delegated for op in info.delegation_by_operator.values()
            if op.non_delegated and op.op_type != "getitem"}  # getitem picks a delegate's output: no kernel
    return {
        "executorch.delegated_nodes": str(info.num_delegated_nodes),
        "executorch.portable_nodes": str(sum(left.values())),
        "executorch.portable_ops": ", ".join(sorted(left)) or "none",
    }


def _xnnpack_kernels(edge) -> dict[str, int]:
    """How many compute nodes of the XNNPACK graphs in the program run in each precision, read from the delegate
    blobs XNNPACK loads (their flatbuffer, decoded with ExecuTorch's flatc and XNNPACK's schema)."""
    import executorch.backends.xnnpack.serialization as serialization
    from executorch.backends.xnnpack.serialization.xnnpack_graph_serialize import XNNHeader
    from executorch.exir._serialize._flatbuffer import _flatc_decompile

    schema = Path(list(serialization.__path__)[0]) / "schema.fbs"
    kernels = Counter()
    for module in edge.exported_program().graph_module.children():
        blob = getattr(module, "processed_bytes", None)
        if getattr(module, "backend_id", "") != "XnnpackBackend" or not blob:
            continue
        header = XNNHeader.from_bytes(blob[:XNNHeader.EXPECTED_LENGTH])
        with tempfile.TemporaryDirectory(prefix="embench-xnn-") as folder:
            graph = Path(folder) / "graph.bin"
            graph.write_bytes(blob[header.flatbuffer_offset:header.flatbuffer_offset + header.flatbuffer_size])
            _flatc_decompile(folder, str(schema), str(graph))
            text = re.sub(r"(-?)\binf\b", r'"\1inf"', (Path(folder) / "graph.json").read_text())  # JSON has no inf
        decoded = json.loads(text)
        datatypes = {}
        for value in decoded["xvalues"]:
            tensor = value["xvalue_union"].get("tensor_value", value["xvalue_union"])  # quantized ones wrap a tensor
            datatypes[tensor["id_out"]] = tensor["datatype"]
        for node in decoded["xnodes"]:
            if node["xnode_union_type"] in _XNN_COMPUTE:
                datatype = datatypes[node["xnode_union"]["input1_id"]]
                kernels[_XNN_PRECISION.get(datatype, datatype)] += 1
    return dict(kernels)


def _operator_times(events, iterations: int) -> list[OpTime]:
    """Per-operator time per inference from the Inspector's events, the first (cold) run left out."""
    ops = []
    for event in events.itertuples():
        if event.event_block_name != "Execute" or event.event_name in _NOT_OPERATORS:
            continue
        steady = list(event.raw)[-iterations:]
        name = event.event_name.rsplit(" #", 1)[0]  # "Convolution (NHWC, F32) IGEMM #3": one of a kind
        delegated = bool(event.is_delegated_op)
        ops.append(OpTime(op=event.event_name, calls=1.0, self_ms=sum(steady) / iterations,
                          layer_type=name if delegated else name.removeprefix("native_call_").split(".")[0],
                          exec_type="xnnpack" if delegated else "portable"))
    return [op for op in ops if op.self_ms > 0]


@dataclass
class PreparedProgram:
    """The program's forward method with its input bound; a step is one `execute`."""

    path: Path
    inputs: torch.Tensor
    precision: str
    model_id: str
    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    inferences_per_step: int = 1

    def __post_init__(self) -> None:
        self.method = runtime.Runtime.get().load_program(self.path).load_method("forward")
        self.arguments = [self.inputs]

    def __call__(self) -> object:
        try:
            return self.method.execute(self.arguments)
        except RuntimeError as err:
            raise self._failure(err) from None

    def _failure(self, err: RuntimeError) -> Exception:
        """The runtime names the failing kernel on fd 2 only: run once more with fd 2 read, and name it."""
        with tempfile.TemporaryFile(mode="w+") as log:
            with native_stderr_silenced(into=log):
                try:
                    self.method.execute(self.arguments)
                except RuntimeError:
                    pass
            log.seek(0)
            failed = re.search(r"failed .* in operator (\S+?): (0x[0-9a-f]+)", log.read())
        if failed is None:
            return err
        return conversion_failed(self.model_id, "executorch", RuntimeError(
            f"its kernel {failed.group(1)} returned error {failed.group(2)} ({err})"), action="run")

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.precision]

    def output(self) -> torch.Tensor:
        return self()[0].float()

    def profile(self, iterations: int) -> Profile:
        """ExecuTorch's own profiler: ETDump events of each XNNPACK operator, read by the Inspector."""
        from executorch.devtools import Inspector

        program = runtime.Runtime.get().load_program(self.path, enable_etdump=True)
        method = program.load_method("forward")
        method.execute(self.arguments)  # cold: left out below
        start = time.perf_counter_ns()
        for _ in range(iterations):
            method.execute(self.arguments)
        wall_ms = (time.perf_counter_ns() - start) / 1e6 / iterations
        with tempfile.TemporaryDirectory(prefix="embench-etdump-") as folder:
            etdump = Path(folder) / "run.etdp"
            program.write_etdump_result_to_file(str(etdump), str(Path(folder) / "debug.bin"))
            with warnings.catch_warnings():  # it asks for intermediate tensors, which a profile does not record
                warnings.filterwarnings("ignore", "Output Buffer not found")
                events = Inspector(etdump_path=str(etdump)).to_dataframe()
        return Profile(ops=_operator_times(events, iterations), wall_ms=wall_ms)


class ExecuTorch:
    """ExecuTorch with the XNNPACK delegate on the CPU, as a phone app would run the .pte program."""

    DEVICE_KINDS = ("cpu",)

    def __init__(self, precision: str = "fp32", calibration_samples: int = 32, calibration_seed: int = 1234,
                 keep_program: bool = True):
        check_precision(precision, PRECISIONS)
        check_calibration(calibration_samples, calibration_seed)
        check_flags(keep_program=keep_program)
        self.precision = precision
        self.calibration = Calibration(calibration_samples, calibration_seed)  # accuracy may give real images
        self.keep_program = keep_program

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device, model_id: str) -> PreparedProgram:
        int8 = self.precision == "int8"
        name = f"{model_id}-{shape_name(example)}" + (f"-int8-{self.calibration.key}" if int8 else "")

        def lower(path: Path) -> None:
            try:
                edge = _lowered(model, example, self.calibration if int8 else None)
                delegation = _delegation(edge) | {"kernels": _xnnpack_kernels(edge)}
                path.with_suffix(".pte").write_bytes(edge.to_executorch().buffer)
            except Exception as err:  # export, quantization or lowering: name the network and its operator
                raise conversion_failed(model_id, "executorch", err) from None
            path.write_text(json.dumps(delegation))

        # the delegation tags key the entry: the cache writes them after the program, so they mark it complete
        summary, cache = cached("executorch", VERSION, f"{name}-k.json", lower, companions=(".pte",))  # -k: kernels kept
        path = summary.with_suffix(".pte")
        with contextlib.redirect_stderr(io.StringIO()):  # the runtime logs its CPU probe and threadpool to sys.stderr
            portable._unsafe_reset_threadpool(device.threads)
        delegation = json.loads(summary.read_text())
        kernels = Counter(delegation.pop("kernels"))
        tags = kernel_precision_tags(self.precision, kernels, "backend=executorch with XNNPACK") | {
            VERSION_TAG + "executorch": VERSION,
            "executorch.delegate": "xnnpack",
            "executorch.pte_cache": cache,
            "executorch.threads": str(portable._threadpool_get_thread_count()),
        } | delegation
        files = {"model.pte": path.read_bytes()} if self.keep_program else {}
        return PreparedProgram(path, example.contiguous(), self.precision, model_id, tags, files)

"""Per-layer profile: op self-times grouped into the layer categories of the paper's Figure 4."""

import contextlib
import os
import re
import time
from dataclasses import dataclass
from typing import IO, Callable, Iterator

from embench.names import PROFILE_COVERAGE, PROFILE_PCT, PROFILE_TOTAL_MS, PROFILE_WALL_MS

CATEGORIES = (
    "convolution",
    "batch_norm",
    "activation",
    "pooling",
    "fully_connected",
    "elementwise",
    "concat_reshape",
    "framework",  # no layer: the runtime's own work around them (allocating outputs, torch.compile's guards)
    "other",
)

# Op and layer type names: torch's aten ops, OpenVINO's layer types, ONNX Runtime's op types and XNNPACK's
# operators. First match wins; names are matched without their namespace ("aten::", "prim::", ...), without
# ONNX Runtime's QLinear / Fused prefixes (QLinearConv is a convolution), XNNPACK's without their
# "(NHWC, F32)" suffix and with spaces as underscores ("Fully Connected"), ignoring case.
_PATTERNS = [
    ("convolution", r"conv(?!ert)|_nnpack"),  # not OpenVINO's Convert nor convert_element_type
    ("batch_norm", r"batch_?norm"),
    ("activation", r"relu|clamp|hardtanh|sigmoid|silu|swish|gelu|tanh|elu|softmax|hardswish|hardsigmoid|mish|^threshold_?$"),
    ("pooling", r"pool|^(mean|reduce_?mean)$"),  # a mean over H and W is these networks' global average pooling
    ("fully_connected", r"^_?(linear|addmm|mm|matmul|bmm|baddbmm|gemm|fully_?connected|inner_?product)"),
    (
        "elementwise",
        # OpenVINO's CPU plugin runs fused element-wise chains as one Eltwise or Subgraph (a "snippet") node.
        r"^(add|sub|subtract|rsub|mul|multiply|div|divide|pow|power|sqrt|rsqrt|exp|neg|negative|abs|sum"
        r"|maximum|minimum|squared_?difference|eltwise|subgraph)_?$",
    ),
    (
        "concat_reshape",
        # Data movement. Layout and precision conversions (OpenVINO's Reorder and Convert, torch's to()) move
        # data too, and this is the closest category for them. ExecuTorch's portable kernels of view ops
        # copy: "split_with_sizes_copy", "view_copy".
        r"^(cat|concat|concatenate|even_split|static_(reshape|slice|transpose|resize_bilinear)|stack|view|reshape|flatten|transpose|permute|contiguous|clone|copy_|chunk|split|split_with_sizes|variadic_?split"
        r"|narrow|slice|strided_?slice|select|as_strided_?|expand|broadcast|tile|squeeze_?|unsqueeze_?|t"
        r"|channel_shuffle|shuffle_?channels|pixel_shuffle|depth_?to_?space|space_?to_?depth"
        r"|index|gather|pad|constant_pad_nd|constant_pad|_unsafe_view|unflatten|copy"
        r"|reorder|reorder_?input|reorder_?output|convert|convert_like|convert_element_type|to|_to_copy"
        r"|(dynamic_?)?quantize_?linear|dequantize_?linear|quantize_per_tensor|dequantize)(_copy)?$",
    ),
]

# GPU kernel names, which the torch profiler reports on CUDA: demangled signatures, "..._kernel"s,
# and the bare names of cuDNN / cuBLAS / CUTLASS kernels, which carry the GPU architecture or library.
_KERNEL_NAME = re.compile(
    r"[<( ]|kernel|^(sm\d+|maxwell|volta|turing|ampere)_|^(cudnn|cublas|cutlass)|scudnn|xmma|sgemm", re.IGNORECASE
)

# Kernel names are matched whole (their signatures hold "::" of their own); first match wins.
_KERNEL_PATTERNS = [
    # cuDNN: fprop (forward) implicit GEMMs, [shi]<mma shape>cudnn, winograd; torch's depthwise and im2col.
    ("convolution", r"conv(?!ert)|fprop|winograd|(^|_)[shi]\d*cudnn|im2col"),
    ("batch_norm", r"batch_?norm|bn_fw"),
    # cuBLAS and CUTLASS GEMM / GEMV, and cuBLAS's split-K reduction. A 1x1 convolution run as a GEMM lands here.
    ("fully_connected", r"gemm|gemv|splitKreduce"),
    ("pooling", r"pool|MeanOps"),  # MeanOps: torch's mean, the global average pooling
    ("activation", r"relu|clamp|hardtanh|sigmoid|silu|swish|gelu|tanh|softmax|hardswish|activation"),
    ("concat_reshape", r"copy|transpose|permute|nchwToNhwc|nhwcToNchw|gather|index"),  # CatArrayBatchedCopy too
    ("elementwise", r"elementwise|add_tensor|reduce_kernel"),  # torch's other pointwise kernels and reductions
]
# Inductor's generated kernels (torch.compile) are named after the aten ops they fuse:
# "graph_0_cpp_fused_max_pool2d_with_indices_relu_9" on a CPU, "triton_poi_fused_add_relu_3" on a GPU.
_INDUCTOR_KERNEL = re.compile(r"(?:^|_)(?:cpp|triton_(?:poi|red|per|tem))_fused_(.+?)(?:_\d+)?$")
# Convolutions and matrix products run outside them (aten::mkldnn_convolution, aten::addmm); a fused kernel
# applies what follows, and counts in the category of its anchor, the first of these its name holds: an
# activation fused into a pooling or a batch norm belongs to it, a convolution's bias and activation to the
# convolution, as in OpenVINO's and XNNPACK's fused layers, and a residual add with its ReLU is element-wise.
# Ambiguous: shufflenet's batch norm + ReLU written through its channel shuffle counts as batch_norm.
_INDUCTOR_ANCHORS = [
    ("pooling", r"pool|(^|_)mean(_|$)"),
    ("batch_norm", r"batch_norm"),
    ("convolution", r"convolution"),
    ("fully_connected", r"(^|_)(addmm|mm|bmm|linear)(_|$)"),
    ("concat_reshape", r"(^|_)(cat|clone|copy|view|permute|transpose|reshape|constant_pad_nd|split|slice|select|stack"
                       r"|expand|gather|index|squeeze|unsqueeze|channel_shuffle)(_|$)"),
    ("elementwise", r"(^|_)(add|sub|rsub|mul|div|sum|pow|sqrt|rsqrt|exp|neg|abs|maximum|minimum)(_|$)"),
    ("activation", r"relu|clamp|hardtanh|sigmoid|silu|swish|gelu|tanh|softmax|hardswish|hardsigmoid|mish"),
]
# The runtime's own work, in no layer: torch's allocation of outputs and tensor bookkeeping, and torch.compile's
# events around its kernels (Dynamo's guard check, the compiled region and its wrappers, and the generated
# graph's launcher, "## Call CompiledFxGraph <hash> ##", whose self time is its own once each kernel reports).
_FRAMEWORK = re.compile(r"^(TorchDynamo Cache Lookup|Torch-Compiled Region|Pregraph bytecode|AOTDispatcher |## Call CompiledFxGraph"
                        r"|CompiledFunction$|aten::(empty|empty_like|empty_strided|resize_|detach|resolve_conj|alias)$)")
# XNNPACK's operator names carry their layout and types: "Fully Connected (NC, F32) GEMM".
_XNNPACK_OPERATOR = re.compile(r"^([A-Za-z][A-Za-z0-9 ]*?) \((?:N|NC|ND|NCW|NWC|NCHW|NHWC)\b")
_RUNTIME_DECORATION = re.compile(r"^(com\.microsoft\.)?(qlinear|fused|q(?=gemm))(?=.)", re.IGNORECASE)
_COMPILED = [(category, re.compile(pattern, re.IGNORECASE)) for category, pattern in _PATTERNS]
_KERNEL_COMPILED = [(category, re.compile(pattern, re.IGNORECASE)) for category, pattern in _KERNEL_PATTERNS]
_INDUCTOR_COMPILED = [(category, re.compile(pattern)) for category, pattern in _INDUCTOR_ANCHORS]


def categorize(op: str) -> str:
    """The layer category of an op, layer type or GPU kernel name, e.g. 'aten::mkldnn_convolution' -> 'convolution'."""
    xnnpack, inductor = _XNNPACK_OPERATOR.match(op), _INDUCTOR_KERNEL.search(op)
    if _FRAMEWORK.match(op):
        return "framework"
    if inductor:
        patterns, name = _INDUCTOR_COMPILED, inductor.group(1)
    elif xnnpack:
        patterns, name = _COMPILED, xnnpack.group(1).replace(" ", "_")
    elif _KERNEL_NAME.search(op):
        patterns, name = _KERNEL_COMPILED, op
    else:
        patterns, name = _COMPILED, _RUNTIME_DECORATION.sub("", op.split("::")[-1])
    for category, pattern in patterns:
        if pattern.search(name):
            return category
    return "other"


@dataclass(frozen=True)
class OpTime:
    """One op's self time per inference, as the runtime's profiler reports it."""

    op: str
    calls: float  # per inference
    self_ms: float  # per inference
    layer_type: str = ""  # the runtime's own layer type, where it has one
    exec_type: str = ""  # the runtime's kernel or implementation, where it reports one


@dataclass
class Profile:
    """A profile pass: per-op times, per-category shares and how they compare to end-to-end."""

    ops: list[OpTime]
    wall_ms: float  # wall time per profiled inference (profiler overhead included)

    @property
    def total_ms(self) -> float:
        return sum(op.self_ms for op in self.ops)

    def category_ms(self) -> dict[str, float]:
        totals = dict.fromkeys(CATEGORIES, 0.0)
        for op in self.ops:
            totals[categorize(op.layer_type or op.op)] += op.self_ms
        return totals

    def category_pct(self) -> dict[str, float]:
        total = self.total_ms or 1.0
        return {category: 100.0 * ms / total for category, ms in self.category_ms().items()}

    def metrics(self, latency_median_ms: float) -> dict[str, float]:
        """profile_pct_<category>, and the profiled total against the end-to-end median."""
        metrics = {PROFILE_PCT + category: pct for category, pct in self.category_pct().items()}
        metrics[PROFILE_TOTAL_MS] = self.total_ms
        metrics[PROFILE_WALL_MS] = self.wall_ms
        metrics[PROFILE_COVERAGE] = self.total_ms / latency_median_ms if latency_median_ms else 0.0
        return metrics

    def op_rows(self) -> list[dict]:
        total = self.total_ms or 1.0
        rows = [
            {
                "op": op.op,
                "category": categorize(op.layer_type or op.op),
                "layer_type": op.layer_type,
                "exec_type": op.exec_type,
                "calls_per_inference": op.calls,
                "self_ms_per_inference": op.self_ms,
                "pct": 100.0 * op.self_ms / total,
            }
            for op in self.ops
        ]
        return sorted(rows, key=lambda row: row["self_ms_per_inference"], reverse=True)

    def category_rows(self) -> list[dict]:
        pct = self.category_pct()
        return [{"category": c, "self_ms_per_inference": ms, "pct": pct[c]} for c, ms in self.category_ms().items()]


@contextlib.contextmanager
def native_stderr_silenced(into: IO | None = None) -> Iterator[None]:
    """Sends what native libraries write straight to fd 2 (status lines, errors) to devnull or `into`."""
    saved = os.dup(2)
    try:
        with contextlib.ExitStack() as stack:
            target = into or stack.enter_context(open(os.devnull, "w"))
            os.dup2(target.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_torch(step: Callable[[], object], sync: Callable[[], None], iterations: int, device_type: str) -> Profile:
    """Runs `step` under torch.profiler and returns self time per op per inference."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device_type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with native_stderr_silenced():
        prof = profile(activities=activities)
        prof.start()
    try:
        start = time.perf_counter_ns()
        for _ in range(iterations):
            step()
        sync()
        wall_ns = time.perf_counter_ns() - start
    finally:
        with native_stderr_silenced():
            prof.stop()
    return Profile(ops=op_times(prof.key_averages(), iterations, on_device=device_type == "cuda"),
                   wall_ms=wall_ns / 1e6 / iterations)


def op_times(events, iterations: int, on_device: bool) -> list[OpTime]:
    """Self time per op per inference from torch.profiler's averaged events.

    On a GPU, each kernel's time is listed twice: on the kernel's own event and in the self device
    time of the op that launched it. Only the ops (host-side events) are counted, once each.
    """
    from torch.autograd import DeviceType

    ops = []
    for event in events:
        if on_device and event.device_type != DeviceType.CPU:
            continue  # a kernel: its time is already its launching op's
        self_us = event.self_device_time_total if on_device else event.self_cpu_time_total
        if self_us > 0:
            ops.append(OpTime(op=event.key, calls=event.count / iterations, self_ms=self_us / 1e3 / iterations))
    return ops

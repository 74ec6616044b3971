"""Layer categories of op names, and a real profile of a real model."""

import csv
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import CONF, assert_every_layer_profiled, profile_rows, results
from omegaconf import OmegaConf

from embench.profiling import CATEGORIES, OpTime, Profile, categorize, profile_torch

# torch's op names, as torch.profiler reports them
TORCH_OPS = [
    ("aten::mkldnn_convolution", "convolution"),
    ("aten::_slow_conv2d_forward", "convolution"),
    ("aten::thnn_conv2d", "convolution"),
    ("aten::cudnn_convolution", "convolution"),
    ("aten::native_batch_norm", "batch_norm"),
    ("aten::_batch_norm_impl_index", "batch_norm"),
    ("aten::relu_", "activation"),
    ("aten::clamp_min_", "activation"),
    ("aten::hardtanh_", "activation"),
    ("aten::max_pool2d_with_indices", "pooling"),
    ("aten::_adaptive_avg_pool2d", "pooling"),
    ("aten::avg_pool2d", "pooling"),
    ("aten::mean", "pooling"),
    ("aten::addmm", "fully_connected"),
    ("aten::linear", "fully_connected"),
    ("aten::add_", "elementwise"),
    ("aten::mul", "elementwise"),
    ("aten::cat", "concat_reshape"),
    ("aten::view", "concat_reshape"),
    ("aten::flatten", "concat_reshape"),
    ("aten::transpose", "concat_reshape"),
    ("aten::empty", "framework"),  # allocating an output: the runtime's work, in no layer
    ("aten::dropout", "other"),
]

# Runtime names from OpenVINO's layer types, ONNX's op types and real cuDNN / cuBLAS / CUTLASS / ATen CUDA kernels.
RUNTIME_NAMES = [
    # OpenVINO layer types
    ("Convolution", "convolution"),
    ("GroupConvolution", "convolution"),
    ("Convert", "concat_reshape"),
    ("Reorder", "concat_reshape"),
    ("Concat", "concat_reshape"),
    ("Reshape", "concat_reshape"),
    ("MaxPool", "pooling"),
    ("AvgPool", "pooling"),
    ("ReduceMean", "pooling"),
    ("FullyConnected", "fully_connected"),
    ("MatMul", "fully_connected"),
    ("Subtract", "elementwise"),
    ("Multiply", "elementwise"),
    ("Add", "elementwise"),
    ("Eltwise", "elementwise"),
    ("Subgraph", "elementwise"),
    ("Relu", "activation"),
    ("Softmax", "activation"),
    # ONNX op types
    ("Conv", "convolution"),
    ("BatchNormalization", "batch_norm"),
    ("GlobalAveragePool", "pooling"),
    ("Gemm", "fully_connected"),
    ("Sub", "elementwise"),
    # ExecuTorch's portable kernels of view ops, which copy
    ("split_with_sizes_copy", "concat_reshape"),
    ("view_copy", "concat_reshape"),
    # Inductor's generated kernels (torch.compile), in the category of the op they are anchored on
    ("graph_0_cpp_fused_convolution_relu_4", "convolution"),
    ("graph_0_cpp_fused_max_pool2d_with_indices_relu_9", "pooling"),
    ("graph_0_cpp_fused_mean_relu_16", "pooling"),
    ("graph_0_cpp_fused_relu_10", "activation"),
    ("graph_0_cpp_fused__native_batch_norm_legit_no_training_cat_clone_convolution_relu_split_transpose_view_13",
     "batch_norm"),  # shufflenet: batch norm and ReLU written through the channel shuffle
    ("triton_poi_fused_add_relu_3", "elementwise"),
    ("triton_red_fused__native_batch_norm_legit_no_training_relu_2", "batch_norm"),
    # torch.compile's own work around the kernels: in no layer
    ("## Call CompiledFxGraph fratgekq62jby6a7qohbcn47excrojcluova6jac2oqncmnwtbes ##", "framework"),
    ("TorchDynamo Cache Lookup", "framework"),
    ("Torch-Compiled Region: 0/0", "framework"),
    ("AOTDispatcher Runtime Wrapper Prologue", "framework"),
    # torch: precision conversions
    ("prims::convert_element_type", "concat_reshape"),
    ("aten::to", "concat_reshape"),
    ("aten::_to_copy", "concat_reshape"),
    # CUDA kernels
    ("implicit_convolve_sgemm", "convolution"),
    (
        "void cudnn::detail::implicit_convolve_sgemm<float, float, 1024, 5, 5, 3, 3, 3, 1, false, false, true>"
        "(int, int, int, float const*, int, float*, float const*, kernel_conv_params, unsigned long long, int, float, float, int, float const*, float const*, bool, int, int)",
        "convolution",
    ),
    ("sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128x128x16_stage4_warpsize2x2x1_g1_tensor16x8x8_kernel", "convolution"),
    ("ampere_scudnn_128x64_relu_interior_nn_v1", "convolution"),
    ("volta_fp16_s884cudnn_fp16_256x128_ldg8_splitK_relu_f2f_exp_small_nhwc2nchw_tn_v1", "convolution"),
    ("void cudnn::winograd::generateWinogradTilesKernel<0, float, float>(cudnn::winograd::GenerateWinogradTilesParams<float, float>)", "convolution"),
    ("void at::native::(anonymous namespace)::conv_depthwise2d_forward_kernel<3, float, int>(float const*, float*, float const*, float const*, bool, int, int, int, int, int, int, int, int, int, int, int, int, int)", "convolution"),
    ("cudnn::bn_fw_inf_1C11_kernel_NCHW", "batch_norm"),
    ("void cudnn::bn_fw_inf_1C11_kernel_NCHW<float, float, true, 1>(float, float, cudnnTensorStruct, float const*, cudnnTensorStruct, float*, float const*, float const*, float const*, float const*, float)", "batch_norm"),
    ("ampere_sgemm_128x64_tn", "fully_connected"),
    ("gemv2T_kernel", "fully_connected"),
    ("void gemv2T_kernel_val<int, int, float, float, float, float, 128, 16, 4, 4, false, false, cublasGemvParamsEx<int, cublasGemvTensorStridedBatched<float const>, cublasGemvTensorStridedBatched<float const>, cublasGemvTensorStridedBatched<float>, float> >(cublasGemvParamsEx<int, cublasGemvTensorStridedBatched<float const>, cublasGemvTensorStridedBatched<float const>, cublasGemvTensorStridedBatched<float>, float>, float, float)", "fully_connected"),
    ("void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_64x64_16x6_tn_align4>(cutlass_80_tensorop_s1688gemm_64x64_16x6_tn_align4::Params)", "fully_connected"),
    ("pooling_fw_4d_kernel", "pooling"),
    ("void cudnn::ops::pooling_fw_4d_kernel<float, float, cudnn::maxpooling_func<float, (cudnnNanPropagation_t)0>, 0, false>(cudnnTensorStruct, float const*, cudnnTensorStruct, float*, cudnnPoolingStruct, float, float, int, cudnn::reduced_divisor, cudnn::reduced_divisor)", "pooling"),
    ("void at::native::(anonymous namespace)::max_pool_forward_nchw<float, float>(int, float const*, long, long, long, int, int, int, int, int, int, int, int, int, int, float*, long*)", "pooling"),
    ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float, float, float>, unsigned int, float, 4> >(at::native::ReduceOp<float, at::native::MeanOps<float, float, float, float>, unsigned int, float, 4>)", "pooling"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::launch_clamp_scalar(at::TensorIteratorBase&, c10::Scalar, c10::Scalar, at::native::detail::ClampLimits)::{lambda()#1}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}, std::array<char*, 2ul> >(int, at::native::(anonymous namespace)::launch_clamp_scalar(at::TensorIteratorBase&, c10::Scalar, c10::Scalar, at::native::detail::ClampLimits)::{lambda()#1}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}, std::array<char*, 2ul>)", "activation"),
    ("void (anonymous namespace)::softmax_warp_forward<float, float, float, 10, false, false>(float*, float const*, int, int, int, bool const*, int, bool)", "activation"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add<float>, std::array<char*, 3ul>)", "elementwise"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::AUnaryFunctor<float, float, float, at::native::binary_internal::MulFunctor<float> >, std::array<char*, 2ul> >(int, at::native::AUnaryFunctor<float, float, float, at::native::binary_internal::MulFunctor<float> >, std::array<char*, 2ul>)", "elementwise"),
    ("void at::native::(anonymous namespace)::CatArrayBatchedCopy<at::native::(anonymous namespace)::OpaqueType<4u>, unsigned int, 4, 64, 64>(at::native::(anonymous namespace)::OpaqueType<4u>*, at::native::(anonymous namespace)::CatArrInputTensorMetadata<at::native::(anonymous namespace)::OpaqueType<4u>, unsigned int, 64, 64>, at::native::(anonymous namespace)::TensorSizeStride<unsigned int, 4u>, int, unsigned int)", "concat_reshape"),
    ("void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}, std::array<char*, 2ul>, 4, TrivialOffsetCalculator<1, unsigned int>, TrivialOffsetCalculator<1, unsigned int>, at::native::memory::LoadWithCast<1>, at::native::memory::StoreWithCast<1> >(int, ...)", "concat_reshape"),
    ("void cudnn::ops::nchwToNhwcKernel<float, float, float, true, false, (cudnnKernelDataType_t)2>(cudnn::ops::nchw2nhwc_params_t<float>, float const*, float*)", "concat_reshape"),
    ("Memcpy HtoD (Pageable -> Device)", "other"),
]


@pytest.mark.parametrize("name, category", TORCH_OPS + RUNTIME_NAMES, ids=lambda value: value[:60])
def test_categorize(name, category):
    assert categorize(name) == category


DATA = Path(__file__).parent / "data"
# profile_ops.csv of real `protocol=quick` runs on a CPU (batch 1), cut to op, layer_type, self_ms: the quickstart's
# six networks on every CPU backend, and a few more networks on torch and OpenVINO.
PROFILES = sorted(path.stem.removeprefix("profile_ops_") for path in DATA.glob("profile_ops_*.csv"))
CPU_BACKENDS = ("torch", "torch_compile", "openvino", "onnxruntime", "executorch")
QUICKSTART = OmegaConf.load(CONF / "experiment" / "quickstart.yaml").hydra.sweeper.params.model.split(",")


def read_profile(path: Path) -> Profile:
    """A profile_ops.csv kept from a real run (self_ms is per inference)."""
    with path.open(newline="") as f:
        ops = [OpTime(row["op"], 1.0, float(row["self_ms"]), layer_type=row["layer_type"]) for row in csv.DictReader(f)]
    return Profile(ops=ops, wall_ms=0.0)


def test_every_quickstart_network_has_a_real_profile_on_every_cpu_backend():
    assert {f"{backend}_{model}" for backend in CPU_BACKENDS for model in QUICKSTART} <= set(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_real_profiles_leave_little_time_in_other(name):
    """The op names each runtime really reports: 'other' (allocation, bookkeeping) stays under 5 % of the time."""
    profile = read_profile(DATA / f"profile_ops_{name}.csv")
    pct = profile.category_pct()
    uncategorised = {}  # op name -> its share of the time, for the failure message
    for op in profile.ops:
        kind = op.layer_type or op.op
        if categorize(kind) == "other":
            uncategorised[kind] = uncategorised.get(kind, 0.0) + 100 * op.self_ms / profile.total_ms
    assert pct["other"] < 5.0, sorted(uncategorised.items(), key=lambda item: -item[1])[:10]
    assert pct["convolution"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet50", "mobilenet_v2"])
@pytest.mark.parametrize("backend, layers, categories", [
    pytest.param("onnxruntime", (torch.nn.Conv2d,), ("convolution",), id="onnxruntime"),
    # XNNPACK runs a linear layer (and a 1x1 convolution) as a Fully Connected operator
    pytest.param("executorch", (torch.nn.Conv2d, torch.nn.Linear), ("convolution", "fully_connected"), id="executorch"),
])
def test_runtime_profile_leaves_little_uncategorised(run_cli, tmp_path, backend, layers, categories, model):
    """A runtime's own profile of a real run: one operator per layer, none uncategorised, within the wall time."""
    result = run_cli(f"backend={backend}", f"model={model}", "protocol=quick")
    assert result.returncode == 0, result.output
    [record] = results(tmp_path)
    metrics = record["metrics"]
    assert_every_layer_profiled(profile_rows(tmp_path), model, layers, categories)
    # the runtime runs its operators one after another: their times fit in the profiled pass's own wall time
    assert 0 < metrics["profile_total_ms"] <= 1.05 * metrics["profile_wall_ms"]


def test_category_shares_add_up_and_coverage_compares_to_latency():
    profile = Profile(ops=[OpTime("aten::mkldnn_convolution", 1, 6.0), OpTime("aten::relu_", 1, 2.0), OpTime("aten::empty", 2, 2.0)], wall_ms=11.0)
    metrics = profile.metrics(latency_median_ms=10.0)
    assert set(k for k in metrics if k.startswith("profile_pct_")) == {f"profile_pct_{c}" for c in CATEGORIES}
    assert sum(metrics[f"profile_pct_{c}"] for c in CATEGORIES) == pytest.approx(100.0)
    assert metrics["profile_pct_convolution"] == pytest.approx(60.0)
    assert metrics["profile_total_ms"] == pytest.approx(10.0)
    assert metrics["profile_coverage"] == pytest.approx(1.0)
    assert profile.op_rows()[0]["op"] == "aten::mkldnn_convolution"


def test_real_resnet18_profile_puts_its_20_convolutions_in_convolution():
    """resnet18 has 20 convolutions (torchvision's module list): every op of the `convolution` category, from
    aten::conv2d down to the kernel it calls, runs 20 times a pass; no op's self time exceeds the wall time."""
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 224, 224)
    convolutions = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    with torch.inference_mode():
        model(x)
        profile = profile_torch(lambda: model(x), lambda: None, iterations=2, device_type="cpu")
    assert convolutions == 20
    calls = {op.op: op.calls for op in profile.ops if categorize(op.op) == "convolution"}
    assert calls["aten::conv2d"] == convolutions and set(calls.values()) == {convolutions}, calls
    pct = profile.category_pct()
    assert pct["convolution"] > 0 and pct["batch_norm"] > 0 and pct["pooling"] > 0 and pct["fully_connected"] > 0
    assert profile.total_ms <= profile.wall_ms * 1.05  # self times are parts of the profiled wall time


def test_a_one_op_step_is_profiled_for_its_whole_wall_time():
    """A step that is one large matrix product and nothing else: aten::mm's self time is the step's wall time
    but for a few µs of Python and profiler (a truth that holds on any CPU, busy or idle)."""
    a = torch.randn(1024, 1024)
    with torch.inference_mode():
        profile = profile_torch(lambda: torch.mm(a, a), lambda: None, iterations=3, device_type="cpu")
    [mm] = [op for op in profile.ops if op.op == "aten::mm"]
    assert mm.calls == 1
    assert 0.8 < mm.self_ms / profile.wall_ms and profile.total_ms <= profile.wall_ms * 1.05


class ConvReluPool(torch.nn.Module):
    """A convolution, then a ReLU and a max pooling that Inductor fuses into one generated kernel."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 32, 3)

    def forward(self, x):
        return torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)


@pytest.mark.slow  # compiles a network: about 16 s
def test_torch_compile_profile_names_inductors_generated_kernels(tmp_path, monkeypatch):
    """torch.compile's profile names each kernel Inductor generates, each in its layer's category, instead of
    leaving their time in the compiled graph's one call (38 % `other` for squeezenet1_1 before)."""
    from embench.backends.torch_compile import TorchCompile
    from embench.platform import Device

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    model, example = ConvReluPool().eval(), torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        prepared = TorchCompile().prepare(model, example, Device("cpu", "test", torch.device("cpu"), lambda: None, 1), "convpool")
        ops = [op.op for op in prepared.profile(2).ops]
    kernels = {op: categorize(op) for op in ops if "cpp_fused_" in op}
    assert [category for op, category in kernels.items() if "max_pool2d" in op] == ["pooling"], ops  # with its ReLU
    assert "other" not in kernels.values(), kernels


def test_gpu_kernel_time_is_counted_once():
    """torch.profiler lists a kernel's time on the kernel and again on the op that launched it: count it once."""
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    from embench.profiling import op_times

    def event(key, device_type, device_us, cpu_us=5.0):
        return SimpleNamespace(key=key, count=2, device_type=device_type, self_device_time_total=device_us,
                               self_cpu_time_total=cpu_us)

    events = [
        event("aten::cudnn_convolution", DeviceType.CPU, 300.0),
        event("sm80_xmma_fprop_implicit_gemm_f32f32", DeviceType.CUDA, 300.0, cpu_us=0.0),
        event("aten::relu_", DeviceType.CPU, 100.0),
        event("void at::native::vectorized_elementwise_kernel<4, ...>", DeviceType.CUDA, 100.0, cpu_us=0.0),
    ]
    ops = op_times(events, iterations=2, on_device=True)
    assert {op.op for op in ops} == {"aten::cudnn_convolution", "aten::relu_"}
    assert sum(op.self_ms for op in ops) == pytest.approx(0.2)  # 400 µs over 2 inferences, not 800

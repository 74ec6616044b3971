"""Layer categories of op names, and a real profile of a real model."""

import pytest
import torch
import torchvision

from embench.profiling import CATEGORIES, Profile, OpTime, categorize, profile_torch


@pytest.mark.parametrize(
    "op, category",
    [
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
        ("aten::empty", "other"),
        ("aten::dropout", "other"),
    ],
)
def test_categorize(op, category):
    assert categorize(op) == category


def test_category_shares_add_up_and_coverage_compares_to_latency():
    profile = Profile(ops=[OpTime("aten::mkldnn_convolution", 1, 6.0), OpTime("aten::relu_", 1, 2.0), OpTime("aten::empty", 2, 2.0)], wall_ms=11.0)
    metrics = profile.metrics(latency_median_ms=10.0)
    assert set(k for k in metrics if k.startswith("profile_pct_")) == {f"profile_pct_{c}" for c in CATEGORIES}
    assert sum(metrics[f"profile_pct_{c}"] for c in CATEGORIES) == pytest.approx(100.0)
    assert metrics["profile_pct_convolution"] == pytest.approx(60.0)
    assert metrics["profile_total_ms"] == pytest.approx(10.0)
    assert metrics["profile_coverage"] == pytest.approx(1.0)
    assert profile.op_rows()[0]["op"] == "aten::mkldnn_convolution"


def test_real_resnet18_profile_is_mostly_convolution_and_accounts_for_its_time():
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        model(x)
        profile = profile_torch(lambda: model(x), lambda: None, iterations=2, device_type="cpu")
    pct = profile.category_pct()
    assert pct["convolution"] > 50.0
    assert pct["batch_norm"] > 0 and pct["pooling"] > 0 and pct["fully_connected"] > 0
    # Op self-times cover the profiled wall time but for Python and profiler overhead.
    assert 0.7 < profile.total_ms / profile.wall_ms <= 1.05
    calls = {op.op: op.calls for op in profile.ops}
    assert calls["aten::mkldnn_convolution"] == 20  # resnet18 has 20 convolutions

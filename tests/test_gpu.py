"""CUDA path; skipped cleanly on hosts without an NVIDIA GPU (CI has none)."""

import json

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU"),
]


def test_cuda_sweep_measures_on_the_gpu(run_cli, tmp_path):
    result = run_cli("-m", "platform=cuda", "model=resnet18", "batch=1,8", "protocol=quick")
    assert result.returncode == 0, result.output
    records = [json.loads(p.read_text()) for p in tmp_path.glob("outputs/**/result.json")]
    assert len(records) == 2
    for record in records:
        assert record["tags"]["device.type"] == "cuda"
        assert record["tags"]["device.name"] == torch.cuda.get_device_name(0)
        assert record["metrics"]["peak_device_memory_mb"] > 0

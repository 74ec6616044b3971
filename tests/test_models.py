"""The 26 model configs of the paper's Table 1, built for real, and how build_model fails."""

import gc
import socket
import time
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pretrainedmodels
import pytest
import timm
import torch
import torchvision
from omegaconf import OmegaConf
from safetensors.torch import save_file

from embench.errors import ConfigError, EmbenchError
from embench.models import build_model, complexity

MODEL_DIR = Path(__file__).parents[1] / "conf" / "model"
PAPER_MODELS = [
    "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50", "resnet101",
    "resnet152", "inception_v3", "inception_v4", "squeezenet1_0", "squeezenet1_1", "densenet121",
    "densenet169", "densenet201", "densenet161", "xception", "mobilenet_v2", "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0", "mnasnet1_0", "pnasnet5large", "nasnetalarge", "nasnetamobile",
]
KEYS = {"name", "year", "input_size", "source", "pretrained", "factory", "accuracy", "paper"}


def load(name):
    return OmegaConf.load(MODEL_DIR / f"{name}.yaml")


def tv_weights(cfg):
    """torchvision's IMAGENET1K_V1 weights (the ones the paper used) for a torchvision config."""
    return torchvision.models.get_model_weights(cfg.factory._target_.rsplit(".", 1)[-1]).IMAGENET1K_V1


def reachable(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError:
        return False
    return True


def test_exactly_the_paper_models_and_embench_own_digits_network():
    assert sorted(p.stem for p in MODEL_DIR.glob("*.yaml")) == sorted([*PAPER_MODELS, "digits"])


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_config_matches_its_source(name):
    cfg = load(name)
    assert set(cfg) == KEYS and cfg.name == name and cfg.pretrained is False
    size = cfg.input_size
    if cfg.source == "torchvision":
        weights = tv_weights(cfg)
        assert weights.transforms().crop_size == [size]
        metrics = weights.meta["_metrics"]["ImageNet-1K"]
        assert (cfg.accuracy.top1, cfg.accuracy.top5) == (metrics["acc@1"], metrics["acc@5"])
        assert cfg.accuracy.source == f"torchvision {type(weights).__name__}.IMAGENET1K_V1"
    else:
        if cfg.source == "timm":
            assert timm.models.get_pretrained_cfg(cfg.factory.model_name).input_size == (3, size, size)
        else:
            assert pretrainedmodels.pretrained_settings[name]["imagenet"]["input_size"] == [3, size, size]
        assert (cfg.accuracy.top1, cfg.accuracy.top5) == (cfg.paper.top1, cfg.paper.top5)
        assert cfg.accuracy.source == "paper Table 1"


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_built_model_has_the_papers_parameter_count(name):
    cfg = load(name)
    model = build_model(cfg)
    assert isinstance(model, torch.nn.Module) and not model.training
    params = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    if cfg.source == "torchvision":
        assert params == tv_weights(cfg).meta["num_params"]
    # Every model matches Table 1 to its two decimals, so well within 1 %. inception_v3 does so
    # only because torchvision keeps its aux-logits head (23.83 M without it), as the paper counted.
    assert params / 1e6 == pytest.approx(cfg.paper.params_m, abs=0.005)


COMPLEXITY_MODELS = ["alexnet", "squeezenet1_1", "mobilenet_v2", "resnet50", "inception_v3", "nasnetamobile"]


@pytest.mark.parametrize("name", COMPLEXITY_MODELS)
def test_complexity_counts_one_inference(name, capsys):
    cfg = load(name)
    model = build_model(cfg)
    counts = complexity(model, cfg.input_size)
    assert counts["params"] == sum(p.numel() for p in model.parameters())
    assert counts["macs"] == counts["flops"] // 2 > 0
    if cfg.source == "torchvision":  # torchvision's `_ops` is in GMACs, despite its "GFLOPS" label
        assert counts["macs"] == pytest.approx(tv_weights(cfg).meta["_ops"] * 1e9, rel=0.01)
    # Table 1's "FLOPs (M)" counts more than convolution and linear MACs: 0.3 % (inception_v3) to
    # 34 % (alexnet) more here; mnasnet1_0, not checked, is the outlier at 2.07x.
    assert 0.7 < counts["macs"] / (cfg.paper.flops_m * 1e6) <= 1.0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("name", "host", "port"), [
    ("resnet18", "download.pytorch.org", 443),
    ("inception_v4", "huggingface.co", 443),
    ("nasnetamobile", "data.lip6.fr", 80),
])
def test_pretrained_fails_fast_offline(name, host, port, monkeypatch, tmp_path):
    if reachable(host, port):
        pytest.skip(f"{host} is reachable; the test must not download weights")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no warm cache can hide the failure
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))
    cfg = load(name)
    cfg.pretrained = True
    start = time.monotonic()
    with pytest.raises(EmbenchError) as caught:
        build_model(cfg)
    assert time.monotonic() - start < 20
    message = str(caught.value)
    assert "\n" not in message and name in message and "model.pretrained=false" in message


def test_pretrained_timm_loads_a_warm_cache_offline(monkeypatch, tmp_path):
    if reachable("huggingface.co", 443):
        pytest.skip("huggingface.co is reachable; the test must not download weights")
    saved = timm.create_model("test_resnet")  # tiny; its published weights live at timm/test_resnet.r160_in1k
    commit = "0" * 40
    repo = tmp_path / "models--timm--test_resnet.r160_in1k"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    save_file(saved.state_dict(), repo / "snapshots" / commit / "model.safetensors")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))
    cfg = OmegaConf.create({
        "name": "test_resnet", "source": "timm", "pretrained": True,
        "factory": {"_target_": "timm.create_model", "model_name": "test_resnet", "pretrained": False},
    })
    offline = hf_constants.HF_HUB_OFFLINE
    loaded = build_model(cfg)
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(), loaded.state_dict().values()))
    assert hf_constants.HF_HUB_OFFLINE == offline  # offline only for the duration of the build


@pytest.mark.parametrize("factory", [
    {"_target_": "torchvision.models.no_such_net"},
    {"_target_": "no_such_package.net"},
    {"_target_": "torchvision.models.resnet18", "no_such_arg": 1},
])
def test_bad_factory_is_a_config_error(factory):
    cfg = OmegaConf.create({"name": "bad", "source": "torchvision", "pretrained": False, "factory": factory})
    with pytest.raises(ConfigError) as caught:
        build_model(cfg)
    message = str(caught.value)
    assert "\n" not in message and factory["_target_"] in message

"""Build the benchmarked networks from their model configs and count their size and work."""

import contextlib
import socket
import urllib.parse
import urllib.request

import huggingface_hub.constants as hf_constants
import torch
import torchvision
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from embench.errors import ConfigError, EmbenchError

CONNECT_TIMEOUT_S = 10.0
"""Seconds a weights download may wait on a silent server before it fails."""


def build_model(model_cfg: DictConfig) -> torch.nn.Module:
    """Instantiate ``model_cfg.factory`` and return the model in eval mode.

    Weights are random unless ``model_cfg.pretrained`` asks for the published ones. Raises
    EmbenchError when those cannot be fetched, ConfigError when the factory cannot be built.
    """
    factory = OmegaConf.to_container(model_cfg.factory, resolve=True)
    target = factory.get("_target_")
    if not target:
        raise ConfigError(f"model {model_cfg.name}: model.factory has no _target_")
    hub_down = None
    if model_cfg.pretrained:
        _ask_for_published_weights(factory, model_cfg.source, model_cfg.name)
        if model_cfg.source == "timm" and not _reachable(hf_constants.ENDPOINT):
            hub_down = hf_constants.ENDPOINT
    try:
        with _bounded_downloads(hf_offline=hub_down is not None):
            model = instantiate(factory)
    except InstantiationException as err:
        cause = err.__cause__ or err
        if model_cfg.pretrained and isinstance(cause, OSError):
            reason = f"{hub_down} is unreachable" if hub_down else _one_line(cause)
            raise EmbenchError(
                f"model {model_cfg.name}: model.pretrained=true needs the published weights, which could "
                f"not be downloaded ({reason}); set model.pretrained=false for random weights, or put the "
                f"weights file in {_weights_cache(model_cfg.source)}"
            ) from err
        raise ConfigError(f"model {model_cfg.name}: cannot build _target_ {target}: {_one_line(cause)}") from err
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(
            f"model {model_cfg.name}: _target_ {target} returned a {type(model).__name__}, not a torch.nn.Module"
        )
    return model.eval()


def check_factory(model_cfg: DictConfig) -> None:
    """The factory's `_target_` can be imported (without building the model); raises ConfigError."""
    from hydra.utils import get_object

    target = model_cfg.factory.get("_target_")
    if not target:
        raise ConfigError(f"model {model_cfg.name}: model.factory has no _target_")
    try:
        get_object(target)
    except Exception as err:
        raise ConfigError(f"model {model_cfg.name}: cannot build _target_ {target}: {_one_line(err)}") from err


def complexity(model: torch.nn.Module, input_size: int, device: str = "cpu") -> dict:
    """Size and work of one inference of ``model`` (already on ``device``) on one image.

    Runs one forward pass on a batch of 1 x 3 x input_size x input_size and returns integers:
    ``params``, the number of parameter elements; ``flops``, what torch's FlopCounterMode counts,
    i.e. 2 per multiply-accumulate of convolutions and matrix products (linear layers, matmul,
    bmm, attention), bias additions excluded, while normalization, activations, pooling and other
    element-wise ops count 0; ``macs`` = ``flops // 2``, the unit of the paper's "FLOPs (M)" column
    (whose values, kept as ``paper.flops_m`` in the model configs, run 0.3 % to 2x higher).
    """
    dtype = next(model.parameters(), torch.empty(0)).dtype
    image = torch.zeros(1, 3, input_size, input_size, device=device, dtype=dtype)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(image)
    flops = int(counter.get_total_flops())
    return {"params": sum(p.numel() for p in model.parameters()), "flops": flops, "macs": flops // 2}


def _ask_for_published_weights(factory: dict, source: str, name: str) -> None:
    """Add to ``factory`` the keyword with which ``source`` loads its published ImageNet weights."""
    if source == "timm":
        factory["pretrained"] = True
    elif source == "pretrainedmodels":
        factory["pretrained"] = "imagenet"
    elif source == "embench":  # weights that come with embench (embench.digits)
        factory["pretrained"] = True
    elif source == "torchvision":
        arch = factory["_target_"].rsplit(".", 1)[-1]
        try:
            available = torchvision.models.get_model_weights(arch).__members__
        except ValueError as err:
            raise ConfigError(f"model {name}: torchvision publishes no weights for {arch}: {err}") from err
        # The paper used the first ImageNet weights, where torchvision still has them.
        factory["weights"] = "IMAGENET1K_V1" if "IMAGENET1K_V1" in available else "DEFAULT"
        factory.pop("init_weights", None)  # torchvision rejects init_weights=True with weights
    else:
        raise ConfigError(
            f"model {name}: model.pretrained=true needs model.source torchvision, timm, pretrainedmodels "
            f"or embench, not {source}"
        )


@contextlib.contextmanager
def _bounded_downloads(hf_offline: bool):
    """Make a stalled download fail within CONNECT_TIMEOUT_S; with ``hf_offline``, use the HF cache only.

    huggingface_hub retries an unreachable Hub for about 25 s per file, and timm asks for two;
    offline mode, for this call only, still loads cached weights and fails at once otherwise.
    """
    saved_timeout, saved_offline = socket.getdefaulttimeout(), hf_constants.HF_HUB_OFFLINE
    socket.setdefaulttimeout(CONNECT_TIMEOUT_S)
    hf_constants.HF_HUB_OFFLINE = saved_offline or hf_offline
    try:
        yield
    finally:
        socket.setdefaulttimeout(saved_timeout)
        hf_constants.HF_HUB_OFFLINE = saved_offline


def _reachable(url: str) -> bool:
    """Whether a TCP connection to ``url``'s host (or the HTTPS proxy) opens within CONNECT_TIMEOUT_S."""
    parts = urllib.parse.urlsplit(urllib.request.getproxies().get("https", url))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def _weights_cache(source: str) -> str:
    """Where ``source`` looks for downloaded weights before fetching them."""
    if source == "timm":
        return f"the Hugging Face cache ({hf_constants.HF_HUB_CACHE})"
    return f"the torch hub cache ({torch.hub.get_dir()}/checkpoints)"


def _one_line(exc: BaseException) -> str:
    """The first sentence of ``exc``'s message (or its reason, for URLError), on one line."""
    text = " ".join(str(getattr(exc, "reason", exc)).split())
    return text.split(". ")[0] or type(exc).__name__

"""What every measurement of a point builds: its input, its model's name, and the check of its output."""

import hashlib
from importlib import metadata

import torch
from omegaconf import DictConfig, OmegaConf

from embench import models
from embench.backends.conversion import cached
from embench.errors import EmbenchError
from embench.names import PRECISION_TAG
from embench.result import RunResult


def example_input(batch: int, input_size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, input_size, input_size, generator=generator)


def model_id(cfg: DictConfig) -> str:
    """Names the model's weights: its config, the seed and the library versions that build it."""
    identity = OmegaConf.to_yaml(cfg.model, resolve=True) + f"seed={cfg.seed}"
    for library in ("torch", "torchvision", "timm", "pretrainedmodels"):
        identity += f"{library}={metadata.version(library)}"
    return f"{cfg.model.name}-{hashlib.sha1(identity.encode()).hexdigest()[:12]}"


TINY_OUTPUT = 1e-6  # some random-weight networks (depthwise ones) output ~1e-9: reduced precisions round it to 0
CHECK_ROWS = 8  # images of the batch checked against the reference: enough to catch a wrong backend


def _eager(cfg: DictConfig, inputs: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(int(cfg.seed))
    return models.build_model(cfg.model)(inputs).float().reshape(len(inputs), -1)


def _reference(cfg: DictConfig, inputs: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Torch eager FP32 on the CPU for `inputs`, computed once per (weights, inputs) on this host and cached: the
    model is built and run again only for a new network, seed, library version or input. Returns it and how the
    cache served it; a cache that cannot be written (a full disk) costs the cache, not the run."""
    name = f"{model_id(cfg)}-{hashlib.sha1(inputs.numpy().tobytes()).hexdigest()[:12]}.pt"
    try:
        path, cache = cached("output-check", "torch-eager-fp32", name, lambda path: torch.save(_eager(cfg, inputs), path))
        return torch.load(path), f"cache {cache}"
    except (OSError, RuntimeError) as err:  # torch.save raises RuntimeError when its writer fails
        return _eager(cfg, inputs), f"not cached: {' '.join(str(err).split())[:200]}"


def check_output(prepared, cfg: DictConfig, example: torch.Tensor, result: RunResult) -> None:
    """The backend's output against torch eager FP32 on the CPU; a wrong one fails the run.

    Runs after timing and after the memory peak is read: the reference, the same weights on the first
    CHECK_ROWS images (cached on disk), neither warms the backend up nor adds to its memory figure.
    """
    rows = min(int(cfg.batch), CHECK_ROWS)
    output = prepared.output().reshape(int(cfg.batch), -1)[:rows]
    reference, cache = _reference(cfg, example[:rows].contiguous())
    result.tags["output_check.reference"] = f"torch eager FP32 on the CPU ({cache})"
    abs_diff = float((output - reference).abs().max())
    scale = float(reference.abs().max()) or 1.0
    result.metrics["output_max_abs_diff"] = abs_diff
    result.metrics["output_max_rel_diff"] = abs_diff / scale
    # the share of checked images whose top-1 class is the reference's (random weights: agreement, not accuracy)
    result.metrics["output_top1_agreement"] = float((output.argmax(1) == reference.argmax(1)).float().mean())
    if not abs_diff / scale <= prepared.tolerance:  # also catches NaN
        precision = result.tags.get(PRECISION_TAG)
        tiny = f"; the FP32 output itself is only {scale:.2g} in magnitude (random weights), below what {precision} " \
               "resolves" if scale < TINY_OUTPUT and precision != "fp32" else ""
        raise EmbenchError(
            f"backend={cfg.backend.name} gives a wrong output: max abs difference {abs_diff:.3g} from torch eager FP32, "
            f"{abs_diff / scale:.3g} of the output's magnitude (tolerance {prepared.tolerance:g} at {precision}){tiny}"
        )

"""What converting runtimes share: the on-disk cache of converted models, calibration inputs for
INT8, and conversion failures named in one line."""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from embench.artifacts import CANNOT_WRITE
from embench.cache import cache_dir, cache_root
from embench.errors import EmbenchError

# An operator as exporters and lowerers name it: aten::conv2d, torch.ops.aten.conv2d.default, aten.conv2d.
_OPERATOR = re.compile(r"\b(?:torch\.ops\.)?(aten|prim|quantized|torchvision)(?:::|\.)([A-Za-z_][\w]*)")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ConversionError(EmbenchError):
    """A runtime could not convert a network: the run fails, named, and the sweep goes on."""


def conversion_failed(model_id: str, runtime: str, err: BaseException, action: str = "convert") -> ConversionError:
    """One line naming the network, the runtime, the operator where a message names one, and the root cause."""
    chain = [err]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    texts = [_ANSI.sub("", " ".join(str(error).split())) for error in chain]
    found = next(filter(None, (_OPERATOR.search(text) for text in texts)), None)
    operator = f"operator {found.group(1)}::{found.group(2)}" if found else "no operator named"
    network = model_id.rsplit("-", 1)[0]
    root = chain[-1]
    if isinstance(root, OSError) and root.errno in CANNOT_WRITE:  # the conversion worked; keeping it did not
        return ConversionError(f"{runtime} cannot write {network}'s converted model to {cache_root()} ({root.strerror}): "
                               "free space there or set EMBENCH_CACHE_DIR to another folder")
    return ConversionError(f"{runtime} cannot {action} {network} ({operator}): {type(root).__name__}: {texts[-1][:300]}")


def cached(runtime: str, version: str, name: str, create: Callable[[Path], None],
           companions: tuple[str, ...] = ()) -> tuple[Path, str]:
    """The converted file `name` in the cache, made once by `create(path)`; returns it and "hit" or "miss".

    `create` writes a temporary name (and files with the `companions` suffixes beside it, such as an
    IR's .bin) that then replace the final ones, `name` last, so a reader (another sweep) never sees
    half a model.
    """
    path = cache_dir(runtime, version) / name
    if path.exists():
        return path, "hit"
    partial = path.with_name(f"{path.stem}.{os.getpid()}{path.suffix}")
    try:
        create(partial)
    except BaseException:  # no half-written model is left to fill the disk
        for leftover in (partial, *(partial.with_suffix(suffix) for suffix in companions)):
            leftover.unlink(missing_ok=True)
        raise
    for suffix in companions:
        partial.with_suffix(suffix).replace(path.with_suffix(suffix))
    partial.replace(path)
    return path, "miss"


def shape_name(example: torch.Tensor) -> str:
    """The input shape in a cache file name: 1x3x224x224."""
    return "x".join(str(size) for size in example.shape)


@dataclass(frozen=True)
class Calibration:
    """The images that calibrate INT8 activation ranges: `samples` seeded random ones, or real ones.

    Real `images` (preprocessed as the model's evaluated images are) come from a folder apart from the
    evaluated one (accuracy.calibration_root); `source` names them in cache keys and tags. The images
    do not depend on the batch size, and the check batch (seeded by the run's `seed`) is not among them
    unless the two seeds are set equal.
    """

    samples: int
    seed: int
    images: torch.Tensor | None = None
    source: str = ""  # for real images: a fingerprint of their files

    @property
    def key(self) -> str:
        """Names the calibration in a cached model's file name."""
        return f"c{self.samples}s{self.seed}" + (f"-{self.source}" if self.images is not None else "")

    def describe(self) -> str:
        if self.images is None:
            return f"{self.samples} seeded random images (seed {self.seed})"
        return f"{len(self.images)} real images ({self.source})"

    def batches(self, example: torch.Tensor) -> list[torch.Tensor]:
        """The images in batches shaped like `example`, the last one wrapped round."""
        images = self.images
        if images is None:
            generator = torch.Generator().manual_seed(self.seed)
            images = torch.randn(self.samples, *example.shape[1:], generator=generator)
        batch, samples = example.shape[0], len(images)
        count = -(-samples // batch)
        indices = torch.arange(count * batch) % samples
        return [images[indices[i * batch:(i + 1) * batch]] for i in range(count)]

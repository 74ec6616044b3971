"""The accuracy pass: labelled images through the prepared backend, after timing, compared with the FP32 reference.

The images are written into the backend's bound input in place (`Prepared.inputs`) and read back through
`output()`: the converted model, precision and device that were timed classify them. The reference is the
same network in torch eager FP32 on the CPU over the same images, cached per (model, images, preprocessing).
"""

import logging
import os
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from omegaconf import DictConfig
from torchvision.datasets.folder import default_loader

from embench import models, names
from embench.accuracy.images import LabelledImages, calibration_files, fingerprint, labelled_images
from embench.accuracy.intervals import mcnemar_exact_p, paired_difference, wilson
from embench.accuracy.preprocess import Preprocess, preprocess_for
from embench.cache import cache_dir
from embench.errors import ConfigError
from embench.result import RunResult
from embench.ui_link import accuracy_phrase

log = logging.getLogger("embench")

REFERENCE = "torch eager fp32 on the cpu"
REFERENCE_BATCH = 32
TOP = 5  # classes kept per image: top-1 and top-5
PREDICTIONS_FILE = "accuracy_predictions.csv"


def wanted(cfg: DictConfig) -> bool:
    return cfg.get("accuracy") is not None and cfg.accuracy.name != "none"


def _int8(cfg: DictConfig) -> bool:
    return cfg.backend.get("runtime", {}).get("precision") == "int8"


def check(cfg: DictConfig) -> None:
    """Before anything is measured: trained weights, one network, the images, the class map, the preprocessing."""
    if not cfg.model.get("pretrained"):
        raise ConfigError(f"accuracy={cfg.accuracy.name} needs trained weights: model.pretrained=false builds "
                          f"{cfg.model.name} with random weights, whose accuracy is chance; set model.pretrained=true")
    if cfg.get("colocate"):
        raise ConfigError(f"accuracy={cfg.accuracy.name} measures one network: not with colocate")
    declared = cfg.model.factory.get("num_classes")
    Evaluation.of(cfg, declared if isinstance(declared, int) else None)


def _load(paths, transform) -> torch.Tensor:
    """The images, decoded as RGB (torchvision's ImageFolder loader) and preprocessed, as one batch."""
    return torch.stack([transform(default_loader(str(path))) for path in paths])


@dataclass(frozen=True)
class Evaluation:
    """A run's labelled images and its network's preprocessing."""

    images: LabelledImages
    preprocess: Preprocess

    @classmethod
    def of(cls, cfg: DictConfig, outputs: int | None) -> "Evaluation":
        evaluation = cls(labelled_images(cfg.accuracy, outputs), preprocess_for(cfg.model))
        if cfg.accuracy.get("calibration_root") is not None:
            calibration_files(cfg.accuracy, 1, 0, evaluation.images)  # the folder is usable and apart
        return evaluation

    def calibrate(self, backend, cfg: DictConfig, result: RunResult) -> None:
        """An INT8 backend calibrates on accuracy.calibration_root's images, preprocessed as the evaluated ones."""
        calibration = getattr(backend, "calibration", None)
        if not _int8(cfg) or calibration is None:
            return
        if cfg.accuracy.get("calibration_root") is not None:
            files, files_id = calibration_files(cfg.accuracy, calibration.samples, calibration.seed, self.images)
            backend.calibration = replace(calibration, images=_load(files, self.preprocess.transform()),
                                          source=fingerprint(files_id, self.preprocess.describe()))
            where = f"from {cfg.accuracy.calibration_root}"
        else:
            where = "(set accuracy.calibration_root to calibrate on real images)"
        result.tags[names.ACCURACY_CALIBRATION_TAG] = f"{backend.calibration.describe()} {where}"

    def example(self, batch: int) -> torch.Tensor:
        """The first `batch` images (repeated if fewer): the input a run with accuracy times and checks."""
        paths = [self.images.paths[i % len(self.images.paths)] for i in range(batch)]
        return _load(paths, self.preprocess.transform())

    def classify(self, prepared, batch: int) -> np.ndarray:
        """Each image's TOP class indices, best first, through `prepared`'s bound input, `batch` images a step
        (the last step filled up with copies of its last image, whose outputs are dropped)."""
        bound = getattr(prepared, "inputs", None)
        if bound is None:
            raise ConfigError("accuracy=imagefolder: this backend's prepared model has no `inputs` to write "
                              "images into (see embench.backends.Prepared)")
        target = bound if isinstance(bound, torch.Tensor) else torch.from_numpy(bound)
        transform, paths, found = self.preprocess.transform(), self.images.paths, []
        for start in range(0, len(paths), batch):
            images = _load(paths[start:start + batch], transform)
            filled = torch.cat([images, images[-1:].expand(batch - len(images), *images.shape[1:])])
            target.copy_(filled.reshape(target.shape))
            if target.is_cuda:  # the copy runs on torch's stream; a runtime may read on its own
                torch.cuda.synchronize(target.device)
            found.append(_top(prepared.output().reshape(batch, -1)[:len(images)]))
        return np.concatenate(found)

    def reference(self, cfg: DictConfig, model_id: str) -> tuple[np.ndarray, str]:
        """The reference's TOP classes per image, and "hit" or "miss" in the cache."""
        path = cache_dir("accuracy") / f"{model_id}-{self.images.fingerprint}-{fingerprint(self.preprocess.describe())}.npy"
        if path.exists():
            return np.load(path), "hit"
        torch.manual_seed(int(cfg.seed))
        model = models.build_model(cfg.model).float()
        transform, paths, found = self.preprocess.transform(), self.images.paths, []
        with torch.inference_mode():
            for start in range(0, len(paths), REFERENCE_BATCH):
                found.append(_top(model(_load(paths[start:start + REFERENCE_BATCH], transform)).float()))
        top = np.concatenate(found)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.npy")
        np.save(partial, top)
        partial.replace(path)  # whole or absent: another job may read it at once
        return top, "miss"

    def measure(self, prepared, cfg: DictConfig, result: RunResult, model_id: str, is_reference: bool) -> None:
        """Classifies the images through `prepared` and logs accuracy (and, unless it is the reference itself,
        its difference from the reference) into `result`."""
        labels = np.asarray(self.images.labels)
        start = time.perf_counter()
        top = self.classify(prepared, int(cfg.batch))
        result.metrics[names.ACCURACY_S] = time.perf_counter() - start
        correct = top[:, 0] == labels
        total = len(labels)
        low, high = wilson(int(correct.sum()), total)
        result.metrics.update({
            names.ACCURACY_TOP1: 100 * correct.mean(), names.ACCURACY_SAMPLES: total,
            names.ACCURACY_TOP1_CI95_LOW: 100 * low, names.ACCURACY_TOP1_CI95_HIGH: 100 * high,
        })
        if top.shape[1] >= TOP:  # a head of 5 classes or fewer: top-5 says nothing
            result.metrics[names.ACCURACY_TOP5] = 100 * (top[:, :TOP] == labels[:, None]).any(axis=1).mean()
        result.tags.update({
            names.ACCURACY_DATASET_TAG: str(self.images.root), names.ACCURACY_DATASET_ID_TAG: self.images.fingerprint,
            "accuracy.preprocess": self.preprocess.describe(), "accuracy.interval": "Wilson score, 95 %",
        })
        columns = {"image": [str(p.relative_to(self.images.root)) for p in self.images.paths], "label": labels}
        columns |= {f"top{rank + 1}": top[:, rank] for rank in range(top.shape[1])}
        verdicts = ""
        if not is_reference:
            reference_start = time.perf_counter()
            reference, cache = self.reference(cfg, model_id)
            reference_correct = reference[:, 0] == labels
            gained, lost = int((correct & ~reference_correct).sum()), int((~correct & reference_correct).sum())
            difference, low, high = paired_difference(gained, lost, total)
            result.metrics.update({
                names.ACCURACY_REFERENCE_TOP1: 100 * reference_correct.mean(),
                names.ACCURACY_TOP1_DELTA: 100 * difference,
                names.ACCURACY_TOP1_DELTA_CI95_LOW: 100 * low, names.ACCURACY_TOP1_DELTA_CI95_HIGH: 100 * high,
                names.ACCURACY_TOP1_DELTA_P: mcnemar_exact_p(gained, lost),
                names.ACCURACY_TOP1_AGREEMENT: 100 * (top[:, 0] == reference[:, 0]).mean(),
                "accuracy_reference_s": time.perf_counter() - reference_start,
            })
            result.tags.update({"accuracy.reference": f"{REFERENCE} (cache {cache})",
                                "accuracy.delta_interval": "paired, Bonett-Price adjusted Wald, 95 %"})
            columns["reference_top1"] = reference[:, 0]
            verdicts = f" ({gained} right only here, {lost} right only in {REFERENCE})"
        result.files[PREDICTIONS_FILE] = _csv(columns)
        log.info("accuracy: %s%s", accuracy_phrase(result.metrics), verdicts)


def _top(logits: torch.Tensor) -> np.ndarray:
    return logits.topk(min(TOP, logits.shape[1]), dim=1).indices.numpy()


def _csv(columns: dict) -> bytes:
    import pandas as pd

    return pd.DataFrame(columns).to_csv(index=False).encode()


def outputs_of(model: torch.nn.Module, input_size: int) -> int:
    """How many classes the network outputs (one forward pass of a blank image)."""
    with torch.inference_mode():
        output = model(torch.zeros(1, 3, input_size, input_size, dtype=next(model.parameters()).dtype))
    return int(output.reshape(1, -1).shape[1])


def is_reference(cfg: DictConfig, device_kind: str) -> bool:
    """Whether the run is the reference itself: torch eager, FP32, contiguous, on the CPU."""
    runtime = cfg.backend.get("runtime", {})
    return (str(runtime.get("_target_")) == "embench.backends.torch_eager.TorchEager" and device_kind == "cpu"
            and runtime.get("precision", "fp32") == "fp32" and not runtime.get("channels_last", False))

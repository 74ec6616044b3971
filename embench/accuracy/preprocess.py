"""Each network's preprocessing for labelled images: resize, centre crop, mean and std, interpolation.

From the library that publishes the network's weights (torchvision's weight metadata, timm's pretrained
config, pretrainedmodels' settings), then `model.preprocess` in the model config wins key by key;
ImageNet's defaults where neither says. timm builds the transform.
"""

from dataclasses import asdict, dataclass, replace
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from embench.errors import ConfigError

IMAGENET = {"crop_pct": 0.875, "interpolation": "bilinear", "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocess:
    """Resize the shorter side to input_size / crop_pct, crop the centre input_size square, normalise."""

    input_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def describe(self) -> str:
        resize = int(self.input_size / self.crop_pct)
        return (f"resize {resize} {self.interpolation}, centre crop {self.input_size}, "
                f"mean {', '.join(f'{m:g}' for m in self.mean)}, std {', '.join(f'{s:g}' for s in self.std)}")

    def transform(self) -> Callable:
        """A PIL image to a normalised 3 x input_size x input_size tensor."""
        from timm.data import create_transform

        return create_transform(input_size=(3, self.input_size, self.input_size), is_training=False,
                                interpolation=self.interpolation, mean=self.mean, std=self.std,
                                crop_pct=self.crop_pct, crop_mode="center")


def _published(model: DictConfig) -> dict:
    """What the weights' publisher says about their preprocessing (empty where it says nothing)."""
    factory = model.factory
    if model.get("source") == "timm":
        from timm.models import get_pretrained_cfg

        config = get_pretrained_cfg(str(factory.get("model_name")))
        if config is not None:
            return {"crop_pct": config.crop_pct, "interpolation": config.interpolation,
                    "mean": tuple(config.mean), "std": tuple(config.std)}
    if model.get("source") == "pretrainedmodels":
        import pretrainedmodels

        settings = pretrainedmodels.pretrained_settings.get(str(factory._target_).rsplit(".", 1)[-1], {}).get("imagenet")
        if settings:
            return {"mean": tuple(settings["mean"]), "std": tuple(settings["std"])}
    if model.get("source") == "torchvision":
        from torchvision.models import get_model_weights

        try:
            weights = get_model_weights(str(factory._target_).rsplit(".", 1)[-1])
        except ValueError:
            return {}
        meta = (weights["IMAGENET1K_V1"] if "IMAGENET1K_V1" in weights.__members__ else weights.DEFAULT).transforms()
        return {"crop_pct": meta.crop_size[0] / meta.resize_size[0], "interpolation": meta.interpolation.value,
                "mean": tuple(meta.mean), "std": tuple(meta.std)}
    return {}


def preprocess_for(model: DictConfig) -> Preprocess:
    """The network's preprocessing at its configured input size; a bad `model.preprocess` is one line."""
    own = model.get("preprocess")
    own = OmegaConf.to_container(own, resolve=True) if own is not None else {}
    unknown = set(own) - set(IMAGENET)
    if unknown:
        raise ConfigError(f"model.preprocess.{sorted(unknown)[0]}: no such key; valid: {', '.join(IMAGENET)}")
    chosen = replace(Preprocess(int(model.input_size), **IMAGENET), **_published(model))
    chosen = replace(chosen, **{key: tuple(value) if isinstance(value, list) else value for key, value in own.items()})
    if not (isinstance(chosen.crop_pct, (int, float)) and 0 < chosen.crop_pct <= 1):
        raise ConfigError(f"model.preprocess.crop_pct={chosen.crop_pct!r} is not valid: a number above 0 and at most 1")
    if chosen.interpolation not in INTERPOLATIONS:
        raise ConfigError(f"model.preprocess.interpolation={chosen.interpolation!r} is not valid; "
                          f"valid: {', '.join(INTERPOLATIONS)}")
    for key in ("mean", "std"):
        values = asdict(chosen)[key]
        if not (len(values) == 3 and all(isinstance(v, (int, float)) for v in values) and (key == "mean" or min(values) > 0)):
            raise ConfigError(f"model.preprocess.{key}={list(values)!r} is not valid: three numbers, one per RGB channel"
                              + (", each above 0" if key == "std" else ""))
    return chosen

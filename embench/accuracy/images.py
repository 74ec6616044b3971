"""Labelled images in torchvision's ImageFolder layout (ROOT/<class>/<image>), found, checked and put in a
fixed order before anything is measured; the INT8 calibration images, kept apart from them."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from PIL import Image, UnidentifiedImageError
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from embench.errors import ConfigError

LAYOUT = "one sub-folder per class holding its images (torchvision's ImageFolder layout)"


@dataclass(frozen=True)
class LabelledImages:
    """The images a run evaluates, in their evaluation order, with the model's class index of each."""

    root: Path
    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: int  # class folders found
    fingerprint: str  # names the images, their labels and their order (not their pixels: see `fingerprint`)


def _folder(key: str, value) -> Path:
    if not isinstance(value, str) or not value.strip():
        given = "is not set" if value is None else f"={value!r} is not valid"
        raise ConfigError(f"{key} {given}: give a folder of labelled images, e.g. {key}=~/data/imagenet/val")
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigError(f"{key}={value}: no such folder")
    if not path.is_dir():
        raise ConfigError(f"{key}={value} is a file, not a folder of images")
    return path


def _images_in(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file() and has_file_allowed_extension(path.name, IMG_EXTENSIONS))


def _class_folders(root: Path, key: str) -> list[Path]:
    entries = list(root.iterdir())
    if not entries:
        raise ConfigError(f"{key}={root} is empty: it needs {LAYOUT}")
    folders = sorted((entry for entry in entries if entry.is_dir() and not entry.name.startswith(".")), key=lambda p: p.name)
    if not folders:
        raise ConfigError(f"{key}={root} has no class sub-folders: it needs {LAYOUT}")
    for folder in folders:
        if not _images_in(folder):
            raise ConfigError(f"{key}={root}: class folder {folder.name!r} has no images "
                              f"({', '.join(IMG_EXTENSIONS)}); it needs {LAYOUT}")
    return folders


def class_indices(names: list[str], class_map, root: Path) -> dict[str, int]:
    """The model's class index of each folder: its rank in sorted order, or what `class_map` says.

    A class map is a JSON object {"folder": index}, or a text file whose line i starts with the folder
    name of class i (ImageNet's LOC_synset_mapping.txt, Caffe's synset_words.txt).
    """
    if class_map is None:
        return {name: index for index, name in enumerate(names)}
    path = Path(str(class_map)).expanduser()
    if not path.is_file():
        raise ConfigError(f"accuracy.class_map={class_map}: no such file")
    text = path.read_text(errors="replace")
    if path.suffix == ".json":
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"accuracy.class_map={class_map} is not valid JSON ({err})") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                    for v in mapping.values()):
            raise ConfigError(f"accuracy.class_map={class_map} is not valid: a JSON object must map each folder "
                              'name to a class index from 0, e.g. {"n01440764": 0}')
    else:
        mapping = {line.split()[0]: index for index, line in enumerate(text.splitlines()) if line.strip()}
    missing = [name for name in names if name not in mapping]
    if missing:
        raise ConfigError(f"accuracy.class_map={class_map} has no class for folder {missing[0]!r} of {root} "
                          f"({len(missing)} of its {len(names)} folders are missing)")
    return {name: mapping[name] for name in names}


def fingerprint(*parts) -> str:
    """A short hash naming `parts` (file lists, settings) in cache keys and tags."""
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def _readable(path: Path, key: str) -> None:
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ConfigError(f"{key}: {path} is not a readable image ({' '.join(str(err).split())[:160]})") from None


def seeded_order(count: int, seed: int, limit: int | None) -> np.ndarray:
    """The first `limit` of `count` items in an order shuffled by `seed`: the same on every backend and host."""
    return np.random.default_rng(seed).permutation(count)[:limit]


def labelled_images(accuracy: DictConfig, outputs: int | None) -> LabelledImages:
    """The run's images, checked: the folder's layout, the class map, each image's header, and that the
    model (`outputs` classes, None when unknown) has a class for every folder."""
    root = _folder("accuracy.root", accuracy.root)
    folders = _class_folders(root, "accuracy.root")
    indices = class_indices([folder.name for folder in folders], accuracy.get("class_map"), root)
    top = max(indices.values())
    if outputs is not None and top >= outputs:
        what = f"class index {top}" if accuracy.get("class_map") else f"{len(folders)} classes"
        raise ConfigError(f"accuracy.root={root} has {what}, more than the model's {outputs} outputs: "
                          f"{'fix the class map' if accuracy.get('class_map') else 'set accuracy.class_map'} "
                          "or evaluate a dataset of this model's classes")
    samples = [(path, indices[folder.name]) for folder in folders for path in _images_in(folder)]
    chosen = [samples[i] for i in seeded_order(len(samples), int(accuracy.seed), accuracy.limit)]
    for path, _ in chosen:
        _readable(path, "accuracy.root")
    stats = [(str(path.relative_to(root)), label, path.stat().st_size, path.stat().st_mtime_ns) for path, label in chosen]
    return LabelledImages(root, tuple(path for path, _ in chosen), tuple(label for _, label in chosen), len(folders),
                          fingerprint(str(root.resolve()), stats))


def calibration_files(accuracy: DictConfig, samples: int, seed: int, evaluated: LabelledImages) -> tuple[list[Path], str]:
    """Up to `samples` images of accuracy.calibration_root (any layout), in an order shuffled by `seed`, and
    a fingerprint of them; refused when the folder shares an image with the evaluated ones."""
    root = _folder("accuracy.calibration_root", accuracy.calibration_root)
    found = _images_in(root)
    if not found:
        raise ConfigError(f"accuracy.calibration_root={root} has no images ({', '.join(IMG_EXTENSIONS)})")
    evaluated_root = evaluated.root.resolve()
    if root.resolve() == evaluated_root or evaluated_root in root.resolve().parents or root.resolve() in evaluated_root.parents:
        raise ConfigError(f"accuracy.calibration_root={root} overlaps accuracy.root={evaluated.root}: INT8 calibration "
                          "images must be apart from the evaluated ones (e.g. a few hundred training images)")
    chosen = [found[i] for i in seeded_order(len(found), seed, samples)]
    for path in chosen:
        _readable(path, "accuracy.calibration_root")
    stats = [(str(path.relative_to(root)), path.stat().st_size, path.stat().st_mtime_ns) for path in chosen]
    return chosen, fingerprint(str(root.resolve()), stats)

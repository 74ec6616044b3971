"""scikit-learn's handwritten digits, a real labelled dataset that installs with embench, and a small network for it.

The 1,797 8x8 images (values 0..16, 10 classes) are split once, reproducibly and stratified, into 1,000 for
training and calibration and 797 for testing; `export` writes them as torchvision's ImageFolder layout.
`digits_net(pretrained=True)` loads the weights that tools/train_digits_net.py trains on the training split.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from embench.errors import ConfigError

CLASSES = 10
TEST_SIZE = 797
SPLIT_SEED = 0
SPLITS = ("train", "test")
MEAN = STD = 0.5  # per channel, on pixels scaled to 0..1
WEIGHTS = Path(__file__).with_name("digits_net.pt")


@dataclass(frozen=True)
class Split:
    pixels: np.ndarray  # N x 8 x 8 uint8, round(value * 255 / 16)
    labels: np.ndarray  # N digits
    indices: np.ndarray  # N sample indices in sklearn.datasets.load_digits


def digits_split() -> dict[str, Split]:
    """The train (1,000) and test (797) splits, stratified by digit, the same on every call."""
    from sklearn.datasets import load_digits  # imported here: building the network needs no scikit-learn
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = np.round(digits.images * 255 / 16).astype(np.uint8)
    train, test = train_test_split(np.arange(len(digits.target)), test_size=TEST_SIZE, random_state=SPLIT_SEED,
                                   stratify=digits.target)
    return {name: Split(pixels[rows], digits.target[rows], rows) for name, rows in zip(SPLITS, (train, test))}


def export(root: Path) -> dict[str, int]:
    """Write root/<split>/<digit>/<sample index>.png (8x8 grayscale); the number of images per split.

    Raises ConfigError when root is a file, a folder that is not empty, or cannot be created or written."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is a file: give a new or empty folder for the dataset")
    if root.is_dir() and any(root.iterdir()):
        raise ConfigError(f"{root} is not empty: give a new or empty folder for the dataset")
    counts = {}
    try:
        for name, split in digits_split().items():
            for digit in range(CLASSES):
                (root / name / str(digit)).mkdir(parents=True, exist_ok=True)
            for image, label, index in zip(split.pixels, split.labels, split.indices):
                Image.fromarray(image).save(root / name / str(label) / f"{index:04d}.png")
            counts[name] = len(split.labels)
    except OSError as err:
        raise ConfigError(f"cannot write {err.filename or root}: {err.strerror or err}; give a folder that can be "
                          f"created and written") from err
    return counts


def to_input(pixels: np.ndarray) -> torch.Tensor:
    """N x 8 x 8 uint8 pixels as the network's N x 3 x 8 x 8 input: grey on 3 channels, normalized as ImageFolder
    and the model config's preprocess block give it."""
    grey = torch.from_numpy(pixels).float().div(255).sub(MEAN).div(STD)
    return grey.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


class DigitsNet(nn.Module):
    """Two 3x3 convolutions, a 2x2 max-pool and a linear layer: 3 x 8 x 8 in, one logit per class out."""

    def __init__(self, num_classes: int = CLASSES):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def digits_net(pretrained: bool = False, num_classes: int = CLASSES) -> DigitsNet:
    """The digits network: random weights, or with ``pretrained`` the ones that come with embench."""
    if pretrained and num_classes != CLASSES:
        raise ValueError(f"num_classes={num_classes}: the digits network's trained weights have {CLASSES} classes; "
                         f"use num_classes={CLASSES}, or pretrained=false for random weights")
    model = DigitsNet(num_classes)
    if pretrained:
        model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    return model

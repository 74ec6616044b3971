"""A network whose weights are set by hand: it names an image's dominant colour, so its accuracy is known.

The image's mean per RGB channel, one output per class; classes in the sorted order of their folders
(blue, green, red), so class 0 reads the blue channel. `permuted` moves each class to the next
channel: every image is then classified as another colour.
"""

import torch

CHANNEL_OF_CLASS = (2, 1, 0)  # blue, green, red: the folders in sorted order


class ColourNet(torch.nn.Module):
    def __init__(self, permuted: bool = False, num_classes: int = 3):
        super().__init__()
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.head = torch.nn.Linear(3, num_classes, bias=False)
        weights = torch.zeros(num_classes, 3)
        for cls, channel in enumerate(CHANNEL_OF_CLASS[:num_classes]):
            weights[cls, (channel + 1) % 3 if permuted else channel] = 1.0
        self.head.weight.data = weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(x).flatten(1))


def colour_net(pretrained: bool = False, permuted: bool = False, num_classes: int = 3) -> ColourNet:
    """The hand-set weights whatever `pretrained` says: they are this network's trained ones."""
    return ColourNet(permuted, num_classes)

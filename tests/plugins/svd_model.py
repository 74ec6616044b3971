"""A network with an operator no converter here handles (a singular value decomposition)."""

import torch


class SvdNet(torch.nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.head = torch.nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x).flatten(2)  # (batch, 8, pixels)
        return self.head(torch.linalg.svdvals(features))  # aten::_linalg_svd

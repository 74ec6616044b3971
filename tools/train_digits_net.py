"""Trains embench's digits network on the training split of scikit-learn's digits and writes its weights.

    python tools/train_digits_net.py [--out PATH]     # default: embench/digits_net.pt, the weights embench ships

From a fixed seed, deterministic, on one CPU thread; prints the test split's top-1 and top-5 and the wall time.
"""

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from embench.digits import WEIGHTS, DigitsNet, digits_split, to_input

SEED = 0
EPOCHS = 40
BATCH = 50
LEARNING_RATE = 3e-3


def train(seed: int = SEED) -> DigitsNet:
    torch.manual_seed(seed)
    split = digits_split()["train"]
    images, labels = to_input(split.pixels), torch.from_numpy(split.labels)
    model = DigitsNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_of = nn.CrossEntropyLoss()
    model.train()
    for _ in range(EPOCHS):
        for rows in torch.randperm(len(labels)).split(BATCH):
            optimizer.zero_grad()
            loss_of(model(images[rows]), labels[rows]).backward()
            optimizer.step()
    return model.eval()


def test_accuracy(model: DigitsNet) -> tuple[float, float]:
    """Top-1 and top-5 (percent) on the test split."""
    split = digits_split()["test"]
    with torch.inference_mode():
        top5 = model(to_input(split.pixels)).topk(5).indices
    hits = top5 == torch.from_numpy(split.labels).unsqueeze(1)
    return 100 * hits[:, 0].float().mean().item(), 100 * hits.any(1).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS, help=f"where to write the state_dict (default: {WEIGHTS})")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()
    model = train()
    seconds = time.perf_counter() - start
    top1, top5 = test_accuracy(model)
    torch.save(model.state_dict(), args.out)
    print(f"test split (797 images): top-1 {top1:.2f} %, top-5 {top5:.2f} %; trained in {seconds:.1f} s; "
          f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()

"""`embench data digits DIR` against scikit-learn's own digits, the committed digits network scored by a plain torch
loop written here, its training script, and a run of model=digits."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, CliResult, assert_one_line_error, cli_env, only_result
from omegaconf import OmegaConf
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from embench.digits import DigitsNet, digits_net

WEIGHTS = REPO / "embench" / "digits_net.pt"
CONFIG = REPO / "conf" / "model" / "digits.yaml"


def data_cli(tmp_path: Path, *args: str) -> CliResult:
    proc = subprocess.run([sys.executable, "-m", "embench", "data", *args], cwd=tmp_path, env=cli_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("digits")
    result = data_cli(tmp, "digits", str(tmp / "data"))
    assert result.returncode == 0, result.output
    assert result.stdout.startswith(f"embench: wrote 1,797 images (train 1,000, test 797) of sklearn's digits to "
                                    f"{tmp / 'data'}; measure accuracy with: python -m embench model=digits "
                                    f"accuracy=imagefolder accuracy.root={tmp / 'data'}/test")
    return tmp / "data"


def files(root: Path, split: str) -> dict[int, int]:
    """Sample index -> digit, from the file and folder names of one split."""
    return {int(path.stem): int(path.parent.name) for path in (root / split).glob("*/*.png")}


def scored(weights: Path, root: Path) -> tuple[dict[int, int], torch.Tensor, torch.Tensor]:
    """Digit by sample index, and the top-5 predictions of the network with ``weights``, over root/test's PNGs:
    read as torchvision's ImageFolder reads them (RGB), scaled to 0..1, normalized with mean 0.5 and std 0.5."""
    truth = files(root, "test")
    images = [np.asarray(Image.open(root / "test" / str(digit) / f"{index:04d}.png").convert("RGB"))
              for index, digit in sorted(truth.items())]
    batch = (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    model = DigitsNet()
    model.load_state_dict(torch.load(weights, weights_only=True))
    with torch.inference_mode():
        top5 = model.eval()(batch).topk(5).indices
    return truth, top5, torch.tensor([digit for _, digit in sorted(truth.items())])


def test_export_is_sklearns_digits_split_as_specified(exported):
    digits = load_digits()
    train, test = train_test_split(np.arange(1797), test_size=797, random_state=0, stratify=digits.target)
    found = {split: files(exported, split) for split in ("train", "test")}
    assert sorted(found["train"]) == sorted(train) and sorted(found["test"]) == sorted(test)
    assert not set(found["train"]) & set(found["test"]) and set(found["train"]) | set(found["test"]) == set(range(1797))
    for split in found.values():  # each file in its sample's digit folder
        assert all(digits.target[index] == digit for index, digit in split.items())
    for name, rows in (("train", train), ("test", test)):
        per_class = np.bincount([found[name][index] for index in found[name]], minlength=10)
        assert per_class.tolist() == np.bincount(digits.target[rows], minlength=10).tolist()
    assert sorted(path.name for path in (exported / "test").iterdir()) == [str(digit) for digit in range(10)]


def test_every_png_holds_its_samples_pixels(exported):
    digits = load_digits()
    for path in exported.glob("*/*/*.png"):
        image = Image.open(path)
        assert (image.mode, image.size) == ("L", (8, 8)), path
        expected = [[round(value * 255 / 16) for value in row] for row in digits.images[int(path.stem)]]
        assert np.asarray(image).tolist() == expected, path


def test_committed_weights_score_what_the_config_says(exported):
    assert WEIGHTS.stat().st_size < 300_000
    truth, top5, labels = scored(WEIGHTS, exported)
    top1 = 100 * (top5[:, 0] == labels).float().mean().item()
    top5_share = 100 * (top5 == labels.unsqueeze(1)).any(1).float().mean().item()
    assert len(truth) == 797 and top1 >= 95
    accuracy = OmegaConf.load(CONFIG).accuracy
    assert (round(top1, 2), round(top5_share, 2)) == (accuracy.top1, accuracy.top5)


def test_factory_loads_the_committed_weights_and_refuses_other_heads():
    saved = torch.load(WEIGHTS, weights_only=True)
    loaded = digits_net(pretrained=True).state_dict()
    assert all(torch.equal(loaded[key], saved[key]) for key in saved)
    assert not torch.equal(digits_net().state_dict()["layers.0.weight"], saved["layers.0.weight"])
    with pytest.raises(ValueError, match="num_classes=5"):
        digits_net(pretrained=True, num_classes=5)
    assert digits_net(num_classes=5)(torch.zeros(1, 3, 8, 8)).shape == (1, 5)


@pytest.mark.slow  # about 10 s: trains the network again
def test_training_script_reproduces_the_committed_weights(exported, tmp_path):
    out = tmp_path / "retrained.pt"
    result = subprocess.run([sys.executable, str(REPO / "tools" / "train_digits_net.py"), "--out", str(out)],
                            env=cli_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test split (797 images): top-1" in result.stdout
    _, committed, _ = scored(WEIGHTS, exported)
    _, retrained, _ = scored(out, exported)
    assert (committed[:, 0] == retrained[:, 0]).float().mean().item() >= 0.98


def test_a_run_of_the_digits_network(run_cli, tmp_path):
    result = run_cli("model=digits", "protocol=quick", "protocol.profile_iterations=0", "tracking.enabled=false")
    assert result.returncode == 0, result.output
    record = only_result(tmp_path)
    assert record["status"] == "ok" and record["params"]["model.pretrained"] == "True"
    assert record["metrics"]["params"] == sum(p.numel() for p in DigitsNet().parameters())


@pytest.mark.parametrize("case", ["unknown dataset", "a file", "not empty", "under a file", "read-only"])
def test_bad_input_is_refused_in_one_line(tmp_path, case):
    target = tmp_path / "data"
    if case == "a file":
        target.write_text("x")
    elif case == "not empty":
        target.mkdir()
        (target / "mine.txt").write_text("x")
    elif case == "under a file":
        (tmp_path / "file").write_text("x")
        target = tmp_path / "file" / "data"
    elif case == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only folder")
        (tmp_path / "locked").mkdir(mode=0o555)
        target = tmp_path / "locked" / "data"
    dataset = "cifar10" if case == "unknown dataset" else "digits"
    result = data_cli(tmp_path, dataset, str(target))
    assert result.returncode == 2 and result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    assert_one_line_error(result, *(("'cifar10'", "'digits'") if dataset == "cifar10" else (str(target),)))
    assert not list(tmp_path.glob("**/*.png"))

"""Accuracy and speed of the digits network per backend and precision, and what an accuracy pass costs.

    python benchmarks/accuracy.py [--output DIR]

Part 1 runs the README's commands: `embench data digits`, then accuracy=imagefolder on the test split
(797 images; INT8 calibrated on the train split) through torch FP32 and each CPU runtime at FP32 and
INT8, latency protocol. It prints a Markdown table: top-1 with its Wilson interval, the difference
from torch eager FP32 with its paired interval, agreement, median latency, inferences/s, and the
pass's seconds per 1,000 images.

Part 2 times the pass itself on ImageNet-sized input: 200 JPEG photos-sized images (500 x 375, random
pixels) through resnet18 at 224 on torch eager and OpenVINO, batch 1 and 8, in this process. Random
weights are fine here: only the time is read. It splits the pass into decoding plus preprocessing
and the rest (the backend's inference and the copy into its input).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ACCURACY = ["model=digits", "accuracy=imagefolder", "protocol=latency", "protocol.profile_iterations=0"]
SWEEPS = {  # one sweep per backend: each takes its own precisions
    "torch": ["backend=torch"],
    "onnxruntime": ["backend=onnxruntime", "backend.runtime.precision=fp32,int8"],
    "openvino": ["backend=openvino", "backend.runtime.precision=fp32,int8"],
    "executorch": ["backend=executorch", "backend.runtime.precision=fp32,int8"],
}


def embench(output: Path, *args: str) -> None:
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{output / 'mlflow.db'}", PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-m", "embench", *args], cwd=output, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def digits_table(output: Path) -> list[str]:
    data = output / "digits"
    embench(output, "data", "digits", str(data))
    roots = [f"accuracy.root={data / 'test'}", f"accuracy.calibration_root={data / 'train'}"]
    for name, sweep in SWEEPS.items():
        embench(output, "-m", *ACCURACY, *roots, *sweep, f"hydra.sweep.dir={output / name}")
    lines = ["| backend | precision | top-1 % [95 % CI] | Δ vs torch FP32, pp [95 % CI] | McNemar p | agreement % "
             "| median ms | inferences/s | pass s / 1,000 images |", "|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(output.glob("*/*/result.json")):
        run = json.loads(path.read_text())
        m, params = run["metrics"], run["params"]
        delta = (f"{m['accuracy_top1_delta']:+.2f} [{m['accuracy_top1_delta_ci95_low']:+.2f}, "
                 f"{m['accuracy_top1_delta_ci95_high']:+.2f}]" if "accuracy_top1_delta" in m else "(the reference)")
        p = f"{m['accuracy_top1_delta_mcnemar_p']:.2f}" if "accuracy_top1_delta" in m else "-"
        agreement = f"{m['accuracy_top1_agreement']:.2f}" if "accuracy_top1_agreement" in m else "-"
        lines.append(f"| {params['backend']} | {run['tags']['backend.precision']} | {m['accuracy_top1']:.2f} "
                     f"[{m['accuracy_top1_ci95_low']:.2f}, {m['accuracy_top1_ci95_high']:.2f}] | {delta} | {p} | "
                     f"{agreement} | {m['latency_median_ms']:.4f} | {m['throughput_ips']:.0f} | "
                     f"{1000 * m['accuracy_s'] / m['accuracy_samples']:.2f} |")
    return lines


def pass_cost(output: Path) -> list[str]:
    import numpy as np
    import torch
    from omegaconf import OmegaConf
    from PIL import Image

    from embench.accuracy.evaluate import Evaluation, _load
    from embench.accuracy.images import labelled_images
    from embench.accuracy.preprocess import preprocess_for
    from embench.backends.openvino import OpenVINO
    from embench.backends.torch_eager import TorchEager
    from embench.config.paths import config_dir
    from embench.models import build_model
    from embench.platform import resolve_device

    rng = np.random.default_rng(0)
    root = output / "photos"
    for index in range(200):
        folder = root / f"class{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(folder / f"{index}.jpg", quality=90)
    model_cfg = OmegaConf.load(Path(config_dir()) / "model" / "resnet18.yaml")
    accuracy = OmegaConf.create({"root": str(root), "limit": None, "seed": 0, "class_map": None})
    evaluation = Evaluation(labelled_images(accuracy, 1000), preprocess_for(model_cfg))
    start = time.perf_counter()
    _load(evaluation.images.paths, evaluation.preprocess.transform())
    decode_ms = 1000 * (time.perf_counter() - start) / len(evaluation.images.paths)
    device, _ = resolve_device(OmegaConf.load(Path(config_dir()) / "platform" / "cpu.yaml"))
    lines = [f"Decoding and preprocessing alone: {decode_ms:.2f} ms per image ({decode_ms:.1f} s per 1,000).", "",
             "| backend | batch | pass ms per image | s per 1,000 images |", "|---|---|---|---|"]
    for name, backend in (("torch", TorchEager()), ("openvino", OpenVINO())):
        for batch in (1, 8):
            torch.manual_seed(0)
            with torch.inference_mode():
                prepared = backend.prepare(build_model(model_cfg), evaluation.example(batch), device, "bench-resnet18")
                evaluation.classify(prepared, batch)  # warm
                start = time.perf_counter()
                evaluation.classify(prepared, batch)
            per_image = 1000 * (time.perf_counter() - start) / len(evaluation.images.paths)
            lines.append(f"| {name} | {batch} | {per_image:.2f} | {per_image:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="embench-accuracy-bench-") as scratch:
        output = (args.output or Path(scratch)).resolve()
        output.mkdir(parents=True, exist_ok=True)
        print("\n".join(digits_table(output)))
        print()
        print("\n".join(pass_cost(output)))


if __name__ == "__main__":
    main()

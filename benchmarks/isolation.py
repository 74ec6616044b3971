"""What isolating a local sweep's jobs costs: experiment=quickstart with farm=inline vs farm=local, A/B.

    python benchmarks/isolation.py [--rounds 2] [--output DIR]

farm=inline measures every job inside the embench process (a crash there ends the sweep, and only the
first job's first call is cold); farm=local, the default, measures each job in a fresh process of its
own (a crash or OOM kill fails that job alone, and every job's first call is cold), which pays the
import of torch, torchvision and timm once per job. Runs the two in turn (A B A B ...), each into its
own MLflow store, and prints each wall time, the medians, their ratio and the cost per job.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = ("inline", "local")
JOBS = 24  # experiment=quickstart: six networks at four batch sizes


def sweep_seconds(mode: str, output: Path, round_number: int) -> float:
    folder = output / f"{mode}_{round_number}"
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "embench", "-m", "experiment=quickstart", f"farm={mode}",
               f"hydra.sweep.dir={folder / 'sweep'}"]
    start = time.perf_counter()
    subprocess.run(command, cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO / "outputs" / "benchmarks" / "isolation")
    args = parser.parse_args()
    times = {mode: [] for mode in MODES}
    for round_number in range(args.rounds):
        for mode in MODES:
            seconds = sweep_seconds(mode, args.output.resolve(), round_number)
            times[mode].append(seconds)
            print(f"round {round_number + 1}: farm={mode}: {seconds:.1f} s", flush=True)
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    print(f"median wall time: farm=inline {medians['inline']:.1f} s, farm=local {medians['local']:.1f} s; "
          f"local / inline = {medians['local'] / medians['inline']:.3f}; "
          f"{(medians['local'] - medians['inline']) / JOBS:.1f} s more per job")


if __name__ == "__main__":
    main()

"""CPU backends compared: resnet50 and mobilenet_v2 at batch 1 and 8, through each runtime.

    python benchmarks/backends.py [--output DIR]

Runs one real embench sweep (latency protocol, no profile pass) into its own MLflow store in DIR,
then prints a Markdown table (median ms, inferences/s, efficiency) and writes it with a CSV.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEP = [
    "model=resnet50,mobilenet_v2",
    "platform=cpu",
    "backend=torch,torch_compile,openvino",
    "batch=1,8",
    "protocol=latency",
    "protocol.profile_iterations=0",
]
COLUMNS = ["model", "batch", "backend", "median_ms", "p99_ms", "cv_pct", "inferences_per_s", "efficiency", "prepare_s", "host_busy"]


def run_sweep(output: Path) -> Path:
    sweep_dir = output / "sweep"
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{output / 'mlflow.db'}", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "embench", "-m", *SWEEP, f"hydra.sweep.dir={sweep_dir}"]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=output, env=env, check=True)
    return sweep_dir


def rows(sweep_dir: Path) -> list[dict]:
    table = []
    for path in sorted(sweep_dir.glob("*/result.json")):
        record = json.loads(path.read_text())
        params, metrics, tags = record["params"], record["metrics"], record["tags"]
        table.append(
            {
                "model": params["model"],
                "batch": int(params["batch"]),
                "backend": params["backend"],
                "median_ms": round(metrics["latency_median_ms"], 2),
                "p99_ms": round(metrics["latency_p99_ms"], 2),
                "cv_pct": round(100 * metrics["latency_cv"], 1),
                "inferences_per_s": round(metrics["throughput_ips"], 1),
                "efficiency": round(metrics["efficiency"], 3),
                "prepare_s": round(metrics["prepare_s"], 1),
                "host_busy": tags["host_busy"],
            }
        )
    return sorted(table, key=lambda row: (row["model"], row["batch"], row["backend"]))


def markdown(table: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in table]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "outputs" / "benchmarks" / "backends")
    output = parser.parse_args().output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    table = rows(run_sweep(output))
    with (output / "backends.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    (output / "backends.md").write_text(markdown(table) + "\n")
    print(markdown(table))
    print(f"\nwritten: {output / 'backends.csv'}, {output / 'backends.md'}")


if __name__ == "__main__":
    main()

"""CPU backends compared at FP32 and INT8: four networks at batch 1 and 8, through each runtime.

    python benchmarks/backends.py [--output DIR]

Runs two real embench sweeps (latency protocol, no profile pass) into one MLflow store in DIR: every
CPU backend at FP32, and the backends with INT8 post-training quantization at INT8. Prints a
Markdown table (median ms, inferences/s, efficiency, INT8's top-1 agreement with FP32) and writes
it with a CSV. Efficiency counts FP32 FLOPs against the FP32 peak for INT8 runs too.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POINTS = [
    "model=resnet50,mobilenet_v2,shufflenet_v2_x1_0,squeezenet1_1",
    "platform=cpu",
    "batch=1,8",
    "protocol=latency",
    "protocol.profile_iterations=0",
]
SWEEPS = {
    "fp32": ["backend=torch,torch_compile,openvino,onnxruntime,executorch"],
    # one sweep per backend: Hydra applies a group's option override only within one choice of the group
    **{f"int8_{backend}": [f"backend={backend}", "backend.runtime.precision=int8"]
       for backend in ("openvino", "onnxruntime", "executorch")},
}
COLUMNS = ["model", "batch", "backend", "precision", "median_ms", "p99_ms", "cv_pct", "inferences_per_s", "efficiency",
           "top1_agreement", "prepare_s", "host_busy", "status"]


def run_sweep(output: Path, name: str) -> Path:
    sweep_dir = output / f"sweep_{name}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{output / 'mlflow.db'}", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "embench", "-m", *POINTS, *SWEEPS[name], f"hydra.sweep.dir={sweep_dir}"]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=output, env=env)  # a failed point is a row with its status, not the end
    return sweep_dir


def rows(sweep_dir: Path) -> list[dict]:
    table = []
    for path in sorted(sweep_dir.glob("*/result.json")):
        record = json.loads(path.read_text())
        params, metrics, tags = record["params"], record["metrics"], record["tags"]
        precision = tags.get("backend.precision") or params.get("backend.runtime.precision") or params.get("backend.runtime.dtype")
        point = {"model": params["model"], "batch": int(params["batch"]), "backend": params["backend"],
                 "precision": precision, "status": record["status"]}
        if record["status"] != "ok":
            table.append(dict.fromkeys(COLUMNS, "") | point)
            continue
        table.append(
            point | {
                "median_ms": round(metrics["latency_median_ms"], 2),
                "p99_ms": round(metrics["latency_p99_ms"], 2) if "latency_p99_ms" in metrics else "",  # from 100 calls
                "cv_pct": round(100 * metrics["latency_cv"], 1),
                "inferences_per_s": round(metrics["throughput_ips"], 1),
                "efficiency": round(metrics["efficiency"], 3),
                "top1_agreement": round(metrics["output_top1_agreement"], 2),
                "prepare_s": round(metrics["prepare_s"], 1),
                "host_busy": tags["host_busy"],
            }
        )
    return table


def ordered(table: list[dict]) -> list[dict]:
    return sorted(table, key=lambda row: (row["model"], row["batch"], row["backend"], row["precision"]))


def markdown(table: list[dict], columns: list[str] = COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in table]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "outputs" / "benchmarks" / "backends")
    output = parser.parse_args().output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    table = ordered([row for name in SWEEPS for row in rows(run_sweep(output, name))])
    with (output / "backends.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    (output / "backends.md").write_text(markdown(table) + "\n")
    print(markdown(table))
    print(f"\nwritten: {output / 'backends.csv'}, {output / 'backends.md'}")


if __name__ == "__main__":
    main()

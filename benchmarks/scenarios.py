"""Serving figures: the highest valid server QPS at a 15 ms p99 bound, and co-location slowdowns.

    python benchmarks/scenarios.py [--output DIR]

Runs real embench commands (MLPerf LoadGen under the hood) into one MLflow store in DIR:
1. resnet50 and mobilenet_v2 through torch and OpenVINO, `scenario=server scenario.find_max_qps=true
   scenario.latency_bound_ms=15` (and mobilenet_v2 at 50 ms): LoadGen runs bisecting the Poisson
   arrival rate, each a child run.
2. `colocate=[resnet50,mobilenet_v2]` through torch, OpenVINO, and OpenVINO without its CPU pinning,
   single stream: each network alone, then both at once, on an even split of the CPU's threads.
Prints two Markdown tables and writes them with CSVs. Numbers use the latency protocol's minimums
(5 s, 50 queries; the server scenario's own 500 queries), far shorter than MLPerf's 600 s.
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from backends import markdown

REPO = Path(__file__).resolve().parents[1]
BOUND_MS = 15.0
SEARCHES = [(model, backend, BOUND_MS) for model in ("resnet50", "mobilenet_v2") for backend in ("torch", "openvino")]
SEARCHES += [("mobilenet_v2", backend, 50.0) for backend in ("torch", "openvino")]  # a bound this host can meet
COLOCATIONS = {"torch": ["backend=torch"], "openvino": ["backend=openvino"],
               "openvino (cpu_pinning=false)": ["backend=openvino", "backend.runtime.cpu_pinning=false"]}
SERVER_COLUMNS = ["model", "backend", "bound_ms", "service_median_ms", "server_max_qps", "p99_at_max_ms", "probes", "status"]
COLOCATION_COLUMNS = ["model", "beside", "backend", "threads", "alone_p50_ms", "together_p50_ms", "slowdown_p50",
                      "alone_p99_ms", "together_p99_ms", "slowdown_p99", "status"]


def run(output: Path, name: str, *overrides: str) -> dict:
    """One embench run into its own folder; its result.json."""
    folder = output / name
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{output / 'mlflow.db'}", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "embench", *overrides, "protocol=latency", "protocol.profile_iterations=0",
               f"hydra.run.dir={folder}"]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=output, env=env)  # a failed point is a row with its status, not the end
    return json.loads((folder / "result.json").read_text())


def server_row(model: str, backend: str, bound_ms: float, record: dict) -> dict:
    metrics = record["metrics"]
    row = dict.fromkeys(SERVER_COLUMNS, "") | {"model": model, "backend": backend, "bound_ms": bound_ms,
                                               "status": record["status"]}
    if record["status"] == "ok":
        row |= {"service_median_ms": round(metrics["service_time_median_ms"], 2),
                "server_max_qps": round(metrics["server_max_qps"], 1),
                "p99_at_max_ms": round(metrics["query_latency_p99_ms"], 2) if metrics["server_max_qps"] else "",
                "probes": int(metrics["search_runs"])}
    return row


def colocation_rows(backend: str, record: dict, models: list[str]) -> list[dict]:
    metrics, rows = record["metrics"], []
    for model in models:
        beside = "+".join(other for other in models if other != model)
        row = dict.fromkeys(COLOCATION_COLUMNS, "") | {"model": model, "beside": beside, "backend": backend,
                                                       "status": record["status"]}
        if record["status"] == "ok":
            key = f"colocated.{model}."
            row |= {"threads": record["tags"][key + "threads"]}
            for percentile in ("p50", "p99"):
                row |= {f"alone_{percentile}_ms": round(metrics[f"{key}alone.query_latency_{percentile}_ms"], 2),
                        f"together_{percentile}_ms": round(metrics[f"{key}together.query_latency_{percentile}_ms"], 2),
                        f"slowdown_{percentile}": round(metrics[f"{key}slowdown_{percentile}"], 2)}
        rows.append(row)
    return rows


def write(output: Path, name: str, table: list[dict], columns: list[str]) -> str:
    with (output / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
    text = markdown(table, columns)
    (output / f"{name}.md").write_text(text + "\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "outputs" / "benchmarks" / "scenarios")
    output = parser.parse_args().output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    servers = [server_row(model, backend, bound, run(output, f"server_{model}_{backend}_{bound:g}ms", f"model={model}",
                                                      f"backend={backend}", "scenario=server", "scenario.find_max_qps=true",
                                                      f"scenario.latency_bound_ms={bound}"))
               for model, backend, bound in SEARCHES]
    together = ["resnet50", "mobilenet_v2"]
    colocated = [row for name, overrides in COLOCATIONS.items()
                 for row in colocation_rows(name, run(output, "colocate_" + re.sub(r"\W+", "_", name).strip("_"),
                                                      f"colocate=[{','.join(together)}]", *overrides), together)]
    print(write(output, "server_max_qps", servers, SERVER_COLUMNS))
    print()
    print(write(output, "colocation", colocated, COLOCATION_COLUMNS))
    print(f"\nwritten: {output}/server_max_qps.{{csv,md}}, {output}/colocation.{{csv,md}}")


if __name__ == "__main__":
    main()

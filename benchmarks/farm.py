"""The device farm on one host: fidelity against local runs, 1 node vs 2 nodes, and the cost per job.

    python benchmarks/farm.py [--rounds 3] [--output DIR]

Starts a real Ray cluster on loopback (a head, then one and later two `embench node --platform
cpu1` nodes: this host's CPU with one thread) and runs one 8-run sweep (squeezenet1_1 and
mobilenet_v2 at batch 1, 2, 4, 8; 3 s of timing each), A/B: farm=local and the 1-node farm in
turn for --rounds rounds (one job at a time either way), then once on the 2-node farm. Prints:
- each point's median latency (median over rounds) locally and on the farm, their difference,
  and the spread of the local rounds (this host's own noise floor);
- wall times and the 1-node / 2-node ratio;
- the cost per job: the idle gap between one job's end and the next one's start on the same worker
  or node (dispatch), and from a job's end on its node to its result.json written on the workstation.
Every process it starts is stopped by its PID.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import Cli  # noqa: E402
from test_farm import FARM_CONF, Farm  # noqa: E402  (the farm the tests build)

SWEEP = ("model=squeezenet1_1,mobilenet_v2", "batch=1,2,4,8", "platform=cpu1", "protocol=latency",
         "protocol.min_duration_s=3", "protocol.max_duration_s=3", "protocol.profile_iterations=0")
def records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in root.glob("outputs/sweeps/*/*/result.json")]


def medians(root: Path) -> dict[str, float]:
    return {f"{r['params']['model']} b{r['params']['batch']}": r["metrics"]["latency_median_ms"] for r in records(root)}


def dispatch_gaps_ms(root: Path) -> list[float]:
    """Idle time between consecutive jobs on one worker or node (ray.node_id), in ms."""
    by_worker = {}
    for r in records(root):
        by_worker.setdefault(r["tags"].get("ray.node_id", "local"), []).append((r["start_time"], r["end_time"]))
    gaps = []
    for spans in by_worker.values():
        spans.sort()
        gaps += [1000 * (start - end) for (_, end), (start, _) in zip(spans, spans[1:])]
    return gaps


def kept_after_ms(root: Path) -> list[float]:
    """From each job's end on its node to its result.json written on the workstation, in ms."""
    return [1000 * (path.stat().st_mtime - json.loads(path.read_text())["end_time"])
            for path in root.glob("outputs/sweeps/*/*/result.json")]


def timed(cli: Cli) -> float:
    start = time.perf_counter()
    assert cli.finish(timeout=1200) == 0, cli.output
    return time.perf_counter() - start


def local_sweep(folder: Path) -> Cli:
    return Cli(folder, "--config-dir", str(FARM_CONF), "-m", *SWEEP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "outputs" / "benchmarks" / "farm")
    args = parser.parse_args()
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    wall = {"local": [], "farm1": [], "farm2": []}
    folders = {"local": [], "farm1": [], "farm2": []}
    farm = Farm(output)
    try:
        farm.add("a", "--platform", "cpu1")
        for round_number in range(args.rounds):
            for name in ("local", "farm1"):
                farm.root = output / f"{name}_{round_number}"
                farm.root.mkdir(parents=True)
                cli = local_sweep(farm.root) if name == "local" else farm.sweep(*SWEEP, quick=False)
                wall[name].append(timed(cli))
                folders[name].append(farm.root)
        farm.add("b", "--platform", "cpu1")
        farm.root = output / "farm2"
        farm.root.mkdir(parents=True)
        wall["farm2"].append(timed(farm.sweep(*SWEEP, quick=False)))
        folders["farm2"].append(farm.root)
    finally:
        farm.stop()
    walls = {name: statistics.median(values) for name, values in wall.items()}
    print(f"wall time (median of rounds): farm=local {walls['local']:.1f} s, 1-node farm {walls['farm1']:.1f} s, "
          f"2-node farm {walls['farm2']:.1f} s; 1 node / 2 nodes = {walls['farm1'] / walls['farm2']:.2f}")
    for name in ("local", "farm1"):
        gaps = [gap for folder in folders[name] for gap in dispatch_gaps_ms(folder)]
        kept = [ms for folder in folders[name] for ms in kept_after_ms(folder)]
        print(f"{name}: gap between jobs median {statistics.median(gaps):.0f} ms; "
              f"job end to result.json on the workstation median {statistics.median(kept):.0f} ms")
    runs = {name: [medians(folder) for folder in folders[name]] for name in folders}
    print("| point | local ms (rounds' spread) | 1-node farm ms | farm vs local | 2-node farm ms |\n|---|---|---|---|---|")
    for point in sorted(runs["local"][0]):
        local = [run[point] for run in runs["local"]]
        farm1 = statistics.median(run[point] for run in runs["farm1"])
        base = statistics.median(local)
        print(f"| {point} | {base:.2f} ({100 * (max(local) - min(local)) / base:.0f} %) | {farm1:.2f} | "
              f"{100 * (farm1 / base - 1):+.1f} % | {runs['farm2'][0][point]:.2f} |")


if __name__ == "__main__":
    main()

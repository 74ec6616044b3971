"""The device farm on one host: an 8-run sweep on 1 node vs 2 nodes, its fidelity, and its cost per job.

    python benchmarks/farm.py [--output DIR]

Starts a real Ray cluster on loopback (the head, then one and later two `embench node --platform
cpu1` nodes: this host's CPU with one thread), and times the same 8-run sweep (squeezenet1_1 and
mobilenet_v2 at batch 1, 2, 4, 8; 3 s of timing each) three ways: farm=local, a 1-node farm and a
2-node farm. Prints the wall times, the 1-node / 2-node ratio, each point's farm median against
its local median, and the farm's cost per job ((1-node farm - local) / 8: dispatch to result logged).
Every process it starts is stopped by its PID.
"""

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from test_farm import FARM_CONF, Farm  # noqa: E402  (the farm the tests build)
from test_faults import Cli  # noqa: E402

SWEEP = ("model=squeezenet1_1,mobilenet_v2", "batch=1,2,4,8", "platform=cpu1", "protocol=latency",
         "protocol.min_duration_s=3", "protocol.max_duration_s=3", "protocol.profile_iterations=0")


def medians(root: Path) -> dict[str, float]:
    records = [json.loads(p.read_text()) for p in root.glob("outputs/sweeps/*/*/result.json")]
    return {f"{r['params']['model']} b{r['params']['batch']}": r["metrics"]["latency_median_ms"] for r in records}


def timed(cli: Cli) -> float:
    start = time.perf_counter()
    assert cli.finish(timeout=1200) == 0, cli.output
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "outputs" / "benchmarks" / "farm")
    output = parser.parse_args().output.resolve()
    runs = {name: output / name for name in ("local", "farm1", "farm2")}
    for folder in runs.values():
        folder.mkdir(parents=True, exist_ok=True)
    wall = {"local": timed(Cli(runs["local"], "--config-dir", str(FARM_CONF), "-m", *SWEEP))}
    farm = Farm(output)
    try:
        farm.add("a", "--platform", "cpu1")
        for name in ("farm1", "farm2"):
            if name == "farm2":
                farm.add("b", "--platform", "cpu1")
            farm.root = runs[name]
            wall[name] = timed(farm.sweep(*SWEEP, quick=False))
    finally:
        farm.stop()
    local, on_farm = medians(runs["local"]), medians(runs["farm2"])
    print(f"wall time: farm=local {wall['local']:.1f} s, 1 node {wall['farm1']:.1f} s, 2 nodes {wall['farm2']:.1f} s; "
          f"1 node / 2 nodes = {wall['farm1'] / wall['farm2']:.2f}")
    print(f"farm cost per job (1-node farm - local) / 8 = {1000 * (wall['farm1'] - wall['local']) / 8:.0f} ms")
    print("| point | local median ms | 2-node farm median ms | difference |\n|---|---|---|---|")
    for point in sorted(local):
        print(f"| {point} | {local[point]:.2f} | {on_farm[point]:.2f} | {100 * (on_farm[point] / local[point] - 1):+.1f} % |")


if __name__ == "__main__":
    main()

"""The cost of the farm's token and of checking every node: an 8-job farm sweep, this checkout against a
baseline commit, A B A B.

    python benchmarks/farm_checks.py --baseline 7157a78 [--rounds 2] [--output DIR]

Checks the baseline out (a git worktree), starts two 1-node Ray clusters on loopback, each an
`embench node --head --platform cpu1` (this host's CPU, one thread): one from the baseline (no token;
one check per platform, backend and model), one from this checkout (token on; every node checked).
Both stay up for the whole benchmark; only one sweep runs at a time.
Runs the same 8-job sweep (squeezenet1_1 and mobilenet_v2 at batch 1, 2, 4, 8; 3 s of timing each)
on each in turn for --rounds rounds, then once more on this checkout's cluster with a second node.
Prints each sweep's wall time, the time from its start to its first job's start on the node
(joining the cluster and the checks), and this checkout's own figure for the checks (its log line).
Every process it starts is stopped by its PID.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import Cli, free_port  # noqa: E402
from test_farm import Farm, Node  # noqa: E402  (the farm the tests build)

SWEEP = ("model=squeezenet1_1,mobilenet_v2", "batch=1,2,4,8", "platform=cpu1", "protocol=latency",
         "protocol.min_duration_s=3", "protocol.max_duration_s=3", "protocol.profile_iterations=0")
CHECKED = re.compile(r"checked (\d+) node\(s\) in ([\d.]+) s")


class HeadOnlyFarm(Farm):
    """A cluster whose head serves platform=cpu1, from `checkout`: the baseline's without a token, as it ran
    then, or this checkout's with the farm's token."""

    def __init__(self, root: Path, checkout: Path, token: bool):
        self.root, self.nodes, self.checkout = root, [], checkout
        self.temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        self.token = Path(self.temp) / "auth_token"
        self.env = {"RAY_AUTH_TOKEN_PATH": str(self.token)} if token else {"RAY_AUTH_MODE": "disabled"}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.head = Node(root, f"head_{'token' if token else 'baseline'}", "--num-cpus", "1", "--platform", "cpu1",
                         "--config-dir", str(self.conf), "--head", "--port", str(self.port), "--",
                         "--include-dashboard=false", f"--temp-dir={self.temp}", pythonpath=self.pythonpath, **self.env)
        self.nodes.append(self.head)

    @property
    def conf(self) -> Path:
        return self.checkout / "tests" / "data" / "farm_conf"

    @property
    def pythonpath(self) -> str:
        return f"{self.checkout}:{self.checkout / 'tests' / 'plugins'}"

    def sweep(self, *args: str, **env) -> Cli:
        return Cli(self.root, "--config-dir", str(self.conf), "-m", "farm=ray", f"farm.address={self.address}", *args,
                   RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=self.pythonpath, **self.env)


def timed(cli: Cli, root: Path) -> dict:
    """The sweep's wall time, its start to its first job's start, and its own check figure where it logs one."""
    start = time.time()
    assert cli.finish(timeout=1200) == 0, cli.output
    wall = time.time() - start
    records = [json.loads(path.read_text()) for path in root.glob("outputs/sweeps/*/*/result.json")]
    assert len(records) == 8, cli.output
    checked = CHECKED.search(cli.output)
    return {"wall": wall, "to_first_job": min(r["start_time"] for r in records) - start,
            "checks": (int(checked[1]), float(checked[2])) if checked else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the commit to compare against, e.g. 7157a78")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO / "outputs" / "benchmarks" / "farm_checks")
    args = parser.parse_args()
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    checkout = Path(tempfile.mkdtemp(prefix="embench-baseline-"))
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(checkout), args.baseline], check=True,
                   capture_output=True)
    figures = {"baseline": [], "now": []}
    farms = {}
    try:
        farms["baseline"] = HeadOnlyFarm(output, checkout, token=False)
        farms["now"] = HeadOnlyFarm(output, REPO, token=True)
        for round_number in range(args.rounds):
            for name, farm in farms.items():
                farm.root = output / f"{name}_{round_number}"
                farm.root.mkdir(parents=True)
                figures[name].append(timed(farm.sweep(*SWEEP), farm.root))
        now = farms["now"]
        now.nodes.append(Node(output, "second", "--num-cpus", "1", "--platform", "cpu1", "--config-dir", str(now.conf),
                              "--address", now.address, pythonpath=now.pythonpath, **now.env))
        now.root = output / "now_two_nodes"
        now.root.mkdir(parents=True)
        two_nodes = timed(now.sweep(*SWEEP), now.root)
    finally:
        for farm in farms.values():
            farm.stop()
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(checkout)], capture_output=True)
    print("| sweep (8 jobs, 1 node) | wall s, each round | median | start to first job s, median |\n|---|---|---|---|")
    for name, rounds in figures.items():
        label = f"baseline {args.baseline} (no token, one check per point)" if name == "baseline" else \
            "this checkout (token, every node checked)"
        walls = ", ".join(f"{r['wall']:.1f}" for r in rounds)
        print(f"| {label} | {walls} | "
              f"{statistics.median(r['wall'] for r in rounds):.1f} | "
              f"{statistics.median(r['to_first_job'] for r in rounds):.2f} |")
    for name, result in [("1 node", figures["now"][0]), ("2 nodes", two_nodes)]:
        if result["checks"]:
            nodes, seconds = result["checks"]
            print(f"this checkout, {name}: {nodes} node(s) checked in {seconds:.2f} s ({seconds / nodes:.2f} s per node); "
                  f"wall {result['wall']:.1f} s")


if __name__ == "__main__":
    main()

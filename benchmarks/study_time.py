"""Wall time of a study: the code and protocol of before issue 23 (A) against today's (B), alternated A B A B.

    python benchmarks/study_time.py [--baseline REV] [--rounds 2] [--output DIR] [--only quickstart|slice]

A runs the code at REV (default 1b14570: a spawned process per job, and `protocol=study` the fixed `latency` rule
with 30 s caps) from a git worktree; B runs this working tree (jobs forked from a template, `protocol=study` the
adaptive rule at target_ci=0.01). Both run the same commands, each with a fresh local MLflow store:

    quickstart: python -m embench -m experiment=quickstart
    slice:      python -m embench -m model=squeezenet1_1,mobilenet_v2,resnet18 batch=1,8,64 backend=torch,openvino
                protocol=study                                  (3 networks of different speed x 3 batches x 2 runtimes)

It prints, per study and side: the command's wall time (each round, and the mean), the share of it inside timed
windows, and the time per job outside the measuring phases (wall time less prepare, first inference, warm-up,
timed loop, output check and profile, over the jobs). Per point of the slice: both medians, whether each lies in
the other's 95 % interval, and the half-width of B's interval over its median, or its precision_target tag; and,
as a control, how many points agree so between two rounds of the same side (fresh processes, same code).
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
STUDIES = {
    "quickstart": ["-m", "experiment=quickstart"],
    "slice": ["-m", "model=squeezenet1_1,mobilenet_v2,resnet18", "batch=1,8,64", "backend=torch,openvino",
              "protocol=study"],
}
MEASURING = ("prepare_s", "warmup_s", "measure_s", "check_s", "profile_s")  # plus first_inference_ms


def run_study(code: Path, study: str, folder: Path) -> float:
    """Runs the study with the embench at `code`; returns its wall time."""
    folder.mkdir(parents=True)
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}", PYTHONPATH=str(code))
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "embench", *STUDIES[study], f"hydra.sweep.dir={folder / 'sweep'}"],
                   cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def records(folder: Path) -> dict[tuple, dict]:
    found = {}
    for path in (folder / "sweep").glob("*/result.json"):
        run = json.loads(path.read_text())
        params = run["params"]
        found[(params["model"], params["backend"], int(params["batch"]))] = run
    return found


def figures(wall: float, runs: dict[tuple, dict]) -> tuple[float, float]:
    """Share of the wall time in timed windows, and seconds per job outside the measuring phases."""
    metrics = [run["metrics"] for run in runs.values()]
    timed = sum(m.get("measure_s", 0.0) for m in metrics)
    measuring = sum(sum(m.get(name, 0.0) for name in MEASURING) + m.get("first_inference_ms", 0.0) / 1e3
                    for m in metrics)
    return timed / wall, (wall - measuring) / len(metrics)


def interval(metrics: dict) -> tuple[float, float]:
    """The run's 95 % interval of the median: the precision rule's, else the fixed sample's."""
    for prefix in ("latency_median_ci_seq", "latency_median_ci95"):
        if f"{prefix}_low_ms" in metrics:
            return metrics[f"{prefix}_low_ms"], metrics[f"{prefix}_high_ms"]
    return metrics["latency_min_ms"], metrics["latency_max_ms"]


def point_table(a: dict[tuple, dict], b: dict[tuple, dict]) -> list[str]:
    lines = ["| network | runtime | batch | A median ms [95 %] | B median ms [95 %] | each in the other's | "
             "B half-width / median | A calls | B calls |", "|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(a, key=lambda k: (k[0], k[1], k[2])):
        ma, mb = a[key]["metrics"], b[key]["metrics"]
        (la, ha), (lb, hb) = interval(ma), interval(mb)
        both = la <= mb["latency_median_ms"] <= ha and lb <= ma["latency_median_ms"] <= hb
        reached = b[key]["tags"].get("precision_target", "")
        width = f"{100 * mb.get('latency_median_ci_rel_halfwidth', float('nan')):.2f} %" + \
            ("" if reached == "reached" else f" ({reached})")
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {ma['latency_median_ms']:.3f} [{la:.3f}, {ha:.3f}] | "
                     f"{mb['latency_median_ms']:.3f} [{lb:.3f}, {hb:.3f}] | {'yes' if both else 'no'} | {width} | "
                     f"{ma['iterations']:.0f} | {mb['iterations']:.0f} |")
    return lines


def agreement(first: dict[tuple, dict], second: dict[tuple, dict]) -> str:
    """Of the points of two runs of the study, how many have each median inside the other's interval."""
    both = 0
    for key in first:
        (l1, h1), (l2, h2) = interval(first[key]["metrics"]), interval(second[key]["metrics"])
        m1, m2 = first[key]["metrics"]["latency_median_ms"], second[key]["metrics"]["latency_median_ms"]
        both += l1 <= m2 <= h1 and l2 <= m1 <= h2
    return f"{both} of {len(first)}"


def report(output: Path, study: str, walls: dict[str, list[float]]) -> None:
    """The study's tables from the runs kept under output/study."""
    runs = {(side, r): records(output / study / f"{side}{r}") for side in walls for r in range(len(walls[side]))}
    print(f"\n### {study}\n\n| side | wall s (rounds) | mean | in timed windows | per job outside measuring |"
          "\n|---|---|---|---|---|")
    for side in walls:
        shares = [figures(wall, runs[side, r]) for r, wall in enumerate(walls[side])]
        print(f"| {side} | {', '.join(f'{w:.1f}' for w in walls[side])} | {sum(walls[side]) / len(walls[side]):.1f} | "
              f"{100 * sum(s for s, _ in shares) / len(shares):.0f} % | {sum(o for _, o in shares) / len(shares):.2f} s |")
    print(f"\nB / A wall time: {sum(walls['B']) / sum(walls['A']):.2f}")
    if study != "slice":
        return
    rounds = len(walls["A"])
    pairs = [("A", r, "B", r) for r in range(rounds)] + [(side, 0, side, r) for side in "AB" for r in range(1, rounds)]
    print("\npoints whose medians each lie in the other's interval: " +
          "; ".join(f"{a}{ra} vs {b}{rb}: {agreement(runs[a, ra], runs[b, rb])}" for a, ra, b, rb in pairs))
    for round_ in range(rounds):
        print(f"\nround {round_}:\n" + "\n".join(point_table(runs["A", round_], runs["B", round_])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="1b14570", help="the git revision side A runs")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--only", choices=sorted(STUDIES), default=None)
    parser.add_argument("--report", action="store_true", help="print the tables of the runs kept in --output again")
    args = parser.parse_args()
    output = (args.output or Path(tempfile.mkdtemp(prefix="embench-study-time-"))).absolute()
    studies = [args.only] if args.only else list(STUDIES)
    if args.report:
        for study in studies:
            report(output, study, json.loads((output / study / "walls.json").read_text()))
        return
    baseline = output / "baseline"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), args.baseline], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sides = {"A": baseline, "B": REPO}
        for study in studies:
            walls = {"A": [], "B": []}
            for round_ in range(args.rounds):
                for side, code in sides.items():
                    walls[side].append(run_study(code, study, output / study / f"{side}{round_}"))
                    print(f"{study} {side} round {round_}: {walls[side][-1]:.1f} s", flush=True)
            (output / study / "walls.json").write_text(json.dumps(walls))
            report(output, study, walls)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)], check=False)
    print(f"\nruns kept in {output}")


if __name__ == "__main__":
    main()

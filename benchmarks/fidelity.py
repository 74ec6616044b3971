"""How close embench's numbers are to the reference tools, and what embench itself costs.

    python benchmarks/fidelity.py [--output DIR] [--repeats 5]

1. fidelity: embench's mean time per call / torch.utils.benchmark's blocked_autorange mean (torch
   eager, and a bare ONNX Runtime `run_with_iobinding` and ExecuTorch `method.execute` loop on the
   same session or method); embench's median latency / OpenVINO benchmark_app's median (same
   converted model, static shape, latency hint, sync API); each pair in paired rounds (A-B, then B-A),
   the ratio being the median of the rounds' own ratios;
2. repeatability: one point in N separate processes, spread of the N medians (max/min - 1), for
   embench's CLI and for the reference timer measured the same way;
3. harness overhead: the timed loop around a no-op and around a 1 ms busy-wait, in microseconds;
4. run overhead: for one CLI run and a 12-run sweep, the share of wall time spent warming up and
   timing inference, with where the rest went.
Prints one table and writes every row to fidelity.csv in DIR.
"""

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from embench import models  # noqa: E402
from embench.backends.openvino import OpenVINO  # noqa: E402
from embench.backends.torch_eager import TorchEager  # noqa: E402
from embench.host import physical_cores  # noqa: E402
from embench.measure import StopRule, time_loop  # noqa: E402
from embench.platform import resolve_device  # noqa: E402
from embench.stats import summarize  # noqa: E402

LATENCY = StopRule.from_protocol(OmegaConf.load(REPO / "conf" / "protocol" / "latency.yaml"))
RUNTIME_POINTS = [("resnet18", 1), ("resnet50", 1), ("mobilenet_v2", 8)]
RUNTIME_ROUNDS = 9  # ONNX Runtime's and ExecuTorch's rounds on this host swing ~10 %: more rounds, a steadier median ratio
TORCH_POINTS = [(model, batch) for model in ("resnet18", "mobilenet_v2", "resnet50") for batch in (1, 8)]
SWEEP_12 = ["model=resnet18,mobilenet_v2,squeezenet1_1", "batch=1,2,4,8"]
REFERENCE_SCRIPT = """
import sys, torch, torchvision
from torch.utils.benchmark import Timer
torch.manual_seed(0)
model = getattr(torchvision.models, sys.argv[1])().eval()
x = torch.randn(int(sys.argv[2]), 3, 224, 224)
with torch.inference_mode():
    m = Timer("model(x)", globals={"model": model, "x": x}, num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=5)
print(m.median * 1e3)
"""


def row(section: str, point: str, embench: float, reference: float, unit: str, note: str = "") -> dict:
    return {
        "section": section, "point": point, "embench": round(embench, 4), "reference": round(reference, 4),
        "ratio": round(embench / reference, 4) if reference else "", "unit": unit, "note": note,
    }


def fidelity_row(point: str, reference_name: str, compared: tuple[float, float, float, str]) -> dict:
    """A fidelity row from `_alternating`'s answer: its ratio is the median of the rounds' ratios."""
    embench_ms, reference_ms, ratio, note = compared
    return row("fidelity", point, embench_ms, reference_ms, "ms", f"vs {reference_name}; {note}") | {"ratio": round(ratio, 4)}


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build_model(OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml"))


def _embench_ms(prepared, sync, statistic: str = "latency_median_ms") -> float:
    return summarize(time_loop(prepared, sync, LATENCY).latencies_ns)[statistic]


def _paired_round(embench, reference, reverse: bool) -> tuple[float, float]:
    """One (embench, reference) pair, the reference measured first when `reverse`."""
    if reverse:
        b = reference()
        return embench(), b
    return embench(), reference()


def _alternating(embench, reference, rounds: int = 3) -> tuple[float, float, float, str]:
    """Paired rounds in A-B, B-A order, so the drift of a noisy host hits both alike.

    Returns both medians and the median of the rounds' own ratios, which cancels drift slower
    than one round better than a ratio of the two medians does.
    """
    pairs = [_paired_round(embench, reference, reverse=i % 2 == 1) for i in range(rounds)]
    a, b = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    ratio = statistics.median(x / y for x, y in pairs)
    return a, b, ratio, "rounds (embench, reference): " + ", ".join(f"({x:.2f}, {y:.2f})" for x, y in pairs)


def _versus_timer(prepared, device, statement: str, names: dict, rounds: int = 3) -> tuple[float, float, float, str]:
    """embench's timed loop over `prepared` against torch.utils.benchmark timing `statement` bare.

    Both sides give their mean time per call: blocked_autorange's median is a median of block
    means, which right-skewed latencies pull above a median of single calls.
    """
    from torch.utils.benchmark import Timer

    timer = Timer(statement, globals=names, num_threads=device.threads)
    embench_ms, reference_ms, ratio, note = _alternating(
        lambda: _embench_ms(prepared, device.sync, "latency_mean_ms"),
        lambda: timer.blocked_autorange(min_run_time=LATENCY.min_duration_s).mean * 1e3,
        rounds,
    )
    return embench_ms, reference_ms, ratio, f"mean per call on both sides; {note}"


def fidelity_torch(device) -> list[dict]:
    rows = []
    for name, batch in TORCH_POINTS:
        model, x = _model(name), torch.randn(batch, 3, 224, 224)
        with torch.inference_mode():
            prepared = TorchEager().prepare(model, x, device, name)
            compared = _versus_timer(prepared, device, "step()", {"step": prepared})
        rows.append(fidelity_row(f"torch {name} b{batch}", "torch.utils.benchmark blocked_autorange", compared))
    return rows


def fidelity_onnxruntime(device) -> list[dict]:
    """embench's session step against a bare `run_with_iobinding` loop on the same session and binding."""
    from embench.backends.onnxruntime import OnnxRuntime

    rows = []
    for name, batch in RUNTIME_POINTS:
        model, x = _model(name), torch.randn(batch, 3, 224, 224)
        with torch.inference_mode():
            prepared = OnnxRuntime().prepare(model, x, device, f"fidelity-{name}")
        compared = _versus_timer(prepared, device, "session.run_with_iobinding(binding)",
                                 {"session": prepared.session, "binding": prepared.binding}, rounds=RUNTIME_ROUNDS)
        rows.append(fidelity_row(f"onnxruntime {name} b{batch}",
                                 "a bare run_with_iobinding loop timed by torch.utils.benchmark", compared))
    return rows


def fidelity_executorch(device) -> list[dict]:
    """embench's program step against a bare ExecuTorch `forward` loop on the same loaded method."""
    from embench.backends.executorch import ExecuTorch

    rows = []
    for name, batch in RUNTIME_POINTS:
        model, x = _model(name), torch.randn(batch, 3, 224, 224)
        with torch.inference_mode():
            prepared = ExecuTorch().prepare(model, x, device, f"fidelity-{name}")
        compared = _versus_timer(prepared, device, "method.execute([x])",
                                 {"method": prepared.method, "x": x}, rounds=RUNTIME_ROUNDS)
        rows.append(fidelity_row(f"executorch {name} b{batch}",
                                 "a bare method.execute loop timed by torch.utils.benchmark", compared))
    return rows


def _benchmark_app_median_ms(xml: Path, config: dict, shape: list[int]) -> float:
    config_file = xml.with_suffix(".benchmark_app.json")
    config_file.write_text(json.dumps({"CPU": {key: str(value) for key, value in config.items()}}))
    command = ["benchmark_app", "-m", str(xml), "-d", "CPU", "-api", "sync", "-load_config", str(config_file),
               "-shape", str(shape).replace(" ", ""), "-t", str(int(LATENCY.min_duration_s) + 1)]
    out = subprocess.run(command, capture_output=True, text=True).stdout
    found = re.search(r"Median:\s+([\d.]+) ms", out)
    if not found:
        raise RuntimeError(f"benchmark_app gave no median:\n{out[-2000:]}")
    return float(found.group(1))


def fidelity_openvino(device) -> list[dict]:
    from embench.cache import cache_dir

    rows = []
    for name, batch in RUNTIME_POINTS:
        model, x = _model(name), torch.randn(batch, 3, 224, 224)
        prepared = OpenVINO().prepare(model, x, device, f"fidelity-{name}")
        xml = next(cache_dir("openvino").glob(f"*/fidelity-{name}.xml"))  # one IR per model, reshaped per batch
        compared = _alternating(
            lambda: _embench_ms(prepared, device.sync),
            lambda: _benchmark_app_median_ms(xml, prepared.config, list(x.shape)),
        )
        rows.append(fidelity_row(f"openvino {name} b{batch}", "benchmark_app, same config, sync API", compared))
    return rows


def _cli(args: list[str], cwd: Path, extra_env: dict | None = None) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO), MLFLOW_TRACKING_URI=f"sqlite:///{cwd / 'mlflow.db'}", **(extra_env or {}))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "embench", *args], cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _spread(values: list[float]) -> float:
    return 100 * (max(values) / min(values) - 1)


def _cli_median_ms(run_dir: Path, *overrides: str) -> float:
    run_dir.mkdir(parents=True, exist_ok=True)
    _cli(["model=resnet18", "protocol.profile_iterations=0", "tracking.enabled=false", "hydra.run.dir=run", *overrides], run_dir)
    return json.loads((run_dir / "run" / "result.json").read_text())["metrics"]["latency_median_ms"]


def repeatability(work: Path, repeats: int, threads: int) -> list[dict]:
    """The same point in separate processes, embench's CLI against the reference tool."""
    from embench.cache import cache_dir

    torch_embench, torch_reference, ov_embench, ov_reference = [], [], [], []
    ov_config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
    for i in range(repeats):
        torch_embench.append(_cli_median_ms(work / f"torch{i}"))
        out = subprocess.run([sys.executable, "-c", REFERENCE_SCRIPT, "resnet18", "1"], capture_output=True, text=True, check=True)
        torch_reference.append(float(out.stdout.strip().splitlines()[-1]))
        ov_embench.append(_cli_median_ms(work / f"openvino{i}", "backend=openvino"))
        xml = next(cache_dir("openvino").glob("*/resnet18-*.xml"))  # one IR per model, reshaped per batch
        ov_reference.append(_benchmark_app_median_ms(xml, ov_config, [1, 3, 224, 224]))
    rows = []
    for label, embench, reference, tool in [
        ("torch resnet18 b1", torch_embench, torch_reference, "torch.utils.benchmark"),
        ("openvino resnet18 b1", ov_embench, ov_reference, "benchmark_app"),
    ]:
        note = f"{repeats} processes each; embench {[round(v, 2) for v in embench]}, {tool} {[round(v, 2) for v in reference]}"
        rows.append(row("repeatability", f"{label}: spread of medians (max/min - 1)", _spread(embench), _spread(reference), "%", note))
    return rows


def harness_overhead() -> list[dict]:
    rule = StopRule(0, 0.0, 20000, 1.0, 10**7, 30.0)

    def busy_wait_1ms() -> None:
        end = time.perf_counter_ns() + 1_000_000
        while time.perf_counter_ns() < end:
            pass

    empty_us = summarize(time_loop(lambda: None, lambda: None, rule).latencies_ns)["latency_median_ms"] * 1e3
    busy_us = summarize(time_loop(busy_wait_1ms, lambda: None, rule).latencies_ns)["latency_median_ms"] * 1e3
    return [
        row("harness", "timed loop around a no-op, per iteration", empty_us, 0.0, "us"),
        row("harness", "timed loop around a 1 ms busy-wait, minus 1 ms", busy_us - 1000.0, 0.0, "us"),
    ]


def _inference_share(work: Path, args: list[str], label: str) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    wall = _cli(args, work)
    results = [json.loads(p.read_text()) for p in work.glob("outputs/**/result.json")]
    timed = sum(r["metrics"]["warmup_s"] + r["metrics"]["measure_s"] for r in results)
    parts = {key: sum(r["metrics"].get(key, 0.0) for r in results) for key in ("build_s", "prepare_s", "check_s", "profile_s")}
    jobs = sum(r["end_time"] - r["start_time"] for r in results)
    note = (
        f"{len(results)} runs, wall {wall:.1f} s: build {parts['build_s']:.1f} s, backend prepare "
        f"{parts['prepare_s'] - parts['build_s']:.1f} s, output check {parts['check_s']:.1f} s, profile {parts['profile_s']:.1f} s, "
        f"other in-job {jobs - timed - parts['prepare_s'] - parts['check_s'] - parts['profile_s']:.1f} s, "
        f"start-up, logging and sweep {wall - jobs:.1f} s"
    )
    return row("run overhead", f"{label}: warm-up + timed share of wall time", 100 * timed / wall, 100.0, "%", note)


def run_overhead(work: Path) -> list[dict]:
    return [
        _inference_share(work / "single", ["model=resnet18"], "one CLI run (resnet18, latency)"),
        _inference_share(work / "sweep", ["-m", *SWEEP_12], "12-run sweep (3 models x 4 batches, latency)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "outputs" / "benchmarks" / "fidelity")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sections", default="harness,torch,openvino,onnxruntime,executorch,repeatability,overhead", help="comma list of sections to run")
    args = parser.parse_args()
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("EMBENCH_CACHE_DIR", str(output / "cache"))
    device, _ = resolve_device(OmegaConf.create({"name": "cpu", "device": "cpu", "threads": physical_cores(), "strict": True}))
    sections = {
        "harness": harness_overhead,
        "torch": lambda: fidelity_torch(device),
        "openvino": lambda: fidelity_openvino(device),
        "onnxruntime": lambda: fidelity_onnxruntime(device),
        "executorch": lambda: fidelity_executorch(device),
        "repeatability": lambda: repeatability(output / "repeat", args.repeats, device.threads),
        "overhead": lambda: run_overhead(output / "overhead"),
    }
    rows = []
    for name in args.sections.split(","):
        new = sections[name]()
        for r in new:
            print(f"{r['section']:14} {r['point']:58} embench {r['embench']:>10} {r['unit']:3} reference {r['reference']:>10} ratio {r['ratio']}", flush=True)
        rows += new
    with (output / "fidelity.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nmachine: {os.uname().nodename}, {device.name}, {device.threads} threads; written: {output / 'fidelity.csv'}")


if __name__ == "__main__":
    main()

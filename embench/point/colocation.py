"""Several networks on one device at once, each under its own LoadGen stream, against each alone.

Each network runs in a process of its own (LoadGen runs one test per process) with its share of
the device's threads, the same share alone and together. The processes take turns: each network
alone while the others wait, then all together. A network whose stream ends first keeps running
steps until every stream has ended, so no measured window is partly alone.
"""

import csv
import io
import multiprocessing
import queue

from omegaconf import DictConfig, OmegaConf

from embench.errors import EmbenchError
from embench.result import RunResult

PHASES = ("alone", "together")
HEADLINE = ("query_latency_p50_ms", "query_latency_p90_ms", "query_latency_p99_ms", "samples_per_s", "loadgen_valid")
_ANSWER_WAIT_S = 1.0


def thread_split(total: int, count: int, asked) -> list[int]:
    """Threads per network: `colocate_threads` as given, else `total` split evenly (at least one each)."""
    if asked is not None:
        return [int(threads) for threads in asked]
    return [max(1, total // count + (1 if index < total % count else 0)) for index in range(count)]


def _stream(cfg_yaml: str, index: int, count: int, barrier, done, answers) -> None:
    """One network's process: prepare, warm up, run alone in its turn, then together with the others."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole terminal group: the parent ends this process

    from embench import checks, models
    from embench.measure import StopRule
    from embench.point.build import check_output, example_input, model_id
    from embench.scenarios import drive, loadgen

    try:
        cfg = OmegaConf.create(cfg_yaml)
        ready = checks.check_point(cfg)
        device, backend = ready.device, ready.backend
        torch.manual_seed(int(cfg.seed))
        model = models.build_model(cfg.model)
        example = example_input(int(cfg.batch), int(cfg.model.input_size), int(cfg.seed))
        with torch.inference_mode():
            prepared = backend.prepare(model, example, device, model_id(cfg))
            rule = StopRule.from_protocol(cfg.protocol)
            steps = drive.worker_steps(prepared, int(cfg.scenario.get("workers", 1)), cfg.backend.name)
            step_s = drive.warm_step_s(drive.start(steps, device.sync, rule))
            barrier.wait()
            runs = {}
            for turn in range(count):
                if turn == index:
                    runs["alone"] = loadgen.run(cfg.scenario, rule, steps, device.sync, step_s)
                barrier.wait()
            runs["together"] = loadgen.run(cfg.scenario, rule, steps, device.sync, step_s)
            with done.get_lock():
                done.value += 1
            while done.value < count:  # keep the device shared until every stream has ended
                prepared()
                device.sync()
            check = RunResult(params={})
            check_output(prepared, cfg, example, check)
        answers.put((index, runs, check.metrics, None))
    except BaseException as err:  # noqa: BLE001 - handed to the parent, which names the network
        barrier.abort()
        answers.put((index, None, {}, f"{type(err).__name__}: {err}" if not isinstance(err, EmbenchError) else str(err)))


def _collect(processes: list, answers, count: int) -> dict[int, tuple]:
    got: dict[int, tuple] = {}
    while len(got) < count:
        try:
            index, runs, checked, error = answers.get(timeout=_ANSWER_WAIT_S)
            got[index] = (runs, checked, error)
        except queue.Empty:
            dead = [i for i, p in enumerate(processes) if i not in got and p.exitcode is not None]
            if dead:
                got.update({i: (None, {}, f"its process ended with exit code {processes[i].exitcode}") for i in dead})
    return got


def run(cfg: DictConfig, result: RunResult, total_threads: int) -> None:
    """Measures every network of `cfg.colocate` alone and together into `result`; raises if one fails."""
    from embench.scenarios import figures

    names = list(cfg.colocate)
    threads = thread_split(total_threads, len(names), cfg.get("colocate_threads"))
    configs = []
    for name, share in zip(names, threads):
        network = OmegaConf.to_container(cfg, resolve=True)
        network.update(model=network["colocated_models"][name], colocate=None, colocate_threads=None, colocated_models=None)
        network["platform"]["threads"] = share
        configs.append(OmegaConf.to_yaml(network))
        result.tags[f"colocated.{name}.threads"] = str(share)
    context = multiprocessing.get_context("spawn")
    barrier, done, answers = context.Barrier(len(names)), context.Value("i", 0), context.Queue()
    processes = [context.Process(target=_stream, args=(text, index, len(names), barrier, done, answers), daemon=True,
                                 name=f"embench-colocated-{name}") for index, (text, name) in enumerate(zip(configs, names))]
    for process in processes:
        process.start()
    try:
        answers_by_index = _collect(processes, answers, len(names))
    except BaseException:  # a signal: the streams' LoadGen tests cannot be stopped, their processes can
        for process in processes:
            process.kill()
        raise
    for process in processes:
        process.join(timeout=5)
    failed = [f"{names[i]}: {error}" for i, (_, _, error) in sorted(answers_by_index.items()) if error]
    if failed:
        raise EmbenchError("co-location failed: " + "; ".join(failed))
    rows = []
    for index, name in enumerate(names):
        runs, checked, _ = answers_by_index[index]
        for key, value in checked.items():
            result.metrics[f"colocated.{name}.{key}"] = value
        for phase in PHASES:
            scratch = RunResult(params={})
            figures.record(scratch, runs[phase], cfg.scenario, int(cfg.batch))
            for key in HEADLINE:
                result.metrics[f"colocated.{name}.{phase}.{key}"] = scratch.metrics[key]
            result.files.update({f"{name}_{phase}_{file}": data for file, data in runs[phase].files.items()})
            rows.append({"model": name, "threads": threads[index], "phase": phase,
                         **{key: scratch.metrics[key] for key in HEADLINE}})
        for percentile in ("p50", "p99"):
            alone, together = (result.metrics[f"colocated.{name}.{phase}.query_latency_{percentile}_ms"] for phase in PHASES)
            result.metrics[f"colocated.{name}.slowdown_{percentile}"] = together / alone
    result.files["colocation.csv"] = _csv(rows)


def _csv(rows: list[dict]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()

"""One LoadGen test of a prepared backend: settings from the scenario and protocol, results from LoadGen's log."""

import json
import tempfile
import threading
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

import mlperf_loadgen as lg
from omegaconf import DictConfig

from embench.measure import StopRule
from embench.scenarios.kinds import KINDS
from embench.scenarios.pool import StepPool

LOG_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")  # kept as artifacts; the trace is not
SAMPLES = 1024  # QSL size: every sample is the same bound input (random weights: latency, not accuracy)
_cut_short: list[threading.Thread] = []  # tests a signal cut short (LoadGen has no way to stop one)


def cut_short() -> bool:
    """Whether a signal cut a LoadGen test short in this process. LoadGen's own threads then still
    run, and the interpreter's normal exit would abort on them: the process must end with os._exit."""
    return bool(_cut_short)


@dataclass
class LoadGenRun:
    """What one LoadGen test reported (its detail log's result entries), how long each step took, and
    the timed window (first query issued to last answered)."""

    values: dict[str, object]
    service_ns: list[int]
    window_ns: int
    files: dict[str, bytes] = field(default_factory=dict)
    target_qps: float | None = None
    other_cpu_cores: float | None = None  # other processes' CPU over the test, where it was metered on its own

    @property
    def valid(self) -> bool:
        return self.values.get("result_validity") == "VALID"


def min_query_count(scenario: DictConfig, rule: StopRule) -> int:
    """The scenario's own minimum where it has one (what early stopping needs), else the protocol's."""
    return int(scenario.get("min_query_count") or rule.min_iterations)


def settings(scenario: DictConfig, rule: StopRule, step_s: float, target_qps: float | None) -> "lg.TestSettings":
    """LoadGen's settings: the protocol's minimum and maximum duration and count, the scenario's load.

    `step_s` (one warm step, from the warm-up) sizes the queries LoadGen generates in advance: the
    expected latency is set below it and the offline rate above it, so LoadGen never runs short.
    """
    kind = KINDS[scenario.name]
    test = lg.TestSettings()
    test.scenario, test.mode = getattr(lg.TestScenario, kind.loadgen), lg.TestMode.PerformanceOnly
    test.min_duration_ms = int(1000 * rule.min_duration_s)
    test.max_duration_ms = int(1000 * rule.max_duration_s)
    test.min_query_count = min_query_count(scenario, rule)
    if kind.queries_capped:
        test.max_query_count = max(int(rule.max_iterations), test.min_query_count)
    kind.configure(test, scenario, step_s, int(scenario.get("workers", 1)), target_qps)
    return test


def _detail_values(detail: str) -> dict[str, object]:
    values = {}
    for line in detail.splitlines():
        if line.startswith(":::MLLOG "):
            entry = json.loads(line[len(":::MLLOG "):])
            if entry["key"].startswith(("result_", "early_stopping_", "effective_")):
                values[entry["key"]] = entry["value"]
    return values


def _test(pool: StepPool, sut, qsl, test, log) -> None:
    """LoadGen's test, on its own thread; the pool's serving threads wake as soon as it returns."""
    lg.StartTestWithLogSettings(sut, qsl, test, log)
    pool.end()


def run(scenario: DictConfig, rule: StopRule, steps: list[Callable[[], object]], sync: Callable[[], None],
        step_s: float, target_qps: float | None = None, meters: Sequence[AbstractContextManager] = ()) -> LoadGenRun:
    """Runs one LoadGen test over `steps` (one per worker) with `meters` around it alone.

    LoadGen blocks its caller until the test ends, so it runs on a thread of its own while this thread
    serves the samples: a signal (Ctrl-C, SIGTERM) still reaches the process at once, and the steps
    stop running.
    """
    test = settings(scenario, rule, step_s, target_qps)
    pool = StepPool(steps, sync)
    with tempfile.TemporaryDirectory(prefix="embench-loadgen-") as folder, pool, ExitStack() as metered:
        log = lg.LogSettings()
        log.log_output.outdir, log.log_output.copy_summary_to_stdout, log.enable_trace = folder, False, False
        sut = lg.ConstructSUT(pool.issue, lambda: None)
        qsl = lg.ConstructQSL(SAMPLES, SAMPLES, lambda samples: None, lambda samples: None)
        for meter in meters:
            metered.enter_context(meter)
        tester = threading.Thread(target=_test, args=(pool, sut, qsl, test, log), daemon=True)
        tester.start()
        try:
            pool.serve_until(tester)
        except BaseException:
            pool.stopped = True  # LoadGen's remaining queries complete at once; the process is stopping
            _cut_short.append(tester)
            raise
        metered.close()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        files = {name: (Path(folder) / name).read_bytes() for name in LOG_FILES}
    if pool.error is not None:
        raise pool.error
    values = _detail_values(files["mlperf_log_detail.txt"].decode())
    values["loadgen_version"] = metadata.version("mlcommons-loadgen")
    return LoadGenRun(values, pool.service_ns, pool.window_ns, files, test.server_target_qps if scenario.name == "server" else None)

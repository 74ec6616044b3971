"""MLPerf's four load scenarios, each declared once: its keys, how LoadGen is set for it, how its rate is read,
and MLPerf's run rules for it. Adding a scenario is one entry here and one YAML in conf/scenario/.

conf/scenario/NAME.yaml holds `name: NAME` and the keys its Kind lists; embench.checks refuses other keys,
missing required ones and bad values before anything is measured.
"""

from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig

from embench.config.schema import FLAG, MAX_COUNT, MAX_DURATION_S, MAX_QPS, MAX_WORKERS, Range, Setting, count

WORKERS = Range(1, MAX_WORKERS, whole=True, note="samples in service at once")
MIN_QUERY_COUNT = Range(1, MAX_COUNT, whole=True, null="the protocol's min_iterations")
MLPERF_MIN_DURATION_S = 600.0  # MLPerf Inference's run rules (LoadGen's mlperf.conf): every scenario runs 600 s


@dataclass(frozen=True)
class Kind:
    """A scenario: its keys besides `name` (`required` ones first), LoadGen's TestScenario member, how one
    test is set (`configure(test, scenario, step_s, workers, target_qps)`), the detail-log value that is
    its rate (None: computed), and MLPerf's minimum queries (None: a minimum of samples instead)."""

    loadgen: str
    keys: dict[str, Setting]
    configure: Callable
    required: tuple[str, ...] = ()
    rate_value: str | None = None
    mlperf_min_queries: int | None = 100  # LoadGen's default where mlperf.conf sets none
    per_query: bool = False  # its plain percentiles are per sample; per query ones are named so
    queries_capped: bool = True  # max_query_count applies
    mlperf_samples_per_query: int | None = None
    mlperf_min_images: int | None = None  # images a query holds at least, where the minimum is of samples


def _single_stream(test, scenario: DictConfig, step_s: float, workers: int, target_qps) -> None:
    test.single_stream_expected_latency_ns = max(int(step_s * 0.5e9), 1)


def _multi_stream(test, scenario: DictConfig, step_s: float, workers: int, target_qps) -> None:
    test.multi_stream_samples_per_query = int(scenario.samples_per_query)
    test.multi_stream_expected_latency_ns = max(int(step_s * 0.5e9 * scenario.samples_per_query / workers), 1)


def _server(test, scenario: DictConfig, step_s: float, workers: int, target_qps) -> None:
    test.server_target_qps = float(target_qps or scenario.target_qps)
    test.server_target_latency_ns = int(scenario.latency_bound_ms * 1e6)


def _offline(test, scenario: DictConfig, step_s: float, workers: int, target_qps) -> None:
    test.offline_expected_qps = 2.0 * workers / step_s


KINDS = {
    "single_stream": Kind("SingleStream", {}, _single_stream, rate_value="result_qps_with_loadgen_overhead"),
    "multi_stream": Kind(
        "MultiStream",
        {"samples_per_query": count(note="MLPerf's is 8"), "workers": WORKERS, "min_query_count": MIN_QUERY_COUNT},
        _multi_stream, required=("samples_per_query",), mlperf_min_queries=662, per_query=True,
        mlperf_samples_per_query=8),
    "server": Kind(
        "Server",
        {"target_qps": Range(0, MAX_QPS, above=True, note="queries per second"),
         "latency_bound_ms": Range(0, 1000 * MAX_DURATION_S, above=True, note="milliseconds"),
         "workers": WORKERS, "min_query_count": MIN_QUERY_COUNT, "find_max_qps": FLAG,
         "search_runs": count(2, "LoadGen runs of the search")},
        _server, required=("target_qps", "latency_bound_ms", "find_max_qps", "search_runs"),
        rate_value="result_completed_samples_per_sec"),
    "offline": Kind("Offline", {"workers": WORKERS, "min_query_count": MIN_QUERY_COUNT}, _offline,
                    rate_value="result_samples_per_second", mlperf_min_queries=None, queries_capped=False,
                    mlperf_min_images=24576),
}

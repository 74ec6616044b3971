"""How load is applied: MLPerf's four scenarios, driven by LoadGen (conf/scenario/*.yaml).

A LoadGen sample is one step of the prepared backend: one batch of `batch` images (times the
backend's requests per step). `check` runs before anything heavy is imported.
"""

import math

from omegaconf import DictConfig

from embench.errors import ConfigError

SCENARIOS = ("single_stream", "multi_stream", "server", "offline")
KEYS = {
    "single_stream": ("name",),
    "multi_stream": ("name", "samples_per_query", "workers", "min_query_count"),
    "server": ("name", "target_qps", "latency_bound_ms", "workers", "min_query_count", "find_max_qps", "search_runs"),
    "offline": ("name", "workers", "min_query_count"),
}


def own_loop(scenario: DictConfig, protocol: DictConfig) -> bool:
    """Whether embench's own timed loop runs the point: single stream under a protocol LoadGen has no
    rule for (pauses between iterations, or back-to-back batches without a sync)."""
    return scenario.name == "single_stream" and (protocol.mode != "latency" or bool(protocol.cooloff_s))


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _bad(key: str, value, what: str) -> ConfigError:
    return ConfigError(f"scenario.{key}={value!r} is not valid: {what}")


def check(scenario: DictConfig, protocol: DictConfig) -> None:
    """Raises ConfigError naming the first bad scenario value and what would be valid."""
    name = scenario.get("name")
    if name not in SCENARIOS:
        raise ConfigError(f"scenario={name!r} is not valid; valid: {', '.join(SCENARIOS)}")
    for key in scenario.keys():
        if key not in KEYS[name]:
            raise ConfigError(f"scenario.{key}: scenario={name} has no such key; its keys: {', '.join(KEYS[name])}")
    if name != "single_stream" and (protocol.mode != "latency" or protocol.cooloff_s):
        raise ConfigError(f"scenario={name} is driven by LoadGen, which neither pauses between queries nor runs "
                          f"unsynchronised batches: use a latency protocol without cool-off (not protocol={protocol.name})")
    if "workers" in scenario and not _positive_int(scenario.workers):
        raise _bad("workers", scenario.workers, "a positive integer (samples in service at once)")
    if scenario.get("min_query_count") is not None and not _positive_int(scenario.min_query_count):
        raise _bad("min_query_count", scenario.min_query_count, "a positive integer, or null for the protocol's")
    if name == "multi_stream" and not _positive_int(scenario.samples_per_query):
        raise _bad("samples_per_query", scenario.samples_per_query, "a positive integer (MLPerf's is 8)")
    if name == "server":
        for key in ("target_qps", "latency_bound_ms"):
            if not _positive_number(scenario[key]):
                raise _bad(key, scenario[key], "a finite number > 0")
        if not isinstance(scenario.find_max_qps, bool):
            raise _bad("find_max_qps", scenario.find_max_qps, "use true or false")
        if not (_positive_int(scenario.search_runs) and scenario.search_runs >= 2):
            raise _bad("search_runs", scenario.search_runs, "an integer >= 2 (LoadGen runs of the search)")


def check_colocation(colocate, threads, scenario: DictConfig, model_names: list[str]) -> None:
    """`colocate`: null, or two or more model config names; `colocate_threads`: null or one count per network."""
    if colocate is None:
        if threads is not None:
            raise ConfigError(f"colocate_threads={list(threads)} needs colocate=[MODEL,MODEL,...]")
        return
    names = list(colocate) if not isinstance(colocate, str) else [colocate]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"colocate={names} is not valid: list two or more different models, e.g. colocate=[resnet50,mobilenet_v2]")
    unknown = [name for name in names if name not in model_names]
    if unknown:
        raise ConfigError(f"colocate: no model named {unknown[0]!r}; valid: {', '.join(model_names)}")
    if threads is not None and not (len(threads) == len(names) and all(_positive_int(t) for t in threads)):
        raise ConfigError(f"colocate_threads={list(threads)} is not valid: one positive thread count per network "
                          f"({len(names)}), or null to split the platform's threads evenly")
    if scenario.name == "server" and scenario.find_max_qps:
        raise ConfigError("scenario.find_max_qps=true searches one network's rate: not with colocate")

"""How load is applied: MLPerf's four scenarios, driven by LoadGen (conf/scenario/*.yaml).

A LoadGen sample is one step of the prepared backend: one batch of `batch` images (times the
backend's requests per step). `check` runs before anything heavy is imported.
"""

from omegaconf import DictConfig, ListConfig, OmegaConf

from embench.errors import ConfigError

SCENARIOS = ("single_stream", "multi_stream", "server", "offline")
KEYS = {
    "single_stream": ("name",),
    "multi_stream": ("name", "samples_per_query", "workers", "min_query_count"),
    "server": ("name", "target_qps", "latency_bound_ms", "workers", "min_query_count", "find_max_qps", "search_runs"),
    "offline": ("name", "workers", "min_query_count"),
}
REQUIRED = {"multi_stream": ("samples_per_query",), "server": ("target_qps", "latency_bound_ms", "find_max_qps", "search_runs")}


def own_loop(scenario: DictConfig, protocol: DictConfig) -> bool:
    """Whether embench's own timed loop runs the point: single stream under a protocol LoadGen has no
    rule for (pauses between iterations, or back-to-back batches without a sync)."""
    return scenario.name == "single_stream" and (protocol.mode != "latency" or bool(protocol.cooloff_s))


def check_keys(scenario: DictConfig) -> None:
    """The scenario is one of SCENARIOS and has only its own keys (their values: validate's RANGES)."""
    name = scenario.get("name")
    if name not in SCENARIOS:
        raise ConfigError(f"scenario={name!r} is not valid; valid: {', '.join(SCENARIOS)}")
    for key in scenario.keys():
        if key not in KEYS[name]:
            raise ConfigError(f"scenario.{key}: scenario={name} has no such key; its keys: {', '.join(KEYS[name])}")
    missing = [key for key in REQUIRED.get(name, ()) if key not in scenario]
    if missing:
        raise ConfigError(f"scenario={name} needs scenario.{missing[0]}; its keys: {', '.join(KEYS[name])}")


def check(scenario: DictConfig, protocol: DictConfig) -> None:
    """A scenario LoadGen drives runs under a protocol LoadGen has a rule for."""
    if scenario.name != "single_stream" and (protocol.mode != "latency" or protocol.cooloff_s):
        raise ConfigError(f"scenario={scenario.name} is driven by LoadGen, which neither pauses between queries nor runs "
                          f"unsynchronised batches: use a latency protocol without cool-off (not protocol={protocol.name})")


def _plain(value):
    return OmegaConf.to_container(value) if isinstance(value, ListConfig) else value


def check_colocation(colocate, threads, scenario: DictConfig, model_names: list[str]) -> None:
    """`colocate`: null, or two or more model config names; `colocate_threads`: null or one count per network
    (each count: validate's)."""
    if colocate is None:
        if threads is not None:
            raise ConfigError(f"colocate_threads={_plain(threads)} needs colocate=[MODEL,MODEL,...]")
        return
    names = [colocate] if isinstance(colocate, str) else _plain(colocate)
    if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(name, str) for name in names)
            and len(set(names)) == len(names)):
        raise ConfigError(f"colocate={names!r} is not valid: list two or more different models (model config names), "
                          "e.g. colocate=[resnet50,mobilenet_v2]")
    unknown = [name for name in names if name not in model_names]
    if unknown:
        raise ConfigError(f"colocate: no model named {unknown[0]!r}; valid: {', '.join(model_names)}")
    if threads is not None and not (isinstance(threads, ListConfig) and len(threads) == len(names)):
        raise ConfigError(f"colocate_threads={_plain(threads)!r} is not valid: one positive thread count per network "
                          f"({len(names)}), or null to split the platform's threads evenly")
    if scenario.name == "server" and scenario.find_max_qps:
        raise ConfigError("scenario.find_max_qps=true searches one network's rate: not with colocate")

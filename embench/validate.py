"""Checks a composed run config before anything heavy is imported; one clear line per problem."""

import difflib
import math
from dataclasses import dataclass

import psutil
from omegaconf import DictConfig, ListConfig, OmegaConf

from embench import scenarios
from embench.errors import ConfigError

PROTOCOL_MODES = ("latency", "throughput")
HEADLINES = ("median", "min")  # the latency statistic a run's line and the report's time per call lead with
MAX_THREADS_PER_CPU = 4  # platform.threads above this many per logical CPU is refused, not measured
MAX_SEED = 2**63 - 1
MAX_COUNT = 2**63 - 1  # LoadGen's counts are 64-bit
MAX_DURATION_S = 7 * 24 * 3600  # a week: longer is a typo (LoadGen's durations are 64-bit milliseconds)
MAX_QPS = 1_000_000  # a query a microsecond: no backend step is shorter, so a higher rate times only the queue
MAX_WORKERS = 1024  # as backend.runtime.requests and streams

# Keys embench reads, per section. Model configs and backend.runtime options are the user's to
# declare (a model or backend of their own); keys added there with `+` must be factory or runtime
# arguments, which the factory or the backend class then checks.
KNOWN_KEYS = {
    "": ("batch", "seed", "resume", "tracking", "model", "platform", "backend", "protocol", "scenario", "farm", "colocate",
         "colocate_threads"),
    "tracking": ("enabled", "uri", "experiment", "http_max_retries", "http_timeout_s", "parent_run_id", "sweep_uid"),
    "protocol": ("name", "mode", "warmup_iterations", "warmup_duration_s", "min_iterations", "min_duration_s",
                 "max_iterations", "max_duration_s", "cooloff_s", "unstable_cv", "headline",
                 "profile_iterations"),
    "platform": ("name", "device", "openvino_device", "requires", "specs", "strict", "threads"),
    "platform.requires": ("what", "note", "arch", "cpu_model", "cuda_name"),
    "platform.specs": ("cores", "clock_ghz", "memory_gb", "process_nm", "tdp_w", "peak_fp32_gflops",
                       "memory_bandwidth_gbs"),
    "backend": ("name", "runtime"),
    "farm": ("name", "address", "node_wait_s", "retry_lost"),
}
OPEN_SECTIONS = ("model.factory.", "backend.runtime.", "scenario.")  # scenario keys: checked by its scenario
MODEL_KEYS = ("name", "year", "input_size", "source", "pretrained", "factory", "accuracy", "paper")  # for hints


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(number) -> str:
    return "2**63 - 1" if number == 2**63 - 1 else f"{number:g}" if isinstance(number, float) else str(number)


@dataclass(frozen=True)
class Range:
    """A numeric setting's type and range: `low` and `high` included unless `above` (then > low);
    `null` says what null means where null is allowed; `note` says what the number counts."""

    low: float
    high: float | None = None
    whole: bool = False
    above: bool = False
    null: str | None = None
    note: str = ""

    def holds(self, value) -> bool:
        if value is None:
            return self.null is not None
        if not (_is_int(value) if self.whole else _is_number(value)):
            return False
        return (value > self.low if self.above else value >= self.low) and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        if self.whole and self.high is not None:
            what = f"an integer from {_show(self.low)} to {_show(self.high)}"
        elif self.whole:
            what = "a positive integer" if self.low == 1 else f"an integer >= {_show(self.low)}"
        else:
            what = f"a finite number {'>' if self.above else '>='} {_show(self.low)}"
            what += f" and <= {_show(self.high)}" if self.high is not None else ""
        what += f" ({self.note})" if self.note else ""
        return what + (f", or null ({self.null})" if self.null is not None else "")


def _count(low: int = 1, note: str = "") -> Range:
    return Range(low, MAX_COUNT, whole=True, note=note)


def _seconds(low: float = 0, above: bool = False) -> Range:
    return Range(low, MAX_DURATION_S, above=above, note="seconds")


def _spec(note: str, whole: bool = False, null: str = "unknown") -> Range:
    return Range(1 if whole else 0, whole=whole, above=not whole, null=null, note=note)


# Every numeric setting embench reads, checked wherever the composed config has it (a section's
# keys differ by option: scenario=server's, farm=ray's). Checked in this order; the first bad one is said.
RANGES = {
    "batch": Range(1, whole=True, note="inputs per call, e.g. batch=1, or -m batch=1,2,4"),
    "seed": Range(0, MAX_SEED, whole=True),
    "model.input_size": Range(1, whole=True, note="pixels per side, e.g. 224"),
    "platform.threads": Range(1, whole=True, null="all physical cores"),
    "platform.specs.cores": _spec("cores", whole=True),
    "platform.specs.clock_ghz": _spec("GHz"),
    "platform.specs.memory_gb": _spec("GB"),
    "platform.specs.process_nm": _spec("nm"),
    "platform.specs.tdp_w": _spec("W"),
    "platform.specs.peak_fp32_gflops": _spec("GFLOP/s", null="measured on this host"),
    "platform.specs.memory_bandwidth_gbs": _spec("GB/s"),
    "protocol.warmup_iterations": _count(0),
    "protocol.warmup_duration_s": _seconds(),
    "protocol.min_iterations": _count(),
    "protocol.min_duration_s": _seconds(),
    "protocol.max_iterations": _count(),
    "protocol.max_duration_s": _seconds(above=True),
    "protocol.cooloff_s": _seconds(),
    "protocol.unstable_cv": Range(0, note="a coefficient of variation, e.g. 0.10"),
    "protocol.profile_iterations": _count(0, "0 disables the profile"),
    "scenario.samples_per_query": _count(note="MLPerf's is 8"),
    "scenario.target_qps": Range(0, MAX_QPS, above=True, note="queries per second"),
    "scenario.latency_bound_ms": Range(0, 1000 * MAX_DURATION_S, above=True, note="milliseconds"),
    "scenario.workers": Range(1, MAX_WORKERS, whole=True, note="samples in service at once"),
    "scenario.min_query_count": Range(1, MAX_COUNT, whole=True, null="the protocol's min_iterations"),
    "scenario.search_runs": _count(2, "LoadGen runs of the search"),
    "farm.node_wait_s": _seconds(),
    "tracking.http_max_retries": Range(0, 20, whole=True),
    "tracking.http_timeout_s": Range(1, whole=True, note="whole seconds"),
}
# The numeric options of embench's own backends (conf/backend/), wherever the chosen one has them.
BACKEND_RANGES = {
    "streams": Range(1, 1024, whole=True, null="what the hint chooses"),
    "requests": Range(1, 1024, whole=True, null="OpenVINO's optimal number for the hint"),
    "workspace_gib": Range(1, 1024, whole=True, null="TensorRT's default: all of the GPU's memory", note="GiB"),
    "calibration_samples": Range(1, 100_000, whole=True, note="images"),
    "calibration_seed": Range(0, MAX_SEED, whole=True),
}
COLOCATED_THREADS = Range(1, whole=True, note="threads of that network")
FLAGS = ("resume", "model.pretrained", "platform.strict", "tracking.enabled", "farm.retry_lost", "scenario.find_max_qps")
_ABSENT = object()


def _plain(value):
    """A config value as the user wrote it: lists and mappings as Python's."""
    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def _bad(key: str, value, what: str, where: str = "") -> ConfigError:
    return ConfigError(f"{key}={_plain(value)!r}{where} is not valid: {what}")


def _where(cfg: DictConfig, key: str) -> str:
    """The config option a section's value comes from, e.g. ` (platform=xavier)`."""
    section = key.split(".")[0]
    name = OmegaConf.select(cfg, f"{section}.name", default=None) if "." in key else None
    return f" ({section}={name})" if isinstance(name, str) else ""


def _check_ranges(cfg: DictConfig) -> None:
    """Every numeric setting the config has, by the RANGES table (and BACKEND_RANGES for embench's backends)."""
    checks = [(key, allowed, OmegaConf.select(cfg, key, default=_ABSENT)) for key, allowed in RANGES.items()]
    runtime = cfg.backend.get("runtime") or {}
    if str(runtime.get("_target_", "")).startswith("embench.backends."):
        checks += [(f"backend.runtime.{key}", allowed, runtime[key]) for key, allowed in BACKEND_RANGES.items()
                   if key in runtime]
    for key, allowed, value in checks:
        if value is not _ABSENT and not allowed.holds(value):
            raise _bad(key, value, str(allowed), _where(cfg, key))


def _check_flags(cfg: DictConfig) -> None:
    for key in FLAGS:
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is not _ABSENT and not isinstance(value, bool):
            raise _bad(key, value, "use true or false", _where(cfg, key))


def _unknown(key: str, known: tuple[str, ...], how: str) -> ConfigError:
    section, _, name = key.rpartition(".")
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {(section + '.' if section else '') + close[0]}? " if close else ""
    where = f"in {section}" if section else "at the top level"
    return ConfigError(f"{key}: embench has no such key ({how}); {hint}valid keys {where}: {', '.join(known)}")


def check_added_keys(overrides: list[str]) -> None:
    """`+key=value` may only add arguments of a model factory or a backend class."""
    for override in overrides:
        if not override.startswith("+"):
            continue
        key = override.lstrip("+").split("=", 1)[0]
        section = key.rpartition(".")[0]
        if key.startswith(OPEN_SECTIONS) or key.rpartition(".")[2] in KNOWN_KEYS.get(section, ()):
            continue
        known = MODEL_KEYS if section == "model" else KNOWN_KEYS.get(section, ())
        raise _unknown(key, known, f"added by {override!r}; model.factory.* and backend.runtime.* take new keys")


def check_known_keys(cfg: DictConfig) -> None:
    """Every key of the sections embench owns is one it reads: a typo is never silently ignored."""
    for section, known in KNOWN_KEYS.items():
        node = OmegaConf.select(cfg, section) if section else cfg
        if not isinstance(node, DictConfig):
            continue
        for key in node.keys():
            if key not in known:
                raise _unknown(f"{section}.{key}" if section else str(key), known, "from a config file")


def _check_protocol(protocol: DictConfig) -> None:
    """Its choices, and its limits against each other (each number is checked by RANGES)."""
    name = f"protocol={protocol.name}"
    if protocol.mode not in PROTOCOL_MODES:
        raise ConfigError(f"protocol.mode={protocol.mode!r} is not valid; valid: {', '.join(PROTOCOL_MODES)}")
    headline = protocol.get("headline") or "median"  # a user's own protocol written before the key: median
    if headline not in HEADLINES:
        raise ConfigError(f"protocol.headline={headline!r} ({name}) is not valid; valid: {', '.join(HEADLINES)}")
    if headline != "median" and protocol.mode != "latency":
        raise ConfigError(f"protocol.headline={headline} needs protocol.mode=latency: back-to-back batches time no "
                          "single call, so there is no per-call minimum")
    if protocol.cooloff_s and protocol.mode != "latency":
        raise ConfigError(f"protocol.cooloff_s={protocol.cooloff_s} needs protocol.mode=latency: back-to-back batches do not pause")
    if protocol.max_iterations < protocol.min_iterations:
        raise ConfigError(
            f"protocol.max_iterations={protocol.max_iterations} is below protocol.min_iterations={protocol.min_iterations}"
        )
    if protocol.max_duration_s < protocol.min_duration_s:
        raise ConfigError(
            f"protocol.max_duration_s={protocol.max_duration_s} is below protocol.min_duration_s={protocol.min_duration_s}"
        )


def _check_tracking(tracking: DictConfig) -> None:
    for key in ("uri", "experiment"):
        if not (isinstance(tracking[key], str) and tracking[key].strip()):
            raise _bad(f"tracking.{key}", tracking[key], "it must be a non-empty string")


FARMS = ("local", "inline", "ray")


def _check_farm(farm: DictConfig) -> None:
    if farm.name not in FARMS:
        raise _bad("farm.name", farm.name, f"one of {', '.join(FARMS)} (choose with farm=NAME)")
    if farm.name != "ray":
        return
    port = str(farm.address).rpartition(":")[2]
    if not (isinstance(farm.address, str) and farm.address.strip()) or port.isdigit() and not 0 < int(port) < 2**16:
        raise _bad("farm.address", farm.address, "the Ray head's HOST:PORT with a port from 1 to 65535, or auto for a "
                   "cluster on this host")


def _check_threads(key: str, threads, instead: str) -> None:
    """A thread count this host can run without measuring thread contention; `instead`: what to use."""
    limit = MAX_THREADS_PER_CPU * (psutil.cpu_count() or 1)
    if threads is not None and threads > limit:
        raise ConfigError(
            f"{key}={threads} is not valid: this host has {psutil.cpu_count()} logical CPUs, and more than "
            f"{limit} threads ({MAX_THREADS_PER_CPU} per CPU) measure thread contention, not the network; {instead}"
        )


def _check_colocation(cfg: DictConfig) -> None:
    threads = cfg.get("colocate_threads")
    scenarios.check_colocation(cfg.get("colocate"), threads, cfg.scenario, _model_names())
    for index, count in enumerate(threads or ()):
        key = f"colocate_threads[{index}]"
        if not COLOCATED_THREADS.holds(count):
            raise _bad(key, count, str(COLOCATED_THREADS))
        _check_threads(key, count, "use null to split the platform's threads evenly")


def _model_names() -> list[str]:
    from pathlib import Path

    from embench.app import config_dir

    return sorted(path.stem for path in (Path(config_dir()) / "model").glob("*.yaml"))


def validate(cfg: DictConfig, overrides: list[str] = ()) -> None:
    """Raises ConfigError naming the first bad value and what would be valid."""
    check_added_keys(list(overrides))
    check_known_keys(cfg)
    scenarios.check_keys(cfg.scenario)
    _check_flags(cfg)
    _check_ranges(cfg)
    _check_threads("platform.threads", cfg.platform.get("threads"), "use null for all physical cores")
    _check_protocol(cfg.protocol)
    scenarios.check(cfg.scenario, cfg.protocol)
    _check_colocation(cfg)
    _check_farm(cfg.farm)
    _check_tracking(cfg.tracking)

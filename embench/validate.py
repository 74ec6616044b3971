"""Checks a composed run config before anything heavy is imported; one clear line per problem."""

import difflib
import math

import psutil
from omegaconf import DictConfig, OmegaConf

from embench import scenarios
from embench.errors import ConfigError

PROTOCOL_MODES = ("latency", "throughput")
HEADLINES = ("median", "min")  # the latency statistic a run's line and the report's time per call lead with
MAX_THREADS_PER_CPU = 4  # platform.threads above this many per logical CPU is refused, not measured
MAX_SEED = 2**63 - 1

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


def _bad(key: str, value, what: str) -> ConfigError:
    return ConfigError(f"{key}={value!r} is not valid: {what}")


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


def _check_bool(key: str, value) -> None:
    if not isinstance(value, bool):
        raise _bad(key, value, "use true or false")


def _check_protocol(protocol: DictConfig) -> None:
    name = f"protocol={protocol.name}"
    if protocol.mode not in PROTOCOL_MODES:
        raise ConfigError(f"protocol.mode={protocol.mode!r} is not valid; valid: {', '.join(PROTOCOL_MODES)}")
    headline = protocol.get("headline") or "median"  # a user's own protocol written before the key: median
    if headline not in HEADLINES:
        raise ConfigError(f"protocol.headline={headline!r} ({name}) is not valid; valid: {', '.join(HEADLINES)}")
    if headline != "median" and protocol.mode != "latency":
        raise ConfigError(f"protocol.headline={headline} needs protocol.mode=latency: back-to-back batches time no "
                          "single call, so there is no per-call minimum")
    for key in ("min_iterations", "max_iterations"):
        if not (_is_int(protocol[key]) and protocol[key] > 0):
            raise ConfigError(f"protocol.{key}={protocol[key]!r} ({name}) must be a positive integer")
    for key in ("warmup_iterations", "profile_iterations"):
        if not (_is_int(protocol[key]) and protocol[key] >= 0):
            raise ConfigError(f"protocol.{key}={protocol[key]!r} ({name}) must be an integer >= 0")
    for key in ("warmup_duration_s", "min_duration_s", "cooloff_s", "unstable_cv"):
        if not (_is_number(protocol[key]) and protocol[key] >= 0):
            raise ConfigError(f"protocol.{key}={protocol[key]!r} ({name}) must be a finite number >= 0")
    if not (_is_number(protocol.max_duration_s) and protocol.max_duration_s > 0):
        raise ConfigError(f"protocol.max_duration_s={protocol.max_duration_s!r} ({name}) must be a finite number > 0")
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
    _check_bool("tracking.enabled", tracking.enabled)
    for key in ("uri", "experiment"):
        if not (isinstance(tracking[key], str) and tracking[key].strip()):
            raise _bad(f"tracking.{key}", tracking[key], "it must be a non-empty string")
    if not (_is_int(tracking.http_max_retries) and 0 <= tracking.http_max_retries <= 20):
        raise _bad("tracking.http_max_retries", tracking.http_max_retries, "an integer from 0 to 20")
    if not (_is_int(tracking.http_timeout_s) and tracking.http_timeout_s > 0):
        raise _bad("tracking.http_timeout_s", tracking.http_timeout_s, "a positive whole number of seconds")


FARMS = ("local", "inline", "ray")


def _check_farm(farm: DictConfig) -> None:
    if farm.name not in FARMS:
        raise _bad("farm.name", farm.name, f"one of {', '.join(FARMS)} (choose with farm=NAME)")
    if farm.name != "ray":
        return
    if not (isinstance(farm.address, str) and farm.address.strip()):
        raise _bad("farm.address", farm.address, "the Ray head's HOST:PORT, or auto for a cluster on this host")
    if not (_is_number(farm.node_wait_s) and farm.node_wait_s >= 0):
        raise _bad("farm.node_wait_s", farm.node_wait_s, "a finite number of seconds >= 0")
    _check_bool("farm.retry_lost", farm.retry_lost)


def _check_threads(threads) -> None:
    if threads is None:
        return
    limit = MAX_THREADS_PER_CPU * (psutil.cpu_count() or 1)
    if not (_is_int(threads) and threads > 0):
        raise ConfigError(f"platform.threads={threads!r} must be a positive integer, or null for all physical cores")
    if threads > limit:
        raise ConfigError(
            f"platform.threads={threads} is not valid: this host has {psutil.cpu_count()} logical CPUs, and more than "
            f"{limit} threads ({MAX_THREADS_PER_CPU} per CPU) measure thread contention, not the network; "
            "use null for all physical cores"
        )


def _model_names() -> list[str]:
    from pathlib import Path

    from embench.app import config_dir

    return sorted(path.stem for path in (Path(config_dir()) / "model").glob("*.yaml"))


def validate(cfg: DictConfig, overrides: list[str] = ()) -> None:
    """Raises ConfigError naming the first bad value and what would be valid."""
    check_added_keys(list(overrides))
    check_known_keys(cfg)
    if not (_is_int(cfg.batch) and cfg.batch > 0):
        raise ConfigError(f"batch={cfg.batch!r} is not valid: batch must be a positive integer (e.g. batch=1, or -m batch=1,2,4)")
    if not (_is_int(cfg.seed) and 0 <= cfg.seed <= MAX_SEED):
        raise _bad("seed", cfg.seed, f"an integer from 0 to {MAX_SEED}")
    _check_bool("resume", cfg.resume)
    _check_bool("model.pretrained", cfg.model.pretrained)
    if not (_is_int(cfg.model.input_size) and cfg.model.input_size > 0):
        raise _bad("model.input_size", cfg.model.input_size, "a positive integer (pixels per side, e.g. 224)")
    _check_bool("platform.strict", cfg.platform.strict)
    _check_threads(cfg.platform.get("threads"))
    _check_protocol(cfg.protocol)
    scenarios.check(cfg.scenario, cfg.protocol)
    scenarios.check_colocation(cfg.get("colocate"), cfg.get("colocate_threads"), cfg.scenario, _model_names())
    _check_farm(cfg.farm)
    _check_tracking(cfg.tracking)

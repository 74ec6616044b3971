"""Checks a composed run config against the schema before anything heavy is imported; one clear line per problem."""

import difflib
from pathlib import Path

import psutil
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf

from embench.config import schema
from embench.config.paths import config_dir, group_options
from embench.errors import ConfigError

MAX_THREADS_PER_CPU = 4  # platform.threads above this many per logical CPU is refused, not measured
_ABSENT = object()


def _plain(value):
    """A config value as the user wrote it: lists and mappings as Python's."""
    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def bad_value(key: str, value, what: str, where: str = "") -> ConfigError:
    return ConfigError(f"{key}={_plain(value)!r}{where} is not valid: {what}")


def _where(cfg: DictConfig, key: str) -> str:
    """The config option a section's value comes from, e.g. ` (platform=xavier)`."""
    section = key.split(".")[0]
    name = OmegaConf.select(cfg, f"{section}.name", default=None) if "." in key else None
    return f" ({section}={name})" if isinstance(name, str) else ""


def _farm_class(farm: DictConfig):
    """The farm's class, named by farm._target_ (a farm is a plugin, as a backend is)."""
    target = farm.get("_target_")
    try:
        return get_class(str(target))
    except Exception as err:  # ImportError, ValueError: Hydra's own words
        raise ConfigError(f"farm._target_={target!r} is not a class embench can import: "
                          f"{' '.join(str(err).split())[:200]}") from None


def _checked_values(cfg: DictConfig):
    """(key, setting, value) for every checked setting the config has, in the schema's order."""
    for key, setting in schema.settings().items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is not _ABSENT:
            yield key, setting, value
    runtime = cfg.backend.get("runtime") or {}
    if str(runtime.get("_target_", "")).startswith("embench.backends."):
        for key, setting in schema.BACKEND_RUNTIME.items():
            if key in runtime:
                yield f"backend.runtime.{key}", setting, runtime[key]


def _check_values(cfg: DictConfig) -> None:
    for key, setting, value in _checked_values(cfg):
        if not setting.holds(value):
            raise bad_value(key, value, str(setting), _where(cfg, key))


def _unknown(key: str, known: tuple[str, ...], how: str) -> ConfigError:
    section, _, name = key.rpartition(".")
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {(section + '.' if section else '') + close[0]}? " if close else ""
    where = f"in {section}" if section else "at the top level"
    return ConfigError(f"{key}: embench has no such key ({how}); {hint}valid keys {where}: {', '.join(known)}")


def check_added_keys(overrides: list[str]) -> None:
    """`+key=value` may only add arguments of a model factory, a backend class or a farm class."""
    for override in overrides:
        if not override.startswith("+"):
            continue
        key = override.lstrip("+").split("=", 1)[0]
        section = key.rpartition(".")[0]
        if key.startswith(schema.OPEN_SECTIONS) or key.rpartition(".")[2] in schema.GROUPS.get(section, ()):
            continue
        raise _unknown(key, schema.known_keys(section), f"added by {override!r}; model.factory.* and backend.runtime.* "
                       "take new keys")


def check_known_keys(cfg: DictConfig) -> None:
    """Every key of the sections embench owns is one it reads: a typo is never silently ignored."""
    for section, known in schema.GROUPS.items():
        node = OmegaConf.select(cfg, section) if section else cfg
        if not isinstance(node, DictConfig):
            continue
        for key in node.keys():
            if key not in known:
                raise _unknown(f"{section}.{key}" if section else str(key), tuple(known), "from a config file")


def _check_farm(farm: DictConfig) -> None:
    """The farm's keys are its class's options (farm.OPTIONS), each checked by what it accepts."""
    options = _farm_class(farm).OPTIONS
    for key in farm.keys():
        if key not in ("_target_", "name", *options):
            raise _unknown(f"farm.{key}", ("name", *options), f"farm={farm.get('name')} has no such option")
        if key in options and not options[key].holds(farm[key]):
            raise bad_value(f"farm.{key}", farm[key], str(options[key]), f" (farm={farm.get('name')})")


def _check_protocol(protocol: DictConfig) -> None:
    """Its limits against each other (each value is checked by the schema)."""
    headline = protocol.get("headline") or "median"  # a user's own protocol written before the key: median
    if headline != "median" and protocol.mode != "latency":
        raise ConfigError(f"protocol.headline={headline} needs protocol.mode=latency: back-to-back batches time no "
                          "single call, so there is no per-call minimum")
    if protocol.cooloff_s and protocol.mode != "latency":
        raise ConfigError(f"protocol.cooloff_s={protocol.cooloff_s} needs protocol.mode=latency: back-to-back batches do not pause")
    if protocol.get("target_ci") is not None and protocol.mode != "latency":
        raise ConfigError(f"protocol.target_ci={protocol.target_ci} needs protocol.mode=latency: back-to-back batches "
                          "time no single call, so there is no median latency to make precise")
    if protocol.max_iterations < protocol.min_iterations:
        raise ConfigError(
            f"protocol.max_iterations={protocol.max_iterations} is below protocol.min_iterations={protocol.min_iterations}"
        )
    if protocol.max_duration_s < protocol.min_duration_s:
        raise ConfigError(
            f"protocol.max_duration_s={protocol.max_duration_s} is below protocol.min_duration_s={protocol.min_duration_s}"
        )


def _check_colocation_names(colocate, threads, model_names: list[str]) -> None:
    """`colocate`: null, or two or more model config names; `colocate_threads`: null or one count per network
    (each count: _check_colocation)."""
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


def _check_threads(key: str, threads, instead: str) -> None:
    """A thread count this host can run without measuring thread contention; `instead`: what to use."""
    limit = MAX_THREADS_PER_CPU * (psutil.cpu_count() or 1)
    if threads is not None and threads > limit:
        raise ConfigError(
            f"{key}={threads} is not valid: this host has {psutil.cpu_count()} logical CPUs, and more than "
            f"{limit} threads ({MAX_THREADS_PER_CPU} per CPU) measure thread contention, not the network; {instead}"
        )


def _check_colocation(cfg: DictConfig, model_names: list[str]) -> None:
    threads = cfg.get("colocate_threads")
    _check_colocation_names(cfg.get("colocate"), threads, model_names)
    for index, count in enumerate(threads or ()):
        key = f"colocate_threads[{index}]"
        if not schema.COLOCATED_THREADS.holds(count):
            raise bad_value(key, count, str(schema.COLOCATED_THREADS))
        _check_threads(key, count, "use null to split the platform's threads evenly")


def validate(cfg: DictConfig, overrides: list[str] = (), search_dirs: list = ()) -> None:
    """Raises ConfigError naming the first bad value and what would be valid; `search_dirs`: the run's config
    folders, where co-located models are looked up (embench's conf/ when empty). The scenario: checks.check_scenario."""
    check_added_keys(list(overrides))
    check_known_keys(cfg)
    _check_values(cfg)
    _check_threads("platform.threads", cfg.platform.get("threads"), "use null for all physical cores")
    _check_protocol(cfg.protocol)
    _check_colocation(cfg, sorted(group_options("model", list(search_dirs) or [Path(config_dir())])))
    _check_farm(cfg.farm)

"""Can this run? One ordered pipeline of checks, made before anything is measured.

    1. config values and keys, then the scenario   (each job; fast, imports no torch)
    2. one store, one farm      (a sweep's jobs share them)
    3. the farm's own options   (its class, built from farm._target_)
    4. model factory, device, backend options   (each distinct point, on the host that measures it;
                                                 `embench node` checks each platform's device)
    5. the store                (reachable, stale runs closed)
    6. the farm's nodes         (the farm checks each job where it will run: farms.base.Farm.check)

A single run, a sweep and a farm node's probe all go through these functions; each raises an
EmbenchError whose message names the value and what is valid.
"""

from dataclasses import dataclass
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from embench import outcome
from embench.config.validate import bad_value, validate
from embench.errors import ConfigError, EmbenchError, TrackingError
from embench.scenarios import loadgen_can_drive
from embench.scenarios.kinds import KINDS


def check_config(cfg: DictConfig, overrides: list[str] = (), search_dirs: list[Path] = ()) -> None:
    """1. Values and keys against the schema (co-location's included), then the scenario. Raises ConfigError."""
    validate(cfg, list(overrides), list(search_dirs))
    check_scenario(cfg.scenario, cfg.protocol, colocated=bool(cfg.get("colocate")))


def check_scenario(scenario: DictConfig, protocol: DictConfig, colocated: bool) -> None:
    """1. The scenario is a kind embench drives (scenarios.kinds), with that kind's keys and values, under a
    protocol LoadGen has a rule for."""
    name = scenario.get("name")
    if name not in KINDS:
        raise ConfigError(f"scenario={name!r} is not valid; valid: {', '.join(KINDS)}")
    kind = KINDS[name]
    keys = ("name", *kind.keys)
    for key in scenario.keys():
        if key not in keys:
            raise ConfigError(f"scenario.{key}: scenario={name} has no such key; its keys: {', '.join(keys)}")
    missing = [key for key in kind.required if key not in scenario]
    if missing:
        raise ConfigError(f"scenario={name} needs scenario.{missing[0]}; its keys: {', '.join(keys)}")
    for key, setting in kind.keys.items():
        if key in scenario and not setting.holds(scenario[key]):
            raise bad_value(f"scenario.{key}", scenario[key], str(setting), f" (scenario={name})")
    if name != "single_stream" and not loadgen_can_drive(protocol):
        raise ConfigError(f"scenario={name} is driven by LoadGen, which neither pauses between queries nor runs "
                          f"unsynchronised batches: use a latency protocol without cool-off (not protocol={protocol.name})")
    if name != "single_stream" and protocol.get("target_ci") is not None:
        raise ConfigError(f"protocol.target_ci={protocol.target_ci} needs scenario=single_stream: scenario={name} is "
                          "driven by LoadGen, whose own rules end its test; set protocol.target_ci=null")
    if colocated and scenario.get("find_max_qps"):
        raise ConfigError("scenario.find_max_qps=true searches one network's rate: not with colocate")


def check_shared(tasks: list[DictConfig]) -> None:
    """2. A sweep logs to one store and experiment and runs on one farm."""
    for section, why in (("tracking", "logs to one store and experiment"), ("farm", "runs on one farm")):
        if len({OmegaConf.to_yaml(task[section]) for task in tasks}) > 1:
            raise ConfigError(f"{section}.* differs between the jobs of this sweep: a sweep {why}")


def make_farm(farm: DictConfig):
    """3. The farm (a class named by farm._target_ with farms.base.Farm's methods), its options checked."""
    return _instantiate(farm, f"farm={farm.get('name')}")


@dataclass
class Ready:
    """What a point needs on this host: its device (embench.platform.Device), whether it stands in for an absent
    one, its backend."""

    device: object
    substituted: bool
    backend: object


def check_point(cfg: DictConfig) -> Ready:
    """4. The model factory imports, the platform's device is here, the backend accepts its options and device."""
    from embench import models  # torch: not for steps 1 to 3, which refuse bad input in a fraction of a second

    models.check_factory(cfg.model)
    if cfg.get("accuracy") is not None and cfg.accuracy.name != "none":
        from embench.accuracy import evaluate

        evaluate.check(cfg)
    device, substituted = check_device(cfg.platform)
    backend = _instantiate(cfg.backend.runtime, f"backend={cfg.backend.name}")
    if device.kind not in backend.DEVICE_KINDS:
        raise ConfigError(
            f"backend={cfg.backend.name} cannot run on platform={cfg.platform.name} (a {device.kind} device); "
            f"it runs on {' or '.join(backend.DEVICE_KINDS)} platforms"
        )
    return Ready(device, substituted, backend)


def check_device(platform_cfg: DictConfig) -> tuple:
    """4. The platform's device (embench.platform.Device) is on this host, or stands in for it (platform.strict=false)."""
    from embench import platform

    return platform.resolve_device(platform_cfg)


def check_points_here(tasks: list[DictConfig]) -> None:
    """4, for a sweep measured on this host: each distinct (model factory, platform, backend) once."""
    for task in {point_check_key(task): task for task in tasks}.values():
        check_point(task)


def point_check_key(task: DictConfig) -> str:
    """What check_point depends on: two jobs with the same key pass or fail it together."""
    parts = ("platform", "backend", "accuracy")
    return "".join(OmegaConf.to_yaml(task.get(part)) for part in parts) + str(task.model.factory) + str(task.model.get("pretrained"))


def open_store(tracking: DictConfig, results_in: str):
    """5. The tracker, connected, with stale runs of dead processes closed; None when tracking is off.

    A deleted experiment or an unusable URI raises ConfigError. An unreachable store is said in one
    line and the run goes on: its results stay in `results_in` for `embench sync`.
    """
    if not tracking.enabled:
        return None
    from embench.tracking import tracker_for

    tracker = tracker_for(tracking)
    try:
        tracker.close_stale_runs()
    except TrackingError as err:
        outcome.say_error(f"{err}; measuring anyway: results stay in {results_in} (upload them later with "
                          f"`embench sync {results_in}`)")
    return tracker


def _instantiate(node: DictConfig, what: str):
    """A plugin object (a backend's runtime, a farm); a bad option is the user's error, named in one line."""
    try:
        return instantiate(node)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, EmbenchError):  # e.g. a runtime package missing on import
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        reason = " ".join(str(err.__cause__ or err).split())
        raise ConfigError(f"{what}: cannot build {node.get('_target_')}: {reason}") from err

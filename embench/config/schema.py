"""Each config group's keys, declared once with what each accepts: validate checks a config against them.

A group's schema is an ordered mapping key -> Setting. A model's keys and a backend's `runtime`
options are the user's to declare (a model or backend of their own): there the schema lists the
keys embench reads, and `+key` may add arguments of the model factory or the backend class. A farm's
options are its class's constructor arguments, with ranges the class declares (embench.farms.base);
a scenario's keys are its kind's (embench.scenarios.kinds).
"""

import math
from dataclasses import dataclass

MAX_SEED = 2**63 - 1
MAX_COUNT = 2**63 - 1  # LoadGen's counts are 64-bit
MAX_DURATION_S = 7 * 24 * 3600  # a week: longer is a typo (LoadGen's durations are 64-bit milliseconds)
MAX_QPS = 1_000_000  # a query a microsecond: no backend step is shorter, so a higher rate times only the queue
MAX_WORKERS = 1024  # as backend.runtime.requests and streams


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(number) -> str:
    return "2**63 - 1" if number == 2**63 - 1 else f"{number:g}" if isinstance(number, float) else str(number)


class Setting:
    """What a key accepts; `holds(value)` and, for the error line, `str()`. The base accepts anything."""

    def holds(self, value) -> bool:
        return True

    def __str__(self) -> str:
        return "any value"


@dataclass(frozen=True)
class Range(Setting):
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


class Flag(Setting):
    def holds(self, value) -> bool:
        return isinstance(value, bool)

    def __str__(self) -> str:
        return "use true or false"


class Text(Setting):
    def holds(self, value) -> bool:
        return isinstance(value, str) and bool(value.strip())

    def __str__(self) -> str:
        return "it must be a non-empty string"


@dataclass(frozen=True)
class Choice(Setting):
    values: tuple[str, ...]
    null: bool = False

    def holds(self, value) -> bool:
        return value in self.values or self.null and value is None

    def __str__(self) -> str:
        return f"valid: {', '.join(self.values)}"


ANY, FLAG, TEXT = Setting(), Flag(), Text()


def count(low: int = 1, note: str = "") -> Range:
    return Range(low, MAX_COUNT, whole=True, note=note)


def seconds(low: float = 0, above: bool = False) -> Range:
    return Range(low, MAX_DURATION_S, above=above, note="seconds")


def _spec(note: str, whole: bool = False, null: str = "unknown") -> Range:
    return Range(1 if whole else 0, whole=whole, above=not whole, null=null, note=note)


# Sections embench owns, checked in this order; within one, keys in this order (the first bad one is said).
GROUPS: dict[str, dict[str, Setting]] = {
    "": {
        "batch": Range(1, whole=True, note="inputs per call, e.g. batch=1, or -m batch=1,2,4"),
        "seed": Range(0, MAX_SEED, whole=True),
        "resume": FLAG, "tracking": ANY, "model": ANY, "platform": ANY, "backend": ANY, "protocol": ANY,
        "scenario": ANY, "farm": ANY, "accuracy": ANY,
        "colocate": ANY,  # checked by validate._check_colocation
        "colocate_threads": ANY,
        "colocated_models": ANY,  # set by embench: the co-located networks' model configs, from the run's search path
    },
    "tracking": {
        "enabled": FLAG, "uri": TEXT, "experiment": TEXT,
        "http_max_retries": Range(0, 20, whole=True),
        "http_timeout_s": Range(1, whole=True, note="whole seconds"),
        "parent_run_id": ANY, "sweep_uid": ANY,  # set by a sweep for its jobs
    },
    "protocol": {
        "name": TEXT, "mode": Choice(("latency", "throughput")),
        "warmup_iterations": count(0), "warmup_duration_s": seconds(),
        "min_iterations": count(), "min_duration_s": seconds(),
        "max_iterations": count(), "max_duration_s": seconds(above=True),
        "cooloff_s": seconds(),
        "cooldown_below_c": Range(0, above=True, null="no cool-down", note="°C of the hottest thermal zone"),
        "cooldown_max_s": seconds(),
        "unstable_cv": Range(0, note="a coefficient of variation, e.g. 0.10"),
        "headline": Choice(("median", "min"), null=True),  # the latency statistic a run's line and the report lead with
        "profile_iterations": count(0, "0 disables the profile"),
        "target_ci": Range(0, 0.5, above=True, null="off: the fixed rule",
                           note="the median's 95 % interval's half-width over the median, e.g. 0.01"),
        "warmup": Choice(("fixed", "detect")),  # detect: warm-up ends when two successive windows of calls agree
        "warmup_window": Range(2, 100_000, whole=True, note="calls per window"),
        "warmup_tolerance": Range(0, 1, above=True, note="the windows' medians' largest relative difference, e.g. 0.02"),
    },
    "platform": {
        "name": TEXT, "device": ANY, "openvino_device": ANY, "requires": ANY, "specs": ANY, "strict": FLAG,
        "threads": Range(1, whole=True, null="all physical cores"),
    },
    "platform.requires": {"what": ANY, "note": ANY, "arch": ANY, "cpu_model": ANY, "cuda_name": ANY},
    "platform.specs": {
        "cores": _spec("cores", whole=True), "clock_ghz": _spec("GHz"), "memory_gb": _spec("GB"),
        "process_nm": _spec("nm"), "tdp_w": _spec("W"), "peak_fp32_gflops": _spec("GFLOP/s", null="measured on this host"),
        "memory_bandwidth_gbs": _spec("GB/s"),
    },
    "backend": {"name": TEXT, "runtime": ANY},
    "accuracy": {
        "name": Choice(("none", "imagefolder")),
        "limit": Range(1, MAX_COUNT, whole=True, null="every image", note="images"),
        "seed": Range(0, MAX_SEED, whole=True),
        "root": ANY, "class_map": ANY, "calibration_root": ANY,  # paths: embench.accuracy.images checks them
    },
}
# Keys embench reads in a model config (the rest are the user's); `model.factory.*` takes new keys.
MODEL = {
    "name": TEXT, "year": ANY, "input_size": Range(1, whole=True, note="pixels per side, e.g. 224"),
    "source": ANY, "pretrained": FLAG, "factory": ANY, "accuracy": ANY, "paper": ANY,
    "preprocess": ANY,  # resize, crop, mean, std for accuracy=imagefolder (embench.accuracy.preprocess)
}
# The numeric options of embench's own backends (conf/backend/), wherever the chosen one has them.
BACKEND_RUNTIME = {
    "streams": Range(1, 1024, whole=True, null="what the hint chooses"),
    "requests": Range(1, 1024, whole=True, null="OpenVINO's optimal number for the hint"),
    "workspace_gib": Range(1, 1024, whole=True, null="TensorRT's default: all of the GPU's memory", note="GiB"),
    "calibration_samples": Range(1, 100_000, whole=True, note="images"),
    "calibration_seed": Range(0, MAX_SEED, whole=True),
}
COLOCATED_THREADS = Range(1, whole=True, note="threads of that network")
OPEN_SECTIONS = ("model.factory.", "backend.runtime.", "scenario.", "farm.")  # their keys: the plugin's (scenarios.kinds)


def settings() -> dict[str, Setting]:
    """Every checked key of the fixed sections, by dotted name, in checking order."""
    table = {(f"{section}.{key}" if section else key): setting
             for section, keys in GROUPS.items() for key, setting in keys.items()}
    table.update({f"model.{key}": setting for key, setting in MODEL.items()})
    return {key: setting for key, setting in table.items() if setting is not ANY}


def known_keys(section: str) -> tuple[str, ...]:
    return tuple(MODEL if section == "model" else GROUPS.get(section, {}))

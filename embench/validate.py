"""Checks a composed run config before anything heavy is imported; one clear line per problem."""

from omegaconf import DictConfig

from embench.errors import ConfigError

PROTOCOL_MODES = ("latency", "throughput")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _non_negative_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def validate(cfg: DictConfig) -> None:
    """Raises ConfigError naming the first bad value and what would be valid."""
    if not _positive_int(cfg.batch):
        raise ConfigError(f"batch={cfg.batch!r} is not valid: batch must be a positive integer (e.g. batch=1, or -m batch=1,2,4)")
    protocol = cfg.protocol
    name = f"protocol={protocol.name}"
    if protocol.mode not in PROTOCOL_MODES:
        raise ConfigError(f"protocol.mode={protocol.mode!r} is not valid; valid: {', '.join(PROTOCOL_MODES)}")
    for key in ("min_iterations", "max_iterations"):
        if not _positive_int(protocol[key]):
            raise ConfigError(f"protocol.{key}={protocol[key]!r} ({name}) must be a positive integer")
    for key in ("warmup_iterations", "profile_iterations"):
        if not (_non_negative_number(protocol[key]) and isinstance(protocol[key], int)):
            raise ConfigError(f"protocol.{key}={protocol[key]!r} ({name}) must be an integer >= 0")
    for key in ("warmup_duration_s", "min_duration_s", "unstable_cv"):
        if not _non_negative_number(protocol[key]):
            raise ConfigError(f"protocol.{key}={protocol[key]!r} ({name}) must be a number >= 0")
    if not (_non_negative_number(protocol.max_duration_s) and protocol.max_duration_s > 0):
        raise ConfigError(f"protocol.max_duration_s={protocol.max_duration_s!r} ({name}) must be a number > 0")
    if protocol.max_iterations < protocol.min_iterations:
        raise ConfigError(
            f"protocol.max_iterations={protocol.max_iterations} is below protocol.min_iterations={protocol.min_iterations}"
        )
    if protocol.max_duration_s < protocol.min_duration_s:
        raise ConfigError(
            f"protocol.max_duration_s={protocol.max_duration_s} is below protocol.min_duration_s={protocol.min_duration_s}"
        )
    threads = cfg.platform.get("threads")
    if threads is not None and not _positive_int(threads):
        raise ConfigError(f"platform.threads={threads!r} must be a positive integer, or null for all physical cores")

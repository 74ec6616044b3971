"""How load is applied: MLPerf's four scenarios, driven by LoadGen (conf/scenario/*.yaml).

A LoadGen sample is one step of the prepared backend: one batch of `batch` images (times the
backend's requests per step). Its keys and checks: embench.config.
"""

from omegaconf import DictConfig


def loadgen_can_drive(protocol: DictConfig) -> bool:
    """Whether LoadGen has a rule for the protocol: synchronised calls, no pauses between them."""
    return protocol.mode == "latency" and not protocol.cooloff_s


def own_loop(scenario: DictConfig, protocol: DictConfig) -> bool:
    """Whether embench's own timed loop runs the point: single stream under a protocol LoadGen has no
    rule for (pauses between iterations, back-to-back batches without a sync, or a precision target)."""
    return scenario.name == "single_stream" and (not loadgen_can_drive(protocol) or protocol.get("target_ci") is not None)

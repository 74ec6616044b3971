"""Recording what a run measured into its RunResult: device, timing, load, energy, contention, efficiency."""

import logging

import psutil
import torch
from omegaconf import DictConfig

from embench import memory, platform
from embench.contention import CpuContention
from embench.energy import EnergyMeter
from embench.host import host_tags
from embench.measure import Precision, Timing
from embench.names import (
    ACHIEVED_GFLOPS,
    BATCH_TIME_MS,
    DEVICE_FALLBACK_TAG,
    DEVICE_NAME_TAG,
    DEVICE_TYPE_TAG,
    ENQUEUE_INTERVAL_CV,
    FLOPS,
    INFERENCES_PER_JOULE,
    LATENCY_CV,
    LATENCY_DRIFT,
    LATENCY_MEDIAN_CI_REL_HALFWIDTH,
    LATENCY_MEDIAN_CI_SEQ_HIGH_MS,
    LATENCY_MEDIAN_CI_SEQ_LEVEL,
    LATENCY_MEDIAN_CI_SEQ_LOW_MS,
    LATENCY_MEDIAN_MS,
    PEAK_GFLOPS,
    PRECISION_TAG,
    PRECISION_TARGET_TAG,
    SERVER_MAX_QPS,
    SERVICE_TIME_MEDIAN_MS,
    THREADS_OVERSUBSCRIBED_TAG,
    THREADS_TAG,
    THROTTLED_REASON_TAG,
    THROTTLED_TAG,
    THROUGHPUT_IPS,
    UNSTABLE_TAG,
    VERSION_TAG,
    WARMUP_END_TAG,
)
from embench.peak import peak_gflops
from embench.result import RunResult
from embench.scenarios import drive, figures, search
from embench.stats import summarize
from embench.thermal import ThermalMeter

log = logging.getLogger("embench")


def record_device(cfg: DictConfig, result: RunResult, device: platform.Device, substituted: bool) -> None:
    result.tags.update(host_tags())
    result.tags.update({DEVICE_TYPE_TAG: device.kind, DEVICE_NAME_TAG: device.name, THREADS_TAG: str(device.threads)})
    logical = psutil.cpu_count() or 1
    result.tags[THREADS_OVERSUBSCRIBED_TAG] = str(device.threads > logical).lower()
    if device.threads > logical:
        log.warning("platform.threads=%d is more than this host's %d logical CPUs: threads will wait for each other, "
                    "and the run is tagged threads_oversubscribed=true", device.threads, logical)
    if substituted:
        result.tags[DEVICE_FALLBACK_TAG] = f"{cfg.platform.name} absent, ran on this host's {device.kind}: {device.name}"
        log.warning("platform=%s is absent (platform.strict=false): running on %s (%s)", cfg.platform.name, device.kind, device.name)
    memory.reset_peak()  # building and converting the model: prepare_peak_memory_mb
    if device.kind == "cuda":
        from embench.gpu import gpu_tags

        gpu = gpu_tags(device.torch_device.index or 0)
        result.tags.update(gpu)
        result.tags[VERSION_TAG + "cuda"] = str(torch.version.cuda)  # the CUDA torch was built with
        if "gpu.driver" in gpu:
            result.tags[VERSION_TAG + "nvidia_driver"] = gpu["gpu.driver"]


def record_energy(result: RunResult, energy: EnergyMeter, inferences: int) -> None:
    """Mean power over the metered span; energy per inference over the timed window at that power.

    The two spans are one for embench's own loop; a LoadGen test is metered with LoadGen's start-up
    and wind-down (tens of ms) around the timed window.
    """
    result.tags["energy_source"] = energy.source
    if energy.joules:
        power_w = energy.joules / energy.seconds
        window_joules = power_w * result.metrics["measure_s"]
        result.metrics["energy_per_inference_mj"] = 1e3 * window_joules / inferences
        result.metrics[INFERENCES_PER_JOULE] = inferences / window_joules
        result.metrics["power_w"] = power_w


def record_efficiency(result: RunResult, device: platform.Device, published: float | None) -> None:
    """Achieved over the peak of the precision the kernels ran in (`published` is an FP32 figure); none without one."""
    peak, source = peak_gflops(device, published, result.tags.get(PRECISION_TAG, "fp32"))
    result.tags["peak_source"] = source
    if peak:
        result.metrics[PEAK_GFLOPS] = peak
        result.metrics["efficiency"] = result.metrics[ACHIEVED_GFLOPS] / peak


def record_contention(result: RunResult, contention: CpuContention) -> None:
    figures.record_contention(result, contention.other_cores)
    if contention.busy:
        log.warning(
            "the host was busy: other processes used %.2f CPU cores while measuring; "
            "latencies may be inflated, re-run on an idle machine",
            contention.other_cores,
        )


def record_thermal(result: RunResult, heat: ThermalMeter) -> None:
    result.metrics.update(heat.metrics)
    result.tags.update(heat.tags)
    if heat.tags.get(THROTTLED_TAG) == "true":
        log.warning("the device throttled during the timed window (%s): the run is tagged throttled=true",
                    heat.tags[THROTTLED_REASON_TAG])


def record_phases(result: RunResult, timing: Timing) -> None:
    metrics = result.metrics
    metrics["first_inference_ms"] = timing.first_ns / 1e6
    metrics["warmup_iterations"] = float(timing.warmup_iterations)
    metrics["warmup_s"] = timing.warmup_ns / 1e9
    metrics["measure_s"] = timing.loop_ns / 1e9
    metrics["iterations"] = float(len(timing.latencies_ns))
    result.tags["stop_reason"] = timing.stop_reason
    result.tags[WARMUP_END_TAG] = timing.warmup_end
    if timing.warmup_end.startswith("cap"):
        log.warning("warm-up did not settle: it ended at the %s after %d calls (protocol.warmup=detect)",
                    timing.warmup_end.removeprefix("cap "), timing.warmup_iterations)


def record_load(result: RunResult, loaded: drive.ScenarioTiming, scenario, batch: int, requests: int, protocol) -> float:
    """A LoadGen scenario's figures; returns the time of one step (ms) that derived figures use.

    Single stream keeps the latency statistics of the timed steps (one at a time, on this thread). Under the other scenarios steps queue and overlap, so their times are reported as
    `service_time_*` and the load's figures are LoadGen's query latencies and rates.
    """
    if scenario.name == "single_stream":
        step_ms = record_timing(result, loaded.timing, batch, requests, protocol)
        figures.record(result, loaded.chosen, scenario, batch * requests)
        return step_ms
    record_phases(result, loaded.timing)
    figures.record(result, loaded.chosen, scenario, batch * requests)
    metrics = result.metrics
    metrics[ACHIEVED_GFLOPS] = metrics[FLOPS] * metrics[THROUGHPUT_IPS] / 1e9
    if scenario.name == "server" and scenario.find_max_qps:
        metrics[SERVER_MAX_QPS] = search.max_valid_qps(loaded.runs)
        metrics["search_runs"] = float(len(loaded.runs))
        result.tags["search.stopped"] = loaded.search_stopped
        result.children = [figures.probe_run(result, run, scenario, batch * requests) for run in loaded.runs]
        log.info("highest valid server QPS: %.3g (valid: %s; %d LoadGen runs; stopped: %s)", metrics[SERVER_MAX_QPS],
                 search.bound_rule(loaded.chosen, scenario.latency_bound_ms), len(loaded.runs), loaded.search_stopped)
    return metrics.get(SERVICE_TIME_MEDIAN_MS) or 1e3 * batch * requests / metrics[THROUGHPUT_IPS]


def record_timing(result: RunResult, timing: Timing, batch: int, requests: int, protocol) -> float:
    """Timing metrics by protocol mode; returns the time of one step (ms) that derived figures use.

    Latency mode with one request per step: every iteration is one synchronised call, so `latency_*`
    are latencies. Throughput mode runs iterations back to back, and several requests in flight
    overlap: per-iteration times then time no single call, and the figures are `throughput_ips` and
    `batch_time_ms` (the loop's wall time / the batches it ran).
    """
    inferences_per_step = batch * requests
    metrics, iterations, seconds = result.metrics, len(timing.latencies_ns), timing.loop_ns / 1e9
    record_phases(result, timing)
    result.latencies_ms = [ns / 1e6 for ns in timing.latencies_ns]
    metrics[THROUGHPUT_IPS] = inferences_per_step * iterations / seconds
    stats = summarize(timing.latencies_ns)
    if protocol.mode == "latency" and requests == 1:
        metrics.update(stats)
        step_ms, what = stats[LATENCY_MEDIAN_MS], "median latency"
        if timing.precision:
            record_precision(result, timing.precision, timing.stop_reason)
        elif "latency_median_ci95_low_ms" in stats:  # a fixed rule: its 95 % interval is valid as it is
            metrics[LATENCY_MEDIAN_CI_REL_HALFWIDTH] = (
                (stats["latency_median_ci95_high_ms"] - stats["latency_median_ci95_low_ms"]) / 2 / step_ms)
    else:
        result.latencies_ms = []  # enqueue intervals or overlapping requests, not latencies: not logged as such
        step_ms, what = 1e3 * seconds / iterations, "time per step"
        metrics[BATCH_TIME_MS] = step_ms / requests
        metrics[ENQUEUE_INTERVAL_CV] = stats[LATENCY_CV]
    metrics[ACHIEVED_GFLOPS] = metrics[FLOPS] * inferences_per_step / (step_ms / 1e3) / 1e9
    if iterations < protocol.min_iterations:
        log.warning(
            "only %d of protocol.min_iterations=%d timed iterations fit in protocol.max_duration_s=%s",
            iterations, protocol.min_iterations, protocol.max_duration_s,
        )
    unstable = max(stats[LATENCY_CV], abs(stats[LATENCY_DRIFT])) > protocol.unstable_cv
    result.tags[UNSTABLE_TAG] = str(unstable).lower()
    if unstable:
        log.warning(
            "unstable measurement: CV %.1f%%, drift %+.1f%% between the loop's halves of the iteration times, above "
            "%.0f%% (%s %.3f ms); close other programs or lengthen the protocol",
            100 * stats[LATENCY_CV], 100 * stats[LATENCY_DRIFT], 100 * protocol.unstable_cv, what, step_ms,
        )
    return step_ms


def record_precision(result: RunResult, precision: Precision, stop_reason: str) -> None:
    """protocol.target_ci: the interval the rule stopped on, its level, and whether the target was reached."""
    metrics = result.metrics
    metrics[LATENCY_MEDIAN_CI_REL_HALFWIDTH] = precision.relative_halfwidth
    metrics[LATENCY_MEDIAN_CI_SEQ_LOW_MS] = precision.low_ns / 1e6
    metrics[LATENCY_MEDIAN_CI_SEQ_HIGH_MS] = precision.high_ns / 1e6
    metrics[LATENCY_MEDIAN_CI_SEQ_LEVEL] = precision.confidence
    result.tags[PRECISION_TARGET_TAG] = "reached" if precision.reached else f"not reached: cap {stop_reason}"
    if not precision.reached:
        log.warning("precision target not reached: the median's interval is +-%.2f%% (protocol.target_ci=%g) when the "
                    "loop hit protocol.%s; the run is tagged %s=not reached", 100 * precision.relative_halfwidth,
                    precision.target, stop_reason, PRECISION_TARGET_TAG)

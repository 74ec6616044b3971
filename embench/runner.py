"""One run: build the model, prepare it on the backend, warm up, time, profile, fill the result."""

import logging
import time

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from embench import memory, models, platform
from embench.contention import CpuContention
from embench.measure import StopRule, time_loop
from embench.result import RunResult
from embench.stats import summarize

log = logging.getLogger("embench")


def _example_input(batch: int, input_size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, input_size, input_size, generator=generator)


def run(cfg: DictConfig, result: RunResult) -> None:
    """Measures the configured point into `result`; raises on failure, keeping what was measured."""
    protocol, batch = cfg.protocol, int(cfg.batch)
    device = platform.resolve_device(cfg.platform)
    result.tags.update(platform.configure_host(cfg.platform))
    result.tags.update(platform.host_tags(device))
    if device.torch_device.type != cfg.platform.device:
        result.tags["device.fallback"] = f"{cfg.platform.device} absent, ran on {device.torch_device.type}"
        log.warning("platform=%s: %s is absent, running on %s (%s)", cfg.platform.name, cfg.platform.device, device.torch_device.type, device.name)
    result.tags["peak_memory_source"] = memory.reset_peak()
    if device.torch_device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    log.info("building %s", cfg.model.name)
    torch.manual_seed(int(cfg.seed))
    prepare_start = time.perf_counter()
    model = models.build_model(cfg.model)
    result.metrics.update(models.complexity(model, int(cfg.model.input_size)))
    example = _example_input(batch, int(cfg.model.input_size), int(cfg.seed))
    prepared = instantiate(cfg.backend.runtime).prepare(model, example, device)
    result.metrics["prepare_s"] = time.perf_counter() - prepare_start

    rule = StopRule.from_protocol(protocol)
    log.info(
        "measuring %s batch=%d on %s/%s: warm-up >= %d it & %.1f s, timed >= %d it & %.1f s (caps %d it, %.0f s)",
        cfg.model.name, batch, cfg.platform.name, cfg.backend.name, rule.warmup_iterations,
        rule.warmup_duration_s, rule.min_iterations, rule.min_duration_s, rule.max_iterations, rule.max_duration_s,
    )
    with torch.inference_mode():
        with CpuContention() as contention:
            timing = time_loop(prepared, device.sync, rule)
        _record_contention(result, contention)
        result.latencies_ms = [ns / 1e6 for ns in timing.latencies_ns]
        _record_timing(result, timing, batch, protocol)
        result.metrics["peak_memory_mb"] = memory.peak_rss_mb()
        if device.torch_device.type == "cuda":
            result.metrics["peak_device_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        if protocol.profile_iterations > 0:
            log.info("profiling %d iteration(s)", protocol.profile_iterations)
            result.profile = prepared.profile(int(protocol.profile_iterations))
            result.metrics.update(result.profile.metrics(result.metrics["latency_median_ms"]))


def _record_contention(result: RunResult, contention: CpuContention) -> None:
    result.metrics["host_other_cpu_cores"] = contention.other_cores
    result.tags["host_busy"] = str(contention.busy).lower()
    if contention.busy:
        log.warning(
            "the host was busy: other processes used %.2f CPU cores while measuring; "
            "latencies may be inflated, re-run on an idle machine",
            contention.other_cores,
        )


def _record_timing(result: RunResult, timing, batch: int, protocol) -> None:
    stats = summarize(timing.latencies_ns)
    metrics = result.metrics
    metrics.update(stats)
    metrics["first_inference_ms"] = timing.first_ns / 1e6
    metrics["warmup_iterations"] = float(timing.warmup_iterations)
    metrics["warmup_s"] = timing.warmup_ns / 1e9
    metrics["measure_s"] = timing.loop_ns / 1e9
    metrics["throughput_ips"] = batch * len(timing.latencies_ns) / (timing.loop_ns / 1e9)
    metrics["achieved_gflops"] = metrics["flops"] * batch / (stats["latency_median_ms"] / 1e3) / 1e9
    result.tags["stop_reason"] = timing.stop_reason
    if len(timing.latencies_ns) < protocol.min_iterations:
        log.warning(
            "only %d of protocol.min_iterations=%d timed iterations fit in protocol.max_duration_s=%s",
            len(timing.latencies_ns), protocol.min_iterations, protocol.max_duration_s,
        )
    unstable = stats["latency_cv"] > protocol.unstable_cv
    result.tags["unstable"] = str(unstable).lower()
    if unstable:
        log.warning(
            "unstable measurement: CV %.1f%% > %.0f%% (median %.3f ms, IQR %.3f ms); close other programs or lengthen the protocol",
            100 * stats["latency_cv"], 100 * protocol.unstable_cv, stats["latency_median_ms"], stats["latency_iqr_ms"],
        )

"""One run: build the model, prepare it on the backend, check it, warm up, time, profile."""

import gc
import hashlib
import logging
import time
from importlib import metadata

import psutil
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from embench import memory, models, platform, scenarios
from embench.contention import CpuContention
from embench.energy import EnergyMeter
from embench.errors import ConfigError, EmbenchError
from embench.host import host_tags
from embench.measure import StopRule, Timing, time_loop
from embench.peak import peak_gflops
from embench.result import RunResult
from embench.scenarios import colocation, drive, figures, search
from embench.stats import summarize

log = logging.getLogger("embench")


def example_input(batch: int, input_size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, input_size, input_size, generator=generator)


def model_id(cfg: DictConfig) -> str:
    """Names the model's weights: its config, the seed and the library versions that build it."""
    identity = OmegaConf.to_yaml(cfg.model, resolve=True) + f"seed={cfg.seed}"
    for library in ("torch", "torchvision", "timm", "pretrainedmodels"):
        identity += f"{library}={metadata.version(library)}"
    return f"{cfg.model.name}-{hashlib.sha1(identity.encode()).hexdigest()[:12]}"


TINY_OUTPUT = 1e-6  # some random-weight networks (depthwise ones) output ~1e-9: reduced precisions round it to 0
CHECK_ROWS = 8  # images of the batch checked against the reference: enough to catch a wrong backend


def check_output(prepared, cfg: DictConfig, example: torch.Tensor, result: RunResult) -> None:
    """The backend's output against torch eager FP32 on the CPU; a wrong one fails the run.

    Runs after timing and after the memory peak is read: the reference, rebuilt from the same seed
    on the first CHECK_ROWS images, neither warms the backend up nor adds to its memory figure.
    """
    rows = min(int(cfg.batch), CHECK_ROWS)
    output = prepared.output().reshape(int(cfg.batch), -1)[:rows]
    torch.manual_seed(int(cfg.seed))
    reference = models.build_model(cfg.model)(example[:rows]).float().reshape(rows, -1)
    abs_diff = float((output - reference).abs().max())
    scale = float(reference.abs().max()) or 1.0
    result.metrics["output_max_abs_diff"] = abs_diff
    result.metrics["output_max_rel_diff"] = abs_diff / scale
    # the share of checked images whose top-1 class is the reference's (random weights: agreement, not accuracy)
    result.metrics["output_top1_agreement"] = float((output.argmax(1) == reference.argmax(1)).float().mean())
    if not abs_diff / scale <= prepared.tolerance:  # also catches NaN
        precision = result.tags.get("backend.precision")
        tiny = f"; the FP32 output itself is only {scale:.2g} in magnitude (random weights), below what {precision} " \
               "resolves" if scale < TINY_OUTPUT and precision != "fp32" else ""
        raise EmbenchError(
            f"backend={cfg.backend.name} gives a wrong output: max abs difference {abs_diff:.3g} from torch eager FP32, "
            f"{abs_diff / scale:.3g} of the output's magnitude (tolerance {prepared.tolerance:g} at {precision}){tiny}"
        )


def _make_backend(cfg: DictConfig):
    """The backend's runtime object; a bad option is the user's error, named in one line."""
    try:
        return instantiate(cfg.backend.runtime)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, EmbenchError):  # e.g. a runtime package missing on import
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        reason = " ".join(str(err.__cause__ or err).split())
        raise ConfigError(f"backend={cfg.backend.name}: cannot build {cfg.backend.runtime.get('_target_')}: {reason}") from err


def check_point(cfg: DictConfig):
    """(device, whether it stands in for an absent one, backend): what the run needs, or one clear error."""
    models.check_factory(cfg.model)
    device, substituted = platform.resolve_device(cfg.platform)
    backend = _make_backend(cfg)
    if device.kind not in backend.DEVICE_KINDS:
        raise ConfigError(
            f"backend={cfg.backend.name} cannot run on platform={cfg.platform.name} (a {device.kind} device); "
            f"it runs on {' or '.join(backend.DEVICE_KINDS)} platforms"
        )
    return device, substituted, backend


def run(cfg: DictConfig, result: RunResult) -> None:
    """Measures the configured point into `result`; raises on failure, keeping what was measured."""
    protocol, batch = cfg.protocol, int(cfg.batch)
    device, substituted, backend = check_point(cfg)
    _record_device(cfg, result, device, substituted)
    if cfg.get("colocate"):
        log.info("co-locating %s on %s (%s), each alone then together", " and ".join(cfg.colocate), cfg.platform.name, device.name)
        colocation.run(cfg, result, device.threads)
        return

    log.info("building %s", cfg.model.name)
    torch.manual_seed(int(cfg.seed))
    clock = time.perf_counter
    start = clock()
    model = models.build_model(cfg.model)
    result.metrics.update(models.complexity(model, int(cfg.model.input_size)))
    example = example_input(batch, int(cfg.model.input_size), int(cfg.seed))
    result.metrics["build_s"] = clock() - start
    with torch.inference_mode():
        log.info("preparing %s on %s (%s)", cfg.model.name, cfg.backend.name, device.name)
        prepare_start = clock()
        prepared = backend.prepare(model, example, device, model_id(cfg))
        result.metrics["prepare_s"] = result.metrics["build_s"] + clock() - prepare_start
        del model  # a converted backend no longer needs the torch model: it leaves the run's memory figures
        _reset_memory_peak(result, device)
        result.tags.update(prepared.tags)
        result.files.update(getattr(prepared, "files", {}))  # optional for a user's own backend

        rule = StopRule.from_protocol(protocol)
        log.info(
            "measuring %s batch=%d on %s/%s: warm-up >= %d it & %.1f s, timed >= %d it & %.1f s (caps %d it, %.0f s)",
            cfg.model.name, batch, cfg.platform.name, cfg.backend.name, rule.warmup_iterations,
            rule.warmup_duration_s, rule.min_iterations, rule.min_duration_s, rule.max_iterations, rule.max_duration_s,
        )
        specs = {} if substituted else (cfg.platform.get("specs") or {})
        contention, energy = CpuContention(), EnergyMeter(device, specs.get("tdp_w"))
        meters = (contention, energy)
        if rule.cooloff_s:  # the meters would count the idle pauses: no energy figure
            meters, energy.source = (contention,), "none: the protocol pauses between iterations"
        scenario = cfg.scenario
        if scenarios.own_loop(scenario, protocol):
            timing = time_loop(prepared, device.sync, rule, meters=meters)  # its first call is the cold one
            step_ms = _record_timing(result, timing, batch, prepared.inferences_per_step, protocol)
        else:
            if scenario.name == "server" and scenario.find_max_qps:
                meters, energy.source = (), "none: the max-QPS search runs several LoadGen tests"
            loaded = drive.measure(prepared, device.sync, rule, scenario, cfg.backend.name, meters)
            timing = loaded.timing
            step_ms = _record_load(result, loaded, scenario, batch, prepared.inferences_per_step, protocol)
            if loaded.other_cpu_cores is not None:  # the search's probes metered the host one by one
                contention.other_cores = loaded.other_cpu_cores
        inferences = batch * prepared.inferences_per_step
        _record_contention(result, contention)
        _record_energy(result, energy, inferences * len(timing.latencies_ns))
        result.metrics["peak_memory_mb"] = memory.peak_rss_mb()
        if device.kind == "cuda":
            from embench.gpu import device_memory

            metrics, tags = device_memory(cfg.backend.name, device.torch_device.index or 0)
            result.metrics.update(metrics)
            result.tags.update(tags)
        check_start = clock()
        check_output(prepared, cfg, example, result)
        result.metrics["check_s"] = clock() - check_start
        _record_efficiency(result, device, specs.get("peak_fp32_gflops"))  # a peak GEMM runs after the memory peak
        if protocol.profile_iterations > 0:
            log.info("profiling %d iteration(s)", protocol.profile_iterations)
            profile_start = clock()
            result.profile = prepared.profile(int(protocol.profile_iterations))
            result.metrics["profile_s"] = clock() - profile_start
            result.metrics.update(result.profile.metrics(step_ms / prepared.inferences_per_step))


def _reset_memory_peak(result: RunResult, device: platform.Device) -> None:
    """Ends the preparation's memory window and starts the prepared backend's (cold start to the end of timing)."""
    gc.collect()
    result.metrics["prepare_peak_memory_mb"] = memory.peak_rss_mb()
    result.tags["peak_memory_source"] = memory.reset_peak()
    result.metrics["memory_baseline_mb"] = memory.peak_rss_mb()  # resident set when the peak was reset
    if device.kind == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _record_device(cfg: DictConfig, result: RunResult, device: platform.Device, substituted: bool) -> None:
    result.tags.update(host_tags())
    result.tags.update({"device.type": device.kind, "device.name": device.name, "threads": str(device.threads)})
    logical = psutil.cpu_count() or 1
    result.tags["threads_oversubscribed"] = str(device.threads > logical).lower()
    if device.threads > logical:
        log.warning("platform.threads=%d is more than this host's %d logical CPUs: threads will wait for each other, "
                    "and the run is tagged threads_oversubscribed=true", device.threads, logical)
    if substituted:
        result.tags["device.fallback"] = f"{cfg.platform.name} absent, ran on this host's {device.kind}: {device.name}"
        log.warning("platform=%s is absent (platform.strict=false): running on %s (%s)", cfg.platform.name, device.kind, device.name)
    memory.reset_peak()  # building and converting the model: prepare_peak_memory_mb
    if device.kind == "cuda":
        from embench.gpu import gpu_tags

        result.tags.update(gpu_tags(device.torch_device.index or 0))
        result.tags["version.cuda"] = str(torch.version.cuda)


def _record_energy(result: RunResult, energy: EnergyMeter, inferences: int) -> None:
    """Mean power over the metered span; energy per inference over the timed window at that power.

    The two spans are one for embench's own loop; a LoadGen test is metered with LoadGen's start-up
    and wind-down (tens of ms) around the timed window.
    """
    result.tags["energy_source"] = energy.source
    if energy.joules:
        power_w = energy.joules / energy.seconds
        window_joules = power_w * result.metrics["measure_s"]
        result.metrics["energy_per_inference_mj"] = 1e3 * window_joules / inferences
        result.metrics["inferences_per_joule"] = inferences / window_joules
        result.metrics["power_w"] = power_w


def _record_efficiency(result: RunResult, device: platform.Device, published: float | None) -> None:
    """Achieved over the peak of the precision the kernels ran in (`published` is an FP32 figure); none without one."""
    peak, source = peak_gflops(device, published, result.tags.get("backend.precision", "fp32"))
    result.tags["peak_source"] = source
    if peak:
        result.metrics["peak_gflops"] = peak
        result.metrics["efficiency"] = result.metrics["achieved_gflops"] / peak


def _record_contention(result: RunResult, contention: CpuContention) -> None:
    figures.record_contention(result, contention.other_cores)
    if contention.busy:
        log.warning(
            "the host was busy: other processes used %.2f CPU cores while measuring; "
            "latencies may be inflated, re-run on an idle machine",
            contention.other_cores,
        )


def _record_phases(result: RunResult, timing: Timing) -> None:
    metrics = result.metrics
    metrics["first_inference_ms"] = timing.first_ns / 1e6
    metrics["warmup_iterations"] = float(timing.warmup_iterations)
    metrics["warmup_s"] = timing.warmup_ns / 1e9
    metrics["measure_s"] = timing.loop_ns / 1e9
    metrics["iterations"] = float(len(timing.latencies_ns))
    result.tags["stop_reason"] = timing.stop_reason


def _record_load(result: RunResult, loaded: drive.ScenarioTiming, scenario, batch: int, requests: int, protocol) -> float:
    """A LoadGen scenario's figures; returns the time of one step (ms) that derived figures use.

    Single stream keeps the latency statistics of the timed steps (one at a time, on this thread). Under the other scenarios steps queue and overlap, so their times are reported as
    `service_time_*` and the load's figures are LoadGen's query latencies and rates.
    """
    if scenario.name == "single_stream":
        step_ms = _record_timing(result, loaded.timing, batch, requests, protocol)
        figures.record(result, loaded.chosen, scenario, batch * requests)
        return step_ms
    _record_phases(result, loaded.timing)
    figures.record(result, loaded.chosen, scenario, batch * requests)
    metrics = result.metrics
    metrics["achieved_gflops"] = metrics["flops"] * metrics["throughput_ips"] / 1e9
    if scenario.name == "server" and scenario.find_max_qps:
        metrics["server_max_qps"] = search.max_valid_qps(loaded.runs)
        metrics["search_runs"] = float(len(loaded.runs))
        result.tags["search.stopped"] = loaded.search_stopped
        result.children = [figures.probe_run(result, run, scenario, batch * requests) for run in loaded.runs]
        log.info("highest valid server QPS: %.3g (valid: %s; %d LoadGen runs; stopped: %s)", metrics["server_max_qps"],
                 search.bound_rule(loaded.chosen, scenario.latency_bound_ms), len(loaded.runs), loaded.search_stopped)
    return metrics.get("service_time_median_ms") or 1e3 * batch * requests / metrics["throughput_ips"]


def _record_timing(result: RunResult, timing: Timing, batch: int, requests: int, protocol) -> float:
    """Timing metrics by protocol mode; returns the time of one step (ms) that derived figures use.

    Latency mode with one request per step: every iteration is one synchronised call, so `latency_*`
    are latencies. Throughput mode runs iterations back to back, and several requests in flight
    overlap: per-iteration times then time no single call, and the figures are `throughput_ips` and
    `batch_time_ms` (the loop's wall time / the batches it ran).
    """
    inferences_per_step = batch * requests
    metrics, iterations, seconds = result.metrics, len(timing.latencies_ns), timing.loop_ns / 1e9
    _record_phases(result, timing)
    result.latencies_ms = [ns / 1e6 for ns in timing.latencies_ns]
    metrics["throughput_ips"] = inferences_per_step * iterations / seconds
    stats = summarize(timing.latencies_ns)
    if protocol.mode == "latency" and requests == 1:
        metrics.update(stats)
        step_ms, what = stats["latency_median_ms"], "median latency"
    else:
        result.latencies_ms = []  # enqueue intervals or overlapping requests, not latencies: not logged as such
        step_ms, what = 1e3 * seconds / iterations, "time per step"
        metrics["batch_time_ms"] = step_ms / requests
        metrics["enqueue_interval_cv"] = stats["latency_cv"]
    metrics["achieved_gflops"] = metrics["flops"] * inferences_per_step / (step_ms / 1e3) / 1e9
    if iterations < protocol.min_iterations:
        log.warning(
            "only %d of protocol.min_iterations=%d timed iterations fit in protocol.max_duration_s=%s",
            iterations, protocol.min_iterations, protocol.max_duration_s,
        )
    unstable = max(stats["latency_cv"], abs(stats["latency_drift"])) > protocol.unstable_cv
    result.tags["unstable"] = str(unstable).lower()
    if unstable:
        log.warning(
            "unstable measurement: CV %.1f%%, drift %+.1f%% between the loop's halves of the iteration times, above "
            "%.0f%% (%s %.3f ms); close other programs or lengthen the protocol",
            100 * stats["latency_cv"], 100 * stats["latency_drift"], 100 * protocol.unstable_cv, what, step_ms,
        )
    return step_ms

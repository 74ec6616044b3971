"""One run: build the model, prepare it on the backend, check it, warm up, time, profile."""

import gc
import logging
import time

import torch
from omegaconf import DictConfig

from embench import checks, memory, models, platform, scenarios
from embench.accuracy import evaluate
from embench.contention import CpuContention
from embench.energy import EnergyMeter
from embench.measure import StopRule, time_loop
from embench.names import PEAK_MEMORY_MB
from embench.phases import phase
from embench.point import colocation
from embench.point.build import check_output, example_input, model_id
from embench.point.record import (
    record_contention,
    record_device,
    record_efficiency,
    record_energy,
    record_load,
    record_thermal,
    record_timing,
)
from embench.result import RunResult
from embench.scenarios import drive
from embench.thermal import DEFAULT_COOLDOWN_MAX_S, ThermalMeter, cool_down

log = logging.getLogger("embench")


def run(cfg: DictConfig, result: RunResult) -> None:
    """Measures the configured point into `result`; raises on failure, keeping what was measured."""
    protocol, batch = cfg.protocol, int(cfg.batch)
    with phase(result.metrics, "preflight_s"):
        ready = checks.check_point(cfg)
    device, substituted, backend = ready.device, ready.substituted, ready.backend
    record_device(cfg, result, device, substituted)
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
    evaluation = None
    if evaluate.wanted(cfg):  # the images, checked against the classes this network really outputs
        evaluation = evaluate.Evaluation.of(cfg, evaluate.outputs_of(model, int(cfg.model.input_size)))
        evaluation.calibrate(backend, cfg, result)
        example = evaluation.example(batch)  # the output check then runs on images the calibration is meant for
    result.metrics["build_s"] = clock() - start
    with torch.inference_mode():
        log.info("preparing %s on %s (%s)", cfg.model.name, cfg.backend.name, device.name)
        prepare_start = clock()
        prepared = backend.prepare(model, example, device, model_id(cfg))
        result.metrics["prepare_s"] = result.metrics["build_s"] + clock() - prepare_start
        del model  # a converted backend no longer needs the torch model: it leaves the run's memory figures
        with phase(result.metrics, "memory_reset_s"):
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
        contention, energy, heat = CpuContention(), EnergyMeter(device, specs.get("tdp_w")), ThermalMeter()
        meters = (heat, contention, energy)  # heat first: its reads stay outside the other meters' window
        if rule.cooloff_s:  # the meters would count the idle pauses: no energy figure
            meters, energy.source = (heat, contention), "none: the protocol pauses between iterations"
        if protocol.get("cooldown_below_c") is not None:  # before the cold call: the warm-up restores the steady state
            result.metrics.update(cool_down(float(protocol.cooldown_below_c),
                                            float(protocol.get("cooldown_max_s", DEFAULT_COOLDOWN_MAX_S))))
        scenario = cfg.scenario
        if scenarios.own_loop(scenario, protocol):
            timing = time_loop(prepared, device.sync, rule, meters=meters)  # its first call is the cold one
            step_ms = record_timing(result, timing, batch, prepared.inferences_per_step, protocol)
        else:
            if scenario.name == "server" and scenario.find_max_qps:
                meters, energy.source = (), "none: the max-QPS search runs several LoadGen tests"
            loaded = drive.measure(prepared, device.sync, rule, scenario, cfg.backend.name, meters)
            timing = loaded.timing
            step_ms = record_load(result, loaded, scenario, batch, prepared.inferences_per_step, protocol)
            if loaded.other_cpu_cores is not None:  # the search's probes metered the host one by one
                contention.other_cores = loaded.other_cpu_cores
        inferences = batch * prepared.inferences_per_step
        record_contention(result, contention)
        record_thermal(result, heat)
        record_energy(result, energy, inferences * len(timing.latencies_ns))
        result.metrics[PEAK_MEMORY_MB] = memory.peak_rss_mb()
        if device.kind == "cuda":
            from embench.gpu import device_memory

            metrics, tags = device_memory(cfg.backend.name, device.torch_device.index or 0)
            result.metrics.update(metrics)
            result.tags.update(tags)
        with phase(result.metrics, "check_s"):
            check_output(prepared, cfg, example, result)
        with phase(result.metrics, "efficiency_s"):  # a peak GEMM (once per precision and host) after the memory peak
            record_efficiency(result, device, specs.get("peak_fp32_gflops"))
        if protocol.profile_iterations > 0:
            log.info("profiling %d iteration(s)", protocol.profile_iterations)
            with phase(result.metrics, "profile_s"):
                result.profile = prepared.profile(int(protocol.profile_iterations))
            result.metrics.update(result.profile.metrics(step_ms / prepared.inferences_per_step))
        if evaluation is not None:  # last: its time is in no timing figure
            log.info("classifying %d labelled image(s) of %s", len(evaluation.images.paths), evaluation.images.root)
            evaluation.measure(prepared, cfg, result, model_id(cfg), evaluate.is_reference(cfg, device.kind))


def _reset_memory_peak(result: RunResult, device: platform.Device) -> None:
    """Ends the preparation's memory window and starts the prepared backend's (cold start to the end of timing)."""
    gc.collect()
    result.metrics["prepare_peak_memory_mb"] = memory.peak_rss_mb()
    result.tags["peak_memory_source"] = memory.reset_peak()
    result.metrics["memory_baseline_mb"] = memory.peak_rss_mb()  # resident set when the peak was reset
    if device.kind == "cuda":
        torch.cuda.reset_peak_memory_stats()



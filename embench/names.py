"""The names of the metrics, tags and params that one module writes and another reads.

A run's writers (the point, the backends, the scenarios, tracking) and its readers (the report, the UI
links, the sweep's summary, the log line of a kept run) import these, so that a renamed metric is renamed
everywhere at once. Only names that cross a module boundary are here; metrics are named with their unit.
"""

# Latency of single calls, timed one by one (embench.stats); percentiles by nearest rank
LATENCY_MEDIAN_MS = "latency_median_ms"
LATENCY_MIN_MS = "latency_min_ms"
LATENCY_MAX_MS = "latency_max_ms"
LATENCY_PERCENTILE_MS = "latency_p{}_ms"  # .format(90): only where the sample holds it
LATENCY_P90_MS = LATENCY_PERCENTILE_MS.format(90)
LATENCY_P99_MS = LATENCY_PERCENTILE_MS.format(99)
LATENCY_CV = "latency_cv"  # standard deviation / mean
LATENCY_DRIFT = "latency_drift"  # median of the loop's second half / its first half, minus 1

# Throughput and complexity
THROUGHPUT_IPS = "throughput_ips"  # inferences per second
BATCH_TIME_MS = "batch_time_ms"  # throughput mode: the timed loop's wall time / its batches
ENQUEUE_INTERVAL_CV = "enqueue_interval_cv"  # throughput mode: the CV of the iteration times
FLOPS = "flops"  # per inference (2 x MACS)
MACS = "macs"  # multiply-accumulates per inference
PARAMS = "params"  # the network's parameters
ACHIEVED_GFLOPS = "achieved_gflops"
PEAK_GFLOPS = "peak_gflops"  # the device's peak at the precision that ran

# Load scenarios (LoadGen): a query's latency runs from its scheduled issue to its completion
QUERY_LATENCY_MS = "query_latency_{}_ms"  # .format("p50"), ("p99"), ("mean"), ...
QUERY_LATENCY_P50_MS = QUERY_LATENCY_MS.format("p50")
QUERY_LATENCY_P90_MS = QUERY_LATENCY_MS.format("p90")
QUERY_LATENCY_P99_MS = QUERY_LATENCY_MS.format("p99")
SAMPLES_PER_S = "samples_per_s"
OFFERED_QPS = "offered_qps"  # server: the Poisson rate LoadGen offered
LATENCY_BOUND_MS = "latency_bound_ms"  # server: the p99 bound of a valid run
OVER_BOUND_SHARE = "over_bound_share"  # server: the share of queries over the bound
LOADGEN_VALID = "loadgen_valid"  # 1.0 when LoadGen judged the run VALID
SERVER_MAX_QPS = "server_max_qps"  # the max-QPS search's highest valid rate
EARLY_STOPPING_P90_MS = "early_stopping_p90_ms"  # LoadGen's early-stopping estimate of the p90
SERVICE_TIME_MEDIAN_MS = "service_time_median_ms"  # one step's own time, without the wait in the queue

# Memory, energy, the host
PEAK_MEMORY_MB = "peak_memory_mb"  # resident set, cold start to the end of timing
PEAK_DEVICE_MEMORY_MB = "peak_device_memory_mb"  # CUDA: torch's allocator
INFERENCES_PER_JOULE = "inferences_per_joule"
HOST_OTHER_CPU_CORES = "host_other_cpu_cores"  # other processes' CPU while measuring, in cores

# Profile (embench.profiling): op self-times per inference against the end-to-end time
PROFILE_PCT = "profile_pct_"  # + a layer category: its share of the profiled time, in %
PROFILE_TOTAL_MS = "profile_total_ms"
PROFILE_WALL_MS = "profile_wall_ms"  # a profiled inference's wall time, profiler overhead included
PROFILE_COVERAGE = "profile_coverage"  # PROFILE_TOTAL_MS / the median latency

# Co-located networks: metrics colocated.<network>.<alone|together>.<metric> and colocated.<network>.slowdown_<p>,
# tag colocated.<network>.threads
COLOCATED = "colocated."

# Tags of a measured run
STATUS_TAG = "status"  # ok, failed, oom, killed
ERROR_TAG = "error"
UNSTABLE_TAG = "unstable"  # "true" when the CV or the drift passed protocol.unstable_cv
HOST_BUSY_TAG = "host_busy"  # "true" when other processes used the CPU while measuring
THREADS_OVERSUBSCRIBED_TAG = "threads_oversubscribed"
THREADS_TAG = "threads"
PRECISION_TAG = "backend.precision"  # the precision the kernels ran in
DEVICE_TYPE_TAG = "device.type"
DEVICE_NAME_TAG = "device.name"
DEVICE_FALLBACK_TAG = "device.fallback"  # set when the platform was absent and the run used this host's device
HOST_NAME_TAG = "host.name"
CPU_MODEL_TAG = "host.cpu_model"
CPU_PHYSICAL_CORES_TAG = "host.cpu_physical_cores"
CPU_LOGICAL_CORES_TAG = "host.cpu_logical_cores"
MEMORY_GB_TAG = "host.memory_gb"
TORCH_VERSION_TAG = "version.torch"
GIT_COMMIT_TAG = "embench.git_commit"
LOADGEN_VALIDITY_TAG = "loadgen.validity"  # VALID or INVALID
LOADGEN_UNMET_TAG = "loadgen.unmet"  # the constraints a run did not meet, or none

# Tags that tie runs together (embench.tracking)
RUN_UID_TAG = "embench.run_uid"
SWEEP_UID_TAG = "embench.sweep_uid"
POINT_KEY_TAG = "embench.point_key"  # names what is measured (the config less tracking and resume)
NESTED_IN_TAG = "search.parent_run_uid"  # on a run nested in another (a search's probe): that run's run_uid
SWEEP_DIR_TAG = "embench.sweep_dir"  # on a sweep's parent run: its folder
REPORT_TAG = "embench.report"  # on the runs a report logs on its own
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own
RUN_NAME_TAG = "mlflow.runName"  # MLflow's own

# Params: the point's five keys, then the resolved config flattened (these are its keys that others read)
MODEL_PARAM, PLATFORM_PARAM, BACKEND_PARAM, PROTOCOL_PARAM, BATCH_PARAM = "model", "platform", "backend", "protocol", "batch"
POINT_PARAMS = (MODEL_PARAM, PLATFORM_PARAM, BACKEND_PARAM, PROTOCOL_PARAM, BATCH_PARAM)
PROTOCOL_MODE_PARAM = "protocol.mode"  # latency or throughput
PROTOCOL_HEADLINE_PARAM = "protocol.headline"  # median or min: the latency a run leads with
SCENARIO_PARAM = "scenario.name"
TARGET_QPS_PARAM = "scenario.target_qps"
FIND_MAX_QPS_PARAM = "scenario.find_max_qps"
RUNTIME_PRECISION_PARAM = "backend.runtime.precision"  # the precision asked for (PRECISION_TAG: the one that ran)

# Thermal and clock state (embench.thermal): metrics <name>_before and <name>_after, around the timed window
CPU_FREQ_MHZ = "cpu_freq_mhz"  # the fastest CPU's clock (cpufreq)
GPU_FREQ_MHZ = "gpu_freq_mhz"  # a Jetson GPU's clock (devfreq)
TEMP_C = "temp_c"  # the hottest thermal zone at the window's end (TEMP_ZONE_TAG names it)
GPU_TEMP_C = "gpu_temp_c"  # the hottest thermal zone whose type names a GPU
COOLDOWN_S = "cooldown_s"  # the wait for protocol.cooldown_below_c before the run's first call
TEMP_ZONE_TAG = "temp_zone"
THROTTLED_TAG = "throttled"  # "true"/"false"; absent where neither a clock nor a trip point is readable
THROTTLED_REASON_TAG = "throttled_reason"

# Versions of what measured a run (embench.host, the backends, embench.point.record): tag version.<package>. The
# runtimes' may differ from node to node of a farm: the sweep's summary and the report name those that differ
VERSION_TAG = "version."  # + a package: version.python, version.torch, version.onnxruntime, ...
RUNTIME_VERSION_TAGS = tuple(VERSION_TAG + runtime for runtime in (
    "torch", "openvino", "nncf", "onnxruntime", "executorch", "tensorrt", "cuda", "nvidia_driver"))
EMBENCH_CODE_TAG = VERSION_TAG + "embench_code"  # a hash of embench's own source files (embench.host.code_identity)

# Accuracy on labelled images through the backend that was timed (embench.accuracy); in percent or percentage points
ACCURACY_TOP1 = "accuracy_top1"  # % of the images whose top-1 class is their label
ACCURACY_TOP5 = "accuracy_top5"
ACCURACY_SAMPLES = "accuracy_samples"  # images evaluated
ACCURACY_TOP1_CI95_LOW = "accuracy_top1_ci95_low"  # Wilson score interval, 95 %
ACCURACY_TOP1_CI95_HIGH = "accuracy_top1_ci95_high"
ACCURACY_REFERENCE_TOP1 = "accuracy_reference_top1"  # torch eager FP32 on the CPU, same model, same images
ACCURACY_TOP1_DELTA = "accuracy_top1_delta"  # this run minus the reference, percentage points
ACCURACY_TOP1_DELTA_CI95_LOW = "accuracy_top1_delta_ci95_low"  # paired: Bonett-Price adjusted Wald, 95 %
ACCURACY_TOP1_DELTA_CI95_HIGH = "accuracy_top1_delta_ci95_high"
ACCURACY_TOP1_DELTA_P = "accuracy_top1_delta_mcnemar_p"  # McNemar's exact test of no difference
ACCURACY_TOP1_AGREEMENT = "accuracy_top1_agreement"  # % of the images whose top-1 class is the reference's
ACCURACY_S = "accuracy_s"  # wall time of the accuracy pass (this run's images; the reference's apart)
ACCURACY_DATASET_TAG = "accuracy.dataset"  # the image folder
ACCURACY_DATASET_ID_TAG = "accuracy.dataset_id"  # a fingerprint of its file list, the limit, the order and the class map
ACCURACY_CALIBRATION_TAG = "accuracy.calibration"  # INT8: which images calibrated the activation ranges

# Adaptive stop rules (embench.sequential, embench.measure): protocol.target_ci and protocol.warmup
WARMUP_END_TAG = "warmup_end"  # fixed | settled (two windows agreed) | cap max_duration_s | cap max_iterations
PRECISION_TARGET_TAG = "precision_target"  # under target_ci: reached | not reached: cap max_duration_s (or max_iterations)
LATENCY_MEDIAN_CI_REL_HALFWIDTH = "latency_median_ci_rel_halfwidth"  # the reported interval's (high - low) / 2 / median
LATENCY_MEDIAN_CI_SEQ_LOW_MS = "latency_median_ci_seq_low_ms"  # under target_ci: the interval the rule stopped on
LATENCY_MEDIAN_CI_SEQ_HIGH_MS = "latency_median_ci_seq_high_ms"
LATENCY_MEDIAN_CI_SEQ_LEVEL = "latency_median_ci_seq_level"  # its nominal level at each look, 1 - 0.05 / looks

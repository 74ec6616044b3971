"""Runtimes that turn a torch model into a prepared, callable inference on a device.

A backend is a class named by `backend.runtime._target_`, with `DEVICE_KINDS` (the platform
device kinds it runs on) and `prepare(model, example, device, model_id) -> Prepared`. A Prepared
object runs one step (one or more inferences of the bound batch) when called, and has:
`inferences_per_step` (batches per step), `output()` (one inference's output as a float32 CPU
tensor, checked against torch eager), `tolerance` (relative to the output's magnitude), `tags`
(what the runtime really used) and `profile(iterations) -> embench.profiling.Profile`.
"""

# Relative output tolerance by numeric precision: a wrong output differs by ~100 %, these do not.
TOLERANCE = {"fp32": 1e-2, "fp16": 5e-2, "bf16": 1.5e-1}

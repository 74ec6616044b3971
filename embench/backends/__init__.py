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


def check_option(key: str, value, valid: bool, what: str) -> None:
    """One line for a bad backend option: `backend.runtime.KEY=VALUE is not valid: WHAT`."""
    from embench.errors import ConfigError

    if not valid:
        raise ConfigError(f"backend.runtime.{key}={value!r} is not valid: {what}")


def check_flags(**flags) -> None:
    for key, value in flags.items():
        check_option(key, value, isinstance(value, bool), "use true or false")


def is_count(value, at_most: int = 1024) -> bool:
    """A whole number from 1 to `at_most`."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= at_most

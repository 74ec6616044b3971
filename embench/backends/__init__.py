"""Runtimes that turn a torch model into a prepared, callable inference on a device.

A backend is a class named by `backend.runtime._target_` that satisfies `Backend`; what its
`prepare` returns satisfies `Prepared`. A new runtime is one module here plus one YAML in
`conf/backend/`; a runtime that needs a package outside embench's core asks for it with `require`.
"""

import importlib
from collections import Counter
from types import ModuleType
from typing import ClassVar, Protocol, runtime_checkable

import torch

from embench.names import PRECISION_TAG
from embench.platform import Device
from embench.profiling import Profile

# The precisions embench names, in `backend.runtime.precision` and the `backend.precision` tag, on every backend.
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
# Relative output tolerance by numeric precision: a wrong output differs by ~100 %, these do not.
# INT8 (post-training, calibrated on random images) is checked for a gross error only; its agreement
# with FP32 is reported as output_top1_agreement.
TOLERANCE = {"fp32": 1e-2, "fp16": 5e-2, "bf16": 1.5e-1, "int8": 5e-1}


@runtime_checkable
class Prepared(Protocol):
    """A model ready on its runtime: calling it runs one step (`inferences_per_step` batches)."""

    inferences_per_step: int
    tags: dict[str, str]  # what the runtime really used
    files: dict[str, bytes]  # artifacts to keep with the run (a converted program), by file name

    def __call__(self) -> object: ...

    @property
    def tolerance(self) -> float:
        """Allowed difference from torch eager FP32, relative to the output's magnitude."""

    def output(self) -> torch.Tensor:
        """One inference's output as a float32 CPU tensor."""

    def profile(self, iterations: int) -> Profile:
        """Per-op self times from the runtime's own profiler, in a pass apart from the timed loop."""

    # Optional: `replica() -> Callable | None`, a step another thread may run at the same time as this
    # one (its own request or binding on the same loaded model); scenario.workers > 1 needs it.
    # Optional: `inputs`, the tensor or array every step reads, bound once; accuracy=imagefolder writes
    # images into it in place and reads `output()`, so the images run through what was timed.


@runtime_checkable
class Backend(Protocol):
    """A runtime's options, checked when built; `prepare` converts and loads a model."""

    DEVICE_KINDS: ClassVar[tuple[str, ...]]  # the platform device kinds it runs on

    def prepare(self, model: torch.nn.Module, example: torch.Tensor, device: Device, model_id: str) -> Prepared: ...


def require(module: str, extra: str) -> ModuleType:
    """Imports a runtime's package, or names the extra that installs it in one line."""
    from embench.errors import ConfigError

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(
            f"the {module.split('.')[0]} package that this backend needs is not installed ({err}): "
            f'pip install "embench[{extra}]"'
        ) from None


def check_option(key: str, value, valid: bool, what: str) -> None:
    """One line for a bad backend option: `backend.runtime.KEY=VALUE is not valid: WHAT`."""
    from embench.errors import ConfigError

    if not valid:
        raise ConfigError(f"backend.runtime.{key}={value!r} is not valid: {what}")


def check_choice(key: str, value, choices) -> None:
    check_option(key, value, value in choices, f"valid: {', '.join(choices)}")


def check_calibration(samples, seed) -> None:
    """INT8 calibration options: how many seeded random images, and their seed."""
    check_option("calibration_samples", samples, is_count(samples, 100_000), "a whole number of images from 1")
    check_option("calibration_seed", seed, isinstance(seed, int) and not isinstance(seed, bool), "a whole number")


def check_flags(**flags) -> None:
    for key, value in flags.items():
        check_option(key, value, isinstance(value, bool), "use true or false")


def is_count(value, at_most: int = 1024) -> bool:
    """A whole number from 1 to `at_most`."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= at_most


def check_precision(precision, runs: tuple[str, ...]) -> None:
    """A precision this backend cannot run, in one line: what it runs instead."""
    check_option("precision", precision, precision in runs, f"this backend runs {', '.join(runs)} "
                 f"(embench's precisions: {', '.join(PRECISIONS)})")


def tolerance(asked: str, ran: str) -> float:
    """The looser of the two precisions' tolerances: an INT8 model run in FP32 keeps its quantized weights."""
    return max(TOLERANCE[asked], TOLERANCE.get(ran, TOLERANCE[asked]))  # a runtime's own name: the one asked for


def kernel_precision_tags(asked: str, kernels: Counter, where: str) -> dict[str, str]:
    """Tags for the precisions a model's compute kernels (convolutions, matrix products) ran in, as the runtime says.

    `backend.precision` is the precision most of them ran in (the wider one on a tie), `backend.kernel_precisions`
    how many ran in each. A run where none ran in the precision asked for is refused before anything is measured:
    its numbers would be another precision's. `where` names the runtime and device in that line.
    """
    from embench.errors import ConfigError

    wider = {precision: rank for rank, precision in enumerate(PRECISIONS)}  # a runtime's own name sorts last
    counted = sorted(kernels.items(), key=lambda item: (-item[1], wider.get(item[0], len(wider))))
    if not counted:
        return {PRECISION_TAG: asked, "backend.kernel_precisions": "none: no convolution or matrix product"}
    ran = ", ".join(f"{precision} {count}" for precision, count in counted)
    if asked not in kernels:
        raise ConfigError(f"backend.runtime.precision={asked!r} does not run on {where}: it ran the model's "
                          f"convolutions and matrix products in {ran}; set backend.runtime.precision={counted[0][0]}")
    return {PRECISION_TAG: counted[0][0], "backend.kernel_precisions": ran}

"""embench's Hydra sweeper, on Hydra's public Sweeper API: it expands the sweep as Hydra's basic sweeper
does (the cartesian product of every comma-separated override, `hydra.sweeper.params` first), and
embench.sweep runs the jobs where `farm` says (embench's farms take the place of Hydra's launcher)."""

import itertools

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper

from embench.outcome import Outcome


class EmbenchSweeper(Sweeper):
    """Expands `-m` overrides (and hydra.sweeper.params); embench checks and runs the jobs."""

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None):
        self.params = params or {}  # max_batch_size: Hydra's basic sweeper's key, for launchers; no launcher here

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.outcome = getattr(task_function, "outcome", None) or Outcome()  # embench's task carries the exit code

    def sweep(self, arguments: list[str]):
        from embench.sweep.run import run_sweep

        params = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        overrides = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(params)
        choices: dict[str, list[str]] = {}
        for override in overrides:
            key = override.get_key_element()
            if not override.is_sweep_override():
                choices[key] = [f"{key}={override.get_value_element_as_str()}"]
            elif override.is_discrete_sweep():
                choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
            else:
                raise HydraException(f"embench's sweeper sweeps lists of values (a,b,c), not {override.value_type.name}")
        jobs = [list(job) for job in itertools.product(*choices.values())]
        return run_sweep(self.config, self.hydra_context, jobs, self.outcome)

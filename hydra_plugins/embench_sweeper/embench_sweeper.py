"""embench's Hydra sweeper: Hydra's basic sweeper expands the sweep, embench.sweep runs it."""

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser


class EmbenchSweeper(BasicSweeper):
    """Expands `-m` overrides (and hydra.sweeper.params) like the basic sweeper; embench runs the jobs."""

    def sweep(self, arguments: list[str]):
        from embench.sweep import run_sweep

        params = self._parse_config() + list(arguments)
        overrides = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(params)
        jobs = [list(job) for batch in self.split_arguments(overrides, None) for job in batch]
        return run_sweep(self.config, self.hydra_context, jobs)

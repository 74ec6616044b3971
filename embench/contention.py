"""How much CPU other processes took while a measurement ran.

A busy core can slow multi-threaded CPU inference many times over, steadily, so the coefficient
of variation does not show it: squeezenet1_1 at batch 2 on this 2-core host took 19 ms idle and
1160 ms with another process busy on one core. Counters are read only before and after the timed loop: nothing is added inside it.
"""

import psutil

BUSY_CORES = 0.25  # other processes' CPU use, in cores, above which a run is tagged contended


class CpuContention:
    """Context manager: `other_cores` is the average CPU, in cores, used by other processes."""

    def __init__(self) -> None:
        self.other_cores = 0.0
        self._process = psutil.Process()

    def __enter__(self) -> "CpuContention":
        psutil.cpu_percent(interval=None)
        self._process.cpu_percent(interval=None)
        return self

    def __exit__(self, *exc) -> None:
        total_cores = psutil.cpu_percent(interval=None) / 100.0 * (psutil.cpu_count() or 1)
        own_cores = self._process.cpu_percent(interval=None) / 100.0
        self.other_cores = max(total_cores - own_cores, 0.0)

    @property
    def busy(self) -> bool:
        return self.other_cores > BUSY_CORES

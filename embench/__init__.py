"""embench: declarative benchmarks of DNN inference across devices and runtimes."""

__version__ = "0.1.0"

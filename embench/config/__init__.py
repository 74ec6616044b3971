"""Configuration: where the config groups are, each group's keys, and the checks of values and keys."""

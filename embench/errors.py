"""Errors that embench reports to the user in one line, without a traceback."""


class EmbenchError(Exception):
    """A problem the user can fix; its message names the bad value and what is valid."""

    exit_code = 1


class ConfigError(EmbenchError):
    """A configuration value is invalid (bad override, bad model file, ...)."""

    exit_code = 2


class DeviceUnavailable(EmbenchError):
    """The platform asks for a device this host does not have."""

    exit_code = 2


class TrackingError(EmbenchError):
    """MLflow could not be reached or refused the run; the result file is kept."""

    exit_code = 3

"""Credentials in a tracking URI never reach a file, a tag, a log line or the screen.

`http://user:secret@host` is split into the bare URI, which embench keeps and shows, and
MLflow's own basic-auth variables (MLFLOW_TRACKING_USERNAME / _PASSWORD), which it uses.
A server that refuses them is said in one line that names the user, never the password.
"""

import os
import re
import urllib.parse

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"]+@")
_URI_OVERRIDE = re.compile(r"^(?P<key>\+{0,2}tracking\.uri=)(?P<value>.*)$", re.DOTALL)


def redact(text: str) -> str:
    """Any `scheme://user:secret@` in `text` becomes `scheme://***@`."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def move_to_environment(uri: str) -> str:
    """The URI without user and password; those go to MLflow's basic-auth variables."""
    parts = urllib.parse.urlsplit(uri)
    if not parts.username:
        return uri
    os.environ["MLFLOW_TRACKING_USERNAME"] = urllib.parse.unquote(parts.username)
    if parts.password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = urllib.parse.unquote(parts.password)
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def strip_from_command_line(argv: list[str]) -> list[str]:
    """MLFLOW_TRACKING_URI and tracking.uri=... overrides made credential-free before Hydra sees them."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        os.environ["MLFLOW_TRACKING_URI"] = move_to_environment(os.environ["MLFLOW_TRACKING_URI"])
    cleaned = []
    for arg in argv:
        match = _URI_OVERRIDE.match(arg)
        if match and "@" in match["value"]:
            arg = match["key"] + ",".join(move_to_environment(uri) for uri in match["value"].split(","))
        cleaned.append(arg)
    return cleaned


def refusal(uri: str, status: int, user: str | None, experiment: str, what: str) -> str:
    """One line for a server that refused the user (HTTP 401) or its right to `what` in the experiment (403)."""
    variables = "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
    if status == 403:
        return (f"MLflow at {uri} does not let user {user!r} {what} in experiment {experiment!r} (HTTP 403): ask "
                f"the server's admin for EDIT on it (MANAGE to delete runs), or name an experiment of your own "
                f"(tracking.experiment=...)")
    if not user:
        return f"MLflow at {uri} asks for a user and password (HTTP 401) and none was given: set {variables}"
    return (f"MLflow at {uri} refused user {user!r} (HTTP 401: wrong user or password): "
            f"set {variables} to a user of that server and its password")

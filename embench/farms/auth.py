"""The farm's token: Ray's own token authentication (RAY_AUTH_MODE=token), on by default.

Ray reads the token from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names, else
~/.ray/auth_token; every node and the workstation need the same one. `embench node --head` creates
the file (readable by its user only) where Ray will look for it, or reuses the one there.
"""

import ipaddress
import os
import secrets
import socket
import stat
from pathlib import Path

from embench.errors import ConfigError

MODE = "RAY_AUTH_MODE"
TOKEN = "RAY_AUTH_TOKEN"
TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"


def token_file() -> Path:
    """Where Ray reads the token file: RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token."""
    return Path(os.environ.get(TOKEN_PATH) or Path.home() / ".ray" / "auth_token").expanduser()


def token_here() -> str | None:
    """Where this process's token comes from (the variable or the file), or None when it has none.

    Raises ConfigError when the token file can be read by other users or is empty.
    """
    if os.environ.get(TOKEN):
        return TOKEN
    path = token_file()
    if not path.is_file():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"the farm's token file {path} can be read by other users (mode {mode:o}): "
                          f"`chmod 600 {path}`")
    if not path.read_text().strip():
        raise ConfigError(f"the farm's token file {path} is empty: copy the head's token there")
    return str(path)


def create_token() -> tuple[str, bool]:
    """The head's token file, created (readable by its user only) when there is none; and whether it was created."""
    source = token_here()
    if source:
        return source, False
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_hex(32))
    return str(path), True


def _no_token(where: str, insecure_hint: str) -> ConfigError:
    return ConfigError(f"{where} has no farm token: copy the head's token file (~/.ray/auth_token on the head, made "
                       f"by `embench node --head`) to {token_file()} here, readable by you only (chmod 600), or point "
                       f"{TOKEN_PATH} at it; {insecure_hint}")


def use_token(insecure: bool, where: str, insecure_hint: str) -> None:
    """Sets RAY_AUTH_MODE for this process and the Ray processes it starts: token unless `insecure`.

    Raises ConfigError when a token is needed and this host has none."""
    if insecure:
        os.environ[MODE] = "disabled"
        return
    if not token_here():
        raise _no_token(where, insecure_hint)
    os.environ[MODE] = "token"


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this host's loopback."""
    host = host.strip("[]")
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except (OSError, ValueError):
        return False


def outward_address() -> str:
    """This host's address on its default route, as other hosts would reach it (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a route lookup only
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"

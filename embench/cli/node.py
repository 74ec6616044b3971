"""`embench node`: this host joins the farm's Ray cluster, serving the platforms whose devices it has.

    embench node --platform xavier --address HEAD:6379      # a Jetson joins the farm
    embench node --platform cpu,cuda --head                  # a GPU server starts the farm's head

Each platform is checked as a local run checks it (its device is here, or one line says what is
missing), then the process becomes `ray start --block`, advertising `platform:<name>` with capacity
1 per platform and one `embench:host` unit that every job takes: one job on this host at a time,
whatever platforms it serves, unless they are declared `--independent`. The farm uses Ray's token
authentication (embench.farms.auth): `--head` creates the token, a joining node needs a copy of it.
Stop the node with Ctrl-C or SIGTERM to its PID.
"""

import argparse
import json
import os
import sys

from embench import outcome
from embench.errors import ConfigError, EmbenchError
from embench.farms import auth
from embench.farms.ray import HOST_RESOURCE, resource

DEFAULT_PORT = 6379


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        outcome.say_error(f"embench node: {message} (see embench node --help)")
        sys.exit(2)


def _number(low: int, high: int | None = None):
    """An argparse type: a whole number from `low` (to `high`), said in one line otherwise."""
    def parse(text: str) -> int:
        value = int(text) if text.lstrip("-").isdigit() else None
        if value is None or value < low or high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text!r} is not valid: a whole number from {low}"
                                             f"{f' to {high}' if high is not None else ''}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="embench node", description=__doc__.split("\n\n")[0],
                     epilog="Arguments after -- go to `ray start` as they are (e.g. -- --include-dashboard=false).")
    parser.add_argument("--platform", required=True, help="platform(s) this host serves, comma-separated (conf/platform/)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--address", help="the farm head's HOST:PORT, to join it")
    where.add_argument("--head", action="store_true", help="start the farm's head on this host")
    parser.add_argument("--port", type=_number(1, 65535), default=DEFAULT_PORT,
                        help=f"the head's port (with --head; default {DEFAULT_PORT})")
    parser.add_argument("--config-dir", help="a folder of your own config groups (as embench's --config-dir)")
    parser.add_argument("--num-cpus", type=_number(0), help="CPUs Ray may use here (default: all)")
    parser.add_argument("--independent", action="store_true",
                        help="the platforms share nothing (e.g. two GPUs, each with its own cores): their jobs run "
                             "at the same time (default: one job on this host at a time)")
    parser.add_argument("--insecure", action="count", default=0,
                        help="no token: anyone who reaches the farm's ports runs code on it; on loopback only "
                             "(127.0.0.1), unless given twice")
    return parser


def _check_platform(name: str, config_dir: str | None) -> None:
    """The platform's config and device, by the checks a local run makes (embench.checks). Raises EmbenchError."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from embench import checks
    from embench.config.paths import config_dir as embench_config_dir

    overrides = [f"platform={name}"]
    if config_dir:
        overrides.append(f"hydra.searchpath=[file://{os.path.abspath(config_dir)}]")
    with initialize_config_dir(config_dir=embench_config_dir(), version_base="1.3"):
        try:
            cfg = compose("config", overrides=overrides)
        except HydraException as err:
            raise ConfigError(" ".join(str(err).split()).split(" Config search path")[0]) from None
    checks.check_config(cfg)
    checks.check_device(cfg.platform)


def ray_start_command(args, extra: list[str]) -> list[str]:
    resources = {resource(name): 1 for name in args.platforms}
    resources[HOST_RESOURCE] = len(args.platforms) if args.independent else 1
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
               f"--resources={json.dumps(resources)}"]
    command += ["--head", f"--port={args.port}"] if args.head else [f"--address={args.address}"]
    if args.insecure == 1:
        command.append("--node-ip-address=127.0.0.1")
    if args.num_cpus is not None:
        command.append(f"--num-cpus={args.num_cpus}")
    return command + extra


def _secure(args) -> list[str]:
    """RAY_AUTH_MODE for the node; the lines that say how others join. Raises ConfigError."""
    head = f"{'127.0.0.1' if args.insecure == 1 else auth.outward_address()}:{args.port}" if args.head else args.address
    if args.insecure == 1 and not args.head and not auth.is_loopback(args.address.rpartition(":")[0]):
        raise ConfigError(f"--address={args.address} is not this host's loopback: a farm without a token runs "
                          "on loopback only; give the head's token to this node instead (or --insecure twice)")
    source, created = auth.create_token() if args.head and not args.insecure else (auth.token_here(), False)
    auth.use_token(bool(args.insecure), "this node", "a farm started with --insecure is joined with --insecure")
    if args.insecure:
        where = "on loopback only" if args.insecure == 1 else "ANYONE who reaches its ports runs code on its nodes"
        return [f"warning: this farm has no token ({where})",
                f"a node joins with `embench node --platform PLATFORM --address {head} --insecure`; the "
                "workstation sets farm.insecure=true"]
    if source != auth.TOKEN:
        source = f"{source} ({'created' if created else 'reused'}; readable by you only)"
    return [f"farm token: {source}",
            f"to join a node: copy the token to ~/.ray/auth_token there (readable by you only), then run "
            f"`embench node --platform PLATFORM --address {head}`",
            f"the workstation: the same copy of the token, and farm=ray farm.address={head}"]


def main(argv: list[str]) -> None:
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = _parser().parse_args(argv[:len(argv) - len(extra) - bool(extra or "--" in argv)])
    args.platforms = [name.strip() for name in args.platform.split(",") if name.strip()]
    if not args.platforms:
        _parser().error(f"--platform={args.platform!r} names no platform")
    try:
        for name in args.platforms:
            _check_platform(name, args.config_dir)
        lines = _secure(args)
    except EmbenchError as err:
        outcome.say_error(f"embench node: {err}")
        sys.exit(err.exit_code)
    command = ray_start_command(args, extra)
    at_once = "their jobs at the same time" if args.independent else "one job on this host at a time"
    for line in [f"serving {', '.join(f'platform={name}' for name in args.platforms)}, {at_once}", *lines,
                 " ".join(command[1:])]:
        print(f"embench node: {line}", flush=True)
    os.execv(command[0], command)  # this PID becomes the node: stopping it stops Ray's processes here

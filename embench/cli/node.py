"""`embench node`: this host joins the farm's Ray cluster, serving the platforms whose devices it has.

    embench node --platform xavier --address HEAD:6379      # a Jetson joins the farm
    embench node --platform cpu,cuda --head                  # a GPU server starts the farm's head

Each platform is checked as a local run checks it (its device is here, or one line says what is
missing), then the process becomes `ray start --block`, advertising `platform:<name>` with capacity
1 per platform: one job per device at a time. Stop the node with Ctrl-C or SIGTERM to its PID.
"""

import argparse
import json
import os
import sys

from embench import outcome
from embench.errors import ConfigError, EmbenchError
from embench.farms.ray import resource

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
    resources = json.dumps({resource(name): 1 for name in args.platforms})
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
               f"--resources={resources}"]
    command += ["--head", f"--port={args.port}"] if args.head else [f"--address={args.address}"]
    if args.num_cpus is not None:
        command.append(f"--num-cpus={args.num_cpus}")
    return command + extra


def main(argv: list[str]) -> None:
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = _parser().parse_args(argv[:len(argv) - len(extra) - bool(extra or "--" in argv)])
    args.platforms = [name.strip() for name in args.platform.split(",") if name.strip()]
    if not args.platforms:
        _parser().error(f"--platform={args.platform!r} names no platform")
    try:
        for name in args.platforms:
            _check_platform(name, args.config_dir)
    except EmbenchError as err:
        outcome.say_error(f"embench node: {err}")
        sys.exit(err.exit_code)
    command = ray_start_command(args, extra)
    print(f"embench node: serving {', '.join(f'platform={name}' for name in args.platforms)}: {' '.join(command[1:])}",
          flush=True)
    os.execv(command[0], command)  # this PID becomes the node: stopping it stops Ray's processes here

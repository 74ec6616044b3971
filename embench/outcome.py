"""The process exit status, gathered from jobs and the sweep (Hydra returns nothing to its caller)."""

import sys

_codes: list[int] = []


def record(code: int) -> None:
    _codes.append(code)


def exit_code() -> int:
    return max(_codes, default=0)


def say_error(message: str) -> None:
    """The one line a user sees for a problem they can fix."""
    print(f"embench: error: {message}", file=sys.stderr, flush=True)


def say_note(message: str) -> None:
    """One line about something embench did on the user's behalf."""
    print(f"embench: note: {message}", file=sys.stderr, flush=True)

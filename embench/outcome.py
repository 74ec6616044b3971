"""What a user reads of a run's outcome: the process exit status, and one-line errors and notes."""

import sys
from dataclasses import dataclass


@dataclass
class Outcome:
    """The process exit status, gathered as the run or the sweep's jobs finish: the highest code wins
    (0 ok, 1 a failed run, 2 bad input, 3 MLflow unreachable, 128+N a signal)."""

    code: int = 0

    def record(self, code: int) -> None:
        self.code = max(self.code, code)


def say_error(message: str) -> None:
    """The one line a user sees for a problem they can fix."""
    print(f"embench: error: {message}", file=sys.stderr, flush=True)


def say_note(message: str) -> None:
    """One line about something embench did on the user's behalf."""
    print(f"embench: note: {message}", file=sys.stderr, flush=True)

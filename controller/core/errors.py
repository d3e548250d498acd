"""The project's own exceptions.

Everything opensweep raises on purpose derives from :class:`OpensweepError`, so an adapter (the
CLI, a gRPC servicer) can turn any of them into a clear message with one ``except`` and never
show a traceback for bad input.

Config problems are values first (:class:`Problem`: a key path and a message) and are raised
together in one :class:`ConfigError`, because a user fixing a config wants every mistake at once,
not one per attempt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class OpensweepError(Exception):
    """Base of every exception opensweep raises deliberately."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config.

    ``path`` is the dotted key path of the offending value (``parameters.lr.max``; list items as
    ``command[2]``) or ``""`` for the config as a whole. ``message`` says what is wrong and, when
    it helps, what was found (``must be greater than min (got min=0.1, max=0.01)``).
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(OpensweepError):
    """An invalid sweep config, with ALL the problems found in it (never just the first)."""

    problems: list[Problem]

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid config")


class CommandError(OpensweepError):
    """A run's command line cannot be built (a missing program, environment variable, file)."""


class GridIndexError(OpensweepError, IndexError):
    """A grid index outside ``[0, size)``."""

"""The argv of an assigned run, from the assignment's program and command template.

A RunAssignment carries the sweep's ``program`` and ``command`` (before macro expansion), not a
whole SweepConfig. Expansion itself belongs to the core
(:func:`controller.core.command.build_argv`), which reads only ``command`` and ``program`` from
the config when the parameters are nested, as they are in an assignment.
This adapter hands it exactly those two fields.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from controller.core.command import build_argv

if TYPE_CHECKING:
    from controller.core.config import SweepConfig


@dataclass(frozen=True)
class _CommandSource:
    command: tuple[str, ...] | None
    program: str | None


def run_argv(command: Sequence[str], program: str, params: Mapping[str, Any], *,
             environ: Mapping[str, str], args_json_file: str,
             interpreter: str | None = None) -> list[str]:
    """Expand an assignment's command. An empty ``command`` means the default command; an
    empty ``program`` means none. Raises CommandError when the command needs something missing.
    """
    source = _CommandSource(command=tuple(command) or None, program=program or None)
    return build_argv(cast("SweepConfig", source), dict(params),
                      interpreter=interpreter or sys.executable, environ=environ,
                      args_json_file=args_json_file)

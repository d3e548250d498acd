"""The argv of an assigned run, from the assignment's program and command template.

A RunAssignment carries the sweep's ``program`` and ``command`` (before macro expansion), not a
whole SweepConfig. Expansion itself belongs to the core
(:func:`controller.core.command.build_argv`), which reads only ``command`` and ``program`` from
the config when the parameters are nested, as they are in an assignment.
This adapter hands it exactly those two fields.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from controller.core.command import DEFAULT_COMMAND, ENV, INTERPRETER, PROGRAM, build_argv
from controller.core.errors import CommandError

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


def check_program(command: Sequence[str], program: str, cwd: str) -> None:
    """CommandError naming the directory when the program a command runs is not there.

    The commonest first mistake is starting the agent somewhere else than the sweep's relative
    ``program``; Python's own "can't open file" then repeats once per run. The check applies
    only where ``${program}`` is the program being run (first, after ``${env}`` or after
    ``${interpreter}``), not to other uses such as ``python -m ${program}``.
    """
    template = tuple(command) or DEFAULT_COMMAND
    if not program or PROGRAM not in template:
        return
    index = template.index(PROGRAM)
    if index > 0 and template[index - 1] not in (ENV, INTERPRETER):
        return
    if os.path.exists(os.path.join(cwd, program)) or shutil.which(program) is not None:
        return
    raise CommandError(f"program {program!r} not found in {cwd} (the agent runs programs from "
                       "its working directory: start it where the program is, or give the "
                       "program's absolute path in the sweep config)")

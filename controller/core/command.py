"""A run's command line: the sweep's ``command`` with its macros expanded, as an argv list.

The result is exec'd directly (never through a shell), so a parameter value such as
``"; rm -rf ~"`` reaches the program as one literal argument.

Macros replace whole list items (``${args}`` expands to several items); only
``${envvar:NAME}`` is also substituted inside an item. Any other item passes through as written.

Values are formatted like W&B's agent formats them, so programs written for W&B parse them
unchanged: ``str()`` for scalars (``--lr=0.001``, ``--flag=True``, ``--name=adam``). Where
``str()`` gives Python-only text, JSON is used instead: ``None`` is ``null`` and lists and dicts
(including a nested parameter's dict) are JSON (``--opt={"lr": 0.1}``), which any language and
``json.loads`` can read back.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from controller.core.errors import CommandError

if TYPE_CHECKING:
    from controller.core.config import SweepConfig

ENV: Final = "${env}"
INTERPRETER: Final = "${interpreter}"
PROGRAM: Final = "${program}"
ARGS: Final = "${args}"
ARGS_NO_HYPHENS: Final = "${args_no_hyphens}"
ARGS_NO_EQUALS: Final = "${args_no_equals}"
ARGS_NO_BOOLEAN_FLAGS: Final = "${args_no_boolean_flags}"
ARGS_JSON: Final = "${args_json}"
ARGS_JSON_FILE: Final = "${args_json_file}"
MACROS: Final = (ENV, INTERPRETER, PROGRAM, ARGS, ARGS_NO_HYPHENS, ARGS_NO_EQUALS,
                 ARGS_NO_BOOLEAN_FLAGS, ARGS_JSON, ARGS_JSON_FILE)
"""Macros that replace a whole list item; plus ``${envvar:NAME}`` anywhere in an item."""

DEFAULT_COMMAND: Final = (ENV, INTERPRETER, PROGRAM, ARGS)
ENV_PATH: Final = "/usr/bin/env"

_ENVVAR = re.compile(r"\$\{envvar:([^}]*)\}")
_ENVVAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WHOLE_MACRO = re.compile(r"^\$\{[^}]*\}$")


def format_value(value: Any) -> str:
    """A parameter value as it appears on a command line (W&B's ``str()``, JSON for None,
    lists and dicts)."""
    if value is None or isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return str(value)


def format_args(params: Mapping[str, Any], *, hyphens: bool = True,
                boolean_flags: bool = False, equals: bool = True) -> list[str]:
    """``--name=value`` items for the run's top-level parameters, in the given order.

    ``hyphens=False`` gives Hydra-style ``name=value``. ``boolean_flags=True`` turns a true
    boolean into ``--name`` and leaves a false one out (W&B's ``${args_no_boolean_flags}``).
    ``equals=False`` gives two items per parameter, ``--name`` and ``value`` (W&B's
    ``${args_no_equals}``, for parsers that do not split on ``=``).
    """
    prefix = "--" if hyphens else ""
    items: list[str] = []
    for name, value in params.items():
        if boolean_flags and isinstance(value, bool):
            if value:
                items.append(f"{prefix}{name}")
            continue
        if equals:
            items.append(f"{prefix}{name}={format_value(value)}")
        else:
            items.extend((f"{prefix}{name}", format_value(value)))
    return items


def known_macro_problem(item: str) -> str | None:
    """A warning for a command item that looks like a macro but is none (it would pass through
    literally), or uses ``${envvar:...}`` without a valid name; None when the item is fine."""
    for match in _ENVVAR.finditer(item):
        if not _ENVVAR_NAME.match(match.group(1)):
            return f"{match.group(0)} does not name an environment variable"
    if _WHOLE_MACRO.match(item) and item not in MACROS and not _ENVVAR.fullmatch(item):
        close = difflib.get_close_matches(item, list(MACROS), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"{item} is not a macro opensweep knows and is passed literally{hint}"
    return None


def build_argv(config: SweepConfig, params: Mapping[Any, Any], *, interpreter: str,
               environ: Mapping[str, str], args_json_file: str | None) -> list[str]:
    """The argv for one run of ``config`` with ``params`` (the run's nested config).

    ``interpreter`` replaces ``${interpreter}`` (the agent passes its own ``sys.executable``);
    ``environ`` is where ``${envvar:NAME}`` looks; ``args_json_file`` is the path the agent
    wrote the parameters to, required only when the command uses ``${args_json_file}``.
    ``params`` may also be flat (keyed by parameter paths); it is nested first. Parameters
    appear in name order (W&B's), so the same run always gets the same argv.
    Raises CommandError when something the command needs is missing.
    """
    if any(isinstance(k, tuple) for k in params):
        params = config.space.nest(dict(sorted(params.items())))
    # W&B's order: top-level parameters sorted by name, whatever order the caller's dict has.
    params = {name: params[name] for name in sorted(params)}
    template = config.command if config.command is not None else DEFAULT_COMMAND
    argv: list[str] = []
    for item in template:
        if item == ENV:
            argv.append(ENV_PATH)
        elif item == INTERPRETER:
            argv.append(interpreter)
        elif item == PROGRAM:
            if config.program is None:
                raise CommandError("the command uses ${program} but the config has no program")
            argv.append(config.program)
        elif item == ARGS:
            argv.extend(format_args(params))
        elif item == ARGS_NO_HYPHENS:
            argv.extend(format_args(params, hyphens=False))
        elif item == ARGS_NO_EQUALS:
            argv.extend(format_args(params, equals=False))
        elif item == ARGS_NO_BOOLEAN_FLAGS:
            argv.extend(format_args(params, boolean_flags=True))
        elif item == ARGS_JSON:
            argv.append(json.dumps(dict(params)))
        elif item == ARGS_JSON_FILE:
            if args_json_file is None:
                raise CommandError("the command uses ${args_json_file} but no file was given")
            argv.append(args_json_file)
        else:
            argv.append(_substitute_envvars(item, environ))
    return argv


def _substitute_envvars(item: str, environ: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise CommandError(f"the command uses ${{envvar:{name}}} but {name} is not set")
        return environ[name]

    return _ENVVAR.sub(replace, item)

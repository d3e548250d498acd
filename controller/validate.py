"""`sweep validate CONFIG.yaml [--json]`: check a sweep config offline, with no controller.

Exit 0 and a summary (method, metric, every parameter with its distribution and arguments, the
expected run count or "unbounded", warnings) for a valid config; exit 2 and every problem, one
``path: message`` per line on stderr, for an invalid one, a missing file or bad YAML. ``--json``
prints one JSON object on stdout instead, in both cases: ``{"valid", "errors": [{"path",
"message"}], "method", "expected_run_count"}`` (warnings, if any, go to stderr).
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from controller.core.config import SweepConfig, parse_config, parse_yaml, read_config_file
from controller.core.errors import ConfigError, Problem

EXIT_VALID = 0
EXIT_INVALID = 2


def read_config_text(path: str) -> str:
    """The text of the config at ``path`` (``-`` is stdin); ConfigError when unreadable."""
    if path != "-":
        return read_config_file(path)
    stream = getattr(sys.stdin, "buffer", None)  # a test may swap stdin for a text-only one
    try:
        return stream.read().decode("utf-8") if stream is not None else sys.stdin.read()
    except UnicodeDecodeError:
        raise ConfigError([Problem("", "cannot read -: not UTF-8 text")]) from None


def summary(config: SweepConfig) -> dict[str, Any]:
    """What ``--json`` prints for a valid config: exactly the issue's four keys, so scripts can
    rely on the shape (the parameters are in the text summary; warnings go to stderr)."""
    return {"valid": True, "errors": [], "method": config.method,
            "expected_run_count": config.expected_run_count}


def failure(problems: list[Problem], document: Any) -> dict[str, Any]:
    """What ``--json`` prints for an invalid config: every problem, and the method if readable."""
    method = document.get("method") if isinstance(document, dict) else None
    return {"valid": False,
            "errors": [{"path": p.path, "message": p.message} for p in problems],
            "method": method if isinstance(method, str) else None,
            "expected_run_count": None}


def _format_arguments(arguments: dict[str, Any]) -> str:
    return " ".join(f"{k}={json.dumps(v)}" for k, v in arguments.items())


def render_text(config: SweepConfig, source: str) -> str:
    """The human summary of a valid config."""
    lines = [f"{source}: valid"]
    if config.name:
        lines.append(f"name: {config.name}")
    lines.append(f"method: {config.method}")
    if config.metric is not None:
        target = "" if config.metric.target is None else f", target {config.metric.target}"
        lines.append(f"metric: {config.metric.name} ({config.metric.goal}{target})")
    lines.append(f"parameters ({len(config.space)}):")
    width = max((len(p.name) for p in config.space.parameters), default=0)
    dwidth = max((len(p.distribution) for p in config.space.parameters), default=0)
    for p in config.space.parameters:
        lines.append(f"  {p.name:<{width}}  {p.distribution:<{dwidth}}  "
                     f"{_format_arguments(p.arguments())}".rstrip())
    if config.early_terminate is not None:
        et = config.early_terminate
        brackets = et.brackets(up_to=10**6)
        shown = ", ".join(str(b) for b in brackets[:6]) + (", ..." if len(brackets) > 6 else "")
        lines.append(f"early_terminate: hyperband eta={et.eta} brackets [{shown}]"
                     f"{' strict' if et.strict else ''}")
    if config.grid_size is not None:
        lines.append(f"grid size: {config.grid_size}")
    if config.run_cap is not None:
        lines.append(f"run cap: {config.run_cap}")
    count = config.expected_run_count
    lines.append(f"expected run count: {'unbounded' if count is None else count}")
    lines.extend(f"warning: {w}" for w in config.warnings)
    return "\n".join(lines)


def run(path: str, *, as_json: bool = False, out: TextIO | None = None,
        err: TextIO | None = None, strict: bool = True) -> int:
    """Validate the config at ``path`` and report; returns the exit code (0 valid, 2 not).
    ``strict=False`` turns unknown keys into warnings, as W&B's server does."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        return _run(path, as_json, out, err, strict)
    except BrokenPipeError:  # `sweep validate ... | head`: the reader left, nothing to report
        return EXIT_VALID


def _run(path: str, as_json: bool, out: TextIO, err: TextIO, strict: bool) -> int:
    document: Any = None
    parsed = False
    try:
        document = parse_yaml(read_config_text(path))
        parsed = True
        config = parse_config(document, strict=strict)
    except ConfigError as e:
        if as_json:
            json.dump(failure(e.problems, document), out, indent=2)
            out.write("\n")
        else:
            if parsed:
                count = len(e.problems)
                err.write(f"{path}: invalid config ({count} problem{'s' if count != 1 else ''})\n")
            for problem in e.problems:
                err.write(f"{problem}\n")
        return EXIT_INVALID
    if as_json:
        json.dump(summary(config), out, indent=2)
        out.write("\n")
        for warning in config.warnings:
            err.write(f"warning: {warning}\n")
    else:
        out.write(render_text(config, path) + "\n")
    return EXIT_VALID

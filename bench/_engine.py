"""opensweep's engine for the benchmarks: library mode when it exists, else the core directly.

The benchmarks must measure the engine the controller runs. ``opensweep.engine`` (library mode,
plain dicts in and out) is the user-facing door to it; until that module lands, this adapter
calls the same pure functions in ``controller/core/engine.py`` with the same plain run dicts,
so the figures are never of a stand-in. :data:`SOURCE` says which door was used, and
:func:`core_fingerprint` which version of the search code, for the results files.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

NextRun = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]], int], "dict[str, Any] | None"]
StopRuns = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], list[str]]

_ROOT = Path(__file__).resolve().parent.parent
_CORE_FILES = ("controller/core/engine.py", "controller/core/bayes.py", "controller/core/_gp.py")


def _core_next_run() -> tuple[NextRun, StopRuns]:
    from controller.core import engine
    from controller.core.config import parse_config
    from controller.core.runs import RunRecord

    parsed: dict[str, Any] = {}

    def config_of(raw: Mapping[str, Any]) -> Any:
        # The controller parses a sweep's config once, at creation; so does this.
        key = json.dumps(raw, sort_keys=True, default=str)
        if key not in parsed:
            parsed[key] = parse_config(raw)
        return parsed[key]

    def records(runs: Sequence[Mapping[str, Any]]) -> list[RunRecord]:
        return [
            RunRecord(
                id=str(r["id"]),
                params=dict(r.get("config", {})),
                state=str(r["state"]),
                summary=dict(r.get("summary", {})),
                history=list(r.get("history", [])),
            )
            for r in runs
        ]

    def next_run(
        raw: Mapping[str, Any], runs: Sequence[Mapping[str, Any]], seed: int
    ) -> dict[str, Any] | None:
        config = config_of(raw)
        flat = engine.next_suggestion(config, records(runs), seed)
        return None if flat is None else config.space.nest(flat)

    def stop_runs(raw: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[str]:
        return list(engine.runs_to_stop(config_of(raw), records(runs)))

    return next_run, stop_runs


def load() -> tuple[NextRun, StopRuns, str]:
    """``(next_run, stop_runs, source)`` over opensweep's real engine."""
    try:
        from opensweep import engine as library

        return library.next_run, library.stop_runs, "opensweep.engine (library mode)"
    except (ImportError, AttributeError):
        next_run, stop_runs = _core_next_run()
        return next_run, stop_runs, "controller.core.engine (opensweep.engine not present)"


def core_fingerprint() -> dict[str, Any]:
    """Short hashes of the search code measured, and whether each file is committed as is."""
    out: dict[str, Any] = {}
    for rel in _CORE_FILES:
        path = _ROOT / rel
        if not path.exists():
            out[rel] = None
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        try:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--", rel],
                cwd=_ROOT,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            dirty = "?"
        out[rel] = {"sha256_12": digest, "committed": not dirty}
    return out


def uncommitted_code() -> list[str]:
    """Project source files that differ from the commit measured (``git status`` lines)."""
    try:
        lines = subprocess.run(
            ["git", "status", "--porcelain", "--", "controller", "agent", "opensweep"],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return ["? git status failed"]
    return [line for line in lines if line.endswith(".py")]

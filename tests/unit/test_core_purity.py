"""The core must stay pure: no I/O, no clock, no global randomness, so replay is exact.

This is our import linter: it reads every module under controller/core and fails when one imports
something that touches the outside world or the adapters.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "controller" / "core"

FORBIDDEN_MODULES = {
    "aiohttp", "aiosqlite", "asyncio", "grpc", "http", "io", "os", "pathlib", "random", "shutil",
    "socket", "sqlite3", "subprocess", "sys", "tempfile", "threading", "time", "urllib",
    "datetime", "uuid", "secrets", "signal", "logging", "controller.store", "controller.service",
    "agent", "opensweep.v1",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def is_forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_MODULES)


def test_core_modules_import_nothing_that_does_io() -> None:
    modules = sorted(CORE.glob("*.py"))
    assert modules, "controller/core has no modules"
    offenders = {
        str(path.relative_to(CORE)): sorted(m for m in imported_modules(path) if is_forbidden(m))
        for path in modules
    }
    offenders = {name: mods for name, mods in offenders.items() if mods}
    assert not offenders, f"I/O imports in the pure core: {offenders}"

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


IO_BUILTINS = {"open", "print", "input", "eval", "exec", "compile", "__import__", "breakpoint"}
ALLOWED_IO_CALLS = {("config.py", "read_config_file", "open")}
"""load_config reads a YAML path: the one documented piece of I/O in the core."""

SEEDED_NUMPY_RANDOM = {"default_rng", "Generator", "SeedSequence", "BitGenerator", "PCG64"}


def _calls_by_function(path: Path) -> set[tuple[str, str]]:
    """(enclosing function, builtin called) for every call of an I/O builtin."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, str]] = set()

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                else function
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name) \
                    and child.func.id in IO_BUILTINS:
                found.add((function, child.func.id))
            visit(child, inner)

    visit(tree, "<module>")
    return found


def test_core_modules_call_no_io_builtins() -> None:
    offenders = sorted(
        (path.name, function, name)
        for path in sorted(CORE.glob("*.py"))
        for function, name in _calls_by_function(path)
        if (path.name, function, name) not in ALLOWED_IO_CALLS
    )
    assert not offenders, f"I/O builtins called in the pure core: {offenders}"


def test_core_modules_use_no_global_numpy_random_state() -> None:
    offenders = []
    for path in sorted(CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "random" and isinstance(node.value.value, ast.Name) \
                    and node.value.value.id in ("np", "numpy") \
                    and node.attr not in SEEDED_NUMPY_RANDOM:
                offenders.append(f"{path.name}:{node.lineno} {node.value.value.id}.random."
                                 f"{node.attr}")
    assert not offenders, f"global numpy random state in the core (pass a Generator): {offenders}"

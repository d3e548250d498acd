"""Run the benchmarks: ``python -m bench [NAME] [ARGS...]``.

Without NAME every module of this package that defines ``main(argv: list[str] | None) -> int``
runs in turn with the given arguments (e.g. ``python -m bench --quick``); with NAME only that
one. Modules whose name starts with ``_`` and this file are skipped. Exit status is the first
non-zero status, or 1 if a module raised.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import bench

BenchMain = Callable[[list[str] | None], int]

# Run order for the ones known here; any other module plugs in after them, by name.
_PREFERRED = ("bayes_regret", "suggest_speed", "hyperband_savings")
_NOT_BENCHMARKS = {"functions", "anchors"}


def discover() -> dict[str, BenchMain]:
    """Every benchmark module of the package, by name, in run order."""
    names = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(bench.__file__).parent)])
        if not info.name.startswith("_") and info.name not in _NOT_BENCHMARKS
    )
    names.sort(key=lambda n: (_PREFERRED.index(n) if n in _PREFERRED else len(_PREFERRED), n))
    found: dict[str, BenchMain] = {}
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        entry = getattr(module, "main", None)
        if callable(entry):
            found[name] = entry
    return found


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help") and len(args) == 1:
        print(__doc__)
        print("benchmarks:", ", ".join(discover()))
        return 0
    benchmarks = discover()
    if args and not args[0].startswith("-"):
        name, rest = args[0], args[1:]
        if name not in benchmarks:
            print(f"unknown benchmark {name!r}; have: {', '.join(benchmarks)}", file=sys.stderr)
            return 2
        return benchmarks[name](rest)
    status = 0
    for name, entry in benchmarks.items():
        print(f"\n=== bench {name} {' '.join(args)}".rstrip(), flush=True)
        started = time.monotonic()
        try:
            code = entry(list(args))
        except Exception:
            traceback.print_exc()
            code = 1
        print(f"=== bench {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Side-by-side benchmarks of opensweep against W&B's sweeps engine and Optuna.

``python -m bench`` runs every benchmark module (each defines ``main(argv) -> int``);
``python -m bench NAME [args]`` runs one. Results land in ``bench/results/`` as JSON, markdown
and PNG plots. See ``docs/benchmarks.md``.

Importing this package pins the numeric libraries to one thread each (unless the caller set the
variables already): the machine is small and shared, every engine gets the same single core,
and timings are steadier.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def results_dir(quick: bool, override: str | None = None) -> Path:
    """Where a benchmark writes: ``results/`` for full runs, ``results/quick/`` for --quick."""
    path = Path(override) if override else (RESULTS_DIR / "quick" if quick else RESULTS_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def environment() -> dict[str, Any]:
    """What the figures were measured with: versions, machine, and opensweep's commit."""
    versions: dict[str, str | None] = {}
    for dist in ("opensweep", "sweeps", "optuna", "torch", "numpy", "scipy", "scikit-learn"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=Path(__file__).resolve().parent,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    from bench._engine import core_fingerprint, load, uncommitted_code

    try:
        engine_source = load()[2]
    except ImportError as exc:
        engine_source = f"unavailable: {exc}"
    return {
        "engine": engine_source,
        "opensweep_core": core_fingerprint(),
        "uncommitted_code": uncommitted_code(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads_per_process": os.environ.get("OMP_NUM_THREADS"),
        "versions": versions,
        "opensweep_commit": commit,
    }


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


def fmt(x: float | None, digits: int = 3) -> str:
    """A compact number for the markdown tables (3 significant digits, scientific when tiny)."""
    if x is None:
        return "—"
    if x != x:  # NaN
        return "nan"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def code_note(env: dict[str, Any]) -> str:
    """Which opensweep code a result measured, for the markdown: the commit, and a warning when
    the working tree differed from it."""
    note = f"opensweep commit `{env.get('opensweep_commit')}`"
    dirty = env.get("uncommitted_code") or []
    if dirty:
        note += f" plus uncommitted changes to {len(dirty)} source files (listed in the JSON)"
    return note

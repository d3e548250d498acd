"""The run side of the Python API: ``run = opensweep.init(config=defaults)``.

Inside a sweep (the agent set ``OPENSWEEP_CONFIG`` and ``OPENSWEEP_METRICS``), ``run.config`` is
the program's defaults overridden by the sweep's values, and ``run.log`` appends JSON lines to the
metrics file the agent tails. Outside a sweep the same code works unchanged: the config is the
defaults, and the metrics go to ``./opensweep-runs/local-<time>-<random>/metrics.jsonl``, so a
training script can be developed and debugged on its own before it is swept.

The metrics file format is the agent's (see :mod:`agent.metrics`): one JSON object per line,
``_step`` the step, nested objects flattened with dots, NaN and infinities written as JSON's
common extensions (``NaN``, ``Infinity``), which the agent reads back as IEEE values.

This module imports nothing heavy: a training script pays for ``json`` and ``os``, not for gRPC.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

__all__ = ["Config", "OpensweepRunError", "Run", "finish", "init", "log"]

ENV_SWEEP_ID = "OPENSWEEP_SWEEP_ID"
ENV_RUN_ID = "OPENSWEEP_RUN_ID"
ENV_CONFIG = "OPENSWEEP_CONFIG"
ENV_METRICS = "OPENSWEEP_METRICS"
ENV_RUN_DIR = "OPENSWEEP_RUN_DIR"

DEFAULT_LOCAL_DIR = "opensweep-runs"


class OpensweepRunError(Exception):
    """Misuse of the run API (a bad config, logging after finish, an unreadable environment)."""


class Config(MutableMapping[str, Any]):
    """A run's configuration: a dict that also allows ``config.lr`` and nests.

    Nested dicts come back as Config objects, so ``config.optimizer.lr`` and
    ``config["optimizer"]["lr"]`` both work. Names that are not identifiers (``"a.b"``, ``"1x"``)
    are reachable by item access.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", {})
        if data:
            for key, value in data.items():
                self[key] = value

    # -- mapping ---------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise OpensweepRunError(f"config keys must be strings, got {key!r}")
        if isinstance(value, Mapping) and not isinstance(value, Config):
            value = Config(value)
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    # -- attributes ------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(
                f"the run's config has no {name!r} (it has: {', '.join(self._data) or 'nothing'})"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(k for k in self._data if k.isidentifier())]

    def __repr__(self) -> str:
        return f"Config({self.as_dict()!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self.as_dict() == other.as_dict()
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type[Config], tuple[dict[str, Any]]]:
        # Rebuilt from a plain dict: a data loader's worker processes and copy.deepcopy get a
        # real Config (the default protocol would recurse through __getattr__).
        return (Config, (self.as_dict(),))

    def update(self, other: Any = (), /, allow_val_change: bool = True, **kwargs: Any) -> None:
        """Like dict.update; ``allow_val_change`` is accepted (and ignored) for W&B scripts."""
        super().update(other, **kwargs)

    # -- W&B's helpers ---------------------------------------------------------------------
    def setdefaults(self, defaults: Mapping[str, Any]) -> None:
        """Set each key that is not set yet; nested dicts are filled in key by key, so a sweep
        value for ``optimizer.lr`` keeps the default ``optimizer.momentum``."""
        for key, value in defaults.items():
            current = self._data.get(key)
            if key not in self._data:
                self[key] = value
            elif isinstance(current, Config) and isinstance(value, Mapping):
                current.setdefaults(value)

    def merge(self, overrides: Mapping[str, Any]) -> None:
        """Override with ``overrides``, recursing into nested dicts (the sweep's values win)."""
        for key, value in overrides.items():
            current = self._data.get(key)
            if isinstance(current, Config) and isinstance(value, Mapping):
                current.merge(value)
            else:
                self[key] = value

    def as_dict(self) -> dict[str, Any]:
        """A plain (nested) dict copy, e.g. for ``json.dumps``."""
        return {k: v.as_dict() if isinstance(v, Config) else v for k, v in self._data.items()}


def _jsonable(value: Any) -> Any:
    """A logged value as JSON can carry it: numbers stay numbers (numpy and torch scalars via
    ``.item()``), mappings recurse, anything else is written as text (and dropped by the agent
    with a warning, since only numbers are metrics)."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


class Run:
    """One run of a program: its id, config and metric log. Create it with :func:`init`."""

    def __init__(self, *, run_id: str, sweep_id: str | None, config: Config, run_dir: Path,
                 metrics_path: Path, in_sweep: bool) -> None:
        self.id = run_id
        self.sweep_id = sweep_id
        self.config = config
        self.dir = run_dir
        self.metrics_path = metrics_path
        self.in_sweep = in_sweep
        #: The last value logged for each metric (dotted names for nested ones).
        self.summary: dict[str, Any] = {}
        self.step = 0
        self._file: TextIO | None = None
        self._finished = False
        self._pid = os.getpid()

    @property
    def finished(self) -> bool:
        return self._finished

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Record metrics for one step and make them visible to the agent at once.

        Without ``step`` each call is the next step (0, 1, 2, ...); with it, the record gets that
        step and the next call without one continues after it. Hyperband counts logged values,
        so log the sweep's metric once per epoch (or iteration).
        """
        if self._finished:
            raise OpensweepRunError(f"run {self.id} is finished; log() after finish() is lost")
        if not isinstance(data, Mapping):
            raise OpensweepRunError(
                f"run.log() takes a dict of metrics, got {type(data).__name__}")
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                raise OpensweepRunError(f"step must be a non-negative int, got {step!r}")
            self.step = step
        record = {str(k): _jsonable(v) for k, v in data.items() if k != "_step"}
        line = json.dumps({"_step": self.step, **record}, allow_nan=True)
        if self._file is None:
            self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.metrics_path, "a", encoding="utf-8")  # noqa: SIM115
        # One write of a whole line to a file opened for append: a reader never sees half of
        # a record followed by another process's data, and a flush per call means a run killed
        # right after log() has still delivered it.
        self._file.write(line + "\n")
        self._file.flush()
        _flatten_into(self.summary, record, "")
        self.step += 1

    def finish(self) -> None:
        """Close the metrics file. Idempotent; the process's exit status decides the run's
        outcome (0 finished, anything else failed)."""
        if self._finished:
            return
        self._finished = True
        if self._file is not None:
            self._file.close()
            self._file = None
        if not self.in_sweep:
            summary_path = self.dir / "summary.json"
            summary_path.write_text(json.dumps(self.summary, indent=2, allow_nan=True) + "\n",
                                    encoding="utf-8")
        global _active
        if _active is self:
            _active = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.finish()

    def __repr__(self) -> str:
        where = f"sweep {self.sweep_id}" if self.sweep_id else "local"
        return f"<opensweep Run {self.id} ({where}), dir {self.dir}>"


def _flatten_into(out: dict[str, Any], data: Mapping[str, Any], prefix: str) -> None:
    for key, value in data.items():
        if isinstance(value, Mapping):
            _flatten_into(out, value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value


_active: Run | None = None


def _sweep_values(environ: Mapping[str, str]) -> dict[str, Any] | None:
    text = environ.get(ENV_CONFIG)
    if text is None:
        return None
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise OpensweepRunError(f"${ENV_CONFIG} is not valid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise OpensweepRunError(f"${ENV_CONFIG} must be a JSON object, got {type(values).__name__}")
    return values


def init(config: Mapping[str, Any] | None = None, *, dir: str | os.PathLike[str] | None = None,
         **_ignored: Any) -> Run:
    """Start (or return the current) run of this process.

    ``config`` holds the program's defaults; in a sweep the sweep's values override them (nested
    dicts key by key). Outside a sweep, metrics are written under ``dir`` (default
    ``./opensweep-runs``). W&B-only keyword arguments (``project``, ``entity``, ...) are accepted
    and ignored, so ``wandb.init(...)`` calls port by renaming the module.
    """
    global _active
    environ = os.environ
    run_id_env = environ.get(ENV_RUN_ID)
    if (_active is not None and not _active.finished and _active._pid == os.getpid()
            and (run_id_env is None or run_id_env == _active.id)):
        if config:
            _active.config.setdefaults(config)
        return _active
    if config is not None and not isinstance(config, Mapping):
        raise OpensweepRunError(f"init(config=...) takes a dict, got {type(config).__name__}")
    run_config = Config(config or {})
    sweep_values = _sweep_values(environ)
    if sweep_values is not None:
        run_config.merge(sweep_values)
    metrics_env = environ.get(ENV_METRICS)
    if metrics_env and run_id_env:
        metrics_path = Path(metrics_env)
        run_dir = Path(environ.get(ENV_RUN_DIR) or metrics_path.parent)
        run = Run(run_id=run_id_env, sweep_id=environ.get(ENV_SWEEP_ID) or None,
                  config=run_config, run_dir=run_dir, metrics_path=metrics_path, in_sweep=True)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_id = f"local-{stamp}-{secrets.token_hex(3)}"
        run_dir = (Path(dir or DEFAULT_LOCAL_DIR) / run_id).absolute()
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(
            json.dumps(run_config.as_dict(), indent=2, allow_nan=True) + "\n", encoding="utf-8")
        run = Run(run_id=run_id, sweep_id=None, config=run_config, run_dir=run_dir,
                  metrics_path=run_dir / "metrics.jsonl", in_sweep=False)
        print(f"opensweep: not in a sweep; run {run_id} writes to {run_dir}", file=sys.stderr)
    _active = run
    return run


def log(data: Mapping[str, Any], step: int | None = None) -> None:
    """``run.log`` on the current run (started with defaults if :func:`init` was not called)."""
    (_active if _active is not None and not _active.finished else init()).log(data, step)


def finish() -> None:
    """Finish the current run, if any."""
    if _active is not None:
        _active.finish()

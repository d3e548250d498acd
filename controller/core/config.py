"""Parse and validate a W&B-style sweep config into a :class:`SweepConfig`.

The rules follow W&B Sweeps (``docs/config.md`` is the reference users read); where W&B's engine
misbehaves, this module does the right thing and the docs say so. Every problem in a config is
collected, each with the key path it concerns, and raised together as one
:class:`~controller.core.errors.ConfigError`: no input, however malformed (a list, ``None``,
garbage types, a self-referencing YAML alias), ends in anything else.

``parse_config`` is pure. ``load_config`` additionally accepts YAML text or a path; reading that
file is the one piece of I/O in the core, kept here because every caller (CLI, Python API,
tests) needs exactly the same loading rules.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Final

import yaml

from controller.core.command import known_macro_problem
from controller.core.errors import ConfigError, Problem
from controller.core.space import (
    BETA,
    CATEGORICAL,
    CONSTANT,
    DISTRIBUTION_ARGUMENTS,
    DISTRIBUTIONS,
    GRIDABLE,
    INT_UNIFORM,
    INV_LOG_UNIFORM,
    INV_LOG_UNIFORM_VALUES,
    LOG_UNIFORM,
    LOG_UNIFORM_VALUES,
    NORMAL,
    Q_BETA,
    Q_LOG_UNIFORM,
    Q_LOG_UNIFORM_VALUES,
    Q_UNIFORM,
    QUANTISED,
    UNIFORM,
    Parameter,
    ParamPath,
    SearchSpace,
    canonical,
)

METHODS: Final = ("grid", "random", "bayes")
GOALS: Final = ("minimize", "maximize")
TOP_LEVEL_KEYS: Final = ("program", "name", "description", "method", "metric", "parameters",
                         "early_terminate", "command", "run_cap")
IGNORED_KEYS: Final = ("project", "entity", "job", "scheduler", "launch", "controller",
                       "imageUri", "image_uri", "apiVersion", "kind", "metrics")
"""Keys W&B accepts that opensweep does not use: accepted with a warning."""
METRIC_KEYS: Final = ("name", "goal", "target")
IGNORED_METRIC_KEYS: Final = ("impute", "impute_while_running")
HYPERBAND_KEYS: Final = ("type", "eta", "min_iter", "max_iter", "s", "strict")
PARAMETER_ARGUMENTS: Final = ("value", "values", "probabilities", "min", "max", "q", "mu",
                              "sigma", "a", "b")
PARAMETER_KEYS: Final = ("distribution", "parameters", *PARAMETER_ARGUMENTS)
DISTRIBUTION_ALIASES: Final = {"categorical_w_probabilities": CATEGORICAL}
"""W&B's schema name for categorical with probabilities."""

MAX_EXACT_INT: Final = 2**53
"""int_uniform bounds stay within what a JSON consumer holds exactly."""
_FLOAT_MAX: Final = 1.7976931348623157e308
MAX_EXP_ARG: Final = 709.0
"""exp() of more than this overflows a float."""
MAX_CONFIG_VALUES: Final = 200_000
"""Values (scalars, lists, mappings) a config may hold, counted with aliases expanded."""
PROBABILITY_TOLERANCE: Final = 1e-6
LIKELY_VALUE_EXPONENT: Final = 30
"""log_uniform with max above this reaches e**30 (1e13): almost surely values meant as bounds."""
DEFAULT_ETA: Final = 3
HYPERBAND_MIN_ITER_BRACKETS: Final = 100
"""Brackets W&B derives from min_iter (it has no upper end)."""

_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_BAD_NAME_CHARS = re.compile(r"[=\s\x00-\x1f\x7f]")
_NUMBER = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?$")
_INTEGER = re.compile(r"^[-+]?[0-9][0-9_]*$")


# ---------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class Metric:
    """The metric a sweep optimises. ``target``: the sweep finishes once a run reaches it."""

    name: str
    goal: str = "minimize"
    target: float | None = None


@dataclass(frozen=True)
class HyperbandSettings:
    """``early_terminate: {type: hyperband, ...}`` with defaults filled.

    Either ``min_iter`` is set (brackets min_iter * eta^k) or ``max_iter`` and ``s`` are
    (brackets max_iter / eta^k for k = 1..s). ``strict`` defaults to True: that is what W&B's
    engine has done since 2022 whatever its docs say (a run is judged by its value at the
    bracket, not by its best value so far).
    """

    eta: int = DEFAULT_ETA
    min_iter: int | None = None
    max_iter: int | None = None
    s: int | None = None
    strict: bool = True

    def brackets(self, up_to: int | None = None) -> list[int]:
        """The iterations at which runs are compared, ascending.

        From ``max_iter`` and ``s``: ``int(max_iter / eta^k)`` for k = 1..s, dropping any below
        1 (max_iter 27, s 2, eta 3 -> [3, 9]). From ``min_iter``: ``min_iter * eta^k``, which
        has no end, so the list stops at ``up_to`` when given and otherwise after W&B's 100.
        """
        bands: list[int] = []
        if self.max_iter is not None and self.s is not None:
            band = float(self.max_iter)
            for _ in range(self.s):
                band /= self.eta
                if band < 1:
                    break
                bands.append(int(band))
            bands = sorted(set(bands))
        elif self.min_iter is not None:
            band_i = self.min_iter
            for _ in range(HYPERBAND_MIN_ITER_BRACKETS):
                if up_to is not None and band_i > up_to:
                    break
                bands.append(band_i)
                band_i *= self.eta
            return bands
        if up_to is not None:
            bands = [b for b in bands if b <= up_to]
        return bands


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep config.

    ``raw`` is the config as given, made JSON-safe with numbers parsed where numbers belong
    (``"1e-5"`` -> ``1e-05``); ``parse_config(raw)`` gives back an equal SweepConfig, so ``raw``
    is what gets stored and shown. ``warnings`` lists what was accepted but ignored or looks
    like a mistake.
    """

    method: str
    program: str | None
    name: str | None
    description: str | None
    metric: Metric | None
    space: SearchSpace
    early_terminate: HyperbandSettings | None
    command: tuple[str, ...] | None
    run_cap: int | None
    raw: dict[str, Any]
    warnings: tuple[str, ...] = ()

    @property
    def grid_size(self) -> int | None:
        """Points in the grid for ``method: grid`` (ignoring run_cap), else None."""
        if self.method != "grid":
            return None
        size = 1
        for p in self.space.parameters:
            size *= p.grid_count()
        return size

    @property
    def expected_run_count(self) -> int | None:
        """How many runs the sweep will create: the grid size capped by run_cap for grid,
        run_cap for random and bayes, None where unbounded (random or bayes without run_cap)."""
        size = self.grid_size
        if size is None:
            return self.run_cap
        return size if self.run_cap is None else min(size, self.run_cap)


# ---------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """SafeLoader reading numbers the YAML 1.2 way W&B users expect.

    PyYAML (YAML 1.1) reads ``1e-5`` as a string; here it is a float. Timestamps stay strings,
    so every value that comes out is JSON-representable. A key written twice in one mapping is
    collected in ``duplicates``: YAML forbids it, and PyYAML would silently keep the last one,
    which hides a parameter or a setting the user believes is there.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                mark = key_node.start_mark
                self.duplicates.append((mark.line + 1, mark.column + 1, key_node.value))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """Read YAML text the way configs are read (``1e-5`` is a float). ConfigError on bad YAML."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader already rejects control characters here
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError([Problem("", f"invalid YAML{where}: {e.problem or e}")]) from None
    except yaml.YAMLError as e:
        raise ConfigError([Problem("", f"invalid YAML: {e}")]) from None
    except RecursionError:
        raise ConfigError([Problem("", "invalid YAML: nested too deeply")]) from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. `!!float abc`, a 5000-digit int
        raise ConfigError([Problem("", f"invalid YAML: {e}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if loader.duplicates:
        raise ConfigError([Problem("", f'invalid YAML at line {line}, column {column}: duplicate '
                                       f'key "{key}" (a key may appear once in a mapping)')
                           for line, column, key in sorted(loader.duplicates)])
    return data


def load_config(source: Any, *, strict: bool = True) -> SweepConfig:
    """A SweepConfig from a mapping, YAML text, or a path to a YAML (or JSON) file.

    A ``str`` is a path when it is one line ending in ``.yaml``, ``.yml`` or ``.json``;
    otherwise it is YAML text. Unreadable files and bad YAML are ConfigErrors too. ``strict``
    as for :func:`parse_config`.
    """
    if isinstance(source, Mapping):
        return parse_config(source, strict=strict)
    if isinstance(source, bytes):
        source = source.decode("utf-8", errors="replace")
    if hasattr(source, "__fspath__"):
        return parse_config(parse_yaml(read_config_file(source.__fspath__())), strict=strict)
    if isinstance(source, str):
        stripped = source.strip()
        if "\n" not in stripped and stripped.lower().endswith((".yaml", ".yml", ".json")):
            return parse_config(parse_yaml(read_config_file(stripped)), strict=strict)
        return parse_config(parse_yaml(source), strict=strict)
    return parse_config(source, strict=strict)


def read_config_file(path: Any) -> str:
    """The text of a config file; ConfigError (not OSError) when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return str(f.read())
    except UnicodeDecodeError:
        raise ConfigError([Problem("", f"cannot read {path}: not UTF-8 text")]) from None
    except OSError as e:
        reason = e.strerror or str(e)
        raise ConfigError([Problem("", f"cannot read {path}: {reason}")]) from None


# ---------------------------------------------------------------------------- parsing


def parse_config(raw: Any, *, strict: bool = True) -> SweepConfig:
    """Validate a sweep config (a mapping, as from YAML or JSON) into a SweepConfig.

    Raises ConfigError listing every problem; never anything else, whatever ``raw`` holds.
    ``strict=False`` is W&B's server behaviour for keys it does not know: each becomes a warning
    and is dropped (from ``raw`` too, so the stored config is strictly valid). Everything else
    that is wrong is still an error, since a sweep cannot run on it.
    """
    try:
        return _Parser(strict=strict).parse(raw)
    except RecursionError:
        raise ConfigError([Problem("", "config is nested too deeply or refers to itself")]) \
            from None


def _hint(word: str, candidates: tuple[str, ...] | list[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f'; did you mean "{match[0]}"?' if match else ""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, str):
        return f'string "{value}"' if len(value) <= 40 else "a string"
    if isinstance(value, int) and abs(value) > 10**40:
        return "a number with more than 40 digits"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fmt(x: Any) -> str:
    return repr(x) if isinstance(x, str) else str(x)


class _Parser:
    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self.copied = 0
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.key_paths: dict[ParamPath, str] = {}

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def unknown_key(self, container: dict[str, Any], key: str, path: str,
                    candidates: tuple[str, ...]) -> None:
        """An error, or in lenient mode a warning and the key dropped."""
        if self.strict:
            self.problem(path, "unknown key" + _hint(key, candidates))
        else:
            self.warnings.append(f"{path}: unknown key, ignored{_hint(key, candidates)}")
            del container[key]

    # -------------------------------------------------------------- JSON-safe copy

    def json_copy(self, value: Any, path: str) -> Any:
        """A copy made only of dict/list/str/int/float/bool/None, numbers made native.

        Stops at MAX_CONFIG_VALUES: YAML aliases let a few lines stand for billions of values
        ("billion laughs"), and the copy is where they would be expanded.
        """
        self.copied += 1
        if self.copied > MAX_CONFIG_VALUES:
            raise ConfigError([Problem("", f"the config holds more than {MAX_CONFIG_VALUES:,} "
                                           "values (YAML aliases expanded); it cannot be a "
                                           "sweep config")])
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, Integral):
            return int(value)
        if isinstance(value, Real):
            f = float(value)
            if not math.isfinite(f):
                self.problem(path, f"must be a finite number (got {f})")
            return f
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    self.problem(_join(path, str(k)), f"keys must be strings (got {_kind(k)})")
                    continue
                out[k] = self.json_copy(v, _join(path, k))
            return out
        if isinstance(value, (list, tuple)):
            return [self.json_copy(v, f"{path}[{i}]") for i, v in enumerate(value)]
        self.problem(path, f"cannot be represented in JSON (got {type(value).__name__})")
        return None

    # -------------------------------------------------------------- typed fields

    def number(self, container: Any, key: Any, path: str) -> int | float | None:
        """container[key] as an int or float, parsing numeric strings ("1e-5") and writing the
        parsed number back so ``raw`` holds numbers; None (and a problem) otherwise."""
        v = container[key]
        result: int | float | None = None
        if isinstance(v, bool):
            result = None
        elif isinstance(v, int):
            if abs(v) > _FLOAT_MAX:
                self.problem(path, "must be a finite number (got an integer beyond float range)")
                return None
            result = v
        elif isinstance(v, float):
            if not math.isfinite(v):
                self.problem(path, f"must be a finite number (got {v})")
                return None
            result = v
        elif isinstance(v, str) and _NUMBER.match(v.strip()):
            text = v.strip().replace("_", "")
            try:
                result = int(text) if _INTEGER.match(text) else float(text)
            except ValueError:  # more digits than Python converts
                result = math.inf
            if not math.isfinite(result) or abs(result) > _FLOAT_MAX:
                self.problem(path, f"must be a finite number (got {_kind(v)})")
                return None
            container[key] = result
        if result is None:
            self.problem(path, f"must be a number (got {_kind(v)})")
        return result

    def integer(self, container: dict[str, Any], key: str, path: str) -> int | None:
        """A number that is a whole number (3 or 3.0; written back as 3)."""
        n = self.number(container, key, path)
        if n is None:
            return None
        if isinstance(n, float):
            if not n.is_integer():
                self.problem(path, f"must be an integer (got {n})")
                return None
            n = int(n)
            container[key] = n
        return n

    def string(self, data: dict[str, Any], key: str) -> str | None:
        v = data.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            self.problem(key, f"must be a string (got {_kind(v)})")
            return None
        return v

    # -------------------------------------------------------------- top level

    def parse(self, raw: Any) -> SweepConfig:
        if raw is None:
            raise ConfigError([Problem("", "the config is empty")])
        if not isinstance(raw, Mapping):
            raise ConfigError([Problem("", f"the config must be a mapping of keys to values "
                                           f"(got {_kind(raw)})")])
        data: dict[str, Any] = self.json_copy(raw, "")

        for key in list(data):
            if key in TOP_LEVEL_KEYS:
                continue
            if key in IGNORED_KEYS:
                self.warnings.append(f"{key}: accepted for W&B compatibility and ignored")
            else:
                self.unknown_key(data, key, key, TOP_LEVEL_KEYS + IGNORED_KEYS)

        method = self.parse_method(data)
        program = self.string(data, "program")
        if program is not None and not program.strip():
            self.problem("program", "must name the script to run (got an empty string)")
            program = None
        name = self.string(data, "name")
        description = self.string(data, "description")
        metric = self.parse_metric(data)
        space = self.parse_space(data)
        early = self.parse_early_terminate(data)
        command = self.parse_command(data, program)
        run_cap = self.parse_run_cap(data)

        if method == "bayes" and metric is None and "metric" not in data:
            self.problem("metric", "required when method is bayes (which metric to optimise?)")
        if "early_terminate" in data and metric is None and "metric" not in data:
            self.problem("metric", "required when early_terminate is set (which metric to "
                                   "compare runs on?)")
        if method == "grid" and space is not None:
            self.check_grid(space)
        elif method in ("random", "bayes") and space is not None and not space.searchable:
            self.warnings.append(f"parameters: every parameter is a constant, so {method} search "
                                 "gives every run the same values; use method grid for one run")

        if self.problems or method is None or space is None:
            unique = list(dict.fromkeys(self.problems))  # one value can fail two checks alike
            raise ConfigError(unique or [Problem("", "invalid config")])
        return SweepConfig(
            method=method, program=program, name=name, description=description,
            metric=metric, space=space, early_terminate=early, command=command,
            run_cap=run_cap, raw=data, warnings=tuple(self.warnings),
        )

    def parse_method(self, data: dict[str, Any]) -> str | None:
        if "method" not in data or data["method"] is None:
            if "scheduler" in data:
                self.warnings.append(
                    "method: missing; this looks like a W&B Launch scheduler config, so "
                    "opensweep uses method random (its scheduler settings are ignored)")
                return "random"
            self.problem("method", "required: one of grid, random, bayes")
            return None
        method = data["method"]
        if not isinstance(method, str):
            self.problem("method", f"must be one of grid, random, bayes (got {_kind(method)})")
            return None
        if method in METHODS:
            return method
        if method == "custom":
            self.problem("method", "custom is W&B Launch's external-scheduler method, which "
                                   "opensweep does not run; use grid, random or bayes")
            return None
        self.problem("method", f'unknown method "{method}"{_hint(method, METHODS)} '
                               "(one of grid, random, bayes)")
        return None

    def parse_metric(self, data: dict[str, Any]) -> Metric | None:
        if "metric" not in data:
            return None
        m = data["metric"]
        if not isinstance(m, dict):
            self.problem("metric", f"must be a mapping with name and goal (got {_kind(m)})")
            return None
        ok = True
        for key in list(m):
            if key in IGNORED_METRIC_KEYS:
                self.warnings.append(f"metric.{key}: accepted for W&B compatibility and ignored")
            elif key not in METRIC_KEYS:
                self.unknown_key(m, key, f"metric.{key}", METRIC_KEYS)
        name = m.get("name")
        if name is None:
            self.problem("metric.name", "required: the name of the metric the runs log")
            ok = False
        elif not isinstance(name, str) or not name:
            self.problem("metric.name", f"must be a non-empty string (got {_kind(name)})")
            ok = False
        goal = m.get("goal", "minimize")
        if goal not in GOALS:
            hint = _hint(goal, GOALS) if isinstance(goal, str) else ""
            self.problem("metric.goal", f"must be minimize or maximize (got {_kind(goal)}){hint}")
            ok = False
        target: float | None = None
        if m.get("target") is not None:
            t = self.number(m, "target", "metric.target")
            if t is None:
                ok = False
            else:
                target = float(t)
        if not ok:
            return None
        assert isinstance(name, str) and isinstance(goal, str)
        return Metric(name=name, goal=goal, target=target)

    def parse_run_cap(self, data: dict[str, Any]) -> int | None:
        if data.get("run_cap") is None:
            return None
        n = self.integer(data, "run_cap", "run_cap")
        if n is not None and n < 1:
            self.problem("run_cap", f"must be a positive integer (got {n})")
            return None
        return n

    def parse_command(self, data: dict[str, Any], program: str | None) -> tuple[str, ...] | None:
        uses_program = True
        result: tuple[str, ...] | None = None
        if data.get("command") is not None:
            cmd = data["command"]
            if not isinstance(cmd, list):
                self.problem("command", f"must be a list of strings (got {_kind(cmd)})")
                return None
            if not cmd:
                self.problem("command", "must not be empty")
                return None
            items: list[str] = []
            for i, item in enumerate(cmd):
                if isinstance(item, int) and not isinstance(item, bool):
                    item = str(item)  # W&B passes str(item): `- 8` is "8"
                elif isinstance(item, float):
                    self.warnings.append(f"command[{i}]: the number {item!r} is passed as "
                                         f'"{item!r}"; quote it in YAML to pass it exactly as '
                                         "written")
                    item = repr(item)
                elif not isinstance(item, str):
                    self.problem(f"command[{i}]", f"must be a string (got {_kind(item)}); quote "
                                                  "it in YAML")
                    continue
                items.append(item)
                warning = known_macro_problem(item)
                if warning:
                    self.warnings.append(f"command[{i}]: {warning}")
            if len(items) == len(cmd):
                result = tuple(items)
            uses_program = any(item == "${program}" for item in items)
        if uses_program and program is None:
            self.warnings.append(
                "program: missing, but the command uses ${program}; agents can only run this "
                "sweep in Python function mode")
        return result

    # -------------------------------------------------------------- early_terminate

    def parse_early_terminate(self, data: dict[str, Any]) -> HyperbandSettings | None:
        if "early_terminate" not in data:
            return None
        et = data["early_terminate"]
        path = "early_terminate"
        if not isinstance(et, dict):
            self.problem(path, f"must be a mapping with type: hyperband (got {_kind(et)})")
            return None
        before = len(self.problems)
        for key in list(et):
            if key not in HYPERBAND_KEYS:
                self.unknown_key(et, key, f"{path}.{key}", HYPERBAND_KEYS)
        kind = et.get("type")
        if kind is None:
            self.problem(f"{path}.type", "required: hyperband")
        elif kind != "hyperband":
            hint = _hint(kind, ["hyperband"]) if isinstance(kind, str) else ""
            self.problem(f"{path}.type", f"must be hyperband (got {_kind(kind)}){hint}")

        def positive_int(key: str, minimum: int) -> int | None:
            if et.get(key) is None:
                return None
            n = self.integer(et, key, f"{path}.{key}")
            if n is not None and n < minimum:
                self.problem(f"{path}.{key}", f"must be an integer >= {minimum} (got {n})")
                return None
            return n

        eta = positive_int("eta", 2)
        min_iter = positive_int("min_iter", 1)
        max_iter = positive_int("max_iter", 1)
        s = positive_int("s", 1)
        strict = et.get("strict", True)
        if not isinstance(strict, bool):
            self.problem(f"{path}.strict", f"must be true or false (got {_kind(strict)})")
        has_max = et.get("max_iter") is not None
        has_s = et.get("s") is not None
        has_min = et.get("min_iter") is not None
        if has_max and has_s:
            if has_min:
                self.warnings.append(f"{path}.min_iter: ignored because max_iter and s are given")
                min_iter = None
        elif has_min:
            if has_max or has_s:
                extra = "max_iter" if has_max else "s"
                self.warnings.append(f"{path}.{extra}: ignored without "
                                     f"{'s' if has_max else 'max_iter'}; brackets come from "
                                     "min_iter")
            max_iter = s = None
        elif has_max:
            self.problem(f"{path}.s", "required with max_iter (how many brackets)")
        elif has_s:
            self.problem(f"{path}.max_iter", "required with s")
        else:
            self.problem(path, "give min_iter, or max_iter and s")
        if len(self.problems) > before:
            return None
        settings = HyperbandSettings(eta=eta if eta is not None else DEFAULT_ETA,
                                     min_iter=min_iter, max_iter=max_iter, s=s,
                                     strict=bool(strict))
        if not settings.brackets():
            self.problem(f"{path}.max_iter", f"gives no bracket: max_iter / eta must be at least "
                                             f"1 (got max_iter={max_iter}, eta={settings.eta})")
            return None
        return settings

    # -------------------------------------------------------------- parameters

    def parse_space(self, data: dict[str, Any]) -> SearchSpace | None:
        if "parameters" not in data:
            self.problem("parameters", "required: the parameters to sweep over")
            return None
        out: list[Parameter] = []
        before = len(self.problems)
        self.parse_parameters(data["parameters"], "parameters", (), out)
        if len(self.problems) > before:
            return None
        return SearchSpace(tuple(out))

    def parse_parameters(self, block: Any, path: str, prefix: ParamPath,
                         out: list[Parameter]) -> None:
        if not isinstance(block, dict):
            self.problem(path, f"must be a mapping of parameter names to their settings "
                               f"(got {_kind(block)})")
            return
        if not block:
            self.problem(path, "must name at least one parameter")
            return
        for name, spec in block.items():
            spec_path = f"{path}.{name}"
            if not self.check_name(name, spec_path):
                continue
            if not isinstance(spec, dict):
                example = f"value: {_fmt(spec)}" if isinstance(spec, (int, float, str)) \
                    else "values: [...]"
                self.problem(spec_path, f"must be a mapping such as {{{example}}} "
                                        f"(got {_kind(spec)})")
                continue
            if "parameters" in spec:
                if not self.strict:
                    for key in [k for k in spec if k not in PARAMETER_KEYS]:
                        self.unknown_key(spec, key, f"{spec_path}.{key}", ("parameters",))
                others = sorted(k for k in spec if k != "parameters")
                if others:
                    self.problem(spec_path, "a block with nested parameters takes only "
                                            f"`parameters` (found also {', '.join(others)})")
                    continue
                self.parse_parameters(spec["parameters"], f"{spec_path}.parameters",
                                      (*prefix, name), out)
                continue
            param = self.parse_leaf(spec, spec_path, (*prefix, name))
            if param is not None:
                self.key_paths[param.path] = spec_path
                out.append(param)

    def check_name(self, name: str, path: str) -> bool:
        if not name:
            self.problem(path, "a parameter name cannot be empty")
            return False
        if name.startswith("-") or _BAD_NAME_CHARS.search(name):
            self.problem(path, "a parameter name cannot start with '-' or contain '=', spaces "
                               "or control characters (it becomes a command-line flag)")
            return False
        if not _SAFE_NAME.match(name):
            self.warnings.append(f"{path}: W&B accepts only names matching "
                                 f"{_SAFE_NAME.pattern}")
        return True

    def parse_leaf(self, spec: dict[str, Any], path: str, ppath: ParamPath) -> Parameter | None:
        before = len(self.problems)
        for key in [k for k in spec if k not in PARAMETER_KEYS]:
            self.unknown_key(spec, key, f"{path}.{key}", PARAMETER_KEYS)
        present = [k for k in spec if k in PARAMETER_ARGUMENTS]

        inferred = "distribution" not in spec or spec["distribution"] is None
        if not inferred:
            given = spec["distribution"]
            if not isinstance(given, str):
                self.problem(f"{path}.distribution", f"must be a distribution name "
                                                     f"(got {_kind(given)})")
                return None
            dist = DISTRIBUTION_ALIASES.get(given, given)
            if dist not in DISTRIBUTION_ARGUMENTS:
                hint = _hint(given, DISTRIBUTIONS)
                if not hint:
                    hint = f" (one of {', '.join(DISTRIBUTIONS)})"
                self.problem(f"{path}.distribution", f'unknown distribution "{given}"{hint}')
                return None
        else:
            found = self.infer_distribution(spec, path, present)
            if found is None:
                return None
            dist = found

        allowed = DISTRIBUTION_ARGUMENTS[dist]
        for key in present:
            if key in allowed:
                continue
            if key == "q" and inferred:
                base = {INT_UNIFORM: "uniform", UNIFORM: "uniform"}.get(dist, dist)
                self.problem(f"{path}.q", f"only q_ distributions take q; add "
                                          f"`distribution: q_{base}`")
            else:
                self.problem(f"{path}.{key}", f"not an argument of {dist} (it takes "
                                              f"{', '.join(allowed)})")
        if len(self.problems) > before:
            return None
        return self.build(dist, spec, path, ppath, inferred)

    def infer_distribution(self, spec: dict[str, Any], path: str,
                           present: list[str]) -> str | None:
        groups: dict[str, list[str]] = {}
        for key in present:
            group = {"value": "value", "values": "values", "probabilities": "values",
                     "min": "range", "max": "range", "mu": "normal", "sigma": "normal",
                     "a": "beta", "b": "beta"}.get(key)
            if group is not None:
                groups.setdefault(group, []).append(key)
        if len(groups) > 1:
            keys = ", ".join(k for ks in groups.values() for k in ks)
            self.problem(path, f"give exactly one way of choosing values (found {keys}); add "
                               "`distribution` if you meant a distribution's arguments")
            return None
        if not groups:
            if len(present) < len(spec) and "distribution" not in spec:
                pass  # an unknown key (`vlaues`) was reported already: that is the mistake
            elif "q" in present:
                self.problem(path, "q needs a distribution: add e.g. `distribution: q_uniform` "
                                   "with min and max")
            else:
                self.problem(path, "no values given: use value, values, min and max (with an "
                                   "optional distribution), or nested parameters")
            return None
        group = next(iter(groups))
        if group == "value":
            return CONSTANT
        if group == "values":
            return CATEGORICAL
        if group == "normal":
            return NORMAL
        if group == "beta":
            return BETA
        # min/max: ints -> int_uniform, any float -> uniform (W&B's inference).
        ok = True
        for key in ("min", "max"):
            if key not in spec or spec[key] is None:
                self.problem(f"{path}.{key}", "required with " + ("max" if key == "min" else "min"))
                ok = False
        if not ok:
            return None
        lo = self.number(spec, "min", f"{path}.min")
        hi = self.number(spec, "max", f"{path}.max")
        if lo is None or hi is None:
            return None
        return INT_UNIFORM if isinstance(lo, int) and isinstance(hi, int) else UNIFORM

    def build(self, dist: str, spec: dict[str, Any], path: str, ppath: ParamPath,
              inferred: bool) -> Parameter | None:
        before = len(self.problems)
        if dist == CONSTANT:
            if "value" not in spec:
                self.problem(f"{path}.value", "required for constant")
                return None
            return Parameter(ppath, CONSTANT, value=spec["value"])
        if dist == CATEGORICAL:
            return self.build_categorical(spec, path, ppath)

        args: dict[str, Any] = {}
        if "min" in DISTRIBUTION_ARGUMENTS[dist]:
            for key in ("min", "max"):
                if spec.get(key) is None:
                    self.problem(f"{path}.{key}", f"required for {dist}")
                else:
                    args[key] = self.number(spec, key, f"{path}.{key}")
            if len(self.problems) > before:
                return None
            lo, hi = args["min"], args["max"]
            if dist == INT_UNIFORM:
                for key in ("min", "max"):
                    v = args[key]
                    if isinstance(v, float):
                        if v.is_integer():
                            args[key] = int(v)
                            spec[key] = int(v)
                        else:
                            self.problem(f"{path}.{key}", f"must be an integer for int_uniform "
                                                          f"(got {v})")
                    if isinstance(args[key], int) and abs(args[key]) > MAX_EXACT_INT:
                        self.problem(f"{path}.{key}", f"must lie within +-2**53 (got {args[key]})")
                if len(self.problems) > before:
                    return None
                lo, hi = args["min"], args["max"]
            if not lo < hi:
                self.problem(f"{path}.max", f"must be greater than min (got min={lo}, max={hi})")
                return None
            if not math.isfinite(float(hi) - float(lo)):
                self.problem(path, f"the range is too wide to sample (got min={lo}, max={hi})")
                return None
            if dist in (LOG_UNIFORM_VALUES, Q_LOG_UNIFORM_VALUES, INV_LOG_UNIFORM_VALUES) \
                    and lo <= 0:
                self.problem(f"{path}.min", f"must be greater than 0 for {dist}, whose bounds "
                                            f"are values on a log scale (got {lo})")
                return None
            if dist in (LOG_UNIFORM, Q_LOG_UNIFORM) and hi > MAX_EXP_ARG:
                self.problem(f"{path}.max", f"exp(max) overflows: {dist} takes natural-log "
                                            f"bounds (got {hi}); did you mean {dist}_values?")
                return None
            if dist == INV_LOG_UNIFORM and lo < -MAX_EXP_ARG:
                self.problem(f"{path}.min", f"exp(-min) overflows: inv_log_uniform takes "
                                            f"natural-log bounds (got {lo})")
                return None
            looks_like_values = (lo > 0 and hi <= 1) or (
                dist in (LOG_UNIFORM, Q_LOG_UNIFORM) and hi > LIKELY_VALUE_EXPONENT)
            if dist in (LOG_UNIFORM, Q_LOG_UNIFORM, INV_LOG_UNIFORM) and looks_like_values:
                values = f"{dist}_values"
                self.warnings.append(
                    f"{path}: {dist} takes natural-log bounds, so values lie between "
                    f"{math.exp(-hi if dist == INV_LOG_UNIFORM else lo):.4g} and "
                    f"{math.exp(-lo if dist == INV_LOG_UNIFORM else hi):.4g}; did you mean "
                    f"{values}?")
        if "mu" in DISTRIBUTION_ARGUMENTS[dist]:
            for key, default in (("mu", 0.0), ("sigma", 1.0)):
                args[key] = default if spec.get(key) is None else \
                    self.number(spec, key, f"{path}.{key}")
            if args["sigma"] is not None and args["sigma"] <= 0:
                self.problem(f"{path}.sigma", f"must be greater than 0 (got {args['sigma']})")
        if "a" in DISTRIBUTION_ARGUMENTS[dist]:
            for key in ("a", "b"):
                args[key] = 1.0 if spec.get(key) is None else \
                    self.number(spec, key, f"{path}.{key}")
                if args[key] is not None and args[key] <= 0:
                    self.problem(f"{path}.{key}", f"must be greater than 0 (got {args[key]})")
        if dist in QUANTISED:
            if spec.get("q") is None:
                ints = all(isinstance(args.get(k), int) for k in ("min", "max"))
                args["q"] = 1 if dist in (Q_UNIFORM, Q_LOG_UNIFORM_VALUES) and ints else 1.0
            else:
                args["q"] = self.number(spec, "q", f"{path}.q")
                if args["q"] is not None and args["q"] <= 0:
                    self.problem(f"{path}.q", f"must be greater than 0 (got {args['q']})")
        if len(self.problems) > before:
            return None
        param = Parameter(ppath, dist, **args)
        if dist in (Q_UNIFORM, Q_LOG_UNIFORM, Q_LOG_UNIFORM_VALUES, Q_BETA):
            self.check_lattice(param, path)
        return param

    def check_lattice(self, param: Parameter, path: str) -> None:
        k_lo, k_hi = param.lattice_range
        assert k_lo is not None and k_hi is not None
        bounds = param.bounds
        assert bounds is not None
        lo, hi = bounds
        if k_lo > k_hi:
            self.problem(f"{path}.q", f"no multiple of q={param.q} lies between "
                                      f"{lo:g} and {hi:g}")
            return
        if k_lo == k_hi:
            self.warnings.append(f"{path}.q: q={param.q} leaves one value between {lo:g} and "
                                 f"{hi:g} ({param.lattice_value(k_lo)}): every run gets it")
            return
        if param.distribution in (Q_UNIFORM, Q_LOG_UNIFORM_VALUES):
            off = [name for name, v in (("min", param.min), ("max", param.max))
                   if param.grid_index(v) is None]
            if off:
                first, last = param.lattice_value(k_lo), param.lattice_value(k_hi)
                self.warnings.append(
                    f"{path}: {' and '.join(off)} not a multiple of q={param.q}; values are the "
                    f"multiples of q from {first} to {last}")

    def build_categorical(self, spec: dict[str, Any], path: str,
                          ppath: ParamPath) -> Parameter | None:
        values = spec.get("values")
        if values is None:
            self.problem(f"{path}.values", "required: the list of values to choose from")
            return None
        if not isinstance(values, list):
            self.problem(f"{path}.values", f"must be a list (got {_kind(values)}); for a single "
                                           "value use `value:`")
            return None
        if not values:
            self.problem(f"{path}.values", "must hold at least one value")
            return None
        probabilities: tuple[float, ...] | None = None
        probs = spec.get("probabilities")
        if probs is not None:
            if not isinstance(probs, list):
                self.problem(f"{path}.probabilities", f"must be a list of numbers "
                                                      f"(got {_kind(probs)})")
                return None
            numbers: list[float] = []
            for i in range(len(probs)):
                item_path = f"{path}.probabilities[{i}]"
                p = self.number(probs, i, item_path)
                if p is None:
                    continue
                if p < 0:
                    self.problem(item_path, f"must not be negative (got {p})")
                    continue
                numbers.append(float(p))
            if len(numbers) != len(probs):
                return None
            if len(probs) != len(values):
                self.problem(f"{path}.probabilities", f"must have one entry per value (got "
                                                      f"{len(probs)} for {len(values)} values)")
                return None
            total = math.fsum(numbers)
            if abs(total - 1.0) > PROBABILITY_TOLERANCE:
                self.problem(f"{path}.probabilities", f"must sum to 1 (got {total:g})")
                return None
            probabilities = tuple(numbers)
        keys = set()
        for v in values:
            c = canonical(v)
            if c in keys:
                self.warnings.append(f"{path}.values: {_fmt(v)} is listed more than once (grid "
                                     "search runs it once; random search draws it more often)")
                break
            keys.add(c)
        return Parameter(ppath, CATEGORICAL, values=tuple(values), probabilities=probabilities)

    # -------------------------------------------------------------- semantics

    def check_grid(self, space: SearchSpace) -> None:
        for p in space.parameters:
            path = self.key_paths.get(p.path, "parameters." + ".".join(p.path))
            if p.distribution not in GRIDABLE:
                if p.distribution == Q_BETA:
                    why = "q_beta weights its values by a beta distribution"
                elif p.distribution in QUANTISED:
                    why = f"{p.distribution} is unbounded"
                else:
                    why = f"{p.distribution} is continuous"
                self.problem(path, f"{why}, so grid search cannot enumerate it; use values, "
                                   "int_uniform, or q_uniform / q_log_uniform_values with min "
                                   "and max")
            elif p.probabilities is not None:
                self.warnings.append(f"{path}.probabilities: ignored by grid search (every value "
                                     "is run)")
        if all(p.is_gridable for p in space.parameters):
            size = 1
            for p in space.parameters:
                size *= p.grid_count()
            if size > MAX_EXACT_INT:
                self.problem("parameters", f"the grid has {size:.3g} points, more than the "
                                           f"2**53 opensweep can count exactly; narrow a range or "
                                           "use method random")


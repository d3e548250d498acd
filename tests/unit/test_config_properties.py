"""Property: whatever a config holds, validation ends in a SweepConfig or a ConfigError, never in
anything else, and a config that validates can be used (sampled, gridded, summarised)."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core.command import build_argv
from controller.core.config import (
    HYPERBAND_KEYS,
    METRIC_KEYS,
    PARAMETER_KEYS,
    TOP_LEVEL_KEYS,
    load_config,
    parse_config,
)
from controller.core.errors import CommandError, ConfigError
from controller.core.grid import Grid
from controller.core.random_search import sample_random
from controller.core.space import DISTRIBUTIONS
from controller.validate import render_text
from tests.unit.test_random_search import distribution_spec

_words = st.sampled_from([*TOP_LEVEL_KEYS, *PARAMETER_KEYS, *METRIC_KEYS, *HYPERBAND_KEYS,
                          *DISTRIBUTIONS, "grid", "random", "bayes", "hyperband", "minimize",
                          "maximize", "project", "${args}", "${envvar:HOME}", "x", "lr", "a.b",
                          "", "1e-5", "-3", "inf", "nan"])
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e3, 1e3), _words,
    st.text(max_size=8),
)
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(_words, st.text(max_size=4)), inner,
                                                 max_size=4)), max_leaves=25)


@st.composite
def parameter_spec(draw: st.DrawFn, depth: int = 0) -> Any:
    """Mostly a sensible parameter, sometimes nested, sometimes with one part spoilt."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(_json)
    if kind == 1 and depth < 3:
        return {"parameters": draw(st.dictionaries(_names, parameter_spec(depth + 1),
                                                   min_size=1, max_size=3))}
    spec = draw(distribution_spec())
    if spec["distribution"] in _INFERRED and draw(st.booleans()):
        del spec["distribution"]
    if kind == 2:  # spoil one key or add a stray one
        key = draw(st.sampled_from([*spec, *PARAMETER_KEYS, "vlaues", "distrbution"]))
        spec[key] = draw(_json)
    return spec


_names = st.one_of(st.sampled_from(["lr", "a.b", "x", "opt", "batch_size"]),
                   st.text(max_size=4))
_INFERRED = ("constant", "categorical", "int_uniform", "uniform", "normal")


@st.composite
def sweep_config(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(_json)
    method = draw(st.sampled_from(["grid", "random", "bayes"]))
    parameters = draw(st.dictionaries(_names, parameter_spec(), min_size=1, max_size=4))
    config: dict[str, Any] = {"method": method, "parameters": parameters,
                              "metric": {"name": "loss", "goal": "minimize"}}
    if method == "grid" and draw(st.booleans()):  # mostly gridable, so grids get built
        config["parameters"] = {name: {"values": draw(st.lists(_scalars, min_size=1,
                                                               max_size=3))}
                                for name in parameters}
    for key in draw(st.lists(st.sampled_from([*TOP_LEVEL_KEYS, "project", "scheduler", "bogus"]),
                             max_size=3, unique=True)):
        if key == "metric":
            config[key] = draw(st.one_of(st.fixed_dictionaries(
                {"name": _scalars}, optional={"goal": _words, "target": _scalars}), _json))
        elif key == "early_terminate":
            config[key] = draw(st.one_of(
                st.fixed_dictionaries({"type": st.just("hyperband"),
                                       "min_iter": st.integers(-1, 5)},
                                      optional={"eta": st.integers(0, 4),
                                                "strict": st.booleans()}),
                st.dictionaries(st.sampled_from(HYPERBAND_KEYS), _scalars, max_size=4)))
        elif key == "command":
            config[key] = draw(st.one_of(st.lists(_words, max_size=5), _json))
        elif key == "run_cap":
            config[key] = draw(st.one_of(st.integers(-1, 10), _scalars))
        elif key != "parameters":
            config[key] = draw(_scalars)
    return config


def use(config: Any) -> None:
    """Everything the controller and the CLI do with a valid config must work."""
    json.dumps(config.raw, allow_nan=False)
    assert parse_config(config.raw) == config
    render_text(config, "fuzz.yaml")
    point = sample_random(config.space, 0)
    assert all(p.contains(point[p.path]) for p in config.space)
    if config.method == "grid":
        grid = Grid(config.space)
        assert grid.size == config.grid_size
        assert grid.index_of(grid.point(grid.size - 1)) == grid.size - 1
    for p in config.space:
        if p.is_numeric:
            assert p.contains(p.from_unit(p.to_unit(point[p.path])))
    with contextlib.suppress(CommandError):
        build_argv(config, point, interpreter="python", environ={}, args_json_file="a.json")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweep_config())
def test_any_config_gives_a_sweep_config_or_a_config_error(raw: Any) -> None:
    try:
        config = parse_config(raw)
    except ConfigError as e:
        assert e.problems and all(isinstance(p.path, str) and p.message for p in e.problems)
    else:
        use(config)
    try:
        lenient = parse_config(raw, strict=False)
    except ConfigError as e:
        assert e.problems
    else:  # what lenient mode keeps is strictly valid, so the controller can store it
        assert parse_config(lenient.raw).space == lenient.space


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweep_config())
def test_any_config_written_as_yaml_loads_the_same_way(raw: Any) -> None:
    try:
        text = yaml.safe_dump(raw)
    except yaml.YAMLError:
        return
    with contextlib.suppress(ConfigError):
        load_config(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_any_text_loads_or_gives_a_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        load_config(text)


def test_non_finite_numbers_are_problems_not_crashes() -> None:
    for bad in (math.inf, -math.inf, math.nan, "inf", "1e999"):
        try:
            parse_config({"method": "random", "parameters": {"p": {"min": 0, "max": bad}}})
        except ConfigError as e:
            assert [p.path for p in e.problems] == ["parameters.p.max"], bad
        else:
            raise AssertionError(f"max={bad!r} was accepted")

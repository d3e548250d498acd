"""Grid search: a deterministic bijection between indexes and points, in W&B's order."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.config import SweepConfig, parse_config
from controller.core.errors import ConfigError, GridIndexError
from controller.core.grid import Grid


def grid_config(parameters: dict[str, Any], **extra: Any) -> SweepConfig:
    return parse_config({"method": "grid", "parameters": parameters, **extra})


def test_points_follow_w_and_b_order_sorted_names_last_fastest() -> None:
    grid = Grid(grid_config({"b": {"values": ["x", "y"]}, "a": {"values": [1, 2, 3]}}).space)
    assert [(p[("a",)], p[("b",)]) for p in grid] == [
        (1, "x"), (1, "y"), (2, "x"), (2, "y"), (3, "x"), (3, "y")]


def test_nested_parameters_sort_inside_their_parent() -> None:
    config = grid_config({"z": {"values": [1, 2]},
                          "m": {"parameters": {"b": {"values": [1, 2]}, "a": {"value": 0}}}})
    assert config.space.paths == (("m", "a"), ("m", "b"), ("z",))
    assert Grid(config.space).point(1) == {("m", "a"): 0, ("m", "b"): 1, ("z",): 2}


def test_the_same_config_gives_the_same_grid() -> None:
    raw = {"a": {"values": [3, 1, 2]}, "b": {"min": 1, "max": 4},
           "c": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.5}}
    assert list(Grid(grid_config(raw).space)) == list(Grid(grid_config(dict(raw)).space))


def test_size_is_the_product_of_the_value_counts_and_the_expected_run_count() -> None:
    config = grid_config({"a": {"values": [1, 2, 3]}, "b": {"min": 1, "max": 4},
                          "c": {"value": "x"},
                          "d": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25},
                          "e": {"distribution": "q_log_uniform_values", "min": 1, "max": 8,
                                "q": 1}})
    grid = Grid(config.space)
    assert grid.size == len(grid) == 3 * 4 * 1 * 5 * 8 == config.expected_run_count


def test_point_is_computed_from_the_index_without_enumerating() -> None:
    grid = Grid(grid_config({"a": {"min": 0, "max": 10**7}, "b": {"min": 0, "max": 10**7}}).space)
    assert grid.size == (10**7 + 1) ** 2
    assert grid.point(grid.size - 1) == {("a",): 10**7, ("b",): 10**7}
    assert grid.index_of({("a",): 123, ("b",): 456}) == 123 * (10**7 + 1) + 456


@pytest.mark.parametrize("index", [-1, 6, 2.0, True, "1"])
def test_an_index_outside_the_grid_is_an_error(index: Any) -> None:
    grid = Grid(grid_config({"a": {"values": [1, 2, 3]}, "b": {"values": [1, 2]}}).space)
    with pytest.raises(GridIndexError):
        grid.point(index)


def test_index_of_a_point_not_in_the_grid_is_none() -> None:
    grid = Grid(grid_config({"a": {"values": [1, 2]}, "b": {"min": 0, "max": 2}}).space)
    assert grid.index_of({("a",): 3, ("b",): 0}) is None
    assert grid.index_of({("a",): 1}) is None
    assert grid.index_of({("a",): 1, ("b",): 0.5}) is None


def test_index_of_accepts_values_that_came_back_through_json() -> None:
    grid = Grid(grid_config({"a": {"min": 0, "max": 3}, "b": {"values": [{"k": 1}]}}).space)
    assert grid.index_of({("a",): 2.0, ("b",): {"k": 1.0}, ("extra",): 1}) == 2


def test_repeated_categorical_values_are_one_grid_point() -> None:
    config = grid_config({"a": {"values": ["x", "y", "x"]}})
    assert Grid(config.space).size == config.expected_run_count == 2


def test_a_grid_over_a_continuous_parameter_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        grid_config({"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1}})
    assert [p.path for p in info.value.problems] == ["parameters.lr"]


def test_grid_refuses_a_space_with_a_continuous_parameter() -> None:
    space = parse_config({"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}}).space
    with pytest.raises(ConfigError):
        Grid(space)


def test_expected_run_count_is_none_where_the_space_is_infinite() -> None:
    random = parse_config({"method": "random", "parameters": {"a": {"values": [1, 2]}}})
    assert random.expected_run_count is None and random.grid_size is None


# ---------------------------------------------------------------- property: bijection

_values = st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=3), st.booleans(), st.none()),
                   min_size=1, max_size=4)
_gridable = st.one_of(
    st.builds(lambda v: {"values": v}, _values),
    st.builds(lambda v: {"value": v}, st.integers(-3, 3)),
    st.builds(lambda lo, n: {"min": lo, "max": lo + n}, st.integers(-50, 50), st.integers(1, 4)),
    st.builds(lambda lo, n, q: {"distribution": "q_uniform", "min": lo * q, "max": (lo + n) * q,
                                "q": q},
              st.integers(-5, 5), st.integers(1, 4), st.sampled_from([0.1, 0.25, 2, 0.5, 3])),
    st.builds(lambda lo, n, q: {"distribution": "q_log_uniform_values", "min": lo * q,
                                "max": (lo + n) * q, "q": q},
              st.integers(1, 5), st.integers(1, 4), st.sampled_from([0.1, 1, 8])),
)
_names = st.text(alphabet="abcxyz_.", min_size=1, max_size=4).filter(lambda s: s[0] != ".")


@st.composite
def grid_parameters(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    names = draw(st.lists(_names, min_size=1, max_size=3, unique=True))
    block: dict[str, Any] = {}
    for name in names:
        if depth < 2 and draw(st.booleans()) and draw(st.booleans()):
            block[name] = {"parameters": draw(grid_parameters(depth + 1))}
        else:
            block[name] = draw(_gridable)
    return block


@settings(max_examples=150, deadline=None)
@given(grid_parameters())
def test_grid_index_and_point_are_a_bijection_of_expected_run_count_points(
        parameters: dict[str, Any]) -> None:
    config = grid_config(parameters)
    grid = Grid(config.space)
    assert grid.size == config.expected_run_count == config.grid_size
    seen: set[str] = set()
    for index in range(min(grid.size, 300)):
        point = grid.point(index)
        assert grid.index_of(point) == index
        assert all(p.contains(point[p.path]) for p in config.space)
        seen.add(repr(sorted(point.items(), key=lambda kv: kv[0])))
    assert len(seen) == min(grid.size, 300)  # no two indexes give the same point

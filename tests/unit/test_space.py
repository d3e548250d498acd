"""Distributions: what a draw is, the q lattice, grid values, unit-cube warping, nesting."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from controller.core.config import parse_config
from controller.core.errors import ConfigError
from controller.core.space import Parameter, SearchSpace, canonical


def param(spec: dict[str, Any], method: str = "random") -> Parameter:
    return parse_config({"method": method, "parameters": {"p": spec}}).space.parameters[0]


def draws(p: Parameter, n: int = 2000, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [p.sample(rng) for _ in range(n)]


# ---------------------------------------------------------------- what a draw is


def test_constant_draw_is_the_value() -> None:
    assert set(map(canonical, draws(param({"value": {"a": [1, 2]}}), 5))) == {'{"a": [1, 2]}'}


def test_categorical_draw_is_one_of_the_values_each_about_equally_often() -> None:
    values = draws(param({"values": ["a", "b", "c", "d"]}), 4000)
    counts = {v: values.count(v) for v in "abcd"}
    assert all(850 < c < 1150 for c in counts.values()), counts


def test_categorical_draw_follows_probabilities() -> None:
    values = draws(param({"values": ["x", "y"], "probabilities": [0.9, 0.1]}), 4000)
    assert 0.87 < values.count("x") / 4000 < 0.93


def test_categorical_with_zero_probability_never_draws_that_value() -> None:
    values = draws(param({"values": [1, 2, 3], "probabilities": [0.5, 0.0, 0.5]}), 500)
    assert 2 not in values


def test_categorical_draw_is_a_copy_not_the_stored_value() -> None:
    p = param({"values": [[1, 2]]})
    first = p.sample(np.random.default_rng(0))
    first.append(3)
    assert p.values == ([1, 2],)


def test_int_uniform_draws_every_integer_including_both_ends() -> None:
    values = draws(param({"min": -2, "max": 2}), 500)
    assert set(values) == {-2, -1, 0, 1, 2}
    assert all(type(v) is int for v in values)


def test_uniform_draws_floats_between_min_and_max() -> None:
    values = draws(param({"min": 0.5, "max": 1.5}))
    assert all(type(v) is float and 0.5 <= v <= 1.5 for v in values)
    assert 0.95 < float(np.mean(values)) < 1.05


def test_log_uniform_bounds_are_natural_logs() -> None:
    values = draws(param({"distribution": "log_uniform", "min": math.log(1e-4),
                          "max": math.log(1e-1)}))
    assert all(1e-4 * (1 - 1e-9) <= v <= 1e-1 * (1 + 1e-9) for v in values)
    logs = np.log10(values)
    assert -2.6 < float(np.mean(logs)) < -2.4  # uniform in log space: mean of exponents


def test_log_uniform_values_bounds_are_the_values() -> None:
    values = draws(param({"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}))
    assert all(1e-4 <= v <= 1e-1 for v in values)
    fraction_below_1e_3 = sum(v < 1e-3 for v in values) / len(values)
    assert 0.30 < fraction_below_1e_3 < 0.37  # one decade of three


def test_inv_log_uniform_is_exp_of_minus_a_uniform_exponent() -> None:
    values = draws(param({"distribution": "inv_log_uniform", "min": 0, "max": math.log(100)}))
    assert all(0.01 * (1 - 1e-9) <= v <= 1.0 for v in values)
    assert 0.45 < sum(v < 0.1 for v in values) / len(values) < 0.55


def test_inv_log_uniform_values_lies_between_min_and_max() -> None:
    values = draws(param({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1}))
    assert all(0.01 <= v <= 1 for v in values)
    assert 0.45 < sum(v < 0.1 for v in values) / len(values) < 0.55


def test_normal_draws_have_the_given_mean_and_spread() -> None:
    values = draws(param({"distribution": "normal", "mu": 10, "sigma": 2}), 4000)
    assert 9.85 < float(np.mean(values)) < 10.15
    assert 1.9 < float(np.std(values)) < 2.1


def test_log_normal_draws_are_exp_of_a_normal() -> None:
    values = draws(param({"distribution": "log_normal", "mu": 0, "sigma": 1}), 4000)
    assert all(v > 0 for v in values)
    assert -0.07 < float(np.mean(np.log(values))) < 0.07


def test_beta_draws_lie_in_the_unit_interval_with_the_beta_mean() -> None:
    values = draws(param({"distribution": "beta", "a": 2, "b": 6}), 4000)
    assert all(0 <= v <= 1 for v in values)
    assert 0.24 < float(np.mean(values)) < 0.26


# ---------------------------------------------------------------- q


@pytest.mark.parametrize("spec", [
    {"distribution": "uniform", "min": -3.5, "max": 2},
    {"distribution": "log_uniform", "min": -5, "max": 2},
    {"distribution": "log_uniform_values", "min": 1e-5, "max": 0.1},
    {"distribution": "inv_log_uniform", "min": 0, "max": 3},
    {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 10},
])
def test_a_draw_is_the_generic_inverse_cdf_draw_with_its_arguments_looked_up_once(
        spec: dict[str, Any]) -> None:
    p = param(spec)
    assert draws(p, 500, seed=4) == [p._sample_generic(rng) for rng in
                                     [np.random.default_rng(4)] for _ in range(500)]


def test_q_uniform_draws_are_multiples_of_q_within_the_bounds() -> None:
    values = draws(param({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25}), 1000)
    assert set(values) == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_q_uniform_never_exceeds_max_unlike_w_and_b() -> None:
    # W&B rounds U(0, 10) / 4 and can give 12; the lattice here stops at the last multiple <= max.
    values = draws(param({"distribution": "q_uniform", "min": 0, "max": 10, "q": 4}), 1000)
    assert set(values) == {0, 4, 8}


def test_q_values_are_exact_decimals_not_float_products() -> None:
    values = draws(param({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.1}), 1000)
    assert 0.3 in values and 0.30000000000000004 not in values
    assert set(values) == {round(k * 0.1, 10) for k in range(11)}


def test_integer_q_gives_integers_like_w_and_b() -> None:
    values = draws(param({"distribution": "q_uniform", "min": 0.0, "max": 10.0, "q": 2}), 300)
    assert all(type(v) is int for v in values) and set(values) == {0, 2, 4, 6, 8, 10}


def test_float_q_gives_floats_like_w_and_b() -> None:
    values = draws(param({"distribution": "q_uniform", "min": 0, "max": 4, "q": 2.0}), 300)
    assert all(type(v) is float for v in values) and set(values) == {0.0, 2.0, 4.0}


def test_q_rounds_to_the_nearest_multiple_half_to_even() -> None:
    p = param({"distribution": "q_normal", "mu": 0, "sigma": 1, "q": 1})
    assert [p._snap(x) for x in (0.5, 1.5, 2.5, -0.5, 0.49, 0.51)] == [0, 2, 2, 0, 0, 1]


def test_q_log_uniform_values_is_never_zero_unlike_w_and_b() -> None:
    values = draws(param({"distribution": "q_log_uniform_values", "min": 0.01, "max": 100,
                          "q": 5}), 2000)
    assert min(values) == 5 and max(values) == 100
    assert all(v % 5 == 0 for v in values)


def test_q_log_uniform_takes_natural_log_bounds() -> None:
    values = draws(param({"distribution": "q_log_uniform", "min": 0, "max": math.log(1000),
                          "q": 10}), 1000)
    assert all(10 <= v <= 1000 and v % 10 == 0 for v in values)


def test_q_normal_and_q_log_normal_and_q_beta_obey_q() -> None:
    for spec in ({"distribution": "q_normal", "mu": 0, "sigma": 10, "q": 3},
                 {"distribution": "q_log_normal", "mu": 2, "sigma": 1, "q": 2},
                 {"distribution": "q_beta", "a": 2, "b": 2, "q": 0.2}):
        p = param(spec)
        assert all(p.contains(v) for v in draws(p, 300)), spec
    assert min(draws(param({"distribution": "q_log_normal", "mu": 0, "sigma": 3, "q": 1}))) >= 1


def test_q_beta_values_are_the_multiples_of_q_in_the_unit_interval() -> None:
    values = draws(param({"distribution": "q_beta", "a": 1, "b": 1, "q": 0.25}), 1000)
    assert set(values) == {0.0, 0.25, 0.5, 0.75, 1.0}


# ---------------------------------------------------------------- membership


@pytest.mark.parametrize("spec,inside,outside", [
    ({"values": [1, "a", None]}, [1, 1.0, "a", None], [2, True, "b"]),
    ({"min": 1, "max": 3}, [1, 2, 3, 2.0], [0, 4, 2.5, True, "2"]),
    ({"min": 1.0, "max": 3.0}, [1.0, 2.7, 3], [0.99, 3.01, math.nan, math.inf]),
    ({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25}, [0.5, 0.75, 1.0],
     [0.3, 1.25, -0.25]),
    ({"distribution": "log_normal"}, [0.1, 100.0], [0.0, -1.0]),
])
def test_contains_follows_support_and_lattice(spec: dict[str, Any], inside: list[Any],
                                              outside: list[Any]) -> None:
    p = param(spec)
    assert all(p.contains(v) for v in inside), [v for v in inside if not p.contains(v)]
    assert not any(p.contains(v) for v in outside), [v for v in outside if p.contains(v)]


# ---------------------------------------------------------------- grid values


def test_int_uniform_grid_values_are_every_integer() -> None:
    assert param({"min": 3, "max": 6}, "grid").grid_values() == (3, 4, 5, 6)


def test_q_uniform_grid_includes_max_unlike_w_and_b() -> None:
    # W&B's arange(0, 1, 0.25) stops before 1.
    p = param({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25}, "grid")
    assert p.grid_values() == (0.0, 0.25, 0.5, 0.75, 1.0)


def test_q_log_uniform_values_grid_is_every_multiple_in_range() -> None:
    p = param({"distribution": "q_log_uniform_values", "min": 32, "max": 256, "q": 32}, "grid")
    assert p.grid_values() == (32, 64, 96, 128, 160, 192, 224, 256)


def test_categorical_grid_lists_a_repeated_value_once() -> None:
    p = param({"values": [1, 2, 1.0, 3]}, "grid")
    assert p.grid_values() == (1, 2, 3)
    assert [p.grid_index(v) for v in (1, 2, 3, 4)] == [0, 1, 2, None]


def test_grid_index_is_the_inverse_of_grid_value() -> None:
    p = param({"distribution": "q_uniform", "min": -1, "max": 1, "q": 0.1}, "grid")
    assert all(p.grid_index(p.grid_value(i)) == i for i in range(p.grid_count()))
    assert p.grid_index(0.05) is None and p.grid_index(1.1) is None


def test_huge_int_uniform_grid_is_counted_not_materialised() -> None:
    p = param({"min": 0, "max": 10**12}, "grid")
    assert p.grid_count() == 10**12 + 1 and p.grid_value(10**12) == 10**12


def test_continuous_distribution_has_no_grid() -> None:
    with pytest.raises(ConfigError):
        param({"min": 0.0, "max": 1.0}).grid_count()


# ---------------------------------------------------------------- unit-cube warping


@pytest.mark.parametrize("spec", [
    {"min": 0.0, "max": 10.0},
    {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
    {"distribution": "log_uniform", "min": -5, "max": 2},
    {"distribution": "inv_log_uniform", "min": 0, "max": 3},
    {"distribution": "inv_log_uniform_values", "min": 0.1, "max": 10},
    {"distribution": "normal", "mu": 3, "sigma": 2},
    {"distribution": "log_normal", "mu": 0, "sigma": 1},
    {"distribution": "beta", "a": 2, "b": 5},
])
def test_continuous_warping_round_trips(spec: dict[str, Any]) -> None:
    p = param(spec)
    for u in (0.05, 0.3, 0.5, 0.9):
        assert p.to_unit(p.from_unit(u)) == pytest.approx(u, abs=1e-9)


def test_log_distributions_warp_in_log_space() -> None:
    p = param({"distribution": "log_uniform_values", "min": 1e-4, "max": 1.0})
    assert p.to_unit(1e-2) == pytest.approx(0.5)


@pytest.mark.parametrize("spec", [
    {"min": 1, "max": 5},
    {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25},
    {"distribution": "q_log_uniform_values", "min": 1, "max": 64, "q": 1},
    {"distribution": "q_normal", "q": 0.5},
])
def test_discrete_warping_lands_on_the_lattice(spec: dict[str, Any]) -> None:
    p = param(spec)
    for u in np.linspace(0, 1, 41):
        value = p.from_unit(float(u))
        assert p.contains(value), (u, value)
        assert p.from_unit(p.to_unit(value)) == value


def test_int_uniform_gives_each_integer_an_equal_share_of_the_unit_interval() -> None:
    p = param({"min": 0, "max": 3})
    assert [p.from_unit(u) for u in (0.0, 0.24, 0.26, 0.74, 0.76, 1.0)] == [0, 0, 1, 2, 3, 3]
    assert [p.to_unit(v) for v in range(4)] == [0.125, 0.375, 0.625, 0.875]


def test_categorical_has_no_numeric_warping() -> None:
    p = param({"values": [1, 2]})
    assert not p.is_numeric
    with pytest.raises(Exception, match="no numeric warping"):
        p.to_unit(1)


# ---------------------------------------------------------------- nesting and defaults


def space_of(parameters: dict[str, Any]) -> SearchSpace:
    return parse_config({"method": "random", "parameters": parameters}).space


def test_parameters_are_sorted_by_path() -> None:
    space = space_of({"b": {"value": 1}, "a": {"parameters": {"z": {"value": 1},
                                                              "y": {"value": 2}}}})
    assert space.paths == (("a", "y"), ("a", "z"), ("b",))


def test_nest_builds_nested_dicts_and_keeps_dotted_names_whole() -> None:
    space = space_of({"opt.lr": {"value": 1}, "model": {"parameters": {
        "enc": {"parameters": {"depth": {"value": 2}}}}}})
    nested = space.nest({("opt.lr",): 0.1, ("model", "enc", "depth"): 3})
    assert nested == {"opt.lr": 0.1, "model": {"enc": {"depth": 3}}}


def test_flatten_is_the_inverse_of_nest() -> None:
    space = space_of({"a": {"values": [{"k": 1}, {"k": 2}]},
                      "b": {"parameters": {"c": {"min": 0, "max": 3}}}})
    flat = space.sample(np.random.default_rng(3))
    assert space.flatten(space.nest(flat)) == flat


def test_flatten_ignores_keys_that_are_not_parameters_and_skips_missing_ones() -> None:
    space = space_of({"a": {"value": 1}, "b": {"parameters": {"c": {"value": 2}}}})
    assert space.flatten({"a": 5, "extra": 1, "b": {}}) == {("a",): 5}


def test_overlay_puts_sweep_values_over_program_defaults() -> None:
    space = space_of({"lr": {"value": 1}, "optimizer": {"parameters": {"lr": {"value": 1}}}})
    defaults = {"lr": 0.5, "epochs": 10, "optimizer": {"lr": 0.3, "betas": [0.9, 0.99]}}
    config = space.overlay(defaults, {("lr",): 0.01, ("optimizer", "lr"): 0.02})
    assert config == {"lr": 0.01, "epochs": 10, "optimizer": {"lr": 0.02, "betas": [0.9, 0.99]}}
    assert defaults["optimizer"] == {"lr": 0.3, "betas": [0.9, 0.99]}  # not modified


def test_overlay_replaces_a_default_that_is_not_a_dict_where_the_sweep_nests() -> None:
    space = space_of({"opt": {"parameters": {"lr": {"value": 1}}}})
    assert space.overlay({"opt": "adam"}, {("opt", "lr"): 0.1}) == {"opt": {"lr": 0.1}}


def test_nest_turns_numpy_scalars_into_python_values() -> None:
    space = space_of({"a": {"value": 1}})
    value = space.nest({("a",): np.float64(0.5)})["a"]
    assert type(value) is float


def test_canonical_equates_int_and_float_but_not_bool() -> None:
    assert canonical(1) == canonical(1.0) != canonical(True)
    assert canonical({"b": 1, "a": [2.0]}) == canonical({"a": [2], "b": 1.0})


# ---------------------------------------------------------------- W&B's ppf, value for value


class _FixedUniform:
    """A stand-in generator whose uniform draw is ``u``: pins what a given draw turns into."""

    def __init__(self, u: float) -> None:
        self.u = u

    def random(self) -> float:
        return self.u


_LN = math.log
WANDB_PPF: list[tuple[dict[str, Any], Any]] = [
    ({"distribution": "uniform", "min": -2.0, "max": 3.0}, lambda u: -2 + 5 * u),
    ({"distribution": "log_uniform", "min": -9.0, "max": -1.0},
     lambda u: math.exp(-9 + 8 * u)),
    ({"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
     lambda u: math.exp(_LN(1e-5) + u * (_LN(1e-1) - _LN(1e-5)))),
    ({"distribution": "inv_log_uniform", "min": 0.5, "max": 4.0},
     lambda u: math.exp(-(0.5 + (1 - u) * 3.5))),
    ({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 10.0},
     lambda u: 1 / math.exp(_LN(1 / 10) + (1 - u) * (_LN(1 / 0.01) - _LN(1 / 10)))),
    ({"distribution": "q_uniform", "min": 0.0, "max": 10.0, "q": 0.5},
     lambda u: round((10 * u) / 0.5) * 0.5),
    ({"distribution": "q_log_uniform", "min": 0.0, "max": 6.0, "q": 2.0},
     lambda u: round(math.exp(6 * u) / 2) * 2.0),
    ({"distribution": "q_log_uniform_values", "min": 16, "max": 512, "q": 8},
     lambda u: round(math.exp(_LN(16) + u * (_LN(512) - _LN(16))) / 8) * 8),
]


@pytest.mark.parametrize("spec,ppf", WANDB_PPF, ids=[s["distribution"] for s, _ in WANDB_PPF])
def test_a_uniform_draw_becomes_the_value_w_and_b_gives_it(spec: dict[str, Any], ppf: Any) -> None:
    p = param(spec)
    for u in (0.013, 0.25, 0.5, 0.77, 0.999):
        ours = p.sample(_FixedUniform(u))  # type: ignore[arg-type]
        assert ours == pytest.approx(ppf(u), rel=1e-12), u
        assert type(ours) is (int if isinstance(spec.get("q"), int) else float)

"""The search bayes uses past FAST_SEARCH_AFTER modelled runs: same posterior, sound ascent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core import _gp, bayes
from controller.core.config import parse_config


def _gp_on(n: int, d: int, seed: int, noise: float) -> _gp.GaussianProcess:
    rng = np.random.default_rng(seed)
    x = rng.random((n, d))
    y = np.sin(5.0 * x).sum(1)
    y = (y - y.mean()) / y.std()
    hp = _gp.Hyperparameters(rng.uniform(0.1, 2.0, d), 1.3, noise)
    return _gp.GaussianProcess(x, y, np.arange(d), hp, y_mean=0.0, y_scale=1.0)


@pytest.mark.parametrize(("n", "noise"), [(128, 1e-6), (128, 1e-2), (40, 1e-4), (200, 1e-6)])
def test_the_explicit_inverse_posterior_is_the_posterior(n: int, noise: float) -> None:
    gp = _gp_on(n, 5, n, noise)
    fast = _gp.ExplicitInverseGP.of(gp)
    xs = np.vstack([np.random.default_rng(1).random((300, 5)), gp.x[:20]])  # incl. data points
    for got, want in zip(fast.predict(xs), gp.predict(xs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    for got, want in zip(fast.predict_with_grad(xs), gp.predict_with_grad(xs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(fast.column_scales, gp.column_scales)


@pytest.mark.parametrize(("n", "columns"), [(128, 5), (60, 3), (200, 1)])
def test_the_fused_log_ei_gradient_is_the_two_step_one(n: int, columns: int) -> None:
    gp = _gp.ExplicitInverseGP.of(_gp_on(n, 5, n + 1, 1e-4))
    best = float(np.median(gp.mean(gp.x)))  # most points with a moderate EI, some with a tiny
    xs = np.random.default_rng(2).random((50, 5))
    want_value, want_grad = bayes._Acquisition(gp, best).with_grad(xs)
    value, grad = gp.log_ei_with_grad(xs, best, columns)
    np.testing.assert_allclose(value, want_value, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad, want_grad[:, :columns], rtol=1e-6, atol=1e-9)
    # And it is the derivative: a central difference along each column agrees (away from the
    # far tail, where log EI is an asymptotic expansion and the differences lose digits).
    moderate = value > -10.0
    assert moderate.sum() >= 10
    for c in range(columns):
        step = np.zeros(5)
        step[c] = 1e-6
        numeric = (gp.log_ei_with_grad(xs + step, best, columns)[0]
                   - gp.log_ei_with_grad(xs - step, best, columns)[0]) / 2e-6
        np.testing.assert_allclose(grad[moderate, c], numeric[moderate], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("noise", [1e-6, 1e-3, 0.3])
def test_the_mean_at_the_data_is_the_mean_there(noise: float) -> None:
    gp = _gp_on(128, 4, 3, noise)
    np.testing.assert_allclose(gp.mean_at_data(), gp.mean(gp.x), rtol=0, atol=1e-12)


def test_the_explicit_inverse_leaves_the_gp_it_was_made_from_alone() -> None:
    gp = _gp_on(30, 3, 0, 1e-3)
    before = gp.predict(gp.x)
    _gp.ExplicitInverseGP.of(gp)
    assert type(gp) is _gp.GaussianProcess
    for a, b in zip(before, gp.predict(gp.x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_line_ascent_only_moves_numeric_columns_and_only_uphill() -> None:
    config = parse_config(
        {
            "method": "bayes",
            "metric": {"name": "loss", "goal": "minimize"},
            "parameters": {"x": {"min": 0.0, "max": 1.0}, "c": {"values": ["a", "b"]}},
        }
    )
    enc = bayes.SpaceEncoding(config.space)
    rng = np.random.default_rng(2)
    xs = enc.canonical(enc.random(rng, 120))
    ys = np.abs(xs[:, 0] - 0.3) + xs[:, 1]
    hp = _gp.Hyperparameters(np.ones(2) * 0.3, 1.0, 1e-4)
    gp = _gp.GaussianProcess(xs, (ys - ys.mean()) / ys.std(), enc.groups, hp)
    acq = bayes._Acquisition(_gp.ExplicitInverseGP.of(gp), float(gp.predict(xs)[0].min()))
    starts = enc.canonical(enc.random(rng, 6))
    out = bayes._line_ascent(enc, acq, starts)
    assert np.all(acq(out) >= acq(starts))
    assert np.any(acq(out) > acq(starts) + 1e-6)
    np.testing.assert_array_equal(out[:, 1:], starts[:, 1:])
    assert np.all((out >= 0.0) & (out <= 1.0))


def test_rotated_halton_candidates_are_points_of_the_space_spread_evenly() -> None:
    config = parse_config(
        {
            "method": "bayes",
            "metric": {"name": "loss", "goal": "minimize"},
            "parameters": {"x": {"min": 0.0, "max": 1.0}, "y": {"min": 0.0, "max": 1.0},
                           "c": {"values": ["a", "b", "c"]}},
        }
    )
    enc = bayes.SpaceEncoding(config.space)
    xs = bayes._rotated_halton(enc, np.random.default_rng(5), 192)
    again = bayes._rotated_halton(enc, np.random.default_rng(5), 192)
    other = bayes._rotated_halton(enc, np.random.default_rng(6), 192)
    np.testing.assert_array_equal(xs, again)
    assert not np.array_equal(xs, other)
    assert np.all((xs[:, :2] >= 0.0) & (xs[:, :2] < 1.0))
    np.testing.assert_array_equal(xs[:, 2:].sum(1), 1.0)  # one category each
    # Evenly spread: every cell of a 4x4 grid of the numeric square holds 12 +- 4 points.
    cells = np.histogram2d(xs[:, 0], xs[:, 1], bins=4, range=[[0, 1], [0, 1]])[0]
    assert cells.min() >= 8 and cells.max() <= 16


@settings(max_examples=60, deadline=None)
@given(
    low=st.integers(-(2**45), 2**45),
    width=st.integers(1, 2**46),
    units=st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=1, max_size=40),
)
def test_integer_columns_snap_in_one_pass_as_value_by_value(
    low: int, width: int, units: list[float]
) -> None:
    """canonical() snaps an int_uniform column with array arithmetic: it must give exactly
    what the parameter's own warping gives, value by value (to_unit(from_unit(u)))."""
    config = parse_config({
        "method": "bayes", "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"n": {"distribution": "int_uniform", "min": low, "max": low + width},
                       "x": {"min": 0.0, "max": 1.0}},
    })
    enc = bayes._encoding(config.space)
    xs = np.zeros((len(units), enc.dim))
    xs[:, 0] = units
    param = enc.numeric[0]
    expected = [param.to_unit(param.from_unit(min(max(u, 0.0), 1.0))) for u in units]
    assert enc.canonical(xs)[:, 0].tolist() == expected

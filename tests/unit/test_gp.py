"""controller.core._gp: the GP posterior, its hyperparameter fit and log expected improvement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

from controller.core import _gp


def _fitted(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> _gp.GaussianProcess:
    y_std = (y - y.mean()) / y.std()
    hp = _gp.fit_hyperparameters(x, y_std, groups, np.random.default_rng(0))
    return _gp.GaussianProcess(x, y_std, groups, hp, y_mean=0.0, y_scale=1.0)


def _sine_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0.0, 1.0, n)[:, None]
    return x, np.sin(6.0 * x[:, 0])


def test_gp_interpolates_its_training_points() -> None:
    x, y = _sine_data(12)
    gp = _fitted(x, y, np.array([0]))
    mean, var = gp.predict(x)
    y_std = (y - y.mean()) / y.std()
    assert np.max(np.abs(mean - y_std)) < 0.05
    assert np.max(var) < 0.05


def test_gp_predicts_a_smooth_function_between_its_points() -> None:
    x, y = _sine_data(12)
    gp = _fitted(x, y, np.array([0]))
    xs = np.linspace(0.02, 0.98, 50)[:, None]
    mean, var = gp.predict(xs)
    truth = (np.sin(6.0 * xs[:, 0]) - y.mean()) / y.std()
    assert np.max(np.abs(mean - truth)) < 0.1
    assert np.all(var > 0)


def test_uncertainty_grows_away_from_the_data() -> None:
    x = np.array([[0.1], [0.2], [0.3]])
    gp = _fitted(x, np.array([0.0, 1.0, 0.5]), np.array([0]))
    _, var = gp.predict(np.array([[0.2], [0.6], [0.95]]))
    assert var[0] < var[1] < var[2]


def test_fit_gives_an_irrelevant_input_a_longer_length_scale() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((30, 2))
    y = np.sin(5.0 * x[:, 0])
    y = (y - y.mean()) / y.std()
    hp = _gp.fit_hyperparameters(x, y, np.array([0, 1]), rng)
    assert hp.lengthscales[1] > 3.0 * hp.lengthscales[0]


def test_fit_is_deterministic_given_the_generator() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((15, 3))
    y = x.sum(1)
    y = (y - y.mean()) / y.std()
    groups = np.array([0, 1, 2])
    a = _gp.fit_hyperparameters(x, y, groups, np.random.default_rng(5))
    b = _gp.fit_hyperparameters(x, y, groups, np.random.default_rng(5))
    assert np.array_equal(a.to_theta(), b.to_theta())


def test_marginal_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((10, 4))
    y = np.sin(3 * x[:, 0]) + x[:, 1] ** 2
    y = (y - y.mean()) / y.std()
    groups = np.array([0, 1, 2, 2])  # the last two columns share a length scale (a category)
    theta = np.array([-0.5, 0.3, 0.1, 0.2, -3.0])
    _, grad = _gp._neg_log_posterior(theta, x, y, groups, 3)
    eps = 1e-6
    numeric = [
        (
            _gp._neg_log_posterior(theta + e, x, y, groups, 3)[0]
            - _gp._neg_log_posterior(theta - e, x, y, groups, 3)[0]
        )
        / (2 * eps)
        for e in np.eye(len(theta)) * eps
    ]
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_posterior_and_log_ei_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((8, 3))
    y = rng.normal(size=8)
    hp = _gp.Hyperparameters(np.array([0.3, 0.5, 0.8]), signal=1.2, noise=1e-3)
    gp = _gp.GaussianProcess(x, y, np.array([0, 1, 2]), hp, y_mean=0.0, y_scale=1.0)
    xs = rng.random((4, 3))
    mean, var, dmean, dvar = gp.predict_with_grad(xs)
    _, dacq = _gp.log_expected_improvement_with_grad(mean, var, dmean, dvar, float(y.min()))
    eps = 1e-6
    for c in range(3):
        step = np.zeros(3)
        step[c] = eps
        m1, v1 = gp.predict(xs + step)
        m0, v0 = gp.predict(xs - step)
        assert np.allclose(dmean[:, c], (m1 - m0) / (2 * eps), atol=1e-5)
        assert np.allclose(dvar[:, c], (v1 - v0) / (2 * eps), atol=1e-5)
        a1 = _gp.log_expected_improvement(m1, v1, float(y.min()))
        a0 = _gp.log_expected_improvement(m0, v0, float(y.min()))
        assert np.allclose(dacq[:, c], (a1 - a0) / (2 * eps), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("z", [-0.9, -0.5, 0.0, 0.5, 2.0, 5.0])
def test_log_h_matches_the_direct_formula_where_that_is_accurate(z: float) -> None:
    direct = math.log(math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) + z * scipy.special.ndtr(z))
    assert _gp.log_h(np.array([z]))[0] == pytest.approx(direct, rel=1e-9)


def test_log_ei_stays_finite_and_ordered_far_below_the_incumbent() -> None:
    z = np.array([-5.0, -20.0, -40.0, -1e3, -1e9])
    values = _gp.log_h(z)
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) < 0)
    # log h(z) ~ -z^2/2 - log(2 pi)/2 - 2 log|z| for very negative z.
    asymptote = -0.5 * 40.0**2 - 0.5 * math.log(2 * math.pi) - 2 * math.log(40.0)
    assert values[2] == pytest.approx(asymptote, rel=1e-3)


def test_log_h_is_continuous_where_its_branches_meet() -> None:
    below, above = _gp.log_h(np.array([-1.0 - 1e-9, -1.0 + 1e-9]))
    assert below == pytest.approx(above, abs=1e-7)


def test_conditioning_on_a_fantasy_shrinks_variance_there() -> None:
    x, y = _sine_data(12)
    gp = _fitted(x[:6], y[:6], np.array([0]))
    point = np.array([[0.9]])
    mean, var = gp.predict(point)
    _, var_after = gp.condition(point, mean).predict(point)
    assert var_after[0] < 0.2 * var[0]


def test_a_change_of_category_counts_as_one_length_scale_like_a_full_range_move() -> None:
    # Columns 0: a numeric parameter; 1-3: one categorical parameter's one-hot block.
    groups = np.array([0, 1, 1, 1])
    hp = _gp.Hyperparameters(lengthscales=np.array([0.7, 0.7]), signal=1.0, noise=1e-6)
    gp = _gp.GaussianProcess(np.array([[0.0, 1.0, 0.0, 0.0]]), np.array([0.0]), groups, hp)
    other_category = np.array([[0.0, 0.0, 1.0, 0.0]])
    whole_range = np.array([[1.0, 1.0, 0.0, 0.0]])
    corr_cat = gp.correlation(other_category, gp.x)[0, 0]
    corr_num = gp.correlation(whole_range, gp.x)[0, 0]
    assert corr_cat == pytest.approx(corr_num)
    assert corr_cat == pytest.approx(float(_gp._matern(np.array([1.0 / 0.7**2]), 1.0)[0]))

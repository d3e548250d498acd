"""Gaussian-process regression on the unit cube, and log expected improvement.

Private to :mod:`controller.core.bayes`. Pure numpy/scipy, no state between calls: every
randomness comes from the ``numpy.random.Generator`` the caller passes.

Model: a constant-zero mean on standardised targets plus a Matérn 5/2 kernel with one length
scale per *group* of input columns (a numeric parameter is a group of one column; a
categorical parameter's one-hot block shares one length scale, which makes the kernel an
overlap kernel for that parameter, scaled so that a change of category is distance 1 / l), a
signal variance and a Gaussian noise variance.

Hyperparameters are fitted by maximising the log marginal likelihood plus log priors (a MAP
fit) with L-BFGS-B from a few starts, with analytic gradients. The priors keep the fit from
degenerating on a handful of points, and are the ones Optuna's GP sampler found to work on the
unit cube (our own comparisons agreed: a log-normal length-scale prior centred on the
high-dimensional default of Hvarfner et al. (2024) let 6-D fits declare real inputs irrelevant
after 7 points and sent every suggestion to a corner):

- each length scale l: -log p = 0.1 (l^2 + 1/l^2), i.e. 0.2 cosh(2 log l): flat near l = 1,
  with walls below about 0.2 and above about 5 (inputs live in [0, 1]);
- noise variance v: -log p = 30 v - 0.1 log v, a Gamma(1.1, 30) that lets a deterministic
  objective fit nearly noise-free (a noise floor caps how closely the optimum can be found);
- signal variance s: a log-normal around 1 (targets are standardised).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special

from controller.core.errors import OpensweepError

_SQRT5 = math.sqrt(5.0)
_SQRT2 = math.sqrt(2.0)
_LOG_2PI_HALF = 0.5 * math.log(2.0 * math.pi)
_LOG_PI_2_HALF = 0.5 * math.log(math.pi / 2.0)

LENGTHSCALE_BOUNDS = (5e-3, 2e2)
SIGNAL_BOUNDS = (5e-2, 2e1)
NOISE_BOUNDS = (1e-6, 1.0)
_LOG_SIGNAL_PRIOR = (0.0, 1.0)
_LS_PRIOR_WEIGHT = 0.1
_NOISE_PRIOR_RATE = 30.0
_NOISE_PRIOR_SHAPE = 1.1
_NOISE_START = math.log(1e-2)


class GPError(OpensweepError):
    """The GP could not be fitted (e.g. a covariance matrix that stays singular)."""


def _ls_neg_log_prior(t: np.ndarray) -> tuple[float, np.ndarray]:
    """-log p of log length scales ``t`` (up to a constant) and its gradient."""
    e = np.exp(2.0 * t)
    value = _LS_PRIOR_WEIGHT * (e + 1.0 / e)
    return float(value.sum()), 2.0 * _LS_PRIOR_WEIGHT * (e - 1.0 / e)


@dataclass(frozen=True)
class Hyperparameters:
    """Length scale per group, signal variance and noise variance (standardised units)."""

    lengthscales: np.ndarray
    signal: float
    noise: float

    def to_theta(self) -> np.ndarray:
        return np.concatenate(
            [np.log(self.lengthscales), [math.log(self.signal), math.log(self.noise)]]
        )

    @staticmethod
    def from_theta(theta: np.ndarray) -> Hyperparameters:
        return Hyperparameters(
            lengthscales=np.exp(theta[:-2]),
            signal=float(np.exp(theta[-2])),
            noise=float(np.exp(theta[-1])),
        )


def _theta_bounds(n_groups: int) -> list[tuple[float, float]]:
    ls = (math.log(LENGTHSCALE_BOUNDS[0]), math.log(LENGTHSCALE_BOUNDS[1]))
    return [ls] * n_groups + [
        (math.log(SIGNAL_BOUNDS[0]), math.log(SIGNAL_BOUNDS[1])),
        (math.log(NOISE_BOUNDS[0]), math.log(NOISE_BOUNDS[1])),
    ]


def column_scales(groups: np.ndarray, lengthscales: np.ndarray) -> np.ndarray:
    """The length scale of each input column, for the kernel's scaled distances.

    A group of several columns is a categorical parameter's one-hot block. Two different
    one-hot rows are sqrt(2) apart, so the block's columns get sqrt(2) times the group's
    length scale: a change of category then counts as distance 1 / l, like a move across a
    numeric parameter's whole range (a Hamming distance; what Optuna's GP uses). Without the
    factor the same prior on l made categories look less alike than the data said, and the
    ML-like benchmark's optimizer choice was settled early and wrongly more often.
    """
    col = lengthscales[groups]
    block = np.bincount(groups)[groups] > 1
    if block.any():
        col = np.where(block, col * _SQRT2, col)
    return col


def _sqdist(x1: np.ndarray, x2: np.ndarray, col_ls: np.ndarray) -> np.ndarray:
    b = x2 / col_ls
    return _sqdist_to(x1, col_ls, b, (b * b).sum(1))


def _sqdist_to(
    x1: np.ndarray, col_ls: np.ndarray, b: np.ndarray, b_norms: np.ndarray
) -> np.ndarray:
    """``_sqdist(x1, x2, col_ls)`` given ``b = x2 / col_ls`` and its squared row norms."""
    a = x1 / col_ls
    # (|a|^2 + |b|^2) - 2 a.b, with the doubling on the small factor (exact: a power of two)
    # and the sums in place: the same values as the plain expression, with two fewer
    # temporaries the size of the result (the search's calls are mostly fixed costs).
    d = (a * a).sum(1)[:, None] + b_norms[None, :]
    d -= (a * 2.0) @ b.T
    return np.maximum(d, 0.0, out=d)


def _matern(r2: np.ndarray, signal: float) -> np.ndarray:
    """``signal * (1 + sqrt5 r + 5/3 r^2) * exp(-sqrt5 r)``, in that order of operations, in
    place where possible: on a search's candidate-by-data matrices the temporaries cost more
    than the arithmetic."""
    r = np.sqrt(r2)
    decay = np.multiply(r, -_SQRT5)
    np.exp(decay, out=decay)
    k = np.multiply(r, _SQRT5, out=r)
    k += 1.0
    k += (5.0 / 3.0) * r2
    k *= signal
    k *= decay
    return k


def _matern_with_factor(r2: np.ndarray, signal: float) -> tuple[np.ndarray, np.ndarray]:
    """``(_matern(r2, signal), A)`` with ``A = signal 5/3 (1 + sqrt5 r) exp(-sqrt5 r)``, for which
    dk/d(log l_c) = A (delta_c / l_c)^2 and dk/dx_c = -A delta_c / l_c^2. One square root and
    one exponential serve both (the kernel's operations in :func:`_matern`'s order, so the
    same values)."""
    r = np.sqrt(r2)
    decay = np.multiply(r, -_SQRT5)
    np.exp(decay, out=decay)
    linear = np.multiply(r, _SQRT5, out=r)
    linear += 1.0
    factor = (signal * (5.0 / 3.0)) * linear
    factor *= decay
    k = linear
    k += (5.0 / 3.0) * r2
    k *= signal
    k *= decay
    return k, factor


def _cholesky(k: np.ndarray) -> tuple[np.ndarray, bool]:
    """The lower Cholesky factor of ``k`` as ``(factor, True)`` (``cho_factor``'s form, for
    ``cho_solve``), adding jitter to the diagonal only if it is needed.

    LAPACK's ``potrf`` called directly, as ``cho_factor`` calls it (the same factor, bit for
    bit), with the upper triangle zeroed: a large sweep inverts the factor
    (:meth:`ExplicitInverseGP.of`), which then needs no ``tril`` (~55 us at 128 points), and
    the direct call skips the wrapper's checks (~10 us, in the fit's every iteration too).
    (Without jitter ``k`` is factored as it is: ``k + 0 * eye`` was the same matrix, made
    with three more n x n temporaries per factorisation.)
    """
    jitter = 0.0
    for _ in range(6):
        a = k if jitter == 0.0 else k + jitter * np.eye(k.shape[0])
        factor, info = _potrf(a, lower=1, clean=1)
        if info == 0:
            return factor, True
        if info < 0:  # an argument LAPACK refused: cannot happen for a square float matrix
            raise GPError(f"Cholesky factorisation failed (potrf info {info})")
        jitter = 1e-8 if jitter == 0.0 else jitter * 10.0
    raise GPError("covariance matrix is not positive definite even with jitter")


_potrf = scipy.linalg.lapack.dpotrf


def _neg_log_posterior(
    theta: np.ndarray, x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[float, np.ndarray]:
    hp = Hyperparameters.from_theta(theta)
    col_ls = column_scales(groups, hp.lengthscales)
    r2 = _sqdist(x, x, col_ls)
    kf, dr2_factor = _matern_with_factor(r2, hp.signal)
    n = x.shape[0]
    k = kf + hp.noise * np.eye(n)
    try:
        factor = _cholesky(k)
    except GPError:
        return 1e25, np.zeros_like(theta)
    alpha = scipy.linalg.cho_solve(factor, y, check_finite=False)
    lower = factor[0]
    nll = 0.5 * float(y @ alpha) + float(np.log(np.diag(lower)).sum()) + n * _LOG_2PI_HALF
    k_inv = scipy.linalg.cho_solve(factor, np.eye(n), check_finite=False)
    w = np.outer(alpha, alpha) - k_inv
    grad = np.empty_like(theta)
    m = w * dr2_factor
    xs = x / col_ls
    row = m.sum(1)
    per_col = 2.0 * (row @ (xs * xs)) - 2.0 * (xs * (m @ xs)).sum(0)
    grad[:n_groups] = -0.5 * np.bincount(groups, weights=per_col, minlength=n_groups)
    grad[-2] = -0.5 * float((w * kf).sum())
    grad[-1] = -0.5 * hp.noise * float(np.trace(w))
    # Priors (log-normal on each positive hyperparameter = normal on its log).
    p_ls, g_ls = _ls_neg_log_prior(theta[:n_groups])
    nll += p_ls
    grad[:n_groups] += g_ls
    d = theta[-2] - _LOG_SIGNAL_PRIOR[0]
    nll += 0.5 * d * d / _LOG_SIGNAL_PRIOR[1] ** 2
    grad[-2] += d / _LOG_SIGNAL_PRIOR[1] ** 2
    shape_term = _NOISE_PRIOR_SHAPE - 1.0
    nll += _NOISE_PRIOR_RATE * hp.noise - shape_term * theta[-1]
    grad[-1] += _NOISE_PRIOR_RATE * hp.noise - shape_term
    return nll, grad


def fit_hyperparameters(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    rng: np.random.Generator,
    *,
    restarts: int = 2,
    maxiter: int = 200,
) -> Hyperparameters:
    """MAP hyperparameters for standardised targets ``y`` at inputs ``x`` in [0, 1]^d.

    Starts from the prior's centre and ``restarts`` further random starts around it; the best
    local optimum wins. Deterministic given ``rng``.
    """
    n_groups = int(groups.max()) + 1 if groups.size else 0
    bounds = _theta_bounds(n_groups)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    mode = np.concatenate([np.zeros(n_groups), [_LOG_SIGNAL_PRIOR[0], _NOISE_START]])
    starts = [np.clip(mode, lo, hi)]
    for _ in range(restarts):
        draw = np.concatenate(
            [
                rng.normal(0.0, 0.75, n_groups),
                [rng.normal(*_LOG_SIGNAL_PRIOR) * 0.5, rng.normal(_NOISE_START, 1.5)],
            ]
        )
        starts.append(np.clip(draw, lo, hi))
    best: tuple[float, np.ndarray] | None = None
    for start in starts:
        result = scipy.optimize.minimize(
            _neg_log_posterior,
            start,
            args=(x, y, groups, n_groups),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": maxiter},
        )
        value = float(result.fun)
        if np.isfinite(value) and (best is None or value < best[0]):
            best = (value, np.asarray(result.x))
    if best is None:
        return Hyperparameters.from_theta(starts[0])
    return Hyperparameters.from_theta(best[1])


class GaussianProcess:
    """A GP posterior conditioned on ``(x, y)`` with fixed hyperparameters.

    ``y`` is standardised here (mean 0, sd 1); predictions come back in the standardised
    units, and :attr:`y_mean` / :attr:`y_scale` map them back.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        hyperparameters: Hyperparameters,
        *,
        y_mean: float | None = None,
        y_scale: float | None = None,
    ) -> None:
        self.x = np.asarray(x, dtype=float)
        self.groups = groups
        self.hp = hyperparameters
        y = np.asarray(y, dtype=float)
        self.y_mean = float(y.mean()) if y_mean is None else y_mean
        if y_scale is None:
            sd = float(y.std())
            y_scale = sd if sd > 1e-12 else 1.0
        self.y_scale = y_scale
        self.y_std = (y - self.y_mean) / self.y_scale
        self._col_ls = column_scales(groups, hyperparameters.lengthscales)
        # The scaled inputs and their squared norms, as _sqdist computes them, once: the
        # acquisition search predicts at a few points many times against the same data.
        self._x_scaled = self.x / self._col_ls
        self._x_norms = (self._x_scaled * self._x_scaled).sum(1)
        k = _matern(_sqdist(self.x, self.x, self._col_ls), self.hp.signal)
        k[np.diag_indices_from(k)] += self.hp.noise
        self._factor = _cholesky(k)
        self._alpha = scipy.linalg.cho_solve(self._factor, self.y_std, check_finite=False)

    @property
    def column_scales(self) -> np.ndarray:
        """The length scale of each input column."""
        return self._col_ls

    def condition(self, x_new: np.ndarray, y_new_std: np.ndarray) -> GaussianProcess:
        """The same GP also conditioned on ``(x_new, y_new_std)`` (standardised units)."""
        x = np.vstack([self.x, x_new])
        y = np.concatenate([self.y_std, y_new_std]) * self.y_scale + self.y_mean
        return GaussianProcess(
            x, y, self.groups, self.hp, y_mean=self.y_mean, y_scale=self.y_scale
        )

    def correlation(self, xs: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Kernel correlation (1 at distance 0) between each row of ``xs`` and of ``points``."""
        return _matern(_sqdist(xs, points, self._col_ls), 1.0)

    def mean(self, xs: np.ndarray) -> np.ndarray:
        """The posterior mean alone: :meth:`predict`'s first half, without the variance."""
        ks = _matern(_sqdist_to(xs, self._col_ls, self._x_scaled, self._x_norms), self.hp.signal)
        return np.asarray(ks @ self._alpha)

    def mean_at_data(self) -> np.ndarray:
        """:meth:`mean` at the data's own inputs, without a kernel matrix: K alpha = y, so
        (K - noise I) alpha = y - noise alpha (up to rounding; off by jitter * alpha when the
        factorisation needed jitter, which a noise variance >= 1e-6 all but rules out)."""
        return np.asarray(self.y_std - self.hp.noise * self._alpha)

    def predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent function (standardised units)."""
        ks = _matern(_sqdist_to(xs, self._col_ls, self._x_scaled, self._x_norms), self.hp.signal)
        mean = ks @ self._alpha
        v = scipy.linalg.solve_triangular(self._factor[0], ks.T, lower=True, check_finite=False)
        var = self.hp.signal - (v * v).sum(0)
        return mean, np.maximum(var, 1e-12)

    def predict_with_grad(
        self, xs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, variance and their gradients with respect to ``xs`` (shape (m, d))."""
        r2 = _sqdist_to(xs, self._col_ls, self._x_scaled, self._x_norms)
        ks, a = _matern_with_factor(r2, self.hp.signal)  # a: (m, n)
        mean = ks @ self._alpha
        kinv_ks = scipy.linalg.cho_solve(self._factor, ks.T, check_finite=False)  # (n, m)
        var = self.hp.signal - (ks * kinv_ks.T).sum(1)
        inv_l2 = 1.0 / self._col_ls**2
        # dk_i/dx_c = -a_i (x_c - X_ic) / l_c^2, so sum_i w_i dk_i/dx_c
        #   = -(x_c * sum_i a_i w_i - sum_i a_i w_i X_ic) / l_c^2
        aw = a * self._alpha[None, :]
        dmean = -(xs * aw.sum(1)[:, None] - aw @ self.x) * inv_l2
        av = a * kinv_ks.T
        dvar = 2.0 * (xs * av.sum(1)[:, None] - av @ self.x) * inv_l2
        return mean, np.maximum(var, 1e-12), dmean, dvar


_CHUNK_ELEMENTS = 12_000
"""Candidates x data entries per batch of :meth:`ExplicitInverseGP.predict`: ~96 KB arrays,
under glibc's default threshold (128 KB) for serving an allocation from fresh pages
(``mmap``). A 320 x 128 screen in one batch made every temporary a new mapping, and page
faults then cost as much as the arithmetic: ~1.5 ms against ~0.85 ms in batches."""


class ExplicitInverseGP(GaussianProcess):
    """The same posterior, evaluated through the explicit inverse of the covariance factor.

    For a search that evaluates the posterior hundreds of times at a few points each (a large
    sweep's acquisition search): one matrix product per call instead of LAPACK triangular
    solves, whose per-call overhead was most of the cost. Equal to the parent's predictions
    up to rounding: the factor of a covariance with noise >= 1e-6 on at most a few hundred
    points is well enough conditioned for its inverse (tests/unit/test_gp.py compares them).
    """

    _inv_t: np.ndarray
    _k_inv: np.ndarray

    @classmethod
    def of(cls, gp: GaussianProcess) -> ExplicitInverseGP:
        """``gp`` with the inverses computed once (``gp`` itself is not changed)."""
        out = cls.__new__(cls)
        out.__dict__.update(gp.__dict__)
        # LAPACK's triangular inverse (dtrtri): ~5x faster than solving against the identity.
        # It reads and writes only the factor's lower triangle; the upper one is zero
        # (:func:`_cholesky`), so the inverse is triangular as it comes.
        inv, info = scipy.linalg.lapack.dtrtri(gp._factor[0], lower=1)
        if info != 0:  # a zero on the diagonal: cannot happen with noise >= 1e-6
            raise np.linalg.LinAlgError(f"triangular inverse failed (dtrtri info {info})")
        out._inv_t = inv.T  # ks @ inv_t is (inv @ ks.T).T; BLAS reads the transpose in place
        out._k_inv = inv.T @ inv
        return out

    def predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = max(8, _CHUNK_ELEMENTS // max(1, len(self.x)))
        if len(xs) <= rows:
            return self._predict(xs)
        parts = [self._predict(xs[i : i + rows]) for i in range(0, len(xs), rows)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ks = _matern(_sqdist_to(xs, self._col_ls, self._x_scaled, self._x_norms), self.hp.signal)
        v = ks @ self._inv_t
        var = self.hp.signal - np.einsum("ij,ij->i", v, v)
        return ks @ self._alpha, np.maximum(var, 1e-12)

    def predict_with_grad(
        self, xs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        r2 = _sqdist_to(xs, self._col_ls, self._x_scaled, self._x_norms)
        ks, a = _matern_with_factor(r2, self.hp.signal)
        kinv_ks = ks @ self._k_inv  # (m, n); K^-1 is symmetric
        var = self.hp.signal - np.einsum("ij,ij->i", ks, kinv_ks)
        inv_l2 = 1.0 / self._col_ls**2
        aw = a * self._alpha
        dmean = -(xs * aw.sum(1)[:, None] - aw @ self.x) * inv_l2
        av = a * kinv_ks
        dvar = 2.0 * (xs * av.sum(1)[:, None] - av @ self.x) * inv_l2
        return ks @ self._alpha, np.maximum(var, 1e-12), dmean, dvar

    def log_ei_with_grad(
        self, xs: np.ndarray, best: float, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """log EI below ``best`` at ``xs`` and its gradient in the first ``n`` columns.

        :func:`log_expected_improvement_with_grad` of :meth:`predict_with_grad` in one pass:
        the gradients of the mean and of the variance are one weighted sum over the data
        (weights ``a * (2 c_var K^-1 k - c_mean alpha)``), and only the columns the caller
        moves are differentiated. A large sweep's ascent makes a handful of these calls at a
        few dozen points; their cost is the number of array operations, which this halves.
        """
        r2 = _sqdist_to(xs, self._col_ls, self._x_scaled, self._x_norms)
        ks, a = _matern_with_factor(r2, self.hp.signal)
        kinv_ks = ks @ self._k_inv
        var = np.maximum(self.hp.signal - np.einsum("ij,ij->i", ks, kinv_ks), 1e-12)
        sd = np.sqrt(var)
        z = (best - ks @ self._alpha) / sd
        lh = log_h(z)
        ratio = np.exp(scipy.special.log_ndtr(z) - lh)  # d log_h / dz
        c_mean = -ratio / sd  # d logEI / d mean
        c_var = (1.0 - ratio * z) / (2.0 * var)  # d logEI / d var
        # dmean_i/dx_c = -a_i alpha_i (x_c - X_ic) / l_c^2, dvar_i/dx_c = 2 a_i (K^-1 k)_i (...)
        w = a * (kinv_ks * (2.0 * c_var)[:, None] - c_mean[:, None] * self._alpha)
        grad = (xs[:, :n] * w.sum(1)[:, None] - w @ self.x[:, :n]) / self._col_ls[:n] ** 2
        return np.log(sd) + lh, grad


def log_h(z: np.ndarray) -> np.ndarray:
    """log(phi(z) + z * Phi(z)), accurate for very negative z (Ament et al., 2023).

    Each element gets the same arithmetic whichever branch its neighbours take; an array that
    is all on one side skips the masking (a large sweep's ascent calls this at a few dozen
    points, mostly far below the incumbent, where the masks were most of its cost)."""
    z = np.asarray(z, dtype=float)
    upper = z > -1.0
    n_upper = int(np.count_nonzero(upper))
    if n_upper == z.size:
        return _log_h_upper(z)
    if n_upper == 0:
        return _log_h_lower(z)
    out = np.empty_like(z)
    out[upper] = _log_h_upper(z[upper])
    lower = ~upper
    out[lower] = _log_h_lower(z[lower])
    return out


def _log_h_upper(z: np.ndarray) -> np.ndarray:
    """:func:`log_h` for z > -1, directly."""
    return np.asarray(np.log(np.exp(-0.5 * z * z - _LOG_2PI_HALF) + z * scipy.special.ndtr(z)))


def _log_h_lower(z: np.ndarray) -> np.ndarray:
    """:func:`log_h` for z <= -1: through erfcx, and the asymptote far in the tail."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inner = np.log(scipy.special.erfcx(-z / math.sqrt(2.0)) * np.abs(z)) + _LOG_PI_2_HALF
        mid = -0.5 * z * z - _LOG_2PI_HALF + _log1mexp(inner)
    tail = z < -1.0 / math.sqrt(np.finfo(float).eps)
    if not tail.any():
        return np.asarray(mid)
    far = -0.5 * z * z - _LOG_2PI_HALF - 2.0 * np.log(np.abs(z))
    return np.asarray(np.where(tail, far, mid))


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x < 0 without cancellation."""
    x = np.minimum(x, -1e-300)
    return np.where(x > -math.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def log_expected_improvement(
    mean: np.ndarray, var: np.ndarray, best: float
) -> np.ndarray:
    """log E[max(best - f, 0)] for f ~ N(mean, var): improvement when minimising."""
    sd = np.sqrt(var)
    z = (best - mean) / sd
    return np.log(sd) + log_h(z)


def log_expected_improvement_with_grad(
    mean: np.ndarray, var: np.ndarray, dmean: np.ndarray, dvar: np.ndarray, best: float
) -> tuple[np.ndarray, np.ndarray]:
    """log EI and its gradient given the posterior's gradients (rows are points)."""
    sd = np.sqrt(var)
    z = (best - mean) / sd
    lh = log_h(z)
    value = np.log(sd) + lh
    dlh_dz = np.exp(scipy.special.log_ndtr(z) - lh)
    dsd = dvar / (2.0 * sd[:, None])
    grad = (dlh_dz / sd)[:, None] * (-dmean) + ((1.0 - dlh_dz * z) / sd)[:, None] * dsd
    return value, grad

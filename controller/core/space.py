"""Search spaces: one :class:`Parameter` per leaf of a sweep's ``parameters`` block.

A parameter knows its distribution and arguments and can

* draw a value from a numpy ``Generator`` it is given (never a global random source), always a
  native Python value (``int``, ``float``, ``str``, ...), never a numpy scalar;
* enumerate its values for grid search without materialising them (``grid_count``,
  ``grid_value``, ``grid_index``), so a grid over ``int_uniform`` 0..10**9 costs nothing;
* map a numeric value into the unit interval and back (``to_unit`` / ``from_unit``), which is
  how Bayesian search sees every numeric parameter.

Quantised (``q_``) distributions live on a lattice of multiples of ``q``. The lattice arithmetic
is exact (``decimal``): ``3 * 0.1`` is ``0.3``, never ``0.30000000000000004``, and a draw is
snapped onto the lattice points inside its bounds, so it never leaves ``[min, max]`` and a
``q_log_uniform_values`` draw is never 0 (two things W&B's engine gets wrong).

Nothing here does I/O.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, localcontext
from functools import cached_property
from typing import Any, Final

import numpy as np
from scipy import special

from controller.core.errors import ConfigError, OpensweepError, Problem

ParamPath = tuple[str, ...]
"""A parameter's place in the (possibly nested) config: ``("nested_param", "learning_rate")``.
A name with dots (``optimizer.config.learning_rate``) is ONE element."""

FlatParams = dict[ParamPath, Any]
"""A run's parameter values keyed by path."""

CONSTANT: Final = "constant"
CATEGORICAL: Final = "categorical"
INT_UNIFORM: Final = "int_uniform"
UNIFORM: Final = "uniform"
Q_UNIFORM: Final = "q_uniform"
LOG_UNIFORM: Final = "log_uniform"
LOG_UNIFORM_VALUES: Final = "log_uniform_values"
Q_LOG_UNIFORM: Final = "q_log_uniform"
Q_LOG_UNIFORM_VALUES: Final = "q_log_uniform_values"
INV_LOG_UNIFORM: Final = "inv_log_uniform"
INV_LOG_UNIFORM_VALUES: Final = "inv_log_uniform_values"
NORMAL: Final = "normal"
Q_NORMAL: Final = "q_normal"
LOG_NORMAL: Final = "log_normal"
Q_LOG_NORMAL: Final = "q_log_normal"
BETA: Final = "beta"
Q_BETA: Final = "q_beta"

DISTRIBUTION_ARGUMENTS: Final[Mapping[str, tuple[str, ...]]] = {
    CONSTANT: ("value",),
    CATEGORICAL: ("values", "probabilities"),
    INT_UNIFORM: ("min", "max"),
    UNIFORM: ("min", "max"),
    Q_UNIFORM: ("min", "max", "q"),
    LOG_UNIFORM: ("min", "max"),
    LOG_UNIFORM_VALUES: ("min", "max"),
    Q_LOG_UNIFORM: ("min", "max", "q"),
    Q_LOG_UNIFORM_VALUES: ("min", "max", "q"),
    INV_LOG_UNIFORM: ("min", "max"),
    INV_LOG_UNIFORM_VALUES: ("min", "max"),
    NORMAL: ("mu", "sigma"),
    Q_NORMAL: ("mu", "sigma", "q"),
    LOG_NORMAL: ("mu", "sigma"),
    Q_LOG_NORMAL: ("mu", "sigma", "q"),
    BETA: ("a", "b"),
    Q_BETA: ("a", "b", "q"),
}
"""Every supported distribution and the arguments it takes."""

DISTRIBUTIONS: Final = tuple(DISTRIBUTION_ARGUMENTS)

GRIDABLE: Final = frozenset(
    {CONSTANT, CATEGORICAL, INT_UNIFORM, Q_UNIFORM, Q_LOG_UNIFORM, Q_LOG_UNIFORM_VALUES}
)
"""Distributions with a finite value set that grid search can enumerate."""

QUANTISED: Final = frozenset({Q_UNIFORM, Q_LOG_UNIFORM, Q_LOG_UNIFORM_VALUES, Q_NORMAL,
                              Q_LOG_NORMAL, Q_BETA})
_LOG_SPACE: Final = frozenset({LOG_UNIFORM, LOG_UNIFORM_VALUES, Q_LOG_UNIFORM,
                               Q_LOG_UNIFORM_VALUES, INV_LOG_UNIFORM, INV_LOG_UNIFORM_VALUES})
_NORMAL_FAMILY: Final = frozenset({NORMAL, Q_NORMAL})
_LOG_NORMAL_FAMILY: Final = frozenset({LOG_NORMAL, Q_LOG_NORMAL})
_BETA_FAMILY: Final = frozenset({BETA, Q_BETA})
_CDF_FAMILY: Final = frozenset({UNIFORM, Q_UNIFORM}) | _LOG_SPACE
"""Drawn as the inverse CDF of a uniform number (see ``_from_cdf_space``)."""

_FLOAT_MAX: Final = float(np.finfo(float).max)
_UNIT_EPS: Final = 1e-12
"""from_unit keeps u inside [eps, 1 - eps] for unbounded distributions (their ends are +-inf)."""
_FUZZ: Final = 1e-12
"""Relative slack for bounds that are rounded floats themselves: exp(log(32)) is not exactly 32."""

_DECIMAL_CONTEXT: Final = Context(prec=60)


def _dec(x: float) -> Decimal:
    """The decimal a user wrote: 0.1 -> Decimal('0.1') (repr is the shortest round-trip form)."""
    return Decimal(x) if isinstance(x, int) else Decimal(repr(float(x)))


def canonical(value: Any) -> str:
    """A key under which equal config values compare equal and different ones do not.

    ``1`` and ``1.0`` are the same value (YAML and JSON blur them), ``True`` and ``1`` are not.
    Used to find a run's values in a grid.
    """

    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return int(v) if v.is_integer() else v
        if isinstance(v, Mapping):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        if isinstance(v, np.generic):
            return norm(v.item())
        return repr(v)

    # Fast paths for the common scalars give exactly what json.dumps would (a 100,000-value
    # categorical is keyed twice while parsing).
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is float and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return json.dumps(norm(value), sort_keys=True, allow_nan=True)


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Parameter:
    """One leaf of a search space: a distribution and its arguments.

    Arguments are stored with their defaults filled in (``q`` 1, ``mu`` 0, ``sigma`` 1, ``a`` and
    ``b`` 1) and are assumed valid: :func:`controller.core.config.parse_config` is what checks
    them. ``min``/``max`` are the bounds exactly as the config gives them, so for
    ``log_uniform``/``q_log_uniform``/``inv_log_uniform`` they are natural-log exponents.
    """

    path: ParamPath
    distribution: str
    value: Any = None
    values: tuple[Any, ...] = ()
    probabilities: tuple[float, ...] | None = None
    min: float | None = None
    max: float | None = None
    q: float | None = None
    mu: float | None = None
    sigma: float | None = None
    a: float | None = None
    b: float | None = None
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    # ------------------------------------------------------------------ identity

    @property
    def name(self) -> str:
        """The path joined with dots, for display only (dotted names make it ambiguous)."""
        return ".".join(self.path)

    @property
    def is_constant(self) -> bool:
        return self.distribution == CONSTANT

    @property
    def is_categorical(self) -> bool:
        """A categorical parameter: its ``values`` are unordered choices (no numeric warping)."""
        return self.distribution == CATEGORICAL

    @property
    def is_numeric(self) -> bool:
        """True when ``to_unit``/``from_unit`` apply (everything but constant and categorical)."""
        return self.distribution not in (CONSTANT, CATEGORICAL)

    @property
    def is_gridable(self) -> bool:
        return self.distribution in GRIDABLE

    @property
    def is_quantised(self) -> bool:
        return self.distribution in QUANTISED

    @property
    def is_integer(self) -> bool:
        """True when every value is an ``int``: int_uniform, or a q_ distribution whose q is an
        int. That is W&B's rule (``q: 8`` gives ``32``, ``q: 8.0`` gives ``32.0``), and it is what
        a program declaring ``type=int`` for the flag needs."""
        if self.distribution == INT_UNIFORM:
            return True
        return self.distribution in QUANTISED and _is_int(self.q)

    def arguments(self) -> dict[str, Any]:
        """The distribution's arguments with defaults filled, for display and storage."""
        return {
            name: list(getattr(self, name)) if name == "values" else getattr(self, name)
            for name in DISTRIBUTION_ARGUMENTS[self.distribution]
            if getattr(self, name) is not None
        }

    # ------------------------------------------------------------------ support

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The closed value range of a bounded numeric distribution, else None."""
        d = self.distribution
        if "bounds" in self._cache:
            return self._cache["bounds"]  # type: ignore[no-any-return]
        result: tuple[float, float] | None
        if d in (INT_UNIFORM, UNIFORM, Q_UNIFORM, LOG_UNIFORM_VALUES, Q_LOG_UNIFORM_VALUES,
                 INV_LOG_UNIFORM_VALUES):
            result = (self._min, self._max)
        elif d in (LOG_UNIFORM, Q_LOG_UNIFORM):
            result = (math.exp(self._min), math.exp(self._max))
        elif d == INV_LOG_UNIFORM:
            result = (math.exp(-self._max), math.exp(-self._min))
        elif d in _BETA_FAMILY:
            result = (0.0, 1.0)
        else:
            result = None
        self._cache["bounds"] = result
        return result

    @property
    def _min(self) -> float:
        if self.min is None:
            raise OpensweepError(f"{self.name}: {self.distribution} needs min")
        return self.min

    @property
    def _max(self) -> float:
        if self.max is None:
            raise OpensweepError(f"{self.name}: {self.distribution} needs max")
        return self.max

    @property
    def _q(self) -> float:
        return 1 if self.q is None else self.q

    @property
    def _mu(self) -> float:
        return 0.0 if self.mu is None else float(self.mu)

    @property
    def _sigma(self) -> float:
        return 1.0 if self.sigma is None else float(self.sigma)

    @property
    def _a(self) -> float:
        return 1.0 if self.a is None else float(self.a)

    @property
    def _b(self) -> float:
        return 1.0 if self.b is None else float(self.b)

    @cached_property
    def lattice_range(self) -> tuple[int | None, int | None]:
        """For a q_ distribution, the lowest and highest k such that k * q is a value (None:
        unbounded). Empty when lo > hi, which config validation rejects."""
        d = self.distribution
        if d not in QUANTISED:
            raise OpensweepError(f"{self.name}: {d} is not a q_ distribution")
        q = _dec(self._q)
        if d in (Q_UNIFORM, Q_LOG_UNIFORM_VALUES, Q_LOG_UNIFORM, Q_BETA):
            bounds = self.bounds
            assert bounds is not None
            lo, hi = bounds
            with localcontext(_DECIMAL_CONTEXT):
                if d == Q_LOG_UNIFORM:
                    lo_d, hi_d = _dec(lo * (1 - _FUZZ)), _dec(hi * (1 + _FUZZ))
                else:
                    lo_d, hi_d = _dec(lo), _dec(hi)
                k_lo = int((lo_d / q).to_integral_value(rounding=ROUND_CEILING))
                k_hi = int((hi_d / q).to_integral_value(rounding=ROUND_FLOOR))
            if d in (Q_LOG_UNIFORM_VALUES, Q_LOG_UNIFORM):
                k_lo = max(k_lo, 1)  # values are positive; never round to 0
            return (k_lo, k_hi)
        if d == Q_LOG_NORMAL:
            return (1, None)
        return (None, None)

    def lattice_value(self, k: int) -> Any:
        """k * q exactly as the user would write it: ints for integer lattices, else the float
        nearest the exact decimal product (3 * 0.1 -> 0.3)."""
        q = self._q
        if self.is_integer:
            return int(k) * int(q)
        with localcontext(_DECIMAL_CONTEXT):
            return float(Decimal(k) * _dec(q))

    def _snap(self, x: float) -> Any:
        """The lattice point nearest to x inside the support."""
        k_lo, k_hi = self.lattice_range
        ratio = x / self._q
        k: int | None = round(ratio) if math.isfinite(ratio) else (k_hi if ratio > 0 else k_lo)
        if k is None:  # an unbounded lattice and an overflowing draw: no lattice point to use
            return _finite(x)
        if k_lo is not None:
            k = max(k, k_lo)
        if k_hi is not None:
            k = min(k, k_hi)
        return self.lattice_value(k)

    def contains(self, value: Any) -> bool:
        """True when ``value`` is one this parameter can produce (support and lattice)."""
        d = self.distribution
        if d == CONSTANT:
            return canonical(value) == canonical(self.value)
        if d == CATEGORICAL:
            return canonical(value) in self._value_index
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value):
            return False
        if self.is_integer and isinstance(value, float) and not value.is_integer():
            return False  # 2.0 counts as 2: JSON and YAML blur them (see canonical)
        bounds = self.bounds
        if bounds is not None:
            lo, hi = bounds
            slack = _FUZZ * max(abs(lo), abs(hi), 1.0) if d in (LOG_UNIFORM, Q_LOG_UNIFORM,
                                                                 INV_LOG_UNIFORM) else 0.0
            if not lo - slack <= value <= hi + slack:
                return False
        if d in _LOG_NORMAL_FAMILY and value <= 0:
            return False
        if d in QUANTISED:
            return self._lattice_k(value) is not None
        return True

    def _lattice_k(self, value: float) -> int | None:
        q = self._q
        ratio = value / q
        if not math.isfinite(ratio):
            return None
        k = round(ratio)
        k_lo, k_hi = self.lattice_range
        if (k_lo is not None and k < k_lo) or (k_hi is not None and k > k_hi):
            return None
        point = self.lattice_value(k)
        if point == value or abs(point - value) <= 1e-9 * max(abs(point), abs(q)):
            return k
        return None

    # ------------------------------------------------------------------ sampling

    def sample(self, rng: np.random.Generator) -> Any:
        """One draw, as a native Python value; every draw lies in the support and obeys q."""
        return self.sampler(rng)

    @cached_property
    def sampler(self) -> Callable[[np.random.Generator], Any]:
        """This parameter's draw with its arguments looked up once: a random suggestion is one
        draw per parameter, and the property lookups of a generic draw cost more than the
        random numbers (an inverse-CDF draw is the generic one's arithmetic in the same order,
        so the same values)."""
        d = self.distribution
        if d == CONSTANT:
            value = self.value
            return lambda rng: _copy_value(value)
        if d == CATEGORICAL:
            values = self.values
            count = len(values)
            if self.probabilities is not None:
                p = np.asarray(self.probabilities, dtype=float)
                p = p / p.sum()
                return lambda rng: _copy_value(values[int(rng.choice(count, p=p))])
            # One uniform double, not ``rng.integers``: the same uniform choice (the double's 53
            # bits are plenty for a list of values) at a fifth of the cost.
            last = count - 1
            return lambda rng: _copy_value(values[min(int(rng.random() * count), last)])
        if d == INT_UNIFORM:
            low = int(self._min)
            span = int(self._max) - low + 1
            return lambda rng: low + int(rng.integers(span))
        if d in _CDF_FAMILY and d not in QUANTISED:
            inverse = self._cdf_inverse
            bounds = self.bounds
            assert bounds is not None
            lo, hi = bounds
            return lambda rng: float(min(max(inverse(float(rng.random())), lo), hi))
        return self._sample_generic

    def _sample_generic(self, rng: np.random.Generator) -> Any:
        d = self.distribution
        if d in _NORMAL_FAMILY:
            x = _finite(float(rng.normal(self._mu, self._sigma)))
        elif d in _LOG_NORMAL_FAMILY:
            x = _finite(math.exp(min(float(rng.normal(self._mu, self._sigma)), 709.0)))
            x = max(x, 5e-324)
        elif d in _BETA_FAMILY:
            x = float(rng.beta(self._a, self._b))
            if not math.isfinite(x):
                x = 0.5
        else:
            x = self._from_cdf_space(float(rng.random()))
        if d in QUANTISED:
            return self._snap(x)
        return self._clip(x)

    def _clip(self, x: float) -> float:
        bounds = self.bounds
        if bounds is not None:
            x = min(max(x, bounds[0]), bounds[1])
        return float(x)

    def _from_cdf_space(self, u: float) -> float:
        """Inverse CDF of the uniform-family distributions (before any q rounding): the same
        function of ``u`` as W&B's ``ppf``, increasing in ``u`` for every distribution."""
        return self._cdf_inverse(u)

    @cached_property
    def _cdf_inverse(self) -> Callable[[float], float]:
        d = self.distribution
        if d not in _CDF_FAMILY:
            raise OpensweepError(f"{self.name}: cannot sample {d}")
        lo, hi = self._min, self._max
        if d in (UNIFORM, Q_UNIFORM):
            span = hi - lo
            return lambda u: lo + u * span
        if d in (LOG_UNIFORM, Q_LOG_UNIFORM):
            span = hi - lo
            return lambda u: math.exp(lo + u * span)
        if d in (LOG_UNIFORM_VALUES, Q_LOG_UNIFORM_VALUES):
            log_lo = math.log(lo)
            log_span = math.log(hi) - log_lo
            return lambda u: math.exp(log_lo + u * log_span)
        if d == INV_LOG_UNIFORM:
            span = hi - lo
            return lambda u: math.exp(-(lo + (1 - u) * span))
        # INV_LOG_UNIFORM_VALUES: W&B's documented form, 1 / exp(U(ln(1/max), ln(1/min))),
        # computed as exp(-U) with ln(1/x) = -ln(x) so that neither 1/x nor 1/exp(.) can
        # overflow.
        low, high = -math.log(hi), -math.log(lo)
        inv_span = high - low
        return lambda u: math.exp(-(low + (1 - u) * inv_span))

    # ------------------------------------------------------------------ grid

    @property
    def _value_index(self) -> dict[str, int]:
        if "value_index" not in self._cache:
            index: dict[str, int] = {}
            for i, v in enumerate(self.values):
                index.setdefault(canonical(v), i)
            self._cache["value_index"] = index
        return self._cache["value_index"]  # type: ignore[no-any-return]

    @property
    def _distinct_positions(self) -> tuple[int, ...]:
        """Positions in ``values`` of each value's first occurrence: the categorical's grid.
        A value listed twice is one grid point (W&B's grid skips a point it has seen too)."""
        if "distinct" not in self._cache:
            self._cache["distinct"] = tuple(sorted(self._value_index.values()))
        return self._cache["distinct"]  # type: ignore[no-any-return]

    @property
    def _grid_digit(self) -> dict[str, int]:
        if "grid_digit" not in self._cache:
            self._cache["grid_digit"] = {canonical(self.values[pos]): digit
                                         for digit, pos in enumerate(self._distinct_positions)}
        return self._cache["grid_digit"]  # type: ignore[no-any-return]

    def grid_count(self) -> int:
        """How many values grid search enumerates. ConfigError when not gridable."""
        d = self.distribution
        if d == CONSTANT:
            return 1
        if d == CATEGORICAL:
            return len(self._distinct_positions)
        if d == INT_UNIFORM:
            return int(self._max) - int(self._min) + 1
        if d in GRIDABLE:
            k_lo, k_hi = self.lattice_range
            assert k_lo is not None and k_hi is not None
            return max(0, k_hi - k_lo + 1)
        raise ConfigError([Problem("parameters." + ".parameters.".join(self.path),
                                   f"{d} cannot be enumerated by grid search")])

    def grid_value(self, i: int) -> Any:
        """The i-th grid value (0-based, in increasing order for numeric distributions)."""
        count = self.grid_count()
        if not 0 <= i < count:
            raise OpensweepError(f"{self.name}: grid value {i} out of range [0, {count})")
        d = self.distribution
        if d == CONSTANT:
            return copy.deepcopy(self.value)
        if d == CATEGORICAL:
            return copy.deepcopy(self.values[self._distinct_positions[i]])
        if d == INT_UNIFORM:
            return int(self._min) + i
        k_lo, _ = self.lattice_range
        assert k_lo is not None
        return self.lattice_value(k_lo + i)

    def grid_index(self, value: Any) -> int | None:
        """Inverse of :meth:`grid_value`: the index of ``value``, or None if it is not a grid
        value."""
        d = self.distribution
        if d == CONSTANT:
            return 0 if canonical(value) == canonical(self.value) else None
        if d == CATEGORICAL:
            return self._grid_digit.get(canonical(value))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if d == INT_UNIFORM:
            if isinstance(value, float):
                if not value.is_integer():
                    return None
                value = int(value)
            i = value - int(self._min)
            return i if 0 <= i < self.grid_count() else None
        if d in GRIDABLE:
            k = self._lattice_k(value)
            k_lo, _ = self.lattice_range
            return None if k is None or k_lo is None else k - k_lo
        return None

    def grid_values(self) -> tuple[Any, ...]:
        """Every grid value in order. ConfigError if not gridable. Prefer grid_count/grid_value
        for large ranges."""
        return tuple(self.grid_value(i) for i in range(self.grid_count()))

    # ------------------------------------------------------------------ unit-cube warping

    def to_unit(self, value: Any) -> float:
        """Map a value into [0, 1] the way its distribution spreads probability.

        Linear for uniform ones, log for log_ and inv_log_ ones (in the log of the value), the
        CDF for normal, log_normal and beta. Integer and q_ lattices give each lattice point an
        equal share of the interval (its centre is returned). Values outside the support clip.
        """
        d = self.distribution
        if not self.is_numeric:
            raise OpensweepError(f"{self.name}: {d} has no numeric warping")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise OpensweepError(f"{self.name}: {value!r} is not a number")
        x = float(value)
        if math.isnan(x):
            raise OpensweepError(f"{self.name}: NaN is not a value")
        if d in (INT_UNIFORM, Q_UNIFORM):
            lo_k, hi_k = self._k_span()
            k = x if d == INT_UNIFORM else x / float(self._q)
            return _unit_clip((k - lo_k + 0.5) / (hi_k - lo_k + 1))
        if d in (UNIFORM,):
            lo, hi = self._min, self._max
            return _unit_clip((x - lo) / (hi - lo))
        if d in _LOG_SPACE:
            lo, hi = self._log_bounds()
            if x <= 0:
                return 0.0
            return _unit_clip((math.log(x) - lo) / (hi - lo))
        if d in _NORMAL_FAMILY:
            return _unit_clip(float(special.ndtr((x - self._mu) / self._sigma)))
        if d in _LOG_NORMAL_FAMILY:
            if x <= 0:
                return 0.0
            return _unit_clip(float(special.ndtr((math.log(x) - self._mu) / self._sigma)))
        if d in _BETA_FAMILY:
            return _unit_clip(float(special.betainc(self._a, self._b, min(max(x, 0.0), 1.0))))
        raise OpensweepError(f"{self.name}: no warping for {d}")

    def from_unit(self, u: float) -> Any:
        """Inverse of :meth:`to_unit`; rounds onto the integer or q lattice and always returns a
        native value inside the support."""
        d = self.distribution
        if not self.is_numeric:
            raise OpensweepError(f"{self.name}: {d} has no numeric warping")
        u = float(u)
        if math.isnan(u):
            raise OpensweepError(f"{self.name}: NaN is not a unit value")
        u = min(max(u, 0.0), 1.0)
        if d in (INT_UNIFORM, Q_UNIFORM):
            lo_k, hi_k = self._k_span()
            n = hi_k - lo_k + 1
            k = lo_k + min(math.floor(u * n), n - 1)
            if d == INT_UNIFORM:
                return int(k)
            return self.lattice_value(k)
        if d == UNIFORM:
            return self._clip(self._min + u * (self._max - self._min))
        if d in _LOG_SPACE:
            lo, hi = self._log_bounds()
            x = math.exp(lo + u * (hi - lo))
            return self._snap(x) if d in QUANTISED else self._clip(x)
        uu = min(max(u, _UNIT_EPS), 1 - _UNIT_EPS)
        if d in _NORMAL_FAMILY:
            x = _finite(self._mu + self._sigma * float(special.ndtri(uu)))
        elif d in _LOG_NORMAL_FAMILY:
            z = self._mu + self._sigma * float(special.ndtri(uu))
            x = max(_finite(math.exp(min(z, 709.0))), 5e-324)
        elif d in _BETA_FAMILY:
            x = float(special.betaincinv(self._a, self._b, u))
            x = 0.5 if not math.isfinite(x) else min(max(x, 0.0), 1.0)
        else:
            raise OpensweepError(f"{self.name}: no warping for {d}")
        return self._snap(x) if d in QUANTISED else float(x)

    def _k_span(self) -> tuple[int, int]:
        if self.distribution == INT_UNIFORM:
            return int(self._min), int(self._max)
        k_lo, k_hi = self.lattice_range
        assert k_lo is not None and k_hi is not None
        return k_lo, k_hi

    def _log_bounds(self) -> tuple[float, float]:
        """Natural-log bounds of the value for the log_ and inv_log_ families."""
        d = self.distribution
        if d in (LOG_UNIFORM, Q_LOG_UNIFORM):
            return float(self._min), float(self._max)
        if d == INV_LOG_UNIFORM:
            return -float(self._max), -float(self._min)
        return math.log(self._min), math.log(self._max)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


_ATOMIC = frozenset({str, int, float, bool, type(None)})


def _copy_value(value: Any) -> Any:
    """A value to hand out, safe from the caller's mutations (atomic values are their own)."""
    return value if type(value) in _ATOMIC else copy.deepcopy(value)


def _put_all(out: dict[str, Any], flat: Mapping[ParamPath, Any]) -> None:
    """Set each value of ``flat`` at its path in ``out``, making the dicts on the way."""
    for path, value in flat.items():
        if not path:
            raise OpensweepError("a parameter path cannot be empty")
        node = out
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        node[path[-1]] = _native(value)


def _finite(x: float) -> float:
    if math.isnan(x):
        return 0.0
    return min(max(x, -_FLOAT_MAX), _FLOAT_MAX)


def _unit_clip(u: float) -> float:
    if math.isnan(u):
        return 0.5
    return min(max(u, 0.0), 1.0)


@dataclass(frozen=True)
class SearchSpace:
    """All the parameters of a sweep, sorted by path (W&B's grid order)."""

    parameters: tuple[Parameter, ...]

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.parameters, key=lambda p: p.path))
        object.__setattr__(self, "parameters", ordered)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.parameters)

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def paths(self) -> tuple[ParamPath, ...]:
        return tuple(p.path for p in self.parameters)

    def get(self, path: ParamPath) -> Parameter | None:
        for p in self.parameters:
            if p.path == path:
                return p
        return None

    @property
    def searchable(self) -> tuple[Parameter, ...]:
        """The parameters that vary (everything but constants)."""
        return tuple(p for p in self.parameters if not p.is_constant)

    def sample(self, rng: np.random.Generator) -> FlatParams:
        """One draw of every parameter, in path order (so a seed fixes the whole point)."""
        return {path: draw(rng) for path, draw in self._samplers}

    @cached_property
    def _samplers(self) -> tuple[tuple[ParamPath, Callable[[np.random.Generator], Any]], ...]:
        return tuple((p.path, p.sampler) for p in self.parameters)

    def nest(self, flat: Mapping[ParamPath, Any]) -> dict[str, Any]:
        """The run's config: nested parameters become nested dicts."""
        out: dict[str, Any] = {}
        _put_all(out, flat)
        return out

    def overlay(self, defaults: Mapping[str, Any], flat: Mapping[ParamPath, Any]) -> dict[str, Any]:
        """A run's config: the program's ``defaults`` with the sweep's values put over them.

        Only the keys the sweep sets change; a nested parameter replaces only its own leaf, so a
        default ``{"optimizer": {"lr": 0.1, "betas": [0.9, 0.99]}}`` keeps ``betas`` when the
        sweep sets ``optimizer.lr``. Neither input is modified.
        """
        out: dict[str, Any] = copy.deepcopy(dict(defaults))
        _put_all(out, flat)
        return out

    def flatten(self, nested: Mapping[str, Any]) -> FlatParams:
        """The values of this space's parameters found in a run's nested config.

        Driven by the space's paths, so a categorical value that is itself a dict stays whole.
        Parameters missing from ``nested`` are left out; keys that are not parameters ignored.
        """
        flat: FlatParams = {}
        for path in self.paths:
            node: Any = nested
            found = True
            for key in path:
                if isinstance(node, Mapping) and key in node:
                    node = node[key]
                else:
                    found = False
                    break
            if found:
                flat[path] = node
        return flat

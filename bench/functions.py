"""Benchmark problems for the Bayesian-search comparison, each written as a W&B sweep config.

A problem is what a user would hand to any of the engines: a sweep config (``method: bayes``,
``metric: {name: loss, goal: minimize}``) and a deterministic objective that maps a run's flat
parameters to the loss. ``optimum`` is the known global minimum, so *simple regret* after ``k``
evaluations is ``min(loss of the first k runs) - optimum``.

The five problems the issue names come first (``in_issue=True``); the others exist to check that
the method is sound in general rather than tuned to those five.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

METRIC = "loss"

Objective = Callable[[Mapping[str, Any]], float]


@dataclass(frozen=True)
class Problem:
    """One benchmark function as a sweep config plus its objective.

    ``objective`` receives the run's flat parameters (name -> value, the values an engine
    suggested, constants included) and returns the loss to minimise.
    """

    name: str
    title: str
    sweep_config: dict[str, Any]
    objective: Objective
    optimum: float
    in_issue: bool

    @property
    def dimension(self) -> int:
        return len(self.sweep_config["parameters"])


def _box_config(names: list[str], low: float, high: float) -> dict[str, Any]:
    return _ranges_config({n: (low, high) for n in names})


def _ranges_config(ranges: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    params = {
        n: {"distribution": "uniform", "min": low, "max": high} for n, (low, high) in ranges.items()
    }
    return {
        "method": "bayes",
        "metric": {"name": METRIC, "goal": "minimize"},
        "parameters": params,
    }


def _vector(params: Mapping[str, Any], d: int) -> np.ndarray:
    return np.array([float(params[f"x{i + 1}"]) for i in range(d)])


def _names(d: int) -> list[str]:
    return [f"x{i + 1}" for i in range(d)]


# --- the five named in the issue ------------------------------------------------------------


def branin(params: Mapping[str, Any]) -> float:
    """Branin-Hoo on x1 in [-5, 10], x2 in [0, 15]; three global minima of 0.397887."""
    x1, x2 = float(params["x1"]), float(params["x2"])
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(params: Mapping[str, Any]) -> float:
    """Hartmann 6-D on the unit cube; global minimum -3.32237."""
    x = _vector(params, 6)
    inner = np.sum(_H6_A * (x - _H6_P) ** 2, axis=1)
    return float(-np.sum(_H6_ALPHA * np.exp(-inner)))


def rosenbrock4(params: Mapping[str, Any]) -> float:
    """Rosenbrock 4-D on [-5, 10]^4; global minimum 0 at (1, 1, 1, 1)."""
    x = _vector(params, 4)
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (x[:-1] - 1) ** 2))


def ackley5(params: Mapping[str, Any]) -> float:
    """Ackley 5-D on [-32.768, 32.768]^5; global minimum 0 at the origin."""
    x = _vector(params, 5)
    a = -20 * math.exp(-0.2 * math.sqrt(float(np.mean(x**2))))
    b = -math.exp(float(np.mean(np.cos(2 * math.pi * x))))
    return a + b + 20 + math.e


# The ML-like space: what a user sweeps for a small network. Each optimizer has its own best
# learning rate (and a different best loss), the best learning rate moves with the batch size
# (linear scaling), the best dropout grows with depth, and everything saturates towards the
# loss of a useless model when far off, as real validation losses do.
_OPT_BASE = {"sgd": 0.31, "adam": 0.22, "rmsprop": 0.26}
_OPT_LOG10_LR = {"sgd": -1.4, "adam": -3.3, "rmsprop": -2.8}
_OPT_LAYERS = {"sgd": 3.0, "adam": 5.0, "rmsprop": 4.0}
_BATCH_PENALTY = {16: 0.020, 32: 0.006, 64: 0.0, 128: 0.004, 256: 0.015}
_USELESS_LOSS = 2.30


def ml_like(params: Mapping[str, Any]) -> float:
    """Synthetic validation loss over optimizer, log-scale lr, layers, dropout and batch size.

    Minimum: adam, lr at its batch-adjusted optimum, 5 layers, the depth's best dropout,
    batch 64 -> 0.22.
    """
    opt = str(params["optimizer"])
    lr = float(params["learning_rate"])
    layers = int(params["layers"])
    dropout = float(params["dropout"])
    batch = int(params["batch_size"])
    best_log_lr = _OPT_LOG10_LR[opt] + 0.35 * math.log2(batch / 64)
    best_dropout = 0.05 + 0.06 * layers
    q = (
        ((math.log10(lr) - best_log_lr) / 0.6) ** 2
        + ((layers - _OPT_LAYERS[opt]) / 2.5) ** 2
        + ((dropout - best_dropout) / 0.2) ** 2
    )
    base = _OPT_BASE[opt]
    return base + (_USELESS_LOSS - base) * (1 - math.exp(-0.5 * q)) + _BATCH_PENALTY[batch]


def _ml_like_config() -> dict[str, Any]:
    return {
        "method": "bayes",
        "metric": {"name": METRIC, "goal": "minimize"},
        "parameters": {
            "optimizer": {"values": ["sgd", "adam", "rmsprop"]},
            "learning_rate": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
            "layers": {"distribution": "int_uniform", "min": 1, "max": 8},
            "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.8},
            "batch_size": {"values": [16, 32, 64, 128, 256]},
        },
    }


# --- not in the issue: generality checks ---------------------------------------------------


def levy4(params: Mapping[str, Any]) -> float:
    """Levy 4-D on [-10, 10]^4; global minimum 0 at (1, 1, 1, 1); many local minima."""
    x = _vector(params, 4)
    w = 1 + (x - 1) / 4
    head = math.sin(math.pi * w[0]) ** 2
    mid = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(head + mid + tail)


_ST_MIN_1D = -39.16616570377142


def styblinski_tang3(params: Mapping[str, Any]) -> float:
    """Styblinski-Tang 3-D on [-5, 5]^3; global minimum -117.4985 at x_i = -2.903534."""
    x = _vector(params, 3)
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


# A broad bowl whose bottom is NOT the optimum: a narrow, deep well sits elsewhere, with a
# log-scale coordinate so the well is narrow in raw units but wide once log-warped.
_NEEDLE_BOWL = np.array([0.25, 0.30])
_NEEDLE_WELL = np.array([0.80, 0.65])
_NEEDLE_WELL_SCALE = 3e-3
_NEEDLE_WIDTH = 0.07


def _needle_unit(x: np.ndarray, log_scale: float) -> float:
    u = math.log10(log_scale)  # in [-5, -1]
    bowl = float(np.sum((x - _NEEDLE_BOWL) ** 2)) + 0.02 * (u + 3) ** 2
    dist2 = float(np.sum((x - _NEEDLE_WELL) ** 2)) + ((u - math.log10(_NEEDLE_WELL_SCALE)) / 4) ** 2
    return 0.5 + bowl - 1.2 * math.exp(-dist2 / (2 * _NEEDLE_WIDTH**2))


def needle3(params: Mapping[str, Any]) -> float:
    """2 uniform coordinates + 1 log-scale one; a narrow well away from the broad bowl."""
    x = np.array([float(params["x1"]), float(params["x2"])])
    return _needle_unit(x, float(params["scale"]))


def _needle_config() -> dict[str, Any]:
    return {
        "method": "bayes",
        "metric": {"name": METRIC, "goal": "minimize"},
        "parameters": {
            "x1": {"distribution": "uniform", "min": 0.0, "max": 1.0},
            "x2": {"distribution": "uniform", "min": 0.0, "max": 1.0},
            "scale": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
        },
    }


def _needle_optimum() -> float:
    """The well's exact bottom, found numerically (it sits slightly off the well's centre)."""
    from scipy.optimize import minimize

    def f(z: np.ndarray) -> float:
        return _needle_unit(z[:2], 10.0 ** float(z[2]))

    start = np.array([*_NEEDLE_WELL, math.log10(_NEEDLE_WELL_SCALE)])
    res = minimize(f, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
    return float(res.fun)


# Shekel-10 on [0, 10]^4: ten wells of different depths and widths over a flat plateau; the
# deepest is at (4, 4, 4, 4), with two almost as deep nearby that trap local searches.
_SHEKEL_BETA = 0.1 * np.array([1, 2, 2, 4, 4, 6, 3, 7, 5, 5], dtype=float)
_SHEKEL_C = np.array(
    [
        [4, 1, 8, 6, 3, 2, 5, 8, 6, 7],
        [4, 1, 8, 6, 7, 9, 3, 1, 2, 3.6],
        [4, 1, 8, 6, 3, 2, 5, 8, 6, 7],
        [4, 1, 8, 6, 7, 9, 3, 1, 2, 3.6],
    ]
).T


def _shekel(x: np.ndarray) -> float:
    return float(-np.sum(1.0 / (np.sum((x - _SHEKEL_C) ** 2, axis=1) + _SHEKEL_BETA)))


def shekel4(params: Mapping[str, Any]) -> float:
    """Shekel (m = 10) 4-D on [0, 10]^4; global minimum -10.5364 near (4, 4, 4, 4)."""
    return _shekel(_vector(params, 4))


def six_hump_camel(params: Mapping[str, Any]) -> float:
    """Six-hump camel on [-3, 3] x [-2, 2]; two global minima of -1.0316 among six local ones."""
    x, y = float(params["x1"]), float(params["x2"])
    return (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2


# An SVM-like validation error: log-scale C and gamma with the RBF kernel's diagonal ridge
# (C and gamma trade off), a polynomial kernel whose degree matters, a linear kernel that ignores
# gamma, an almost irrelevant boolean; far from a kernel's good region the error saturates at
# chance (0.5), so most of the space is a plateau.
_SVM_BASE = {"rbf": 0.06, "poly": 0.09, "linear": 0.12}
_SVM_CHANCE = 0.5


def svm_like(params: Mapping[str, Any]) -> float:
    """Synthetic SVM error over kernel, log C, log gamma, degree and shrinking; minimum 0.06."""
    kernel = str(params["kernel"])
    a = math.log10(float(params["C"]))
    b = math.log10(float(params["gamma"]))
    degree = int(params["degree"])
    if kernel == "rbf":
        q = ((a + b + 1.0) / 0.7) ** 2 + ((a - b - 4.0) / 3.0) ** 2
        base = _SVM_BASE[kernel]
    elif kernel == "poly":
        q = (a / 1.5) ** 2 + ((b + 1.0) / 2.5) ** 2
        base = _SVM_BASE[kernel] + 0.01 * (degree - 3) ** 2
    else:
        q = ((a + 1.0) / 2.0) ** 2
        base = _SVM_BASE[kernel]
    shrink = 0.0 if params["shrinking"] is True else 0.002
    return base + (_SVM_CHANCE - base) * (1 - math.exp(-0.5 * q)) + shrink


def _svm_config() -> dict[str, Any]:
    return {
        "method": "bayes",
        "metric": {"name": METRIC, "goal": "minimize"},
        "parameters": {
            "kernel": {"values": ["rbf", "poly", "linear"]},
            "C": {"distribution": "log_uniform_values", "min": 1e-3, "max": 1e3},
            "gamma": {"distribution": "log_uniform_values", "min": 1e-5, "max": 10.0},
            "degree": {"distribution": "int_uniform", "min": 2, "max": 5},
            "shrinking": {"values": [True, False]},
        },
    }


def _polished_minimum(f: Callable[[np.ndarray], float], start: Sequence[float]) -> float:
    """A known minimum to full precision: the published location, polished by Nelder-Mead."""
    from scipy.optimize import minimize

    options = {"xatol": 1e-12, "fatol": 1e-14}
    res = minimize(f, np.array(start), method="Nelder-Mead", options=options)
    return float(res.fun)


def _problems() -> list[Problem]:
    return [
        Problem(
            "branin",
            "Branin (2-D)",
            _ranges_config({"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}),
            branin,
            0.39788735772973816,
            True,
        ),
        Problem(
            "hartmann6",
            "Hartmann (6-D)",
            _box_config(_names(6), 0.0, 1.0),
            hartmann6,
            -3.322368011415515,
            True,
        ),
        Problem(
            "rosenbrock4",
            "Rosenbrock (4-D)",
            _box_config(_names(4), -5.0, 10.0),
            rosenbrock4,
            0.0,
            True,
        ),
        Problem(
            "ackley5", "Ackley (5-D)", _box_config(_names(5), -32.768, 32.768), ackley5, 0.0, True
        ),
        Problem(
            "ml_like",
            "ML-like mixed space (5 params: 2 categorical, log lr, int, uniform)",
            _ml_like_config(),
            ml_like,
            min(_OPT_BASE.values()) + min(_BATCH_PENALTY.values()),
            True,
        ),
        Problem("levy4", "Levy (4-D)", _box_config(_names(4), -10.0, 10.0), levy4, 0.0, False),
        Problem(
            "styblinski_tang3",
            "Styblinski-Tang (3-D)",
            _box_config(_names(3), -5.0, 5.0),
            styblinski_tang3,
            3 * _ST_MIN_1D,
            False,
        ),
        Problem(
            "needle3",
            "Narrow well (2 uniform + 1 log-scale)",
            _needle_config(),
            needle3,
            _needle_optimum(),
            False,
        ),
        Problem(
            "shekel4",
            "Shekel-10 (4-D)",
            _box_config(_names(4), 0.0, 10.0),
            shekel4,
            _polished_minimum(_shekel, [4.0, 4.0, 4.0, 4.0]),
            False,
        ),
        Problem(
            "six_hump_camel",
            "Six-hump camel (2-D)",
            _ranges_config({"x1": (-3.0, 3.0), "x2": (-2.0, 2.0)}),
            six_hump_camel,
            _polished_minimum(
                lambda z: six_hump_camel({"x1": z[0], "x2": z[1]}), [0.0898, -0.7126]
            ),
            False,
        ),
        Problem(
            "svm_like",
            "SVM-like mixed space (categorical kernel, log C, log gamma, int degree, boolean)",
            _svm_config(),
            svm_like,
            _SVM_BASE["rbf"],
            False,
        ),
    ]


PROBLEMS: dict[str, Problem] = {p.name: p for p in _problems()}

"""controller.core.bayes: what a ``method: bayes`` sweep suggests, and why."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core import bayes
from controller.core.config import SweepConfig, parse_config
from controller.core.errors import OpensweepError
from controller.core.runs import RunRecord


def _config(parameters: dict[str, Any], goal: str = "minimize") -> SweepConfig:
    return parse_config(
        {"method": "bayes", "metric": {"name": "loss", "goal": goal}, "parameters": parameters}
    )


def _done(i: int, params: dict[str, Any], loss: float | None, state: str = "finished") -> RunRecord:
    metrics = {} if loss is None else {"loss": loss}
    history = [{"_step": 0, **metrics}] if metrics else []
    return RunRecord(f"r{i}", params, state, dict(metrics), history)


def _nested(config: SweepConfig, seed: int, runs: list[RunRecord]) -> dict[str, Any]:
    return config.space.nest(bayes.suggest(config, runs, seed))


def _optimise(
    config: SweepConfig, f: Callable[[dict[str, Any]], float], n: int, seed: int = 0
) -> list[RunRecord]:
    runs: list[RunRecord] = []
    for i in range(n):
        params = _nested(config, seed * 1000 + i, runs)
        runs.append(_done(i, params, f(params)))
    return runs


X01 = {"x": {"min": 0.0, "max": 1.0}}


def test_same_runs_and_seed_give_the_same_suggestion() -> None:
    config = _config({"x": {"min": 0.0, "max": 1.0}, "y": {"min": 0.0, "max": 1.0}})
    runs = [_done(i, {"x": i / 9, "y": (i * 7 % 10) / 9}, float(i % 4)) for i in range(10)]
    assert bayes.suggest(config, runs, 11) == bayes.suggest(config, runs, 11)
    assert bayes.suggest(config, runs, 11) != bayes.suggest(config, runs, 12)


def test_the_initial_design_is_ten_distinct_draws_that_ignore_the_values() -> None:
    config = _config({"x": {"min": 0.0, "max": 1.0}, "y": {"min": 0.0, "max": 1.0}})
    assert bayes.initial_design_size(2) == bayes.initial_design_size(20) == 10
    runs_a: list[RunRecord] = []
    runs_b: list[RunRecord] = []
    for i in range(bayes.initial_design_size(2)):
        point = _nested(config, i, runs_a)
        # Until ten runs have values the values change nothing: the GP is not in charge yet.
        assert _nested(config, i, runs_b) == point
        runs_a.append(_done(i, point, point["x"]))
        runs_b.append(_done(i, point, -point["y"]))
    points = np.array([[r.params["x"], r.params["y"]] for r in runs_a])
    assert len({tuple(p) for p in points.tolist()}) == len(points)
    assert ((points >= 0.0) & (points <= 1.0)).all()
    # The eleventh suggestion is the model's: it now depends on the values.
    assert _nested(config, 10, runs_a) != _nested(config, 10, runs_b)


def test_the_initial_design_never_repeats_a_point_of_a_small_discrete_space() -> None:
    config = _config({"a": {"values": [1, 2, 3]}, "b": {"values": ["u", "v", "w"]}})
    runs: list[RunRecord] = []
    for i in range(9):
        runs.append(_done(i, _nested(config, i, runs), float(i)))
    assert len({(r.params["a"], r.params["b"]) for r in runs}) == 9


def test_finds_the_minimum_of_a_one_dimensional_toy() -> None:
    config = _config(X01)
    runs = _optimise(config, lambda p: (p["x"] - 0.3) ** 2, 12)
    best = min(runs, key=lambda r: r.summary["loss"])
    assert abs(best.params["x"] - 0.3) < 0.02


def test_acquisition_prefers_the_promising_region_over_the_explored_bad_one() -> None:
    config = _config(X01)
    xs = [0.02, 0.08, 0.15, 0.22, 0.3, 0.38, 0.45, 0.5, 0.7, 0.9]
    runs = [_done(i, {"x": x}, (x - 0.8) ** 2) for i, x in enumerate(xs)]
    assert 0.7 < _nested(config, 0, runs)["x"] < 0.9


def test_maximize_looks_for_large_values() -> None:
    minimise = _config(X01)
    maximise = _config(X01, goal="maximize")
    xs = [0.05, 0.15, 0.25, 0.5, 0.7, 0.9]
    low = [_done(i, {"x": x}, (x - 0.8) ** 2) for i, x in enumerate(xs)]
    high = [_done(i, {"x": x}, -((x - 0.8) ** 2)) for i, x in enumerate(xs)]
    assert _nested(minimise, 0, low) == _nested(maximise, 0, high)


def test_log_scale_parameters_are_searched_in_log_space() -> None:
    config = _config({"lr": {"distribution": "log_uniform_values", "min": 1e-6, "max": 1.0}})
    runs = _optimise(config, lambda p: (math.log10(p["lr"]) + 4.0) ** 2, 12)
    best = min(runs, key=lambda r: r.summary["loss"])
    assert 5e-5 < best.params["lr"] < 2e-4


def test_the_good_category_is_found_and_exploited() -> None:
    config = _config(
        {"opt": {"values": ["sgd", "adam", "rmsprop", "adagrad"]}, "x": {"min": 0.0, "max": 1.0}}
    )
    offset = {"sgd": 1.0, "adam": 0.0, "rmsprop": 0.7, "adagrad": 1.5}
    runs = _optimise(config, lambda p: offset[p["opt"]] + (p["x"] - 0.5) ** 2, 16)
    assert sum(r.params["opt"] == "adam" for r in runs[-5:]) >= 4


def test_categorical_with_probabilities_works() -> None:
    config = _config(
        {"opt": {"values": ["a", "b"], "probabilities": [0.9, 0.1]}, "x": {"min": 0.0, "max": 1.0}}
    )
    runs = _optimise(config, lambda p: (p["opt"] == "a") + p["x"], 8)
    assert {r.params["opt"] for r in runs} == {"a", "b"}


def test_running_runs_push_the_next_suggestion_elsewhere() -> None:
    config = _config(X01)
    xs = [0.05, 0.2, 0.35, 0.5, 0.65, 0.95]
    runs = [_done(i, {"x": x}, (x - 0.8) ** 2) for i, x in enumerate(xs)]
    first = _nested(config, 0, runs)["x"]
    pending = [_done(10 + i, {"x": first}, None, "running") for i in range(1)]
    second = _nested(config, 0, runs + pending)["x"]
    assert abs(second - first) > 0.01


def test_failed_runs_count_as_bad_not_as_missing() -> None:
    config = _config(X01)
    xs = [0.1, 0.3, 0.5, 0.7, 0.9]
    runs = [_done(i, {"x": x}, (x - 0.75) ** 2) for i, x in enumerate(xs)]
    failed = [_done(10 + i, {"x": x}, None, "failed") for i, x in enumerate([0.72, 0.78, 0.75])]
    crashed = [_done(20, {"x": 0.8}, None, "crashed")]
    x = _nested(config, 0, runs + failed + crashed)["x"]
    assert not 0.69 < x < 0.83


def test_a_finished_run_without_the_metric_is_a_failure_and_a_stopped_one_is_ignored() -> None:
    config = _config(X01)
    runs = [_done(i, {"x": x}, (x - 0.75) ** 2) for i, x in enumerate([0.1, 0.3, 0.5, 0.9])]
    data = bayes._collect(
        bayes.SpaceEncoding(config.space),
        [
            *runs,
            _done(5, {"x": 0.75}, None, "finished"),
            _done(6, {"x": 0.6}, None, "stopped"),
            _done(7, {"x": 0.2}, 0.5, "stopped"),
            _done(8, {"x": 0.4}, None, "running"),
        ],
        "loss",
        "minimize",
    )
    assert len(data.y_obs) == 5  # the four finished runs and the stopped run with a value
    assert bayes._matrix(data.x_failed, 1)[:, 0].tolist() == [0.75]
    assert bayes._matrix(data.x_pending, 1)[:, 0].tolist() == [0.4]
    assert len(data.x_all) == 8


def test_nan_and_non_numeric_metric_values_do_not_count() -> None:
    config = _config(X01)
    runs = [
        RunRecord("a", {"x": 0.2}, "finished", {"loss": math.nan}, [{"loss": math.nan}]),
        RunRecord("b", {"x": 0.4}, "finished", {"loss": "oops"}, []),
    ]
    data = bayes._collect(bayes.SpaceEncoding(config.space), runs, "loss", "minimize")
    assert data.y_obs == [] and len(data.x_failed) == 2


def test_runs_whose_parameters_are_not_in_the_space_are_ignored() -> None:
    config = _config({"opt": {"values": ["a", "b"]}, "x": {"min": 0.0, "max": 1.0}})
    runs = [
        _done(0, {"opt": "c", "x": 0.5}, 0.1),
        _done(1, {"x": 0.5}, 0.1),
        _done(2, {"opt": "a", "x": "high"}, 0.1),
    ]
    data = bayes._collect(bayes.SpaceEncoding(config.space), runs, "loss", "minimize")
    assert data.x_all == []


def test_a_discrete_space_is_not_repeated_while_points_are_left() -> None:
    config = _config({"a": {"values": [1, 2, 3]}, "b": {"min": 1, "max": 4}})
    runs = _optimise(config, lambda p: (p["a"] - 2) ** 2 + (p["b"] - 3) ** 2, 12)
    assert len({(r.params["a"], r.params["b"]) for r in runs}) == 12


def test_bayes_needs_a_metric() -> None:
    config = parse_config({"method": "random", "parameters": X01})
    with pytest.raises(OpensweepError, match="metric"):
        bayes.suggest(config, [], 0)


def test_a_space_of_constants_gives_the_constants() -> None:
    config = _config({"a": {"value": 3}, "b": {"values": ["only"]}})
    assert _nested(config, 0, []) == {"a": 3, "b": "only"}


def test_a_duplicated_categorical_value_is_one_choice() -> None:
    encoding = bayes.SpaceEncoding(_config({"a": {"values": [1, 1.0, 2, True]}}).space)
    assert encoding.categorical[0].values == (1, 2, True)


def test_many_runs_are_subsampled_and_the_best_are_kept() -> None:
    config = _config({"x": {"min": 0.0, "max": 1.0}, "y": {"min": 0.0, "max": 1.0}})
    rng = np.random.default_rng(0)
    pts = rng.random((bayes.MAX_GP_POINTS + 150, 2))
    runs = [
        _done(i, {"x": float(a), "y": float(b)}, float((a - 0.6) ** 2 + (b - 0.4) ** 2))
        for i, (a, b) in enumerate(pts)
    ]
    suggestion = _nested(config, 0, runs)
    assert abs(suggestion["x"] - 0.6) < 0.1 and abs(suggestion["y"] - 0.4) < 0.1


def _subset_case(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` runs of a 3-D bowl centred at (0.3, 0.6, 0.5), and anisotropic column scales."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3))
    y = ((x - np.array([0.3, 0.6, 0.5])) ** 2).sum(1)
    return x, y, np.array([0.2, 0.5, 1.0])


@pytest.mark.parametrize("n", [1, 40, bayes.MAX_GP_POINTS])
def test_up_to_the_cap_the_gp_keeps_every_run_and_draws_nothing(n: int) -> None:
    x, y, scales = _subset_case(n)
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(bayes._model_subset(x, y, bayes.MAX_GP_POINTS, rng, scales),
                                  np.arange(n))
    assert rng.random() == np.random.default_rng(3).random()  # the generator was not used


@pytest.mark.parametrize("n", [bayes.MAX_GP_POINTS + 1, 300, 1000])
def test_past_the_cap_the_gp_keeps_exactly_the_cap_deterministically(n: int) -> None:
    x, y, scales = _subset_case(n)
    keep = bayes._model_subset(x, y, 128, np.random.default_rng(5), scales)
    assert len(keep) == 128 and len(set(keep.tolist())) == 128
    assert np.all(np.diff(keep) > 0) and keep[0] >= 0 and keep[-1] < n
    np.testing.assert_array_equal(
        keep, bayes._model_subset(x, y, 128, np.random.default_rng(5), scales)
    )


def test_the_subset_holds_the_incumbents_neighbours_the_best_runs_and_a_random_rest() -> None:
    x, y, scales = _subset_case(1000)
    keep = set(bayes._model_subset(x, y, 128, np.random.default_rng(1), scales).tolist())
    incumbent = int(np.argmin(y))
    assert incumbent in keep
    distance = (((x - x[incumbent]) / scales) ** 2).sum(1)
    near = np.argsort(distance, kind="stable")[: int(128 * bayes.NEAR_SHARE)]
    assert set(near.tolist()) <= keep
    # Neighbours in length-scale units: along the short first column, not the long third.
    assert np.abs(x[near, 0] - x[incumbent, 0]).mean() < np.abs(x[near, 2] - x[incumbent, 2]).mean()
    # The best runs besides the neighbours.
    others = [i for i in np.argsort(y, kind="stable").tolist() if i not in set(near.tolist())]
    assert set(others[: int(128 * bayes.BEST_SHARE)]) <= keep
    # The rest is a draw that depends on the generator, spread over the worse runs.
    rest = keep - set(near.tolist()) - set(others[: int(128 * bayes.BEST_SHARE)])
    other = set(bayes._model_subset(x, y, 128, np.random.default_rng(2), scales).tolist())
    assert len(rest) == 128 - len(near) - int(128 * bayes.BEST_SHARE)
    assert keep != other
    assert np.median(y[sorted(rest)]) > np.median(y)


def test_a_large_sweep_with_a_running_run_suggests_away_from_it() -> None:
    # Past the cap the running run is still in the GP (as a fantasy), whichever runs the
    # subset keeps: a second agent does not get the first one's point.
    config = _config({"x": {"min": 0.0, "max": 1.0}, "y": {"min": 0.0, "max": 1.0}})
    rng = np.random.default_rng(4)
    pts = rng.random((bayes.MAX_GP_POINTS + 200, 2))
    runs = [
        _done(i, {"x": float(a), "y": float(b)}, float((a - 0.6) ** 2 + (b - 0.4) ** 2))
        for i, (a, b) in enumerate(pts)
    ]
    first = _nested(config, 9, runs)
    second = _nested(config, 9, [*runs, _done(len(runs), first, None, "running")])
    assert (second["x"] - first["x"]) ** 2 + (second["y"] - first["y"]) ** 2 > 1e-6


# ---------------------------------------------------------------- property: always in the space

_PARAMETER_SPECS = st.sampled_from(
    [
        {"min": 0.0, "max": 1.0},
        {"min": -3, "max": 7},
        {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
        {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
        {"distribution": "q_log_uniform_values", "min": 1, "max": 256, "q": 1},
        {"distribution": "inv_log_uniform_values", "min": 0.1, "max": 10.0},
        {"distribution": "normal", "mu": 2.0, "sigma": 0.5},
        {"distribution": "q_normal", "mu": 0.0, "sigma": 3.0, "q": 2},
        {"distribution": "log_normal", "mu": 0.0, "sigma": 1.0},
        {"distribution": "beta", "a": 2.0, "b": 5.0},
        {"values": ["a", "b", "c"]},
        {"values": [True, False]},
        {"value": 7},
    ]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(_PARAMETER_SPECS, min_size=1, max_size=4),
    n_runs=st.integers(0, 9),
    seed=st.integers(0, 2**31 - 1),
    states=st.lists(
        st.sampled_from(["finished", "failed", "running", "crashed"]), min_size=9, max_size=9
    ),
)
def test_suggestions_always_lie_in_the_space(
    specs: list[dict[str, Any]], n_runs: int, seed: int, states: list[str]
) -> None:
    config = _config({f"p{i}": spec for i, spec in enumerate(specs)})
    rng = np.random.default_rng(seed)
    runs = []
    for i in range(n_runs):
        params = config.space.nest(config.space.sample(rng))
        runs.append(_done(i, params, float(rng.normal()), states[i]))
    flat = bayes.suggest(config, runs, seed)
    assert set(flat) == set(config.space.paths)
    for param in config.space.parameters:
        assert param.contains(flat[param.path]), (param, flat[param.path])


def test_all_equal_values_keep_filling_the_space_instead_of_modelling_noise() -> None:
    config = _config({"x": {"min": 0.0, "max": 1.0}, "y": {"min": 0.0, "max": 1.0}})
    runs = [_done(i, {"x": (i * 0.37) % 1, "y": (i * 0.61) % 1}, 1.0) for i in range(12)]
    data = bayes._collect(bayes.SpaceEncoding(config.space), runs, "loss", "minimize")
    assert bayes._compress_bad_tail(np.array(data.y_obs)) is None
    point = _nested(config, 0, runs)
    # The space-filling rule: no existing run is closer than the design's spacing.
    gaps = [math.dist((point["x"], point["y"]), (r.params["x"], r.params["y"])) for r in runs]
    assert min(gaps) > 0.05


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_the_scale_of_the_metric_does_not_matter(scale: float) -> None:
    config = _config(X01)
    xs = [0.05, 0.2, 0.35, 0.5, 0.65, 0.95]
    plain = [_done(i, {"x": x}, (x - 0.8) ** 2) for i, x in enumerate(xs)]
    scaled = [_done(i, {"x": x}, scale * (x - 0.8) ** 2) for i, x in enumerate(xs)]
    assert abs(_nested(config, 0, plain)["x"] - _nested(config, 0, scaled)["x"]) < 0.02


def test_hyperparameters_reused_past_the_refit_threshold_do_not_depend_on_the_cache() -> None:
    config = _config({"x": {"min": 0.0, "max": 1.0}, "y": {"min": 0.0, "max": 1.0}})
    rng = np.random.default_rng(3)
    pts = rng.random((bayes.REFIT_EVERY_RUN_UP_TO + 20, 2))
    runs = [
        _done(i, {"x": float(a), "y": float(b)}, float(np.sin(4 * a) + b * b))
        for i, (a, b) in enumerate(pts)
    ]
    bayes._FIT_MEMO.clear()
    cold = bayes.suggest(config, runs, 9)
    warm = bayes.suggest(config, runs, 9)
    assert cold == warm
    assert len(bayes._FIT_MEMO) == 1


def test_refit_points_grow_by_about_ten_percent_and_never_exceed_the_count() -> None:
    start = bayes.REFIT_EVERY_RUN_UP_TO
    points = sorted({bayes._refit_point(n) for n in range(start, 2000)})
    assert points[0] == start
    assert all(1.05 < b / a <= 1.1 + 1 / a for a, b in itertools.pairwise(points))
    assert all(bayes._refit_point(n) <= n for n in range(start, 2000))


# ---------------------------------------------------------------- the fast search of large sweeps

_MIXED = {
    "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
    "opt": {"values": ["adam", "sgd", "rmsprop"]},
    "layers": {"min": 1, "max": 8},
    "dropout": {"min": 0.0, "max": 0.6},
}
_CONTINUOUS = {"x": {"min": -2.0, "max": 3.0}, "y": X01["x"], "z": X01["x"]}


def _toy_loss(params: dict[str, Any]) -> float:
    if "lr" in params:
        penalty = {"adam": 0.0, "sgd": 0.5, "rmsprop": 0.2}[params["opt"]]
        return float(
            (math.log10(params["lr"]) + 3) ** 2
            + penalty
            + abs(params["layers"] - 4) * 0.1
            + params["dropout"]
        )
    return float((params["x"] - 0.7) ** 2 + math.sin(5 * params["y"]) + (params["z"] - 0.2) ** 2)


def _trajectory_digest(parameters: dict[str, Any], n: int, seed: int) -> str:
    """A sequential sweep of ``n`` suggestions (some failed runs, the last one running),
    digested: floats to 10 significant digits, so the digest names the suggestions exactly
    but not BLAS-level last-bit noise."""
    import hashlib
    import json

    config = _config(parameters)
    runs: list[RunRecord] = []
    out = []
    for i in range(n):
        params = _nested(config, seed * 1000 + i, runs)
        state = "failed" if i % 11 == 7 else ("running" if i == n - 1 else "finished")
        runs.append(_done(i, params, _toy_loss(params) if state == "finished" else None, state))
        out.append(
            {k: float(f"{v:.10g}") if isinstance(v, float) else v for k, v in params.items()}
        )
    return hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("parameters", "seed", "digest"),
    [(_CONTINUOUS, 0, "82f5c6b698932706"), (_MIXED, 1, "746982ea8a19fe0e")],
)
def test_small_sweeps_suggest_exactly_what_the_search_did_before_its_large_sweep_path(
    parameters: dict[str, Any], seed: int, digest: str
) -> None:
    # Digests recorded with the small-sweep search as of the random initial design and the
    # Hamming-scaled categorical kernel (docs/bayes.md): speed work on the large-sweep path
    # and the encoding must leave every suggestion of a sweep with at most FAST_SEARCH_AFTER
    # modelled runs unchanged, so the regret benchmark is too.
    assert _trajectory_digest(parameters, 30, seed) == digest


def _large_sweep_acquisition(
    parameters: dict[str, Any], seed: int
) -> tuple[bayes.SpaceEncoding, bayes._Acquisition, np.ndarray]:
    """The acquisition of a 300-run sweep of ``_toy_loss``, and candidate starts on it."""
    config = _config(parameters)
    enc = bayes.SpaceEncoding(config.space)
    rng = np.random.default_rng(seed)
    xs = enc.canonical(enc.random(rng, 300))
    ys = np.array([_toy_loss(config.space.nest(enc.decode(x))) for x in xs])
    hp = bayes._fit(enc, xs, ys, rng)
    assert hp is not None
    keep = bayes._subset(ys, bayes.MAX_GP_POINTS, rng)
    y_t = bayes._compress_bad_tail(ys[keep])
    assert y_t is not None
    gp = bayes._gp.GaussianProcess(xs[keep], y_t, enc.groups, hp, y_mean=0.0, y_scale=1.0)
    acq = bayes._Acquisition(gp, float(gp.predict(xs[keep])[0].min()))
    candidates = np.vstack([enc.random(rng, 512), enc.sobol(rng, 256)])
    return enc, acq, candidates[np.argsort(-acq(candidates))[:5]]


@pytest.mark.parametrize(("parameters", "seed"), [(_CONTINUOUS, 0), (_CONTINUOUS, 2), (_MIXED, 1)])
def test_batched_ascent_never_loses_ground_and_reaches_what_lbfgs_reaches(
    parameters: dict[str, Any], seed: int
) -> None:
    enc, acq, starts = _large_sweep_acquisition(parameters, seed)
    lbfgs = bayes._local_numeric(enc, acq, starts)
    acq = bayes._Acquisition(bayes._gp.ExplicitInverseGP.of(acq.gp), acq.best)  # as it runs
    ascended = bayes._line_ascent(enc, acq, starts)
    assert np.all(acq(ascended) >= acq(starts))
    assert np.all(ascended[:, len(enc.numeric) :] == starts[:, len(enc.numeric) :])
    assert np.all((ascended >= 0.0) & (ascended <= 1.0))
    # The search keeps the best refined point: that one must be as good as L-BFGS-B's best
    # (log EI within 0.01, i.e. EI within 1%).
    assert acq(ascended).max() >= acq(lbfgs).max() - 0.01


def test_batched_categorical_moves_pick_what_the_one_at_a_time_moves_pick() -> None:
    enc, acq, starts = _large_sweep_acquisition(_MIXED, 3)
    batched = bayes._categorical_moves_batched(enc, acq, starts)
    one_at_a_time = bayes._categorical_moves(enc, acq, starts)
    assert np.array_equal(batched, one_at_a_time)


def test_a_large_sweep_takes_the_fast_search_and_still_finds_the_optimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_lbfgs(*args: Any) -> np.ndarray:
        raise AssertionError("a large sweep must not run L-BFGS-B per start")

    monkeypatch.setattr(bayes, "_local_numeric", no_lbfgs)
    config = _config(_MIXED)
    rng = np.random.default_rng(4)
    runs = []
    for i in range(bayes.FAST_SEARCH_AFTER + 60):
        params = config.space.nest(config.space.sample(rng))
        runs.append(_done(i, params, _toy_loss(params)))
    first = _nested(config, 5, runs)
    assert first == _nested(config, 5, runs)
    assert first["opt"] == "adam" and abs(math.log10(first["lr"]) + 3) < 0.5
    assert first["dropout"] < 0.1


def test_encoding_from_nested_params_matches_encoding_the_flattened_params() -> None:
    config = _config(
        {
            "opt": {"parameters": {"name": {"values": ["adam", None, 1, True]}, "lr": X01["x"]}},
            "n": {"min": 1, "max": 4},
        }
    )
    enc = bayes.SpaceEncoding(config.space)
    cases: list[dict[str, Any]] = [
        {"opt": {"name": None, "lr": 0.5}, "n": 2},
        {"opt": {"name": True, "lr": 0.1}, "n": 4},
        {"opt": {"name": 1.0, "lr": 0.1}, "n": 1},  # 1.0 is the value 1, not True
        {"opt": {"name": "adam"}, "n": 2},  # a value missing
        {"opt": "adam", "n": 2},  # not a mapping where the space nests
        {"opt": {"name": "nadam", "lr": 0.1}, "n": 2},  # not among the values
        {"opt": {"name": [1], "lr": 0.1}, "n": 2},  # unhashable
        {"opt": {"name": "adam", "lr": 0.3}, "n": 9},  # out of range
    ]
    for params in cases:
        flat = enc.encode(config.space.flatten(params))
        nested = enc.encode_nested(params)
        assert (flat is None) == (nested is None), params
        if flat is not None:
            assert flat.tolist() == nested, params
    assert enc.encode_nested(cases[0]) is not None and enc.encode_nested(cases[3]) is None


def test_top_level_spaces_encode_nested_params_like_flattened_ones() -> None:
    config = _config({"name": {"values": ["adam", None, 1, True]}, "lr": X01["x"]})
    enc = bayes.SpaceEncoding(config.space)
    cases: list[dict[str, Any]] = [
        {"name": None, "lr": 0.5},
        {"name": 1.0, "lr": 0.25},
        {"name": True, "lr": 0.0},
        {"lr": 0.5},
        {"name": "sgd", "lr": 0.5},
        {"name": "adam", "lr": "0.5"},
    ]
    encoded = [enc.encode_nested(params) for params in cases]
    flattened = [enc.encode(config.space.flatten(params)) for params in cases]
    assert encoded == [None if x is None else x.tolist() for x in flattened]
    assert [x is None for x in encoded] == [False, False, False, True, True, True]

"""controller.core.engine: method dispatch, grid re-serving, early-termination pass-through."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.config import parse_config
from controller.core.engine import next_grid_index, next_suggestion, runs_to_stop
from controller.core.errors import OpensweepError
from controller.core.runs import RunRecord

GRID = {
    "method": "grid",
    "parameters": {"a": {"values": [1, 2]}, "b": {"values": ["x", "y", "z"]}},
}


def _run(run_id: str, params: dict[str, Any], state: str, **metrics: float) -> RunRecord:
    history = [{"_step": 0, **metrics}] if metrics else []
    return RunRecord(run_id, params, state, dict(metrics), history)


def test_grid_serves_points_in_wandb_order() -> None:
    config = parse_config(GRID)
    runs: list[RunRecord] = []
    served = []
    while (point := next_suggestion(config, runs, 0)) is not None:
        params = config.space.nest(point)
        served.append((params["a"], params["b"]))
        runs.append(_run(str(len(runs)), params, "running"))
    assert served == [(1, "x"), (1, "y"), (1, "z"), (2, "x"), (2, "y"), (2, "z")]


def test_grid_reserves_a_failed_point_once_before_new_points() -> None:
    config = parse_config(GRID)
    runs = [_run("0", {"a": 1, "b": "x"}, "finished"), _run("1", {"a": 1, "b": "y"}, "failed")]
    assert config.space.nest(next_suggestion(config, runs, 0) or {}) == {"a": 1, "b": "y"}
    runs.append(_run("2", {"a": 1, "b": "y"}, "crashed"))
    assert config.space.nest(next_suggestion(config, runs, 0) or {}) == {"a": 1, "b": "z"}


def test_grid_does_not_reserve_a_stopped_point() -> None:
    config = parse_config(GRID)
    runs = [_run("0", {"a": 1, "b": "x"}, "stopped")]
    assert config.space.nest(next_suggestion(config, runs, 0) or {}) == {"a": 1, "b": "y"}


def test_grid_fills_gaps_left_by_imported_runs() -> None:
    config = parse_config(GRID)
    runs = [_run("0", {"a": 2, "b": "z"}, "finished"), _run("1", {"a": 9, "b": "x"}, "finished")]
    assert config.space.nest(next_suggestion(config, runs, 0) or {}) == {"a": 1, "b": "x"}


def test_grid_is_exhausted_when_every_point_is_taken_or_held() -> None:
    config = parse_config({"method": "grid", "parameters": {"a": {"values": [1, 2]}}})
    runs = [_run("0", {"a": 1}, "running"), _run("1", {"a": 2}, "finished")]
    assert next_suggestion(config, runs, 0) is None


def test_random_is_a_function_of_the_seed() -> None:
    config = parse_config({"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}})
    assert next_suggestion(config, [], 7) == next_suggestion(config, [], 7)
    assert next_suggestion(config, [], 7) != next_suggestion(config, [], 8)


def test_bayes_dispatch_returns_a_point_of_the_space() -> None:
    config = parse_config(
        {
            "method": "bayes",
            "metric": {"name": "loss"},
            "parameters": {"x": {"min": 0.0, "max": 1.0}},
        }
    )
    point = next_suggestion(config, [], 3)
    assert point is not None and 0.0 <= point[("x",)] <= 1.0


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_a_bad_seed_is_rejected(seed: Any) -> None:
    config = parse_config({"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}})
    with pytest.raises(OpensweepError, match="seed"):
        next_suggestion(config, [], seed)


def test_runs_to_stop_applies_hyperband_to_any_method() -> None:
    config = parse_config(
        {
            "method": "random",
            "metric": {"name": "loss", "goal": "minimize"},
            "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3},
            "parameters": {"x": {"min": 0.0, "max": 1.0}},
        }
    )
    runs = [
        _run("best", {"x": 0.1}, "finished", loss=1.0),
        _run("good", {"x": 0.2}, "running", loss=2.0),
        _run("bad", {"x": 0.3}, "running", loss=5.0),
    ]
    assert runs_to_stop(config, runs) == ["bad"]
    assert runs_to_stop(parse_config({**GRID}), runs) == []


# ------------------------------------------------ library-mode grid == the controller's fold

_ENDINGS = ("finished", "failed", "crashed", "stopped")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.just(("assign", 0, "")), st.tuples(st.just("end"), st.integers(0, 20),
                                                        st.sampled_from(_ENDINGS))),
        max_size=40,
    )
)
def test_grid_answers_match_the_controllers_fold(actions: list[tuple[str, int, str]]) -> None:
    """Library mode derives from the runs what the controller keeps in its fold: the same
    points are servable, and the same one comes next while at most one failed point waits."""
    from controller.core import events as ev
    from controller.core import state as fold
    from controller.core.grid import Grid

    config = parse_config(GRID)
    grid = Grid(config.space)
    state = fold.fold([
        ev.SweepCreated(time=0.0, sweep_id="s", config=config.raw, seed=1, method="grid",
                        name="", grid_size=grid.size, run_cap=None, metric_name="",
                        metric_goal="minimize", metric_target=None, warnings=[]),
        ev.AgentRegistered(time=0.0, sweep_id="s", agent_id="a", hostname="h", pid=1),
    ])
    records: list[RunRecord] = []
    for kind, which, ending in actions:
        sweep = state.sweep("s")
        expected = fold.next_grid_index(sweep)
        got = next_grid_index(grid, records)
        assert (expected is None) == (got is None)
        if len(sweep.grid_retry) <= 1:
            assert got == expected
        if kind == "assign" and expected is not None:
            run_id = f"r{len(records)}"
            params = config.space.nest(grid.point(expected))
            fold.apply(state, ev.RunAssigned(time=0.0, sweep_id="s", run_id=run_id,
                                             run_index=len(records), agent_id="a",
                                             params=params, grid_index=expected,
                                             suggestion_seed=0))
            records.append(_run(run_id, params, "running"))
        elif kind == "end":
            running = [r for r in records if r.state == "running"]
            if not running:
                continue
            run = running[which % len(running)]
            if ending == "crashed":
                fold.apply(state, ev.RunCrashed(time=0.0, sweep_id="s", run_id=run.id,
                                                reason="lost"))
            else:
                fold.apply(state, ev.RunEnded(time=0.0, sweep_id="s", run_id=run.id,
                                              state=ending, exit_code=0, reason=""))
            run.state = ending

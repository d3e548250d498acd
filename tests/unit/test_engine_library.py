"""opensweep.engine (library mode): plain dicts in, nested run configs and run ids out."""

from __future__ import annotations

from typing import Any

import pytest

from controller.core.config import parse_config
from controller.core.errors import ConfigError
from opensweep.engine import EngineInputError, next_run, stop_runs

NESTED = {
    "method": "grid",
    "parameters": {
        "optimizer": {"parameters": {"lr": {"values": [0.1, 0.01]}}},
        "batch.size": {"value": 32},
    },
}

HYPERBAND = {
    "method": "random",
    "metric": {"name": "loss", "goal": "minimize"},
    "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 3},
    "parameters": {"x": {"min": 0.0, "max": 1.0}},
}

DONE = {"id": "a", "config": {}, "state": "finished"}


def _curve(run_id: str, state: str, losses: list[float]) -> dict[str, Any]:
    return {
        "id": run_id,
        "config": {"x": 0.5},
        "state": state,
        "history": [{"loss": v, "_step": 10 * i} for i, v in enumerate(losses)],
    }


def test_next_run_returns_the_config_nested_as_the_sweep_gives_it() -> None:
    assert next_run(NESTED, []) == {"batch.size": 32, "optimizer": {"lr": 0.1}}


def test_runs_may_give_their_config_flat_with_dotted_keys() -> None:
    runs = [{"id": "a", "config": {"optimizer.lr": 0.1, "batch.size": 32}, "state": "finished"}]
    assert next_run(NESTED, runs) == {"batch.size": 32, "optimizer": {"lr": 0.01}}


def test_a_sweep_config_object_and_yaml_text_work_like_a_dict() -> None:
    text = "method: grid\nparameters:\n  a:\n    values: [1, 2]\n"
    runs = [{"id": "a", "config": {"a": 1}, "state": "finished"}]
    assert next_run(text, runs) == {"a": 2}
    parsed = parse_config({"method": "grid", "parameters": {"a": {"values": [1, 2]}}})
    assert next_run(parsed, runs) == {"a": 2}


def test_an_exhausted_grid_gives_none() -> None:
    runs = [
        {"id": "a", "config": {"optimizer": {"lr": 0.1}}, "state": "finished"},
        {"id": "b", "config": {"optimizer": {"lr": 0.01}}, "state": "running"},
    ]
    assert next_run(NESTED, runs) is None


def test_random_without_a_seed_moves_on_as_runs_accumulate() -> None:
    config = {"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}}
    first = next_run(config, [])
    runs = [{"id": "a", "config": first, "state": "finished"}]
    assert next_run(config, runs) != first
    assert next_run(config, runs) == next_run(config, runs, seed=1)


def test_stop_runs_stops_a_running_run_behind_at_its_bracket() -> None:
    runs = [
        _curve("best", "finished", [1.0, 0.5, 0.2]),
        _curve("ok", "running", [1.1, 0.6]),
        _curve("behind", "running", [3.0, 2.0]),
    ]
    assert stop_runs(HYPERBAND, runs) == ["behind"]


def test_stop_runs_without_early_terminate_stops_nothing() -> None:
    config = {k: v for k, v in HYPERBAND.items() if k != "early_terminate"}
    assert stop_runs(config, [_curve("behind", "running", [3.0, 2.0])]) == []


def test_summary_defaults_to_the_last_logged_values() -> None:
    config = {
        "method": "bayes",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": [1, 2, 3]}},
    }
    runs = [_curve(f"r{x}", "finished", [float(x)]) | {"config": {"x": x}} for x in (1, 2)]
    assert next_run(config, runs, seed=0) == {"x": 3}


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("not a run", r"runs\[0\]: must be a mapping"),
        ({"config": {}, "state": "finished"}, r"runs\[0\]\.id: must be a non-empty string"),
        ({"id": "a", "config": {}, "state": "done"}, r"runs\[0\]\.state: must be one of running"),
        ({"id": "a", "config": [1], "state": "finished"}, r"runs\[0\]\.config: must be a mapping"),
        ({**DONE, "history": [1]}, r"runs\[0\]\.history\[0\]: must be a mapping"),
        ({**DONE, "summary": 3}, r"runs\[0\]\.summary: must be a mapping"),
        ({**DONE, "sumary": {}}, r"runs\[0\]: unknown key\(s\) sumary"),
    ],
)
def test_a_malformed_run_is_rejected_with_its_position_and_key(run: Any, message: str) -> None:
    with pytest.raises(EngineInputError, match=message):
        next_run(NESTED, [run])


def test_duplicate_run_ids_are_rejected() -> None:
    runs = [{"id": "a", "config": {}, "state": "finished"}] * 2
    with pytest.raises(EngineInputError, match=r"runs\[1\]\.id: 'a' is also the id of runs\[0\]"):
        stop_runs(HYPERBAND, runs)


def test_runs_must_be_a_list() -> None:
    with pytest.raises(EngineInputError, match="runs: must be a list"):
        next_run(NESTED, {"id": "a"})  # type: ignore[arg-type]


def test_a_bad_seed_is_rejected() -> None:
    with pytest.raises(EngineInputError, match="seed: must be a non-negative int"):
        next_run(NESTED, [], seed=-1)


def test_an_invalid_config_lists_its_problems() -> None:
    with pytest.raises(ConfigError, match=r"parameters\.x\.max"):
        next_run({"method": "random", "parameters": {"x": {"min": 1.0, "max": 0.0}}}, [])


def test_a_config_of_the_wrong_type_is_rejected() -> None:
    with pytest.raises(EngineInputError, match="config must be a dict"):
        next_run(42, [])  # type: ignore[arg-type]

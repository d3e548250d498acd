"""Hyperband early termination: brackets and stop decisions against hand-computed cases."""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.core.hyperband import bracket_thresholds, brackets_up_to, stop_decisions
from controller.core.runs import RunRecord


@dataclass(frozen=True)
class Settings:
    eta: float = 3
    min_iter: int | None = None
    max_iter: int | None = None
    s: int | None = None
    strict: bool = False


def run(run_id: str, state: str, values: list[float], metric: str = "loss") -> RunRecord:
    history = [{metric: v, "_step": i * 10} for i, v in enumerate(values)]
    return RunRecord(id=run_id, params={}, state=state, summary={}, history=history)


def test_brackets_from_min_iter_grow_by_eta_up_to_the_longest_history() -> None:
    assert brackets_up_to(Settings(min_iter=3, eta=3), longest=100) == [3, 9, 27, 81]
    assert brackets_up_to(Settings(min_iter=3, eta=3), longest=26) == [3, 9]
    assert brackets_up_to(Settings(min_iter=1, eta=2), longest=8) == [1, 2, 4, 8]


def test_brackets_from_max_iter_divide_by_eta_s_times() -> None:
    assert brackets_up_to(Settings(max_iter=27, s=2, eta=3), longest=100) == [3, 9]
    # 5 / 2 = 2.5 -> 2, 2.5 / 2 = 1.25 -> 1 (truncated like W&B)
    assert brackets_up_to(Settings(max_iter=5, s=2, eta=2), longest=100) == [1, 2]
    # max_iter 5, eta 3, s 3: 1.67 -> 1, then 0.56 < 1 stops the list
    assert brackets_up_to(Settings(max_iter=5, s=3, eta=3), longest=100) == [1]


def test_threshold_is_the_value_at_index_count_over_eta_of_the_best_first_list() -> None:
    histories = [[10.0, 9.0], [10.0, 10.0], [10.0, 8.0, 8.0], [10.0, 7.0, 7.0], [10.0, 6.0]]
    # bracket 2: [6, 7, 8, 9, 10][int(5 / 2)] = 8; bracket 3: only [8][0]
    assert bracket_thresholds(histories, [1, 2, 3], eta=2) == {1: 10.0, 2: 8.0, 3: 8.0}
    assert bracket_thresholds(histories, [4], eta=2) == {}


def w_and_b_example() -> list[RunRecord]:
    return [
        run("a", "finished", [10, 9]),
        run("b", "running", [10, 10]),
        run("c", "running", [10, 8, 8]),
        run("d", "running", [10, 7, 7]),
        run("e", "finished", [10, 6, 6]),
    ]


def test_running_run_worse_than_the_threshold_is_stopped() -> None:
    decisions = stop_decisions(
        w_and_b_example(), metric="loss", goal="minimize", brackets=[1, 2], eta=2, strict=False
    )
    assert [d.run_id for d in decisions] == ["b"]
    assert (decisions[0].bracket, decisions[0].value, decisions[0].threshold) == (2, 10.0, 8.0)


def test_value_equal_to_the_threshold_survives() -> None:
    decisions = stop_decisions(
        w_and_b_example(), metric="loss", goal="minimize", brackets=[1, 2], eta=2, strict=True
    )
    assert "c" not in [d.run_id for d in decisions]


def test_strict_judges_the_value_at_the_bracket_not_the_best_so_far() -> None:
    runs = [
        run("good1", "finished", [1, 1]),
        run("good2", "finished", [2, 2]),
        run("late", "running", [1.5, 9]),  # best so far 1.5, but 9 at the bracket
    ]
    # bracket 2 population: [1, 2, 9] -> threshold index int(3 / 3) = 1 -> 2
    lenient = stop_decisions(
        runs, metric="loss", goal="minimize", brackets=[2], eta=3, strict=False
    )
    strict = stop_decisions(runs, metric="loss", goal="minimize", brackets=[2], eta=3, strict=True)
    assert lenient == []
    assert [(d.run_id, d.value, d.threshold) for d in strict] == [("late", 9.0, 2.0)]


def test_run_is_judged_at_the_highest_bracket_it_reached() -> None:
    runs = [
        run("r1", "finished", [1, 1, 1, 1]),
        run("r2", "finished", [2, 2, 2, 2]),
        run("r3", "finished", [3, 3, 3, 3]),
        run("slow", "running", [1, 1, 5, 5]),
    ]
    # bracket 1: [1, 1, 2, 3][1] = 1 (slow passes); bracket 3: [1, 2, 3, 5][1] = 2
    decisions = stop_decisions(
        runs, metric="loss", goal="minimize", brackets=[1, 3], eta=3, strict=True
    )
    assert [(d.run_id, d.bracket) for d in decisions] == [("slow", 3)]


def test_maximize_keeps_the_largest_values() -> None:
    runs = [
        run("hi", "finished", [0.9, 0.95], metric="acc"),
        run("mid", "finished", [0.5, 0.6], metric="acc"),
        run("low", "running", [0.1, 0.2], metric="acc"),
        run("top", "running", [0.8, 0.99], metric="acc"),
    ]
    decisions = stop_decisions(
        runs, metric="acc", goal="maximize", brackets=[2], eta=2, strict=False
    )
    # bracket 2 best first: [0.99, 0.95, 0.6, 0.2] -> index 2 -> 0.6; 'low' (best 0.2) is worse
    assert [(d.run_id, d.value, d.threshold) for d in decisions] == [("low", 0.2, 0.6)]


def test_only_running_runs_are_stopped() -> None:
    runs = [
        run("best", "finished", [1, 1]),
        run("best2", "finished", [1, 1]),
        run("best3", "running", [2, 2]),
        run("bad-finished", "finished", [100, 100]),
        run("bad-failed", "failed", [100, 100]),
        run("bad-stopped", "stopped", [100, 100]),
        run("bad-running", "running", [100, 100]),
    ]
    decisions = stop_decisions(
        runs, metric="loss", goal="minimize", brackets=[1, 2], eta=3, strict=False
    )
    assert [d.run_id for d in decisions] == ["bad-running"]


def test_runs_before_the_first_bracket_are_left_alone() -> None:
    runs = [run("a", "finished", [1, 1, 1]), run("b", "running", [50, 60])]
    decisions = stop_decisions(
        runs, metric="loss", goal="minimize", brackets=[3], eta=3, strict=True
    )
    assert decisions == []


def test_iterations_count_logged_finite_values_not_steps() -> None:
    noisy = RunRecord(
        id="n",
        params={},
        state="running",
        history=[
            {"_step": 0, "other": 1.0},
            {"_step": 5, "loss": math.nan},
            {"_step": 7, "loss": 9.0},
            {"_step": 9, "loss": "oops"},
        ],
    )
    runs = [run("a", "finished", [1, 1]), run("b", "finished", [2, 2]), noisy]
    # 'n' has logged one finite value: it reached bracket 1 only.
    decisions = stop_decisions(
        runs, metric="loss", goal="minimize", brackets=[1, 2], eta=3, strict=True
    )
    assert [(d.run_id, d.bracket) for d in decisions] == [("n", 1)]


def test_decisions_are_deterministic_and_follow_input_order() -> None:
    runs = [run(f"r{i}", "running", [float(i), float(i)]) for i in range(9, -1, -1)]
    first = stop_decisions(runs, metric="loss", goal="minimize", brackets=[2], eta=3, strict=False)
    again = stop_decisions(runs, metric="loss", goal="minimize", brackets=[2], eta=3, strict=False)
    assert first == again
    # population 0..9, threshold index int(10 / 3) = 3 -> 3; runs 4..9 stop, in input order
    assert [d.run_id for d in first] == [f"r{i}" for i in range(9, 3, -1)]


def test_the_worked_example_in_docs_hyperband() -> None:
    runs = [
        run("a", "finished", [10, 6, 4, 3]),
        run("b", "running", [12, 9, 8]),
        run("c", "running", [11, 7]),
        run("d", "running", [30]),
    ]
    for strict in (True, False):
        decisions = stop_decisions(
            runs, metric="loss", goal="minimize", brackets=[1, 3, 9], eta=3, strict=strict
        )
        assert [(d.run_id, d.bracket, d.value, d.threshold) for d in decisions] == [
            ("b", 3, 8.0, 4.0),
            ("d", 1, 30.0, 11.0),
        ]


def test_a_parsed_config_defaults_to_strict_like_wandbs_engine() -> None:
    from controller.core.config import parse_config
    from controller.core.hyperband import runs_to_stop

    def config(**settings: object) -> object:
        return parse_config(
            {
                "method": "random",
                "metric": {"name": "loss"},
                "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2, **settings},
                "parameters": {"x": {"values": [1]}},
            }
        )

    # b was good once (1.0 at iteration 1) but is behind at bracket 2: strict stops it.
    runs = [run("a", "finished", [5, 2]), run("b", "running", [1, 9]), run("c", "finished", [5, 3])]
    assert runs_to_stop(config(), runs) == ["b"]  # type: ignore[arg-type]
    assert runs_to_stop(config(strict=False), runs) == []  # type: ignore[arg-type]

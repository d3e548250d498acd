"""Hyperband end to end: a real controller stops a real run through a real agent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import StartController
from tests.integration.test_agent import Harness, _program, _state

# Logs its loss (= x) three times; a "bad" run (x >= 10) logs once and then waits to be stopped.
_TRAIN = """
    import json, os, sys, time
    x = float(next(a for a in sys.argv if a.startswith("--x=")).split("=", 1)[1])
    with open(os.environ["OPENSWEEP_METRICS"], "a") as f:
        for epoch in range(1 if x >= 10 else 3):
            f.write(json.dumps({"loss": x, "epoch": epoch}) + "\\n")
            f.flush()
    if x >= 10:
        time.sleep(120)
"""


@pytest.fixture
def harness(start_controller: StartController, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(start_controller(), tmp_path)
    yield h
    h.cleanup()


def test_hyperband_stops_a_run_that_is_behind_at_its_first_bracket(
    harness: Harness, tmp_path: Path
) -> None:
    program = _program(tmp_path, "train.py", _TRAIN)
    sweep_id = harness.sweep(
        {
            "method": "grid",
            "program": program,
            "metric": {"name": "loss", "goal": "minimize"},
            "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
            "parameters": {"x": {"values": [1, 2, 10]}},
        }
    )
    agent = harness.agent(sweep_id, "--grace-period", "1")
    # The bad run sleeps 120 s unless stopped; the agent finishing well before that is the proof.
    assert agent.wait(timeout=60) == 0, agent.err
    runs = harness.runs(sweep_id)
    assert [_state(r) for r in runs] == ["finished", "finished", "stopped"]
    bad = runs[2]
    # Bracket 1: losses 1, 2, 10 -> threshold sorted([1, 2, 10])[int(3 / 2)] = 2; 10 > 2.
    assert "hyperband" in bad.reason and "iteration 1" in bad.reason, bad.reason
    assert bad.metric_count == 1
    assert "1 stopped" in agent.err

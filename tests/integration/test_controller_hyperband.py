"""Hyperband in the controller: asking the engine only when a run crosses a bracket stops
exactly what asking after every metrics batch would (in-process controller, real event log)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core import hyperband
from controller.core.state import RUN_RUNNING
from controller.service.controller import Assignment, Controller

CONFIGS = [
    "method: random\nmetric: {name: loss, goal: minimize}\n"
    "parameters:\n  x: {min: 0.0, max: 1.0}\n"
    f"early_terminate: {{type: hyperband, {terms}}}\n"
    for terms in ("min_iter: 1, eta: 2", "min_iter: 2, eta: 3, strict: false",
                  "max_iter: 9, s: 2, eta: 3", "min_iter: 1, eta: 3, strict: true")
]

steps_strategy = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 5),
              st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=0,
                       max_size=3)),
    min_size=1, max_size=60)


async def play(config: str, steps: list[tuple[int, int, list[float]]], db: Path) -> int:
    ctl = await Controller.open(str(db))
    stops_seen = 0
    try:
        sweep = await ctl.create_sweep(config, seed=3)
        agent_id = await ctl.register_agent(sweep.id, "h", 1)
        runs: list[str] = []
        seqs: dict[str, int] = {}
        for which, action, values in steps:
            if action <= 1 or not runs:
                decision, durable = await ctl.request_run(agent_id)
                await durable
                assert isinstance(decision, Assignment)
                runs.append(decision.run_id)
                continue
            run_id = runs[which % len(runs)]
            if action == 5:
                await ctl.run_ended(run_id, "finished", 0, "")
                continue
            start = seqs.get(run_id, 0)
            records = [{"seq": start + i, "step": start + i, "values": {"loss": v}, "time": 0.0}
                       for i, v in enumerate(values)]
            seqs[run_id] = start + len(records)
            _, durable = ctl.log_metrics(run_id, records)
            await durable
            # Whatever the engine would stop now has already been told to stop.
            parsed = ctl.sweep_runtime(sweep.id).config
            for run_id_to_stop in hyperband.runs_to_stop(parsed, ctl.run_records(sweep)):
                run = ctl.state.runs[run_id_to_stop]
                assert run.state == RUN_RUNNING and run.stop_reason is not None, run_id_to_stop
                stops_seen += 1
    finally:
        await ctl.close()
    return stops_seen


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(CONFIGS), steps_strategy)
def test_stops_decided_at_bracket_crossings_match_asking_after_every_batch(
        config: str, steps: list[tuple[int, int, list[float]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(play(config, steps, Path(tmp) / "log.db"))

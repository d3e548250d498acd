"""The records the controller hands the engine in a thread (``run_records(copy=True)``) are
kept per run and made again only when the run changes: they must always say what fresh
records say, and an unchanged run must keep its record (in-process controller, real log)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core.runs import RunRecord, SharedRunRecord
from controller.service.controller import Assignment, Controller

CONFIG = ("method: random\nmetric: {name: loss, goal: minimize}\n"
          "parameters:\n  x: {min: 0.0, max: 1.0}\n"
          "early_terminate: {type: hyperband, min_iter: 1, eta: 2}\n")

actions = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 9),
              st.lists(st.one_of(st.floats(-1, 1), st.just(float("nan"))), max_size=3)),
    min_size=1, max_size=40)


def _view(record: RunRecord) -> dict[str, Any]:
    return {"id": record.id, "params": record.params, "state": record.state,
            "summary": dict(record.summary), "best": dict(record.best),
            "values": {k: list(v) for k, v in record.metric_values.items()}}


async def play(steps: list[tuple[int, int, list[float]]], db: Path) -> None:
    ctl = await Controller.open(str(db))
    try:
        sweep = await ctl.create_sweep(CONFIG, seed=1)
        agent_id = await ctl.register_agent(sweep.id, "h", 1)
        seqs: dict[str, int] = {}
        before: dict[str, RunRecord] = {}
        for action, which, values in steps:
            runs = list(sweep.run_ids)
            running = [r for r in runs if ctl.state.runs[r].state == "running"]
            changed: set[str] = set()
            if action == 0 or not running:
                decision, durable = await ctl.request_run(agent_id)
                await durable
                if isinstance(decision, Assignment):
                    changed.add(decision.run_id)
            elif action == 1:
                run_id = running[which % len(running)]
                await ctl.run_ended(run_id, ("finished", "failed", "stopped")[which % 3], 0, "")
                changed.add(run_id)
            else:
                run_id = running[which % len(running)]
                start = seqs.get(run_id, 0)
                # Now and then a record sent again: folded as a re-send, nothing changes.
                start -= 1 if action == 3 and start else 0
                records = [{"seq": start + i, "step": start + i, "values": {"loss": v},
                            "time": 0.0} for i, v in enumerate(values)]
                seqs[run_id] = max(seqs.get(run_id, 0), start + len(records))
                _, durable = ctl.log_metrics(run_id, records)
                await durable
                changed.add(run_id)
            kept = ctl.run_records(sweep, copy=True)
            assert [_view(r) for r in kept] == [_view(r) for r in ctl.run_records(sweep)]
            assert all(type(r) is SharedRunRecord for r in kept)
            for record in kept:
                if record.id in before and record.id not in changed:
                    assert record is before[record.id]
            before = {r.id: r for r in kept}
    finally:
        await ctl.close()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions)
def test_kept_records_say_what_fresh_ones_say_and_survive_while_their_run_is_unchanged(
        steps: list[tuple[int, int, list[float]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(play(steps, Path(tmp) / "log.db"))

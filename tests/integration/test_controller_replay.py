"""Replay property against the live controller: for every view the controller reported (each
carries ``log_seq``), folding the log's first ``log_seq`` events gives exactly that view.

Hypothesis drives random scenarios (agents asking for runs, logging metrics, finishing,
failing, vanishing on reconnect, users pausing, resuming, cancelling) through real gRPC; the
log is then read back with ReadEvents and folded with the pure core."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from controller.client import aio_channel, sweep_stub
from controller.core import events as ev
from controller.core.state import State, apply
from controller.service.convert import run_view, sweep_view
from opensweep.v1 import sweeps_pb2
from tests.integration.conftest import (
    ControllerProcess,
    SimAgent,
    create_sweep,
    get_sweep,
    list_runs,
    read_events,
)

CONFIGS = (
    "method: grid\nmetric: {name: loss, goal: minimize}\n"
    "parameters:\n  a: {values: [1, 2, 3]}\n  b: {values: [x, y]}\n",
    "method: random\nmetric: {name: acc, goal: maximize, target: 0.95}\nrun_cap: 6\n"
    "parameters:\n  lr: {min: 0.0, max: 1.0}\n"
    "early_terminate: {type: hyperband, min_iter: 1, eta: 2}\n",
)

actions = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 2), st.integers(0, 99)),
                   min_size=1, max_size=25)


async def scenario(address: str, config: str, steps: list[tuple[int, int, int]]
                   ) -> tuple[str, list[Any]]:
    """Play ``steps``; returns the sweep id and every view the controller reported."""
    sweep_id = await create_sweep(address, config, seed=7)
    agents = [SimAgent(address, sweep_id) for _ in range(3)]
    held: dict[int, list[str]] = {i: [] for i in range(3)}
    metric_seq: dict[str, int] = {}
    views: list[Any] = []
    channel = aio_channel(address)
    stub = sweep_stub(channel)
    try:
        for agent in agents:
            await agent.register()
            await agent.connect()
        for kind, who, value in steps:
            agent, mine = agents[who], held[who]
            if kind <= 2:
                reply = await agent.request()
                if reply.WhichOneof("kind") == "run":
                    mine.append(reply.run.run_id)
            elif kind <= 4 and mine:
                run_id = mine[value % len(mine)]
                seq = metric_seq.get(run_id, 0)
                metric_seq[run_id] = seq + 1
                await agent.metrics(run_id, [(seq, seq, {"loss": value / 100,
                                                         "acc": value / 100})])
            elif kind <= 6 and mine:
                run_id = mine.pop(value % len(mine))
                state = "finished" if kind == 5 else ("failed", "stopped")[value % 2]
                await agent.end(run_id, state, 0 if state == "finished" else 1, state)
            elif kind == 7 and mine:
                # The agent comes back without its first run: the controller crashes it.
                lost = mine.pop(0)
                await agent.disconnect()
                await agent.connect(running=mine)
                assert lost not in mine
            elif kind == 8:
                name = ("Pause", "Resume", "Cancel")[value % 3]
                try:
                    await getattr(stub, f"{name}Sweep")(
                        sweeps_pb2.SweepCommandRequest(sweep_id=sweep_id))
                except Exception as exc:  # FAILED_PRECONDITION from a final state
                    assert "cannot" in str(exc) or "already" in str(exc)
            views.append(await stub.GetSweep(sweeps_pb2.GetSweepRequest(sweep_id=sweep_id)))
            views.append(await stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id)))
    finally:
        for agent in agents:
            await agent.close()
        await channel.close()
    return sweep_id, views


def check_views(sweep_id: str, views: list[Any], log: list[sweeps_pb2.Event]) -> None:
    events = [ev.decode(e.type, e.version, e.time, json.loads(e.data_json)) for e in log]
    state = State()
    wanted = sorted(views, key=lambda v: v.log_seq)
    position = 0
    for view in wanted:
        while state.seq < view.log_seq:
            apply(state, events[position])
            position += 1
        if isinstance(view, sweeps_pb2.Sweep):
            assert sweep_view(state.sweep(sweep_id), state.seq) == view
        else:
            runs = [run_view(state.runs[r], state.seq) for r in state.sweep(sweep_id).run_ids]
            assert runs == list(view.runs)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(CONFIGS), actions)
@example(CONFIGS[0], [(0, 0, 0), (0, 0, 0), (8, 0, 20), (7, 0, 0)])
def test_folding_the_log_up_to_log_seq_reproduces_every_reported_view(
        shared_controller: ControllerProcess, config: str,
        steps: list[tuple[int, int, int]]) -> None:
    address = shared_controller.address

    async def main() -> None:
        sweep_id, views = await scenario(address, config, steps)
        log = await read_events(address)
        assert [e.seq for e in log] == list(range(1, len(log) + 1))
        check_views(sweep_id, views, log)
        counts = (await get_sweep(address, sweep_id)).run_counts
        assert len(await list_runs(address, sweep_id)) == sum(
            getattr(counts, k) for k in ("running", "finished", "failed", "crashed", "stopped"))

    asyncio.run(main())

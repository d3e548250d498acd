"""Grid sweeps under concurrency: every point exactly once, even across a SIGKILL."""

from __future__ import annotations

import asyncio
import json

from opensweep.v1 import sweeps_pb2
from tests.integration.conftest import (
    ControllerProcess,
    SimAgent,
    StartController,
    create_sweep,
    get_sweep,
    list_runs,
)

A_VALUES = ", ".join(str(i) for i in range(20))
B_VALUES = ", ".join(str(i) for i in range(25))
GRID_500 = f"""
method: grid
metric: {{name: loss, goal: minimize}}
parameters:
  a: {{values: [{A_VALUES}]}}
  b: {{values: [{B_VALUES}]}}
"""


async def drain(agent: SimAgent, handed_out: list[tuple[str, str]]) -> None:
    """Ask for runs and finish each at once until the sweep is done."""
    while True:
        reply = await agent.request()
        if reply.WhichOneof("kind") == "no_run":
            if reply.no_run.reason == 2:  # NO_RUN_REASON_SWEEP_DONE
                return
            await asyncio.sleep(reply.no_run.retry_after_seconds)
            continue
        run = reply.run
        handed_out.append((run.run_id, run.config_json))
        await agent.metrics(run.run_id, [(0, 0, {"loss": float(len(handed_out))})])
        await agent.end(run.run_id)


async def test_32_agents_drain_a_500_point_grid_every_point_exactly_once(
        controller: ControllerProcess) -> None:
    sweep_id = await create_sweep(controller.address, GRID_500)
    agents = [SimAgent(controller.address, sweep_id) for _ in range(32)]
    handed_out: list[tuple[str, str]] = []
    try:
        for agent in agents:
            await agent.register()
            await agent.connect()
        await asyncio.gather(*(drain(agent, handed_out) for agent in agents))
    finally:
        for agent in agents:
            await agent.close()
    points = [json.loads(config) for _, config in handed_out]
    assert len(handed_out) == 500
    assert len({(p["a"], p["b"]) for p in points}) == 500
    runs = await list_runs(controller.address, sweep_id)
    assert len(runs) == 500
    assert sorted(r.grid_index for r in runs) == list(range(500))
    assert all(r.state == sweeps_pb2.RUN_STATE_FINISHED for r in runs)
    sweep = await get_sweep(controller.address, sweep_id)
    assert sweep.state == sweeps_pb2.SWEEP_STATE_FINISHED, sweep
    assert sweep.run_counts.finished == 500
    assert "grid exhausted" in sweep.state_reason


class ResilientDrainer:
    """Drains a sweep like ``drain`` but survives the controller's death: it reconnects with
    the same agent id, lists the run it holds and re-sends that run's metrics and end."""

    def __init__(self, agent: SimAgent) -> None:
        self.agent = agent
        self.handed_out: list[tuple[str, str]] = []
        self.acked_ends: list[str] = []
        self.current: str | None = None
        self.reconnects = 0

    async def _reconnect(self) -> None:
        while True:
            try:
                await self.agent.disconnect()
                await self.agent.connect(running=[self.current] if self.current else [])
                self.reconnects += 1
                return
            except Exception:
                await asyncio.sleep(0.1)

    async def _finish_current(self) -> None:
        assert self.current is not None
        await self.agent.metrics(self.current, [(0, 0, {"loss": 1.0})])
        await self.agent.end(self.current)
        self.acked_ends.append(self.current)
        self.current = None

    async def run(self, before_each: asyncio.Event) -> None:
        while True:
            await before_each.wait()
            try:
                if self.current is not None:
                    await self._finish_current()
                reply = await self.agent.request(timeout=10)
                if reply.WhichOneof("kind") == "no_run":
                    if reply.no_run.reason == 2:
                        return
                    await asyncio.sleep(reply.no_run.retry_after_seconds)
                    continue
                self.current = reply.run.run_id
                self.handed_out.append((reply.run.run_id, reply.run.config_json))
            except Exception:
                await self._reconnect()


async def test_sigkill_mid_drain_then_restart_loses_nothing_and_serves_no_point_twice(
        start_controller: StartController) -> None:
    ctl = start_controller()
    sweep_id = await create_sweep(ctl.address, GRID_500)
    agents = [SimAgent(ctl.address, sweep_id) for _ in range(32)]
    drainers = [ResilientDrainer(a) for a in agents]
    go = asyncio.Event()
    go.set()
    try:
        for agent in agents:
            await agent.register()
            await agent.connect()
        tasks = [asyncio.ensure_future(d.run(go)) for d in drainers]
        while sum(len(d.handed_out) for d in drainers) < 200:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(ctl.kill)
        go.clear()  # nothing may be acknowledged while we take stock of the dead controller
        await asyncio.sleep(0.05)
        acked_before = {run_id for d in drainers for run_id in d.acked_ends}
        received_before = {run_id for d in drainers for run_id, _ in d.handed_out}
        await asyncio.to_thread(ctl.restart)
        go.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    finally:
        for agent in agents:
            await agent.close()
    assert acked_before and received_before, "the kill came before any work was done"
    points = [json.loads(config) for d in drainers for _, config in d.handed_out]
    keys = [(p["a"], p["b"]) for p in points]
    assert len(keys) == len(set(keys)) == 500, "a point was handed to agents twice, or missed"
    runs = {r.id: r for r in await list_runs(ctl.address, sweep_id)}
    assert received_before <= set(runs), "an assignment an agent received was lost"
    for run_id in acked_before:
        assert runs[run_id].state == sweeps_pb2.RUN_STATE_FINISHED, runs[run_id]
    finished = [r.grid_index for r in runs.values() if r.state == sweeps_pb2.RUN_STATE_FINISHED]
    assert sorted(finished) == list(range(500))
    # Only assignments that never reached an agent may have crashed (and been re-served).
    crashed = [r for r in runs.values() if r.state != sweeps_pb2.RUN_STATE_FINISHED]
    assert all(r.state == sweeps_pb2.RUN_STATE_CRASHED for r in crashed), crashed
    assert not {r.id for r in crashed} & received_before
    sweep = await get_sweep(ctl.address, sweep_id)
    assert sweep.state == sweeps_pb2.SWEEP_STATE_FINISHED
    assert ctl.starts == 2

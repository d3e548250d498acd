"""The controller's behaviour over real gRPC: sweep life, random seeds, hyperband, metrics,
the audit log, bad input. One controller process serves the whole module (each test makes its
own sweeps)."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from controller.core.config import load_config
from controller.core.random_search import sample_random
from opensweep.v1 import agents_pb2, sweeps_pb2
from tests.integration.conftest import (
    ControllerProcess,
    SimAgent,
    create_sweep,
    get_sweep,
    list_runs,
    poll,
    read_events,
    sweep_call,
)

RANDOM = """
method: random
metric: {name: loss, goal: minimize}
parameters:
  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
  layers: {values: [1, 2, 3]}
  opt:
    parameters:
      momentum: {min: 0.0, max: 1.0}
"""
HYPERBAND = RANDOM + "early_terminate: {type: hyperband, min_iter: 2, eta: 3}\n"
GRID_4 = "method: grid\nparameters:\n  a: {values: [1, 2]}\n  b: {values: [x, y]}\n"
WAIT, DONE = agents_pb2.NO_RUN_REASON_WAIT, agents_pb2.NO_RUN_REASON_SWEEP_DONE


async def agent_for(address: str, sweep_id: str) -> SimAgent:
    agent = SimAgent(address, sweep_id)
    await agent.register()
    await agent.connect()
    return agent


async def command(address: str, name: str, sweep_id: str) -> sweeps_pb2.Sweep:
    return await sweep_call(address, f"{name}Sweep",
                            sweeps_pb2.SweepCommandRequest(sweep_id=sweep_id))


async def expect_status(code: grpc.StatusCode, call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == code, info.value.details()
    return info.value.details() or ""


# ---------------------------------------------------------------------------- random + seeds


async def test_random_suggestions_follow_the_recorded_seed(
        shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    configs = []
    for _ in range(2):
        sweep_id = await create_sweep(address, RANDOM, seed=1234)
        agent = await agent_for(address, sweep_id)
        try:
            for _ in range(4):
                reply = await agent.request()
                configs.append(json.loads(reply.run.config_json))
        finally:
            await agent.close()
        runs = await list_runs(address, sweep_id)
        space = load_config(RANDOM).space
        for run in runs:
            expected = space.nest(sample_random(space, run.suggestion_seed))
            assert json.loads(run.config_json) == expected
        assert (await get_sweep(address, sweep_id)).seed == 1234
    assert configs[:4] == configs[4:], "the same seed must give the same suggestions"
    assert len({json.dumps(c, sort_keys=True) for c in configs[:4]}) == 4
    assert set(configs[0]) == {"lr", "layers", "opt"} and set(configs[0]["opt"]) == {"momentum"}


async def test_run_cap_ends_handing_out_and_finishes_when_runs_end(
        shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    sweep_id = await create_sweep(address, RANDOM + "run_cap: 2\n")
    agent = await agent_for(address, sweep_id)
    try:
        first = (await agent.request()).run.run_id
        second = (await agent.request()).run.run_id
        reply = await agent.request()
        assert reply.no_run.reason == DONE and "run_cap" in reply.no_run.detail
        assert (await get_sweep(address, sweep_id)).state == sweeps_pb2.SWEEP_STATE_RUNNING
        await agent.end(first)
        await agent.end(second, "failed", 1, "exit status 1")
    finally:
        await agent.close()
    sweep = await get_sweep(address, sweep_id)
    assert sweep.state == sweeps_pb2.SWEEP_STATE_FINISHED
    assert sweep.state_reason == "run_cap reached (2 runs)"
    assert sweep.expected_run_count == 2
    assert (sweep.run_counts.finished, sweep.run_counts.failed) == (1, 1)


# ---------------------------------------------------------------------------- grid retries


async def test_a_failed_grid_point_is_served_again_once(
        shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    sweep_id = await create_sweep(address, GRID_4)
    agent = await agent_for(address, sweep_id)
    seen: list[str] = []
    try:
        while True:
            reply = await agent.request()
            if reply.WhichOneof("kind") == "no_run":
                assert reply.no_run.reason == DONE
                break
            seen.append(reply.run.config_json)
            failing = json.loads(reply.run.config_json) == {"a": 1, "b": "y"}
            await agent.end(reply.run.run_id, "failed" if failing else "finished",
                            1 if failing else 0, "x")
    finally:
        await agent.close()
    assert len(seen) == 5 and len(set(seen)) == 4
    assert seen.count(json.dumps({"a": 1, "b": "y"}, separators=(",", ":"))) == 2
    assert (await get_sweep(address, sweep_id)).state == sweeps_pb2.SWEEP_STATE_FINISHED


# ---------------------------------------------------------------------------- sweep commands


async def test_pause_resume_stop(shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    sweep_id = await create_sweep(address, RANDOM)
    agent = await agent_for(address, sweep_id)
    try:
        running = (await agent.request()).run.run_id
        assert (await command(address, "Pause", sweep_id)).state == sweeps_pb2.SWEEP_STATE_PAUSED
        reply = await agent.request()
        assert reply.no_run.reason == WAIT and "paused" in reply.no_run.detail
        assert (await command(address, "Resume", sweep_id)).state == \
            sweeps_pb2.SWEEP_STATE_RUNNING
        assert (await agent.request()).WhichOneof("kind") == "run"
        stopped = await command(address, "Stop", sweep_id)
        assert stopped.state == sweeps_pb2.SWEEP_STATE_STOPPED
        reply = await agent.request()
        assert reply.no_run.reason == DONE and "stopped" in reply.no_run.detail
        await agent.end(running)  # a stopped sweep lets its runs finish
        run = await sweep_call(address, "GetRun", sweeps_pb2.GetRunRequest(run_id=running))
        assert run.state == sweeps_pb2.RUN_STATE_FINISHED and not agent.stops
        details = await expect_status(grpc.StatusCode.FAILED_PRECONDITION,
                                      command(address, "Resume", sweep_id))
        assert "it is stopped" in details
    finally:
        await agent.close()


async def test_cancel_pushes_stop_to_the_agents_of_running_runs(
        shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    sweep_id = await create_sweep(address, RANDOM)
    agents = [await agent_for(address, sweep_id) for _ in range(2)]
    try:
        runs = [(await a.request()).run.run_id for a in agents]
        cancelled = await command(address, "Cancel", sweep_id)
        assert cancelled.state == sweeps_pb2.SWEEP_STATE_CANCELLED
        for agent, run_id in zip(agents, runs, strict=True):
            async def got_stop(agent: SimAgent = agent) -> bool:
                return bool(agent.stops)
            await poll(got_stop, what="StopRun")
            assert [s.run_id for s in agent.stops] == [run_id]
            await agent.end(run_id, "stopped", None, "stopped: sweep cancelled")
        states = {r.state for r in await list_runs(address, sweep_id)}
        assert states == {sweeps_pb2.RUN_STATE_STOPPED}
        await expect_status(grpc.StatusCode.FAILED_PRECONDITION,
                            command(address, "Cancel", sweep_id))
    finally:
        for agent in agents:
            await agent.close()


# ---------------------------------------------------------------------------- metrics


async def test_metrics_are_stored_once_and_summarised(shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    sweep_id = await create_sweep(address, RANDOM)
    agent = await agent_for(address, sweep_id)
    try:
        run_id = (await agent.request()).run.run_id
        ack = await agent.metrics(run_id, [(0, 0, {"loss": 0.9}), (1, 10, {"loss": 0.3})])
        assert ack.metrics_through_seq == 2
        # A re-send after a reconnect overlaps what is stored: nothing is doubled.
        await agent.metrics(run_id, [(1, 10, {"loss": 0.3}), (2, 20, {"loss": 0.5, "acc": 1})])
        await agent.end(run_id)
    finally:
        await agent.close()
    run = await sweep_call(address, "GetRun", sweeps_pb2.GetRunRequest(run_id=run_id))
    assert run.metric_count == 3
    assert dict(run.summary) == {"loss": 0.5, "acc": 1.0}
    assert run.best_metric == 0.3
    metrics = await sweep_call(address, "GetRunMetrics",
                               sweeps_pb2.GetRunMetricsRequest(run_id=run_id, from_seq=1))
    assert [(r.seq, r.step) for r in metrics.records] == [(1, 10), (2, 20)]
    sweep = await get_sweep(address, sweep_id)
    assert sweep.best_run_id == run_id and sweep.best_metric == 0.3


async def test_metric_target_finishes_the_sweep(shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    config = RANDOM.replace("goal: minimize}", "goal: minimize, target: 0.2}")
    sweep_id = await create_sweep(address, config)
    agent = await agent_for(address, sweep_id)
    try:
        run_id = (await agent.request()).run.run_id
        await agent.metrics(run_id, [(0, 0, {"loss": 0.15})])
        sweep = await get_sweep(address, sweep_id)
        assert sweep.state == sweeps_pb2.SWEEP_STATE_FINISHED
        assert "metric target reached" in sweep.state_reason
        assert (await agent.request()).no_run.reason == DONE
    finally:
        await agent.close()


async def test_hyperband_stop_is_pushed_as_metrics_arrive(
        shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    sweep_id = await create_sweep(address, HYPERBAND)
    good, bad = await agent_for(address, sweep_id), await agent_for(address, sweep_id)
    try:
        good_run = (await good.request()).run.run_id
        bad_run = (await bad.request()).run.run_id
        await good.metrics(good_run, [(0, 0, {"loss": 0.2}), (1, 1, {"loss": 0.1})])
        await bad.metrics(bad_run, [(0, 0, {"loss": 0.9})])
        # A stop is queued before the ack of the batch that caused it: none yet, since the
        # bad run has not reached the first bracket (2 iterations).
        assert not bad.stops
        await bad.metrics(bad_run, [(1, 1, {"loss": 0.8})])

        async def stopped() -> bool:
            return bool(bad.stops)

        await poll(stopped, what="hyperband StopRun")
        assert bad.stops[0].run_id == bad_run and "hyperband" in bad.stops[0].reason
        assert not good.stops
        await bad.end(bad_run, "stopped", None, "stopped: " + bad.stops[0].reason)
    finally:
        await good.close()
        await bad.close()
    run = await sweep_call(address, "GetRun", sweeps_pb2.GetRunRequest(run_id=bad_run))
    assert run.state == sweeps_pb2.RUN_STATE_STOPPED and "hyperband" in run.stop_reason
    types = [e.type for e in await read_events(address, sweep_id)]
    assert types.count("RunStopRequested") == 1


# ---------------------------------------------------------------------------- audit log


async def test_events_are_read_in_order_per_sweep_and_followed_live(
        shared_controller: ControllerProcess) -> None:
    from controller.client import aio_channel, sweep_stub

    address = shared_controller.address
    sweep_id = await create_sweep(address, GRID_4)
    events = await read_events(address, sweep_id)
    assert [e.type for e in events] == ["SweepCreated"]
    created = json.loads(events[0].data_json)
    assert created["method"] == "grid" and created["grid_size"] == 4
    everything = await read_events(address)
    seqs = [e.seq for e in everything]
    assert seqs == list(range(1, len(seqs) + 1)), "the log has gaps or is out of order"

    channel = aio_channel(address)
    call = sweep_stub(channel).ReadEvents(sweeps_pb2.ReadEventsRequest(
        sweep_id=sweep_id, after_seq=events[0].seq, follow=True))
    try:
        await command(address, "Pause", sweep_id)
        followed = await asyncio.wait_for(call.read(), 10)
        assert followed.type == "SweepPaused" and followed.sweep_id == sweep_id
    finally:
        call.cancel()
        await channel.close()


# ---------------------------------------------------------------------------- bad input


async def test_invalid_configs_get_every_problem_from_the_core(
        shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    bad = ("method: grdi\nparameters:\n  lr: {min: 0.1, max: 0.01}\n"
           "  x: {distribution: unifrom, min: 0, max: 1}\n")
    details = await expect_status(grpc.StatusCode.INVALID_ARGUMENT, create_sweep(address, bad))
    assert 'method: ' in details and 'did you mean "grid"' in details
    assert "parameters.lr.max: must be greater than min" in details
    assert "parameters.x.distribution" in details
    details = await expect_status(grpc.StatusCode.INVALID_ARGUMENT,
                                  create_sweep(address, "method: [grid"))
    assert "invalid YAML" in details
    details = await expect_status(grpc.StatusCode.INVALID_ARGUMENT, create_sweep(address, ""))
    assert "config is empty" in details
    details = await expect_status(grpc.StatusCode.INVALID_ARGUMENT,
                                  create_sweep(address, "# " + "x" * 300_000))
    assert "the limit is" in details


async def test_malformed_requests_get_clear_errors(shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    details = await expect_status(grpc.StatusCode.INVALID_ARGUMENT,
                                  sweep_call(address, "GetSweep", sweeps_pb2.GetSweepRequest()))
    assert details == "sweep_id is required"
    details = await expect_status(grpc.StatusCode.NOT_FOUND, get_sweep(address, "nosuchid"))
    assert "no sweep 'nosuchid'" in details
    await expect_status(grpc.StatusCode.NOT_FOUND, SimAgent(address, "nosuchid").register())
    details = await expect_status(grpc.StatusCode.INVALID_ARGUMENT,
                                  read_events(address, after_seq=-1))
    assert "after_seq must be >= 0" in details

    from controller.client import agent_stub, aio_channel

    channel = aio_channel(address)
    try:
        call = agent_stub(channel).Connect()
        await call.write(agents_pb2.AgentMessage(request_run=agents_pb2.RequestRun()))
        details = await expect_status(grpc.StatusCode.INVALID_ARGUMENT, call.read())
        assert "first message on Connect must be Hello" in details
        call = agent_stub(channel).Connect()
        await call.write(agents_pb2.AgentMessage(hello=agents_pb2.Hello(agent_id="agent-9999")))
        details = await expect_status(grpc.StatusCode.NOT_FOUND, call.read())
        assert "agent-9999" in details
    finally:
        await channel.close()

    sweep_id = await create_sweep(address, RANDOM)
    agent = await agent_for(address, sweep_id)
    try:
        run_id = (await agent.request()).run.run_id
        await agent.send(run_ended=agents_pb2.RunEnded(run_id=run_id,
                                                       state=sweeps_pb2.RUN_STATE_RUNNING))
        failure = await asyncio.wait_for(agent.replies.get(), 10)
        assert isinstance(failure, grpc.aio.AioRpcError), failure
        assert failure.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "RunEnded.state must be FINISHED, FAILED or STOPPED" in (failure.details() or "")
    finally:
        await agent.close()


async def test_bayes_suggestions_are_served_concurrently_and_recorded(
        shared_controller: ControllerProcess) -> None:
    address = shared_controller.address
    config = RANDOM.replace("method: random", "method: bayes")
    sweep_id = await create_sweep(address, config, seed=5)
    agents = [await agent_for(address, sweep_id) for _ in range(3)]
    try:
        replies = await asyncio.gather(*(a.request() for a in agents))
        assert all(r.WhichOneof("kind") == "run" for r in replies)
        for value, (agent, reply) in enumerate(zip(agents, replies, strict=True)):
            await agent.metrics(reply.run.run_id, [(0, 0, {"loss": value / 10})])
            await agent.end(reply.run.run_id)
        more = await asyncio.gather(*(a.request() for a in agents))
        assert all(r.WhichOneof("kind") == "run" for r in more)
    finally:
        for agent in agents:
            await agent.close()
    runs = await list_runs(address, sweep_id)
    configs = {r.config_json for r in runs}
    assert len(runs) == 6 and len(configs) == 6, "bayes piled runs onto one point"
    assert len({r.suggestion_seed for r in runs}) == 6


async def test_a_message_over_the_size_limit_is_refused(
        shared_controller: ControllerProcess) -> None:
    huge = "# " + "x" * (17 * 1024 * 1024)
    details = await expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  create_sweep(shared_controller.address, huge))
    assert "larger than max" in details

"""The controller as a process: heartbeats, token, TLS, health/reflection, shutdown, restart."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from controller.client import aio_channel, sweep_stub
from opensweep.v1 import agents_pb2, sweeps_pb2
from tests.integration.conftest import (
    SimAgent,
    StartController,
    create_sweep,
    get_sweep,
    list_runs,
    poll,
    read_events,
    sweep_call,
)

GRID_2 = "method: grid\nparameters:\n  a: {values: [1, 2]}\n"


async def test_a_silent_agent_is_lost_its_run_crashed_and_its_grid_point_served_again(
        start_controller: StartController) -> None:
    ctl = start_controller(heartbeat_interval=0.2)  # timeout 3 x 0.2 s
    sweep_id = await create_sweep(ctl.address, GRID_2)
    silent = SimAgent(ctl.address, sweep_id)
    await silent.register()
    assert silent.heartbeat_interval == 0.2
    await silent.connect()
    first = (await silent.request()).run
    # The agent now says nothing at all (a frozen host).

    async def crashed() -> bool:
        runs = await list_runs(ctl.address, sweep_id)
        return runs[0].state == sweeps_pb2.RUN_STATE_CRASHED

    await poll(crashed, what="the silent agent's run to crash")
    events = [(e.type, e.data_json) for e in await read_events(ctl.address, sweep_id)]
    assert [t for t, _ in events if t in ("AgentLost", "RunCrashed")] == \
        ["AgentLost", "RunCrashed"]
    assert silent.agent_id in next(d for t, d in events if t == "AgentLost")

    # The lost agent's stream was closed; when it comes back it must register again.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await silent.connect()
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    await silent.close()

    other = SimAgent(ctl.address, sweep_id)
    await other.register()
    await other.connect()
    other.start_heartbeats()  # this one stays alive however slow the machine is
    try:
        again = (await other.request()).run
        assert again.config_json == first.config_json, "the crashed point must be re-served"
        await other.end(again.run_id)
        rest = (await other.request()).run
        assert rest.config_json != first.config_json
        await other.end(rest.run_id)
        assert (await other.request()).no_run.reason == agents_pb2.NO_RUN_REASON_SWEEP_DONE
    finally:
        await other.close()
    assert (await get_sweep(ctl.address, sweep_id)).state == sweeps_pb2.SWEEP_STATE_FINISHED


async def test_a_token_is_required_on_every_call_but_health(
        start_controller: StartController) -> None:
    ctl = start_controller(token="s3cret")
    request = sweeps_pb2.CreateSweepRequest(config=GRID_2)
    for token in (None, "wrong"):
        channel = aio_channel(ctl.address, token=token)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await sweep_stub(channel).CreateSweep(request, timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "token" in (info.value.details() or "")
            stream = sweep_stub(channel).ReadEvents(sweeps_pb2.ReadEventsRequest())
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stream.read()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        finally:
            await channel.close()
    sweep_id = await create_sweep(ctl.address, GRID_2, token="s3cret")
    agent = SimAgent(ctl.address, sweep_id, token="s3cret")
    try:
        await agent.register()
        await agent.connect()
        assert (await agent.request()).WhichOneof("kind") == "run"
    finally:
        await agent.close()
    unauthorised = SimAgent(ctl.address, sweep_id)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await unauthorised.register()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await unauthorised.close()


async def test_health_and_reflection_describe_the_services_token_from_env(
        start_controller: StartController) -> None:
    ctl = start_controller(env={"OPENSWEEP_TOKEN": "from-env"})
    refused = aio_channel(ctl.address)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await sweep_stub(refused).ListSweeps(sweeps_pb2.ListSweepsRequest(), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await refused.close()
    channel = aio_channel(ctl.address, token="from-env")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("opensweep.v1.SweepService", "opensweep.v1.AgentService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        reply = await call.read()
        names = {s.name for s in reply.list_services_response.service}
        assert {"opensweep.v1.SweepService", "opensweep.v1.AgentService",
                "grpc.health.v1.Health"} <= names
        await call.done_writing()
    finally:
        await channel.close()


async def test_sigterm_shuts_down_cleanly_and_restart_carries_on_from_a_snapshot(
        start_controller: StartController) -> None:
    ctl = start_controller()
    sweep_id = await create_sweep(ctl.address, GRID_2)
    agent = SimAgent(ctl.address, sweep_id)
    await agent.register()
    await agent.connect()
    run = (await agent.request()).run
    await agent.metrics(run.run_id, [(0, 0, {"loss": 0.5}), (1, 5, {"loss": 0.25, "acc": 1})])
    before = await get_sweep(ctl.address, sweep_id)
    run_before = await sweep_call(ctl.address, "GetRun", sweeps_pb2.GetRunRequest(
        run_id=run.run_id))
    status = await asyncio.to_thread(ctl.terminate)
    assert status == 0, ctl.log_text()
    assert "snapshot written at seq" in ctl.log_text()
    await asyncio.to_thread(ctl.restart)
    assert "state rebuilt from snapshot at seq" in ctl.log_path.read_text()
    after = await get_sweep(ctl.address, sweep_id)
    assert (after.state, after.run_counts.running, after.log_seq, after.seed) == \
        (before.state, 1, before.log_seq, before.seed)
    # The summary comes back from the snapshot, the records themselves from the log.
    run_after = await sweep_call(ctl.address, "GetRun", sweeps_pb2.GetRunRequest(
        run_id=run.run_id))
    assert run_after == run_before and run_after.metric_count == 2
    records = (await sweep_call(ctl.address, "GetRunMetrics", sweeps_pb2.GetRunMetricsRequest(
        run_id=run.run_id))).records
    assert [(r.seq, r.step, dict(r.values)) for r in records] == \
        [(0, 0, {"loss": 0.5}), (1, 5, {"loss": 0.25, "acc": 1.0})]
    try:
        await agent.disconnect()
        await agent.connect(running=[run.run_id])
        await agent.end(run.run_id)
        nxt = (await agent.request()).run
        assert nxt.run_id != run.run_id and nxt.config_json != run.config_json
    finally:
        await agent.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_tls(start_controller: StartController, tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True)
    ctl = start_controller(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    channel = aio_channel(ctl.address, tls_ca=str(cert))
    try:
        reply = await sweep_stub(channel).CreateSweep(
            sweeps_pb2.CreateSweepRequest(config=GRID_2), timeout=10)
        assert len(reply.sweep.id) == 8 and reply.sweep.id.isalnum()
        assert reply.sweep.id == reply.sweep.id.lower()
    finally:
        await channel.close()
    plaintext = aio_channel(ctl.address)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await sweep_stub(plaintext).ListSweeps(sweeps_pb2.ListSweepsRequest(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await plaintext.close()


def test_bad_serve_flags_exit_with_a_clear_message(tmp_path: Path) -> None:
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "controller.cli", "serve", "--port", "0", "--db",
         str(tmp_path / "x.db"), "--tls-cert", str(tmp_path / "missing.pem")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "--tls-cert and --tls-key go together" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli", "serve", "--port", "0", "--db",
         str(tmp_path / "x.db"), "--token-file", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "cannot read token file" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli", "serve", "--port", "0", "--db",
         str(tmp_path / "x.db"), "--heartbeat-interval", "5", "--heartbeat-timeout", "2"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "must be longer than --heartbeat-interval" in result.stderr

"""Shared fixtures: a real `controller serve` process on a free loopback port with a temp db.

Usage::

    def test_x(controller):                  # default controller, no token
        channel = aio_channel(controller.address)

    def test_y(start_controller):            # custom flags
        ctl = start_controller(token="s3cret", heartbeat_interval=0.3)
        ctl.kill(); ctl.restart()            # SIGKILL, then serve again on the same db

The controller binds port 0 and prints ``listening on HOST:PORT`` on stderr; the fixture reads
the address from its log file (stderr goes to a file so a chatty controller never blocks on a
full pipe). ``ctl.log_text()`` returns that log for assertion messages.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_LISTENING = re.compile(r"listening on (\S+:\d+)")
START_TIMEOUT = 30.0


class ControllerProcess:
    """One controller subprocess; restartable on the same database and port."""

    def __init__(self, workdir: Path, db_path: Path, args: list[str], env: dict[str, str]) -> None:
        self.workdir = workdir
        self.db_path = db_path
        self.args = args
        self.env = env
        self.address = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = workdir / "controller-0.log"

    def start(self, port: int = 0) -> str:
        """Start serving and wait until the controller prints its address; return it."""
        self.starts += 1
        self.log_path = self.workdir / f"controller-{self.starts}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child owns it while alive
        cmd = [
            sys.executable,
            "-m",
            "controller.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            str(self.db_path),
            *self.args,
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=log, env=self.env, cwd=self.workdir
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.address = match.group(1)
                return self.address
            if self.proc.poll() is not None:
                raise RuntimeError(f"controller exited early:\n{self.log_text()}")
            time.sleep(0.02)
        raise RuntimeError(f"controller did not start in {START_TIMEOUT}s:\n{self.log_text()}")

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def log_text(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.workdir.glob("controller-*.log"))
        )

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no final snapshot."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for a graceful exit; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        return self.proc.returncode

    def restart(self, same_port: bool = True) -> str:
        """Start again on the same db (and, by default, the same port, so clients reconnect)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("controller is still running; kill() or terminate() it first")
        port = self.port if same_port and self.address else 0
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                return self.start(port)
            except RuntimeError:
                # The old socket may linger for a moment after SIGKILL.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


StartController = Callable[..., ControllerProcess]


@pytest.fixture
def start_controller(tmp_path: Path) -> Iterator[StartController]:
    """Factory: ``start_controller(token=None, heartbeat_interval=None, extra_args=())``."""
    started: list[ControllerProcess] = []

    def _start(
        token: str | None = None,
        heartbeat_interval: float | None = None,
        heartbeat_timeout: float | None = None,
        extra_args: tuple[str, ...] | list[str] = (),
        env: dict[str, str] | None = None,
        db_path: Path | None = None,
    ) -> ControllerProcess:
        workdir = tmp_path / f"controller{len(started)}"
        workdir.mkdir()
        args: list[str] = []
        if token is not None:
            token_file = workdir / "token"
            token_file.write_text(token + "\n")
            args += ["--token-file", str(token_file)]
        if heartbeat_interval is not None:
            args += ["--heartbeat-interval", str(heartbeat_interval)]
        if heartbeat_timeout is not None:
            args += ["--heartbeat-timeout", str(heartbeat_timeout)]
        args += list(extra_args)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSWEEP_")}
        child_env["PYTHONUNBUFFERED"] = "1"
        child_env.update(env or {})
        ctl = ControllerProcess(workdir, db_path or workdir / "opensweep.db", args, child_env)
        started.append(ctl)
        ctl.start()
        return ctl

    yield _start
    for ctl in started:
        if ctl.proc is not None and ctl.proc.poll() is None:
            ctl.terminate(timeout=15)


@pytest.fixture
def controller(start_controller: StartController) -> ControllerProcess:
    """A controller with default settings (no token), serving on a free loopback port."""
    return start_controller()


@pytest.fixture(scope="module")
def shared_controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    """One default controller for a whole test module (tests must use their own sweeps)."""
    workdir = tmp_path_factory.mktemp("shared-controller")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSWEEP_")}
    child_env["PYTHONUNBUFFERED"] = "1"
    ctl = ControllerProcess(workdir, workdir / "opensweep.db", [], child_env)
    ctl.start()
    yield ctl
    ctl.terminate(timeout=15)


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


# ----------------------------------------------------------------------------- simulated agents


class SimAgent:
    """A scripted agent speaking the real protocol over real gRPC (no process, no program).

    Tests drive it step by step: ``await a.register(); await a.connect(); msg = await
    a.request()``. Everything the controller pushes is kept: ``stops`` (StopRun messages) and
    ``acks`` (Ack messages by run id).
    """

    def __init__(self, address: str, sweep_id: str, token: str | None = None,
                 hostname: str = "sim") -> None:
        from controller.client import agent_stub, aio_channel

        self.address = address
        self.sweep_id = sweep_id
        self.hostname = hostname
        self.channel = aio_channel(address, token=token)
        self.stub = agent_stub(self.channel)
        self.agent_id = ""
        self.heartbeat_interval = 0.0
        self.call: Any = None
        self.replies: Any = None
        self.stops: list[Any] = []
        self.acks: dict[str, list[Any]] = {}
        self._ack_event: Any = None
        self._reader: Any = None
        self._heart: Any = None
        self._write_lock: Any = None

    async def register(self) -> str:
        from opensweep.v1 import agents_pb2

        reply = await self.stub.RegisterAgent(agents_pb2.RegisterAgentRequest(
            sweep_id=self.sweep_id, hostname=self.hostname, pid=os.getpid()), timeout=10)
        self.agent_id = reply.agent_id
        self.heartbeat_interval = reply.heartbeat_interval_seconds
        return self.agent_id

    async def connect(self, running: tuple[str, ...] | list[str] = ()) -> None:
        import asyncio

        from opensweep.v1 import agents_pb2

        self.replies = asyncio.Queue()
        self._ack_event = asyncio.Event()
        self.call = self.stub.Connect()
        await self.call.write(agents_pb2.AgentMessage(hello=agents_pb2.Hello(
            agent_id=self.agent_id, running_run_ids=list(running))))
        first = await asyncio.wait_for(self.call.read(), 10)
        assert first.WhichOneof("kind") == "welcome", first
        self._reader = asyncio.ensure_future(self._read_loop())

    async def _read_loop(self) -> None:
        import grpc.aio

        call = self.call
        try:
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    break
                kind = message.WhichOneof("kind")
                if kind in ("run", "no_run"):
                    self.replies.put_nowait(message)
                elif kind == "stop_run":
                    self.stops.append(message.stop_run)
                elif kind == "ack":
                    self.acks.setdefault(message.ack.run_id, []).append(message.ack)
                    self._ack_event.set()
        except Exception as exc:  # surfaced to whoever waits for a reply
            self.replies.put_nowait(exc)
            self._ack_event.set()
            return
        self.replies.put_nowait(EOFError("stream closed"))
        self._ack_event.set()

    async def send(self, **kind: Any) -> None:
        """Write one AgentMessage; writes are serialised (gRPC allows one at a time)."""
        import asyncio

        from opensweep.v1 import agents_pb2

        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock:
            await self.call.write(agents_pb2.AgentMessage(**kind))

    async def request(self, timeout: float = 30) -> Any:
        """RequestRun; returns the ControllerMessage (``run`` or ``no_run``)."""
        import asyncio

        from opensweep.v1 import agents_pb2

        await self.send(request_run=agents_pb2.RequestRun())
        reply = await asyncio.wait_for(self.replies.get(), timeout)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def wait_ack(self, run_id: str, predicate: Callable[[Any], bool],
                       timeout: float = 30) -> Any:
        import asyncio

        async def wait() -> Any:
            while True:
                for ack in self.acks.get(run_id, []):
                    if predicate(ack):
                        return ack
                if self._reader is not None and self._reader.done():
                    raise EOFError("stream closed while waiting for an ack")
                self._ack_event.clear()
                await self._ack_event.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def metrics(self, run_id: str, records: list[tuple[int, int, dict[str, float]]]
                      ) -> Any:
        """Send (seq, step, values) records and wait until they are acknowledged."""
        import time as _time

        from opensweep.v1 import agents_pb2, sweeps_pb2

        batch = agents_pb2.MetricsBatch(run_id=run_id, records=[
            sweeps_pb2.MetricRecord(seq=seq, step=step, values=values, time=_time.time())
            for seq, step, values in records])
        await self.send(metrics=batch)
        through = max(seq for seq, _, _ in records) + 1
        return await self.wait_ack(run_id, lambda a: a.metrics_through_seq >= through)

    async def end(self, run_id: str, state: str = "finished", exit_code: int | None = 0,
                  reason: str = "exit status 0") -> Any:
        from opensweep.v1 import agents_pb2, sweeps_pb2

        ended = agents_pb2.RunEnded(run_id=run_id, reason=reason,
                                    state=getattr(sweeps_pb2, f"RUN_STATE_{state.upper()}"))
        if exit_code is not None:
            ended.exit_code = exit_code
        await self.send(run_ended=ended)
        return await self.wait_ack(run_id, lambda a: a.run_ended)

    def start_heartbeats(self) -> None:
        """Send a Heartbeat at the controller's interval until disconnected (a live agent)."""
        import asyncio

        from opensweep.v1 import agents_pb2

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.heartbeat_interval)
                await self.send(heartbeat=agents_pb2.Heartbeat())

        self._heart = asyncio.ensure_future(beat())

    async def disconnect(self) -> None:
        if self._heart is not None:
            self._heart.cancel()
            self._heart = None
        if self.call is not None:
            self.call.cancel()
        if self._reader is not None:
            self._reader.cancel()
        self.call = None

    async def close(self) -> None:
        await self.disconnect()
        await self.channel.close()


async def sweep_call(address: str, method: str, request: Any, token: str | None = None) -> Any:
    """One SweepService call on a fresh channel, e.g. ``sweep_call(a, "GetSweep", req)``."""
    from controller.client import aio_channel, sweep_stub

    channel = aio_channel(address, token=token)
    try:
        return await getattr(sweep_stub(channel), method)(request, timeout=10)
    finally:
        await channel.close()


async def create_sweep(address: str, config: str, seed: int = 0,
                       token: str | None = None) -> str:
    from opensweep.v1 import sweeps_pb2

    reply = await sweep_call(address, "CreateSweep",
                             sweeps_pb2.CreateSweepRequest(config=config, seed=seed), token)
    return str(reply.sweep.id)


async def get_sweep(address: str, sweep_id: str) -> Any:
    from opensweep.v1 import sweeps_pb2

    return await sweep_call(address, "GetSweep", sweeps_pb2.GetSweepRequest(sweep_id=sweep_id))


async def list_runs(address: str, sweep_id: str) -> list[Any]:
    from opensweep.v1 import sweeps_pb2

    reply = await sweep_call(address, "ListRuns", sweeps_pb2.ListRunsRequest(sweep_id=sweep_id))
    return list(reply.runs)


async def read_events(address: str, sweep_id: str = "", after_seq: int = 0) -> list[Any]:
    from controller.client import aio_channel, sweep_stub
    from opensweep.v1 import sweeps_pb2

    channel = aio_channel(address)
    try:
        call = sweep_stub(channel).ReadEvents(
            sweeps_pb2.ReadEventsRequest(after_seq=after_seq, sweep_id=sweep_id), timeout=10)
        return [event async for event in call]
    finally:
        await channel.close()


async def poll(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Await ``predicate()`` (a coroutine function) until it returns something truthy."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.05)

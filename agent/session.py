"""The agent's session with the controller: register, hold one stream, run what it assigns.

Protocol (see protos/opensweep/v1/agents.proto): RegisterAgent once, then a Connect stream that
starts with Hello. The agent asks for one run at a time (RequestRun -> RunAssignment | NoRun),
sends a Heartbeat at the controller's interval, streams each run's metric records with ``seq``
from 0 and reports each run's end after its last metrics. The controller acknowledges what it
has made durable (Ack) and may push StopRun at any moment.

Nothing is lost when the stream breaks: every metric record and every run outcome stays in the
agent's memory until the controller acknowledges it, and after reconnecting (with backoff) the
agent sends Hello listing the runs it still holds and re-sends everything unacknowledged. The
controller stores each (run, seq) and each RunEnded once, so a re-send never doubles anything.
Runs keep going while the controller is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc
import grpc.aio

import opensweep
from agent.command import check_program, run_argv
from agent.metrics import Record
from agent.runner import (
    CONFIG_NAME,
    METRICS_NAME,
    ExecLauncher,
    Launcher,
    Outcome,
    RunProcess,
    RunResult,
    stderr_tail,
)
from agent.watchdog import Watchdog
from controller.client import agent_stub, aio_channel, describe_rpc_error
from controller.core.errors import OpensweepError
from opensweep.v1 import agents_pb2, sweeps_pb2

log = logging.getLogger("opensweep.agent")

T = TypeVar("T")

#: A MetricsBatch holds at most this many records and about this many bytes: far below the
#: controller's limits (10,000 records, 16 MiB messages by default), so a program that logs
#: wide records (a metrics line may be 1 MiB) never produces a batch the controller refuses.
BATCH_RECORDS = 500
BATCH_BYTES = 2 * 1024 * 1024
#: Timeout of RegisterAgent and of waiting for Welcome.
CALL_TIMEOUT = 10.0
#: Signals that make the agent stop its runs, tell the controller and leave. SIGHUP too: runs
#: live in their own sessions, so a closed terminal would otherwise kill the agent and orphan
#: them.
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: How long a leaving agent waits for the controller to close the stream after Goodbye.
GOODBYE_TIMEOUT = 2.0
#: Reconnect backoff: doubles from the first value up to the cap.
BACKOFF_START = 0.2
BACKOFF_CAP = 5.0

# Exit statuses of the agent (documented in docs/agent.md).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_TOO_MANY_FAILURES = 3
EXIT_UNREACHABLE = 4
EXIT_UNAUTHENTICATED = 5
EXIT_SWEEP_NOT_FOUND = 6
EXIT_INTERRUPTED = 130

_OUTCOME_STATE = {
    Outcome.FINISHED: sweeps_pb2.RUN_STATE_FINISHED,
    Outcome.FAILED: sweeps_pb2.RUN_STATE_FAILED,
    Outcome.STOPPED: sweeps_pb2.RUN_STATE_STOPPED,
}


class AgentError(OpensweepError):
    """The agent cannot go on; ``message`` is for a person, ``exit_code`` for the shell."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class _Disconnected(Exception):
    """The stream broke while waiting for a reply; the request is asked again after reconnect."""


@dataclass
class AgentSettings:
    """Everything that shapes an agent's behaviour; the CLI and function mode fill it in."""

    sweep_id: str
    controller: str
    token: str | None = None
    count: int | None = None
    run_root: Path = field(default_factory=lambda: Path("opensweep-runs"))
    grace_period: float = 10.0
    max_consecutive_failures: int = 5
    #: How the user set that limit (``{}`` is the value), for the message that quotes it.
    failure_limit_option: str = "--max-consecutive-failures {}"
    #: How long the controller may stay unreachable while the agent has nothing running.
    retry_timeout: float = 60.0
    verbose: bool = False
    tls_ca: str | None = None
    #: TLS with the system's trusted roots (implied by ``tls_ca``).
    tls: bool = False


@dataclass
class RunView:
    """What a reporter may show about a run."""

    run_id: str
    params: dict[str, Any]
    started_at: float
    last_values: dict[str, float] = field(default_factory=dict)
    last_step: int | None = None
    records: int = 0


class Reporter(Protocol):
    """Where the agent tells its user what is going on (console, or nothing)."""

    def run_started(self, run: RunView) -> None: ...
    def run_progress(self, run: RunView, metric_name: str) -> None: ...
    def run_ended(self, run: RunView, result: RunResult, metric_name: str) -> None: ...
    def close(self) -> None: ...


class SilentReporter:
    def run_started(self, run: RunView) -> None:
        pass

    def run_progress(self, run: RunView, metric_name: str) -> None:
        pass

    def run_ended(self, run: RunView, result: RunResult, metric_name: str) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class _TrackedRun:
    """A run the agent holds until the controller has acknowledged all of it."""

    run_id: str
    view: RunView
    process: RunProcess | None = None
    unacked: list[sweeps_pb2.MetricRecord] = field(default_factory=list)
    acked_through: int = 0
    result: RunResult | None = None
    ended_acked: bool = False


def metric_batches(records: list[sweeps_pb2.MetricRecord]) -> Iterator[
        list[sweeps_pb2.MetricRecord]]:
    """Consecutive slices of ``records`` within BATCH_RECORDS and (unless one record alone is
    larger) BATCH_BYTES."""
    batch: list[sweeps_pb2.MetricRecord] = []
    size = 0
    for record in records:
        record_size = record.ByteSize()
        if batch and (len(batch) >= BATCH_RECORDS or size + record_size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record_size
    if batch:
        yield batch


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def run_dir_name(run_id: str) -> str:
    """A directory name for a run id that cannot escape the run root."""
    name = _SAFE_NAME.sub("_", run_id).lstrip(".")
    return name or "run"


class AgentSession:
    """One agent's life: returns the exit status, or raises AgentError with a clear message."""

    def __init__(self, settings: AgentSettings, *, launcher: Launcher | None = None,
                 reporter: Reporter | None = None, uses_command: bool = True) -> None:
        self.settings = settings
        self.launcher: Launcher = launcher or ExecLauncher()
        self.reporter: Reporter = reporter or SilentReporter()
        self.uses_command = uses_command
        self.agent_id = ""
        self.heartbeat_interval = 10.0
        self.metric_name = ""
        self.runs: dict[str, _TrackedRun] = {}
        self.completed = 0
        #: Runs by outcome ("finished", "failed", "stopped"), for the agent's closing line.
        self.outcomes: dict[str, int] = {}
        #: Why the agent left, once it has.
        self.leave_reason: str | None = None
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self._outbox: asyncio.Queue[agents_pb2.AgentMessage] | None = None
        self._connected = asyncio.Event()
        self._reply: asyncio.Future[agents_pb2.ControllerMessage] | None = None
        self._fatal: AgentError | None = None
        self._wake = asyncio.Event()
        self._shutdown_reason: str | None = None
        self._signal_count = 0
        self._acked = asyncio.Event()
        self._disconnected_since: float | None = time.monotonic()
        self._last_stream_error: grpc.aio.AioRpcError | None = None
        #: Set once Goodbye is queued: the stream closing is then the expected end, not a loss.
        self._leaving = False
        self._stream_done = asyncio.Event()
        self._watchdog: Watchdog | None = None

    # ---- public entry -------------------------------------------------------------------

    async def run(self, install_signal_handlers: bool = True) -> int:
        self._check_run_root()
        if self.uses_command:
            # Exec'd runs live in their own sessions: if this process dies abruptly, the
            # watchdog stops them. (Function mode's fork server does the same for its runs.)
            self._watchdog = Watchdog(self.settings.grace_period)
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in HANDLED_SIGNALS:
                loop.add_signal_handler(sig, self._on_signal, sig)
        self._channel = aio_channel(self.settings.controller, token=self.settings.token,
                                    tls=self.settings.tls, tls_ca=self.settings.tls_ca)
        self._stub = agent_stub(self._channel)
        connection: asyncio.Task[None] | None = None
        try:
            await self._register()
            connection = asyncio.create_task(self._connection_loop())
            reason, code = await self._work()
            await self._finish(reason)
            return code
        finally:
            if connection is not None:
                connection.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connection
            for tracked in self.runs.values():
                if tracked.process is not None and tracked.result is None:
                    tracked.process.kill_now()
            if install_signal_handlers:
                for sig in HANDLED_SIGNALS:
                    loop.remove_signal_handler(sig)
            await self._channel.close()
            self.reporter.close()
            if self._watchdog is not None:
                self._watchdog.close()

    def _check_run_root(self) -> None:
        """Fail before asking for work when runs could not write their logs (rather than fail
        every run the controller hands out)."""
        root = self.settings.run_root
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AgentError(f"cannot create the run directory {root} (--dir): "
                             f"{exc.strerror}") from None
        if not os.access(root, os.W_OK | os.X_OK):
            raise AgentError(f"the run directory {root} (--dir) is not writable")

    def shutdown(self, reason: str) -> None:
        """Stop the runs (SIGTERM, SIGKILL after the grace period), report them and leave."""
        if self._shutdown_reason is None:
            self._shutdown_reason = reason
        for tracked in self.runs.values():
            if tracked.process is not None and tracked.result is None:
                tracked.process.request_stop(reason)
        self._wake.set()

    def _on_signal(self, sig: int) -> None:
        self._signal_count += 1
        name = signal.Signals(sig).name
        if self._signal_count == 1:
            log.warning("%s: stopping runs (SIGTERM now, SIGKILL after %.0f s), then leaving; "
                        "press Ctrl-C again to kill them at once", name,
                        self.settings.grace_period)
            self.shutdown(f"agent interrupted ({name})")
        else:
            log.warning("%s again: killing runs now", name)
            for tracked in self.runs.values():
                if tracked.process is not None:
                    tracked.process.kill_now()

    # ---- registration and the stream ----------------------------------------------------

    def _fail(self, error: AgentError) -> None:
        if self._fatal is None:
            self._fatal = error
        self._wake.set()

    def _rpc_failure(self, exc: grpc.aio.AioRpcError, during: str) -> AgentError | None:
        """The fatal error an RPC failure means, or None when retrying makes sense."""
        code = exc.code()
        where = self.settings.controller
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return AgentError(describe_rpc_error(exc, where,
                                                 token_sent=self.settings.token is not None),
                              EXIT_UNAUTHENTICATED)
        if code == grpc.StatusCode.NOT_FOUND and during == "register":
            return AgentError(f"sweep {self.settings.sweep_id!r} does not exist on the "
                              f"controller at {where} ({exc.details()})", EXIT_SWEEP_NOT_FOUND)
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
                    grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED,
                    grpc.StatusCode.RESOURCE_EXHAUSTED):
            return None
        return AgentError(f"the controller at {where} refused {during}: "
                          f"{describe_rpc_error(exc, where)} ({code.name})")

    def _unreachable(self, last_error: grpc.aio.AioRpcError | None) -> AgentError:
        if last_error is not None and last_error.code() == grpc.StatusCode.UNAVAILABLE:
            text = describe_rpc_error(last_error, self.settings.controller)
        else:
            why = "no answer" if last_error is None else describe_rpc_error(last_error)
            text = (f"cannot reach the controller at {self.settings.controller} ({why}); is "
                    "`controller serve` running there? Set --controller or OPENSWEEP_CONTROLLER.")
        undelivered = sum(1 for t in self.runs.values() if t.result is not None)
        if undelivered:
            text += (f" {undelivered} run outcome(s) were not delivered; their logs and metrics "
                     f"stay under {self.settings.run_root}.")
        return AgentError(f"gave up after {self.settings.retry_timeout:g} s of retrying: {text}",
                          EXIT_UNREACHABLE)

    async def _register(self) -> None:
        request = agents_pb2.RegisterAgentRequest(sweep_id=self.settings.sweep_id,
                                                  hostname=socket.gethostname(), pid=os.getpid())
        deadline = time.monotonic() + self.settings.retry_timeout
        backoff = BACKOFF_START
        while True:
            try:
                reply = await self._interruptible(
                    self._stub.RegisterAgent(request, timeout=CALL_TIMEOUT))
            except grpc.aio.AioRpcError as exc:
                fatal = self._rpc_failure(exc, "register")
                if fatal is not None:
                    raise fatal from None
                if time.monotonic() + backoff > deadline:
                    raise self._unreachable(exc) from None
                log.info("controller not reachable yet (%s); retrying in %.1f s",
                         exc.details() or exc.code().name, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_CAP)
                continue
            break
        self.agent_id = reply.agent_id
        if reply.heartbeat_interval_seconds > 0:
            self.heartbeat_interval = reply.heartbeat_interval_seconds
        self.metric_name = reply.sweep.metric_name
        log.info("agent %s working for sweep %s on %s", self.agent_id, self.settings.sweep_id,
                 self.settings.controller)

    async def _interruptible(self, call: Awaitable[T]) -> T:
        """Await ``call`` unless the user interrupts first (then raise AgentError)."""
        task = asyncio.ensure_future(call)
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            while True:
                await asyncio.wait({task, waker}, return_when=asyncio.FIRST_COMPLETED)
                if task.done():
                    return task.result()
                if self._shutdown_reason is not None and not self.runs:
                    task.cancel()
                    raise AgentError(f"interrupted: {self._shutdown_reason}", EXIT_INTERRUPTED)
                if self._fatal is not None:
                    task.cancel()
                    raise self._fatal
                self._wake.clear()
                waker = asyncio.ensure_future(self._wake.wait())
        finally:
            waker.cancel()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, cut short by a shutdown or a fatal error."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._interruptible(asyncio.sleep(seconds)), seconds + 1)

    def _running_ids(self) -> list[str]:
        return sorted(self.runs)

    def _send(self, message: agents_pb2.AgentMessage) -> None:
        """Queue a message on the current stream; dropped while disconnected (state that must
        survive is re-sent from ``self.runs`` on reconnect)."""
        if self._outbox is not None:
            self._outbox.put_nowait(message)

    def _send_metrics(self, run_id: str, records: list[sweeps_pb2.MetricRecord]) -> None:
        for batch in metric_batches(records):
            self._send(agents_pb2.AgentMessage(metrics=agents_pb2.MetricsBatch(
                run_id=run_id, records=batch)))

    def _resend_unacked(self) -> None:
        for tracked in self.runs.values():
            self._send_metrics(tracked.run_id, tracked.unacked)
            if tracked.result is not None and not tracked.ended_acked:
                self._send(self._run_ended_message(tracked))

    async def _connection_loop(self) -> None:
        backoff = BACKOFF_START
        while True:
            call = None
            try:
                call = self._stub.Connect()
                await call.write(agents_pb2.AgentMessage(hello=agents_pb2.Hello(
                    agent_id=self.agent_id, running_run_ids=self._running_ids())))
                first = await asyncio.wait_for(call.read(), CALL_TIMEOUT)
                if first is grpc.aio.EOF:
                    raise _Disconnected("the controller closed the stream")
                if first.WhichOneof("kind") != "welcome":
                    raise _Disconnected(f"expected Welcome, got {first.WhichOneof('kind')}")
                if first.welcome.heartbeat_interval_seconds > 0:
                    self.heartbeat_interval = first.welcome.heartbeat_interval_seconds
                outbox: asyncio.Queue[agents_pb2.AgentMessage] = asyncio.Queue()
                self._outbox = outbox
                self._resend_unacked()
                if self._disconnected_since is not None and backoff > BACKOFF_START:
                    log.info("reconnected to the controller")
                self._disconnected_since = None
                self._connected.set()
                self._wake.set()
                backoff = BACKOFF_START
                await self._serve_stream(call, outbox)
                raise _Disconnected("the controller closed the stream")
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                fatal = self._rpc_failure(exc, "the agent stream")
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    fatal = await self._reregister(exc)
                if fatal is not None:
                    self._fail(fatal)
                    return
                self._last_stream_error = exc
                self._lost(exc.details() or exc.code().name)
            except (TimeoutError, _Disconnected) as exc:
                self._lost(str(exc) or "no Welcome in time")
            finally:
                self._outbox = None
                self._connected.clear()
                if self._reply is not None and not self._reply.done():
                    self._reply.set_exception(_Disconnected())
                if call is not None:
                    call.cancel()
            if self._leaving:
                self._stream_done.set()
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP)

    async def _reregister(self, exc: grpc.aio.AioRpcError) -> AgentError | None:
        """The controller no longer knows this agent (e.g. it was declared lost): register
        again; runs still held are reported under the new agent id."""
        log.warning("the controller does not know agent %s (%s); registering again",
                    self.agent_id, exc.details())
        try:
            await self._register()
        except AgentError as error:
            return error
        return None

    def _lost(self, why: str) -> None:
        if self._leaving:
            return
        if self._disconnected_since is None:
            self._disconnected_since = time.monotonic()
            log.warning("lost the controller (%s); reconnecting, runs keep going", why)
        self._wake.set()

    async def _serve_stream(self, call: Any,
                            outbox: asyncio.Queue[agents_pb2.AgentMessage]) -> None:
        writer = asyncio.create_task(self._write_loop(call, outbox))
        heart = asyncio.create_task(self._heartbeat_loop())
        try:
            while True:
                read = asyncio.ensure_future(call.read())
                done, _ = await asyncio.wait({read, writer}, return_when=asyncio.FIRST_COMPLETED)
                if writer in done:
                    read.cancel()
                    writer.result()  # raises the write error
                    return
                message = read.result()
                if message is grpc.aio.EOF:
                    return
                self._dispatch(message)
        finally:
            writer.cancel()
            heart.cancel()

    async def _write_loop(self, call: Any,
                          outbox: asyncio.Queue[agents_pb2.AgentMessage]) -> None:
        while True:
            message = await outbox.get()
            await call.write(message)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            self._send(agents_pb2.AgentMessage(
                heartbeat=agents_pb2.Heartbeat(running_run_ids=self._running_ids())))

    def _dispatch(self, message: agents_pb2.ControllerMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind in ("run", "no_run"):
            if self._reply is not None and not self._reply.done():
                self._reply.set_result(message)
            else:
                log.warning("unexpected %s from the controller; ignored", kind)
        elif kind == "stop_run":
            tracked = self.runs.get(message.stop_run.run_id)
            reason = message.stop_run.reason or "the controller asked"
            if tracked is not None and tracked.process is not None and tracked.result is None:
                tracked.process.request_stop(reason)
        elif kind == "ack":
            self._on_ack(message.ack)
        elif kind == "welcome" and message.welcome.heartbeat_interval_seconds > 0:
            self.heartbeat_interval = message.welcome.heartbeat_interval_seconds

    def _on_ack(self, ack: agents_pb2.Ack) -> None:
        tracked = self.runs.get(ack.run_id)
        if tracked is None:
            return
        if ack.metrics_through_seq > tracked.acked_through:
            tracked.acked_through = ack.metrics_through_seq
            tracked.unacked = [r for r in tracked.unacked if r.seq >= ack.metrics_through_seq]
        if ack.run_ended and tracked.result is not None:
            # RunEnded follows the run's last MetricsBatch on the stream, so the controller has
            # processed every record before it.
            tracked.ended_acked = True
            tracked.unacked = []
            del self.runs[tracked.run_id]
            self._acked.set()
            self._wake.set()

    # ---- the work loop ------------------------------------------------------------------

    async def _wait_connected(self) -> None:
        """Wait for the stream; AgentError when idle and unreachable for the retry timeout."""
        while not self._connected.is_set():
            if self._fatal is not None:
                raise self._fatal
            if self._shutdown_reason is not None and not self.runs:
                return
            since = self._disconnected_since or time.monotonic()
            remaining = since + self.settings.retry_timeout - time.monotonic()
            if remaining <= 0:
                raise self._unreachable(self._last_stream_error)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(remaining, 1.0))

    async def _request_run(self) -> agents_pb2.ControllerMessage | None:
        """Ask for a run; None when the agent is shutting down."""
        while True:
            await self._wait_connected()
            if self._shutdown_reason is not None:
                return None
            self._reply = asyncio.get_running_loop().create_future()
            self._send(agents_pb2.AgentMessage(request_run=agents_pb2.RequestRun()))
            try:
                return await self._interruptible(self._reply)
            except _Disconnected:
                continue
            except AgentError:
                if self._shutdown_reason is not None and self._fatal is None:
                    return None
                raise
            finally:
                self._reply = None

    async def _work(self) -> tuple[str, int]:
        """Request and execute runs; returns (why the agent stops, exit status)."""
        consecutive_failures = 0
        waiting_for: str | None = None
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self._shutdown_reason is not None:
                return self._shutdown_reason, EXIT_INTERRUPTED
            if self.settings.count is not None and self.completed >= self.settings.count:
                return f"{self.completed} run(s) done (--count {self.settings.count})", EXIT_OK
            reply = await self._request_run()
            if reply is None:
                continue
            if reply.WhichOneof("kind") == "no_run":
                no_run = reply.no_run
                if no_run.reason == agents_pb2.NO_RUN_REASON_SWEEP_DONE:
                    detail = no_run.detail or "the sweep is over"
                    return f"nothing left to do: {detail}", EXIT_OK
                wait = no_run.retry_after_seconds if no_run.retry_after_seconds > 0 else 1.0
                detail = no_run.detail or "the controller has no run for now"
                # Said once per reason, so an agent waiting on a paused sweep does not look hung.
                level = logging.DEBUG if detail == waiting_for else logging.WARNING
                log.log(level, "waiting: %s (asking again every %.1f s)", detail, wait)
                waiting_for = detail
                await self._sleep(wait)
                continue
            waiting_for = None
            result, run_dir = await self._execute(reply.run)
            self.completed += 1
            self.outcomes[result.outcome.value] = self.outcomes.get(result.outcome.value, 0) + 1
            if result.outcome is Outcome.FAILED:
                consecutive_failures += 1
                limit = self.settings.max_consecutive_failures
                if limit > 0 and consecutive_failures >= limit:
                    tail = stderr_tail(run_dir)
                    shown = ("\nlast lines of its stderr (" + str(run_dir / "stderr.log")
                             + "):\n" + tail) if tail else "\n(its stderr was empty)"
                    option = self.settings.failure_limit_option.format(limit)
                    message = (f"stopping: {consecutive_failures} runs in a row failed "
                               f"({option}); the last one, "
                               f"{reply.run.run_id}, ended with: {result.reason}.{shown}")
                    await self._finish(f"{consecutive_failures} consecutive failed runs")
                    raise AgentError(message, EXIT_TOO_MANY_FAILURES)
            elif result.outcome is Outcome.FINISHED:
                consecutive_failures = 0

    def _prepare(self, assignment: agents_pb2.RunAssignment,
                 params: dict[str, Any]) -> tuple[Path, dict[str, str], list[str] | None]:
        run_dir = (self.settings.run_root / run_dir_name(assignment.run_id)).absolute()
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = run_dir / CONFIG_NAME
        config_path.write_text(json.dumps(params, indent=2, allow_nan=True) + "\n",
                               encoding="utf-8")
        metrics_path = run_dir / METRICS_NAME
        metrics_path.touch()
        env = dict(os.environ)
        if opensweep.grpc_fork_setting_is_ours:
            env.pop(opensweep.GRPC_FORK_ENV, None)
        env.update({
            "OPENSWEEP_SWEEP_ID": assignment.sweep_id or self.settings.sweep_id,
            "OPENSWEEP_RUN_ID": assignment.run_id,
            "OPENSWEEP_CONFIG": json.dumps(params, allow_nan=True),
            "OPENSWEEP_METRICS": str(metrics_path),
            "OPENSWEEP_RUN_DIR": str(run_dir),
        })
        argv = None
        if self.uses_command:
            check_program(assignment.command, assignment.program, os.getcwd())
            argv = run_argv(assignment.command, assignment.program, params, environ=env,
                            args_json_file=str(config_path))
        return run_dir, env, argv

    async def _execute(self, assignment: agents_pb2.RunAssignment) -> tuple[RunResult, Path]:
        run_id = assignment.run_id
        started = time.time()
        try:
            params = json.loads(assignment.config_json or "{}")
            if not isinstance(params, dict):
                raise ValueError("the run's config is not a JSON object")
        except ValueError as exc:
            params = {}
            bad_config: str | None = f"the controller sent an unreadable config: {exc}"
        else:
            bad_config = None
        view = RunView(run_id=run_id, params=params, started_at=started)
        tracked = _TrackedRun(run_id=run_id, view=view)
        self.runs[run_id] = tracked
        self.reporter.run_started(view)
        run_dir = (self.settings.run_root / run_dir_name(run_id)).absolute()
        try:
            if bad_config is not None:
                raise OpensweepError(bad_config)
            run_dir, env, argv = self._prepare(assignment, params)
        except (OpensweepError, OSError) as exc:
            log.error("run %s: %s", run_id, exc)
            result = RunResult(Outcome.FAILED, None, f"could not prepare the run: {exc}",
                               started, time.time())
            with contextlib.suppress(OSError):
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "stderr.log").write_text(f"opensweep agent: {exc}\n")
            self._ended(tracked, result)
            return result, run_dir

        process = RunProcess(
            run_id=run_id, run_dir=run_dir, argv=argv, env=env, launcher=self.launcher,
            grace_period=self.settings.grace_period,
            on_records=lambda records: self._on_records(tracked, records),
            on_started=lambda pid: self._on_started(tracked, pid),
            echo=self.settings.verbose,
        )
        tracked.process = process
        if self._shutdown_reason is not None:
            process.request_stop(self._shutdown_reason)
        progress = asyncio.create_task(self._progress_loop(view))
        try:
            result = await process.execute()
        finally:
            progress.cancel()
            if self._watchdog is not None and process.pid is not None:
                self._watchdog.remove(process.pid)
        self._ended(tracked, result)
        return result, run_dir

    async def _progress_loop(self, view: RunView) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.reporter.run_progress(view, self.metric_name)

    def _on_started(self, tracked: _TrackedRun, pid: int) -> None:
        log.info("run %s: started (pid %d)", tracked.run_id, pid)
        if self._watchdog is not None:
            self._watchdog.add(pid)
        self._send(agents_pb2.AgentMessage(run_started=agents_pb2.RunStarted(
            run_id=tracked.run_id, pid=pid)))

    def _on_records(self, tracked: _TrackedRun, records: list[Record]) -> None:
        messages = []
        for record in records:
            message = sweeps_pb2.MetricRecord(seq=record.seq, step=record.step,
                                              values=record.values, time=record.time)
            messages.append(message)
            tracked.view.last_values.update(record.values)
            tracked.view.last_step = record.step
        tracked.view.records += len(records)
        tracked.unacked.extend(messages)
        self._send_metrics(tracked.run_id, messages)

    def _run_ended_message(self, tracked: _TrackedRun) -> agents_pb2.AgentMessage:
        result = tracked.result
        assert result is not None
        ended = agents_pb2.RunEnded(run_id=tracked.run_id, state=_OUTCOME_STATE[result.outcome],
                                    reason=result.reason)
        if result.exit_code is not None:
            ended.exit_code = result.exit_code
        return agents_pb2.AgentMessage(run_ended=ended)

    def _ended(self, tracked: _TrackedRun, result: RunResult) -> None:
        tracked.result = result
        self._send(self._run_ended_message(tracked))
        # INFO: the run line already tells the user; --quiet (logs only) shows this instead.
        log.info("run %s: %s (%s)", tracked.run_id, result.outcome.value, result.reason)
        self.reporter.run_ended(tracked.view, result, self.metric_name)

    # ---- leaving ------------------------------------------------------------------------

    async def _flush(self, timeout: float) -> bool:
        """Wait until the controller has acknowledged every run outcome (reconnecting as
        needed); False if that did not happen in time."""
        deadline = time.monotonic() + timeout
        while self.runs and self._fatal is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._acked.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._acked.wait(), min(remaining, 0.5))
        return not self.runs

    async def _finish(self, reason: str) -> None:
        flush_timeout = self.settings.retry_timeout
        if self._shutdown_reason is not None:
            flush_timeout = min(flush_timeout, 10.0)
        if not await self._flush(flush_timeout):
            if self._fatal is not None:
                raise self._fatal
            raise AgentError(
                f"{len(self.runs)} run outcome(s) could not be delivered: the controller at "
                f"{self.settings.controller} did not acknowledge them in {flush_timeout:.0f} s "
                f"(their files stay under {self.settings.run_root})", EXIT_UNREACHABLE)
        if self._outbox is not None:
            self._send(agents_pb2.AgentMessage(goodbye=agents_pb2.Goodbye(reason=reason)))
            self._leaving = True
            # The controller ends the stream once it has recorded the goodbye; don't wait long
            # for one that does not.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stream_done.wait(), GOODBYE_TIMEOUT)
        self.leave_reason = reason
        log.info("leaving: %s", reason)


def run_session(settings: AgentSettings, *, launcher: Launcher | None = None,
                reporter: Reporter | None = None, uses_command: bool = True,
                install_signal_handlers: bool = True,
                on_loop: Callable[[AgentSession], None] | None = None) -> int:
    """Run an agent to completion in a fresh event loop; AgentError propagates."""

    async def main() -> int:
        session = AgentSession(settings, launcher=launcher, reporter=reporter,
                               uses_command=uses_command)
        if on_loop is not None:
            on_loop(session)
        return await session.run(install_signal_handlers=install_signal_handlers)

    return asyncio.run(main())

"""AgentService: RegisterAgent and the Connect stream (protocol in protos/.../agents.proto).

The stream handler reads the agent's messages in order and hands each to the
:class:`~controller.service.controller.Controller`; replies and pushes go through one outbound
queue per stream, each entry waiting for the durability of the events it reports before it is
written. So an Ack, a RunAssignment or a StopRun never reaches an agent before the controller
could survive a crash with it, and the reader never waits for a commit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

import grpc
import grpc.aio

from controller.service.controller import (
    Assignment,
    Controller,
    InvalidRequestError,
    NoWork,
)
from controller.service.convert import RUN_STATE_NAMES, sweep_view, to_json
from controller.service.errors import rpc, status_for
from controller.store import StoreFailedError
from opensweep.v1 import agents_pb2, agents_pb2_grpc

log = logging.getLogger("opensweep.agents")

HELLO_TIMEOUT = 30.0
"""How long a new stream may stay silent before its Hello."""


class AgentConnection:
    """One open Connect stream: an ordered outbox whose head is written once it is durable.

    The writer task sleeps until the message at the head of the outbox may go (its events are
    durable) and then writes every message that may, in order. It is woken by a done-callback
    on the head's durability future, not by every message queued: each reply costs one wake-up
    of the writer, and a commit that covers several replies to one agent wakes it once.
    """

    def __init__(self, agent_id: str, context: grpc.aio.ServicerContext) -> None:
        self.agent_id = agent_id
        self.context = context
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._outbox: collections.deque[tuple[asyncio.Future[Any] | None,
                                              agents_pb2.ControllerMessage]] = collections.deque()
        self._asleep: asyncio.Future[None] | None = None
        """The writer's wake-up call while it sleeps on an empty outbox or a head not durable."""

    def send(self, message: agents_pb2.ControllerMessage,
             durable: asyncio.Future[Any] | None = None) -> None:
        if self.closed.is_set():
            return
        outbox = self._outbox
        outbox.append((durable, message))
        if len(outbox) == 1 and self._asleep is not None:  # the writer waits for a message
            if durable is None or durable.done():
                self._wake()
            else:
                durable.add_done_callback(self._wake)

    def push_stop(self, run_id: str, reason: str, durable: asyncio.Future[Any] | None) -> None:
        self.send(agents_pb2.ControllerMessage(
            stop_run=agents_pb2.StopRun(run_id=run_id, reason=reason)), durable)

    def close(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()

    def _wake(self, _: object = None) -> None:
        asleep = self._asleep
        if asleep is not None and not asleep.done():
            asleep.set_result(None)

    async def write_loop(self) -> None:
        outbox = self._outbox
        loop = asyncio.get_running_loop()
        while True:
            while outbox:
                durable, message = outbox[0]
                if durable is not None:
                    if not durable.done():
                        break
                    if durable.cancelled():
                        self.close("the event log is closing")
                        return
                    failure = durable.exception()
                    if failure is not None:
                        if isinstance(failure, StoreFailedError):
                            self.close(str(failure))
                            return
                        raise failure
                outbox.popleft()
                await self.context.write(message)
            self._asleep = asleep = loop.create_future()
            if outbox:  # the head waits for its commit
                head = outbox[0][0]
                assert head is not None
                head.add_done_callback(self._wake)
            try:
                await asleep
            finally:
                self._asleep = None


class AgentServicer(agents_pb2_grpc.AgentServiceServicer):
    def __init__(self, controller: Controller, shutdown: asyncio.Event) -> None:
        self.controller = controller
        self.shutdown = shutdown

    @rpc
    async def RegisterAgent(self, request: agents_pb2.RegisterAgentRequest,
                            context: grpc.aio.ServicerContext) -> agents_pb2.RegisterAgentResponse:
        ctl = self.controller
        agent_id = await ctl.register_agent(request.sweep_id, request.hostname, request.pid)
        sweep = ctl.state.sweep(request.sweep_id)
        return agents_pb2.RegisterAgentResponse(
            agent_id=agent_id,
            heartbeat_interval_seconds=ctl.settings.heartbeat_interval,
            heartbeat_timeout_seconds=ctl.settings.timeout,
            sweep=sweep_view(sweep, ctl.state.seq),
        )

    @rpc
    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        ctl = self.controller
        try:
            first = await asyncio.wait_for(context.read(), HELLO_TIMEOUT)
        except TimeoutError:
            raise InvalidRequestError(f"no Hello within {HELLO_TIMEOUT:g} s") from None
        if first is grpc.aio.EOF:
            return
        if first.WhichOneof("kind") != "hello":
            raise InvalidRequestError("the first message on Connect must be Hello (got "
                                      f"{first.WhichOneof('kind') or 'an empty message'})")
        agent_id = first.hello.agent_id
        if not agent_id:
            raise InvalidRequestError("Hello.agent_id is required (call RegisterAgent first)")
        connection = AgentConnection(agent_id, context)
        owed_stops = ctl.hello(agent_id, list(first.hello.running_run_ids), connection)
        connection.send(agents_pb2.ControllerMessage(welcome=agents_pb2.Welcome(
            heartbeat_interval_seconds=ctl.settings.heartbeat_interval)), ctl.durable_now())
        for run_id, reason in owed_stops:  # behind the Welcome in the ordered outbox
            connection.push_stop(run_id, reason, None)
        # The stream ends when the agent's messages end, when the writer stops (the stream
        # broke), when the connection is closed (lost agent, a newer stream) or at shutdown.
        # The reader awaits ``context.read()`` itself (no task and no asyncio.wait per
        # message: that was a fifth of the controller's CPU per suggestion); the other three
        # end it by cancelling this task, but only while it waits for a message, so a message
        # being handled is never cut in half.
        task = asyncio.current_task()
        assert task is not None
        waiting = [False]
        ending: list[asyncio.Future[Any]] = []

        def end(_: asyncio.Future[Any]) -> None:
            if not ending:
                ending.append(_)
                if waiting[0]:
                    task.cancel()

        writer = asyncio.ensure_future(connection.write_loop())
        closed = asyncio.ensure_future(connection.closed.wait())
        stopping = asyncio.ensure_future(self.shutdown.wait())
        for watched in (writer, closed, stopping):
            watched.add_done_callback(end)
        try:
            while not ending:
                waiting[0] = True
                try:
                    message = await context.read()
                except asyncio.CancelledError:
                    if not ending or task.uncancel():
                        raise  # cancelled from outside (the call was cancelled)
                    break
                finally:
                    waiting[0] = False
                if message is grpc.aio.EOF:
                    return
                ctl.touch(agent_id)
                if not await self._dispatch(agent_id, message, connection):
                    return
            if writer in ending and not writer.cancelled() and writer.exception():
                log.info("agent %s: stream write failed: %s", agent_id, writer.exception())
        finally:
            for watched in (writer, closed, stopping):
                watched.remove_done_callback(end)
                watched.cancel()
            with contextlib.suppress(BaseException):
                await writer
            ctl.disconnected(agent_id, connection)
            if connection.close_reason:
                log.info("agent %s: stream closed (%s)", agent_id, connection.close_reason)

    async def _dispatch(self, agent_id: str, message: agents_pb2.AgentMessage,
                        connection: AgentConnection) -> bool:
        """Handle one agent message; False ends the stream."""
        ctl = self.controller
        kind = message.WhichOneof("kind")
        if kind == "request_run":
            decision, durable = await ctl.request_run(agent_id)
            connection.send(_decision_message(decision), durable)
        elif kind == "heartbeat":
            pass  # proof of life: ``touch`` above
        elif kind == "metrics":
            batch = message.metrics
            records = [{"seq": r.seq, "step": r.step, "values": dict(r.values), "time": r.time}
                       for r in batch.records]
            try:
                through, durable = ctl.log_metrics(batch.run_id, records)
            except InvalidRequestError:
                raise
            except Exception as exc:
                if status_for(exc)[0] != grpc.StatusCode.NOT_FOUND:
                    raise
                log.warning("agent %s: metrics for unknown run %r dropped", agent_id,
                            batch.run_id)
                through = max((r.seq for r in batch.records), default=-1) + 1
                durable = ctl.durable_now()
            connection.send(_ack(batch.run_id, through), durable)
        elif kind == "run_started":
            ctl.run_started(message.run_started.run_id, message.run_started.pid)
        elif kind == "run_ended":
            ended = message.run_ended
            state = RUN_STATE_NAMES.get(ended.state, f"state number {ended.state}")
            exit_code = ended.exit_code if ended.HasField("exit_code") else None
            try:
                durable = ctl.run_ended(ended.run_id, state, exit_code, ended.reason)
            except InvalidRequestError:
                raise
            except Exception as exc:
                if status_for(exc)[0] != grpc.StatusCode.NOT_FOUND:
                    raise
                log.warning("agent %s: end of unknown run %r ignored", agent_id, ended.run_id)
                durable = ctl.durable_now()
            run = ctl.state.runs.get(ended.run_id)
            connection.send(_ack(ended.run_id, run.next_metric_seq if run else 0, run_ended=True),
                            durable)
        elif kind == "goodbye":
            await ctl.agent_left(agent_id, message.goodbye.reason)
            connection.close("the agent said goodbye")
            return False
        elif kind == "hello":
            raise InvalidRequestError("Hello may only be the first message of a stream")
        else:
            raise InvalidRequestError("empty AgentMessage (no kind set)")
        return True


def _decision_message(decision: Assignment | NoWork) -> agents_pb2.ControllerMessage:
    if isinstance(decision, Assignment):
        # Fields set one by one on the message's own sub-message: building a RunAssignment and
        # passing it to ControllerMessage() copies it, which costs more than the rest of the
        # message (one is built per suggestion).
        message = agents_pb2.ControllerMessage()
        run = message.run
        run.run_id = decision.run_id
        run.sweep_id = decision.sweep_id
        run.config_json = to_json(decision.params)
        if decision.program:
            run.program = decision.program
        if decision.command:
            run.command.extend(decision.command)
        return message
    reason = agents_pb2.NO_RUN_REASON_SWEEP_DONE if decision.done else agents_pb2.NO_RUN_REASON_WAIT
    return agents_pb2.ControllerMessage(no_run=agents_pb2.NoRun(
        reason=reason, retry_after_seconds=decision.retry_after, detail=decision.detail))


def _ack(run_id: str, metrics_through_seq: int, run_ended: bool = False
         ) -> agents_pb2.ControllerMessage:
    """An Ack, built in place (see ``_decision_message``)."""
    message = agents_pb2.ControllerMessage()
    ack = message.ack
    ack.SetInParent()
    ack.run_id = run_id
    ack.metrics_through_seq = metrics_through_seq
    ack.run_ended = run_ended
    return message

"""AgentConnection: the outbox of one Connect stream, written in order, each message only once
the events it reports are durable."""

from __future__ import annotations

import asyncio
from typing import Any

from controller.service.agents import AgentConnection
from controller.store import StoreFailedError
from opensweep.v1 import agents_pb2


class Stream:
    """What AgentConnection needs of a grpc ServicerContext: ``write``, recorded."""

    def __init__(self) -> None:
        self.written: list[str] = []

    async def write(self, message: agents_pb2.ControllerMessage) -> None:
        await asyncio.sleep(0)  # a real write suspends until the transport takes it
        self.written.append(message.ack.run_id)


def ack(run_id: str) -> agents_pb2.ControllerMessage:
    return agents_pb2.ControllerMessage(ack=agents_pb2.Ack(run_id=run_id))


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_messages_wait_for_their_events_and_keep_their_order() -> None:
    stream = Stream()
    connection = AgentConnection("agent-1", stream)  # type: ignore[arg-type]
    writer = asyncio.ensure_future(connection.write_loop())
    loop = asyncio.get_running_loop()
    first: asyncio.Future[Any] = loop.create_future()
    second: asyncio.Future[Any] = loop.create_future()
    connection.send(ack("a"), first)
    connection.send(ack("b"))  # nothing to wait for, but it may not overtake "a"
    connection.send(ack("c"), second)
    await settle()
    assert stream.written == []
    second.set_result(3)  # durable out of order: "c" still waits for "a"
    await settle()
    assert stream.written == []
    first.set_result(1)
    await settle()
    assert stream.written == ["a", "b", "c"]
    connection.send(ack("d"))  # the writer sleeps on an empty outbox; a message wakes it
    done: asyncio.Future[Any] = loop.create_future()
    done.set_result(4)
    connection.send(ack("e"), done)
    await settle()
    assert stream.written == ["a", "b", "c", "d", "e"]
    assert not writer.done()
    writer.cancel()


async def test_a_failed_commit_closes_the_stream_without_writing() -> None:
    stream = Stream()
    connection = AgentConnection("agent-1", stream)  # type: ignore[arg-type]
    writer = asyncio.ensure_future(connection.write_loop())
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    connection.send(ack("a"), failed)
    await settle()
    failed.set_exception(StoreFailedError("disk gone"))
    await asyncio.wait_for(writer, 5)
    assert stream.written == []
    assert connection.closed.is_set() and "disk gone" in connection.close_reason
    connection.send(ack("b"))  # a closed connection drops what it is given
    assert stream.written == []

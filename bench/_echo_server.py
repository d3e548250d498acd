"""The controller benchmark's baseline: a bare grpcio asyncio server speaking the agent protocol.

It serves the same services and methods as the controller (``SweepService.CreateSweep``,
``AgentService.RegisterAgent`` and ``AgentService.Connect``) and answers every message the way
the controller would, with a message of the same kind and about the same size, but with no
logic, no state beyond a counter and no disk. Driving it and the controller with the same
clients in the same run gives the ceiling that grpcio and Python set on this machine; the
controller's throughput is reported as a fraction of it.

``python -m bench._echo_server [--host 127.0.0.1] [--port 0]`` prints ``PORT <n>`` once
listening and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

from opensweep.v1 import agents_pb2, agents_pb2_grpc, sweeps_pb2, sweeps_pb2_grpc

SWEEP_ID = "echo0000"
# About what a random draw of the benchmark's sweep config looks like as JSON.
_CONFIG_JSON = json.dumps(
    {"learning_rate": 0.0012345678901234, "batch_size": 64, "optimizer": "adam", "dropout": 0.25}
)


class EchoSweeps(sweeps_pb2_grpc.SweepServiceServicer):
    async def CreateSweep(self, request: Any, context: Any) -> Any:
        return sweeps_pb2.CreateSweepResponse(
            sweep=sweeps_pb2.Sweep(id=SWEEP_ID, method="random", config_json=request.config)
        )


class EchoAgents(agents_pb2_grpc.AgentServiceServicer):
    def __init__(self) -> None:
        self._agents = 0
        self._runs = 0

    async def RegisterAgent(self, request: Any, context: Any) -> Any:
        self._agents += 1
        return agents_pb2.RegisterAgentResponse(
            agent_id=f"agent-{self._agents:06d}",
            heartbeat_interval_seconds=10.0,
            heartbeat_timeout_seconds=30.0,
            sweep=sweeps_pb2.Sweep(id=request.sweep_id, method="random"),
        )

    async def Connect(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        async for message in request_iterator:
            kind = message.WhichOneof("kind")
            if kind == "hello":
                yield agents_pb2.ControllerMessage(
                    welcome=agents_pb2.Welcome(heartbeat_interval_seconds=10.0)
                )
            elif kind == "request_run":
                self._runs += 1
                yield agents_pb2.ControllerMessage(
                    run=agents_pb2.RunAssignment(
                        run_id=f"{SWEEP_ID}-{self._runs:06d}",
                        sweep_id=SWEEP_ID,
                        config_json=_CONFIG_JSON,
                    )
                )
            elif kind == "run_ended":
                yield agents_pb2.ControllerMessage(
                    ack=agents_pb2.Ack(run_id=message.run_ended.run_id, run_ended=True)
                )
            elif kind == "metrics":
                records = message.metrics.records
                through = records[-1].seq + 1 if records else 0
                yield agents_pb2.ControllerMessage(
                    ack=agents_pb2.Ack(run_id=message.metrics.run_id, metrics_through_seq=through)
                )


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server()
    sweeps_pb2_grpc.add_SweepServiceServicer_to_server(EchoSweeps(), server)
    agents_pb2_grpc.add_AgentServiceServicer_to_server(EchoAgents(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"PORT {bound}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await server.stop(grace=1.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._echo_server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
